"""Sweeps: a grid or random search of configurations x seeds, on Ray.

    mannlab sweep configs/sweeps/ntm-memory-init.yaml --dir sweeps/memory-init
    mannlab sweep SWEEP.yaml --dir DIR --address ray://head:10001 --storage s3://bucket/sweeps

`load_plan` reads and validates a sweep file (`spec`); `run_sweep` runs every
trial not yet done on Ray Tune (`ray_runner`) and writes ``DIR/sweep.json``,
``DIR/sweep.csv`` and the trials' run directories (`results`). Running the
same command again skips finished trials and resumes interrupted ones. Ray
is the optional extra ``mannlab[sweep]``; nothing here imports it until a
sweep runs.
"""

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from mannlab.sweep import results
from mannlab.sweep.spec import Plan, SweepError, find_sweep, load_plan

__all__ = ["Plan", "SweepError", "SweepRun", "find_sweep", "load_plan", "run_sweep"]

INSTALL_HINT = "mannlab sweep needs Ray: pip install 'mannlab[sweep]'"


@dataclass
class SweepRun:
    """A sweep directory after `run_sweep`: its sweep.json content, and how
    many trials this call ran."""

    path: Path
    data: dict
    ran: int

    @property
    def pending(self) -> list[str]:
        """Trials not done (the sweep was interrupted): run it again."""
        return [t["id"] for t in self.data["trials"] if t["status"] == "pending"]

    @property
    def errors(self) -> list[dict]:
        return [t for t in self.data["trials"] if t["status"] == "error"]


def _ray_runner():
    """The Ray part, imported when a sweep runs (Ray is an optional extra)."""
    try:
        from mannlab.sweep import ray_runner  # lazy: Ray is the optional sweep extra
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] == "ray":
            raise SweepError(INSTALL_HINT) from None
        raise
    return ray_runner


def default_dir(sweep: str | Path) -> Path:
    """``sweeps/<sweep file name>``: the same command finds the same directory."""
    return Path("sweeps") / Path(str(sweep)).stem


def _storage(sweep_dir: Path, plan: Plan, address: str | None,
             storage: str | None) -> tuple[str, str]:
    """Tune's storage and experiment name: the sweep directory itself for a
    local run; a path or URI every node sees (required) on a cluster."""
    if address is None:
        if storage is not None:
            raise SweepError(f"--storage {storage}: only with --address (a local sweep keeps "
                             "Ray's checkpoints in its directory)")
        return str(sweep_dir.resolve()), results.LOCAL_EXPERIMENT
    if storage is None:
        raise SweepError(f"--address {address}: give --storage, a shared path or an S3-style "
                         "URI that every node of the cluster can read and write")
    tag = hashlib.sha256(str(sweep_dir.resolve()).encode()).hexdigest()[:8]
    return storage, f"mannlab-sweep-{sweep_dir.name}-{tag}"


def run_sweep(sweep: str | Path, sweep_dir: str | Path | None = None,
              address: str | None = None, storage: str | None = None,
              log=print) -> SweepRun:
    """Run every trial of the sweep file `sweep` not yet done in `sweep_dir`.

    Args:
      sweep: a sweep file, or the name of a shipped one.
      sweep_dir: the sweep directory (default ``sweeps/<name>``); a second
        call with the same sweep skips finished trials and resumes the rest.
      address: a running Ray cluster (as `ray.init` takes it); None starts
        Ray on this machine, one trial per core.
      storage: with `address`, Tune's storage_path: a path or URI every node sees.
    Raises:
      SweepError: a bad sweep file, a directory of another sweep, bad
        --address / --storage, or no Ray installed; one line.
    """
    plan = load_plan(sweep)
    sweep_dir = Path(sweep_dir) if sweep_dir is not None else default_dir(plan.source)
    data = results.read_sweep_json(sweep_dir)
    if data is not None:
        stored = data["fingerprint"]
        if not results.same_plan(data, plan):
            raise SweepError(f"{sweep_dir}: holds another sweep ({data['sweep']}: "
                             f"{results.plan_difference(data, plan)}); choose another --dir")
        if data["fingerprint"] != stored:  # read with fields added since: the same trials
            results.write_results(sweep_dir, data)
        recovered = results.recover_finished(sweep_dir, data)
        if recovered["trials"] != data["trials"]:  # what a killed driver did not record
            data = recovered
            results.write_results(sweep_dir, data)
        todo = [t["id"] for t in data["trials"] if t["status"] not in results.FINAL]
        if not todo:
            log(f"{sweep_dir}: every trial is done; nothing to run")
            return SweepRun(sweep_dir, data, 0)
        place, _ = _storage(sweep_dir, plan, address, storage)
        if address is not None and place != data["ray"]["storage"]:
            raise SweepError(f"--storage {storage}: {sweep_dir} keeps its Ray experiment in "
                             f"{data['ray']['storage']}; give that")
    else:
        place, experiment = _storage(sweep_dir, plan, address, storage)
        todo = [t.id for t in plan.trials]
    runner = _ray_runner()
    runner.start_ray(address)  # before anything is written: a bad address is one line
    try:
        if data is None:
            data = results.new_sweep_json(plan, place, experiment)
            try:
                sweep_dir.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise SweepError(f"--dir: cannot create {sweep_dir} "
                                 f"({err.strerror or type(err).__name__})") from None
            results.write_results(sweep_dir, data)
        log(f"sweep directory: {sweep_dir}; {len(todo)} of {len(data['trials'])} trials to run")
        outcomes = runner.run_trials(plan, sweep_dir, data)
    finally:
        runner.stop_ray()
    trial_records = {r.id: r for r in results.records(data)}
    for outcome in outcomes:
        if outcome.id in trial_records:
            results.apply_outcome(sweep_dir, trial_records[outcome.id], outcome)
    data = {**data, "trials": [asdict(trial_records[t["id"]]) for t in data["trials"]]}
    results.write_results(sweep_dir, data)
    return SweepRun(sweep_dir, data, len(todo))
