"""Running a sweep's trials on Ray Tune.

Each trial is Tune's function trainable `run_trial`: it trains one seed of one
configuration as an ordinary mannlab run directory in its node-local working
directory, and reports that whole directory to Tune as a checkpoint every
time the trainer saves. Tune persists the checkpoints to its storage (the
sweep directory locally; a shared path or S3-style URI on a cluster), places
trials by their resources, retries a trial whose process died from its last
checkpoint (mannlab's exact resume makes the retried trial's numbers those of
an uninterrupted one), runs the ASHA scheduler if asked, and restores an
interrupted experiment. When a trial completes, the driver copies its final
checkpoint to ``DIR/trials/<trial>``: a run directory for ``mannlab eval``,
``show``, ``report`` or ``train --resume``.
"""

import os
import shutil
import signal
import socket
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from mannlab import api, runtime
from mannlab.config import RunConfig, parse_config
from mannlab.sweep import results
from mannlab.sweep.spec import Plan, SweepError
from mannlab.training import rundir
from mannlab.training.trainer import Trainer
from mannlab.viz.sweep_report import TRIALS_DIR
from mannlab.viz.tensorboard import SequenceImageLogger

TRIAL_RUN = "mannlab-run"
"""A trial's working run directory is ``mannlab-run-<trial>`` in Tune's
node-local working directory (a process may run several trials in turn:
Tune reuses actors)."""


# ---------------------------------------------------------------- the trial's process
class _ReportingTrainer(Trainer):
    """A `Trainer` that hands every save to `on_save` (Tune's checkpoint)."""

    def __init__(self, *args, on_save: Callable[[Trainer], None], **kwargs):
        super().__init__(*args, **kwargs)
        self._on_save = on_save

    def save(self) -> None:
        super().save()
        self._on_save(self)


def _metrics(trainer: Trainer, final: bool = False) -> dict:
    """What a trial reports to Tune: its step and clock, the held-out
    convergence metric as ``objective`` (what ASHA compares; infinite before
    the first evaluation), and the Ray node it runs on."""
    p = trainer.seeds[0]
    names = trainer.task.metric_names
    last = p.last_eval or {}
    return {"step": p.step, "seconds": round(p.seconds, 3), "final": final,
            "objective": float(last.get(names[0], float("inf"))),
            "heldout_metrics": dict(last), "diverged": p.diverged is not None,
            "node": ray.get_runtime_context().get_node_id()}


def _report_checkpoint(trainer: Trainer) -> None:
    """Report the run directory as a Tune checkpoint (not for a diverged seed,
    whose last finite checkpoint was already reported)."""
    if trainer.seeds[0].diverged is None:
        tune.report(_metrics(trainer),
                    checkpoint=tune.Checkpoint.from_directory(str(trainer.run_dir)))


def _report_evaluation(trainer: Trainer, evaluated: list[int]) -> None:
    """Report a held-out evaluation (a save at the same step reports it with the checkpoint)."""
    if trainer.seeds[0].step % trainer.cfg.checkpoint_every:
        tune.report(_metrics(trainer))


def run_trial(space: dict) -> None:
    """Tune's function trainable: train one seed of one configuration
    (``space["trial"]``: `spec.Trial.params`).

    A retried or restored trial starts from Tune's checkpoint (a copy of its
    run directory at its last save), never from what a dead process left in
    the node's working directory.
    """
    runtime.configure("single")  # the compilation cache (XLA_FLAGS come with the runtime env)
    params = space["trial"]
    seed = params["seed"]
    config: RunConfig = parse_config(params["config"], f"trial {params['id']}")
    run = Path.cwd() / f"{TRIAL_RUN}-{params['id']}"  # node-local: Tune's working directory
    if run.exists():
        shutil.rmtree(run)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        rundir.create_run(run, config, [seed])
    else:
        checkpoint.to_directory(str(run))
    trainer = _ReportingTrainer(run, config, [seed], resume=checkpoint is not None,
                                on_save=_report_checkpoint)
    if config.train.log_images:
        trainer.on_eval.append(SequenceImageLogger(trainer))
    trainer.on_eval.append(_report_evaluation)
    (result,) = trainer.train()
    rundir.write_seed_results(run, [asdict(result)])
    if params["lengths"]:
        api.evaluate(run, params["lengths"], params["sequences"])
    tune.report(_metrics(trainer, final=True),
                checkpoint=tune.Checkpoint.from_directory(str(run)))
    shutil.rmtree(run, ignore_errors=True)  # Tune's storage holds it now


def _trial_name(trial) -> str:
    return trial.config["trial"]["id"]


# ---------------------------------------------------------------- the driver
class _Materialise(tune.Callback):
    """Copies each completed trial's final checkpoint to ``DIR/trials/<id>``
    and prints one line per trial (in the driver)."""

    def __init__(self, sweep_dir: str):
        self.sweep_dir = sweep_dir

    def on_trial_complete(self, iteration, trials, trial, **info):
        materialise(Path(self.sweep_dir), trial)
        result = trial.last_result or {}
        what = ("diverged" if result.get("diverged") else
                f"held-out {result.get('objective'):.4g}" if result.get("final") else
                "stopped by the scheduler")
        print(f"  {_trial_name(trial)}: done at step {result.get('step')} "
              f"({result.get('seconds')} s), {what}", flush=True)


def materialise(sweep_dir: Path, trial) -> None:
    """Copy `trial`'s latest checkpoint to ``DIR/trials/<id>``, replacing an
    earlier copy unless that one is a finished run (it has seeds.json)."""
    dest = sweep_dir / TRIALS_DIR / _trial_name(trial)
    if trial.checkpoint is None or (dest / rundir.SEEDS_FILE).exists():
        return
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    trial.checkpoint.to_directory(str(partial))
    for lock in partial.glob("seed-*/.lock"):
        lock.unlink()
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)


def _outcomes(trials) -> list[results.Outcome]:
    out = []
    for t in trials:
        error = None
        if t.status == "ERROR":
            text = t.get_error() or "failed"
            lines = [line for line in str(text).strip().splitlines() if line.strip()]
            error = lines[-1] if lines else "failed"
        out.append(results.Outcome(_trial_name(t), t.status, dict(t.last_result or {}),
                                   error, t.num_failures))
    return out


def _runtime_env() -> dict:
    """Environment of every trial process: XLA single-threaded (one trial
    per CPU), glibc malloc with huge pages, the driver's compilation cache
    setting if it has one."""
    env = {"XLA_FLAGS": runtime.flags_with_single_thread(os.environ.get("XLA_FLAGS", "")),
           "MANNLAB_NO_RESTART": "1"}
    tunables = runtime.tunables_with_huge_pages(os.environ.get("GLIBC_TUNABLES", ""))
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    for name in ("MANNLAB_JAX_CACHE", "MANNLAB_DATA_DIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return {"env_vars": env}


def start_ray(address: str | None) -> None:
    """Connect to the cluster at `address`, or start Ray on this machine (one
    trial per core)."""
    kwargs = {"runtime_env": _runtime_env(), "include_dashboard": False,
              "log_to_driver": False, "logging_level": "WARNING"}
    if address is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        ray.init(address="local", num_cpus=cores or os.cpu_count(), **kwargs)
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise SweepError(f"--address {address}: cannot connect to Ray ({first})") from None


def _check_reachable(address: str) -> None:
    """A ``host:port`` address must accept a connection (Ray itself retries
    an unreachable one for minutes); ``auto`` and ``ray://`` go to Ray as they are."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as err:
        raise SweepError(f"--address {address}: no Ray cluster answers there "
                         f"({err.strerror or type(err).__name__})") from None


def stop_ray() -> None:
    ray.shutdown()


def make_scheduler(plan: Plan):
    """Tune's ASHA over held-out evaluations, if the sweep asks for it. Its
    max_t is one step past the longest budget: ASHA stops a trial that
    reaches max_t, which would cut a trial off at its last save, before it
    reports that it finished."""
    if plan.asha is None:
        return None
    return ASHAScheduler(time_attr="step", metric="objective", mode="min",
                         max_t=plan.max_steps() + 1, grace_period=plan.asha.grace_period,
                         reduction_factor=plan.asha.reduction_factor)


def run_trials(plan: Plan, sweep_dir: Path, data: dict) -> list:
    """Run the plan's trials not yet done on Ray (`start_ray` first),
    restoring Tune's experiment if there is one, and return Tune's outcomes
    of every trial it knows."""
    storage, experiment = data["ray"]["storage"], data["ray"]["experiment"]
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    trainable = tune.with_resources(run_trial, {"cpu": plan.resources.cpus,
                                                "gpu": plan.resources.gpus})
    path = f"{storage.rstrip('/')}/{experiment}"
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                   resume_errored=True)
    else:
        done = {t["id"] for t in data["trials"] if t["status"] in results.FINAL}
        todo = [t.params(plan) for t in plan.trials if t.id not in done]
        tuner = tune.Tuner(
            trainable, param_space={"trial": tune.grid_search(todo)},
            tune_config=tune.TuneConfig(scheduler=make_scheduler(plan), reuse_actors=True,
                                        trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(
                name=experiment, storage_path=storage, verbose=0,
                failure_config=tune.FailureConfig(max_failures=plan.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                callbacks=[_Materialise(str(sweep_dir.resolve()))]))
    restore = _sigterm_as_sigint()
    try:
        grid = tuner.fit()
    finally:
        restore()
    analysis = tune.ExperimentAnalysis(grid.experiment_path,
                                       storage_filesystem=grid.filesystem)
    for trial in analysis.trials:
        if trial.status in ("TERMINATED", "ERROR"):
            materialise(sweep_dir, trial)
    return _outcomes(analysis.trials)


def _sigterm_as_sigint() -> Callable[[], None]:
    """SIGTERM ends the sweep as Ctrl-C does (Tune saves its state and
    returns), until the returned function restores the handler."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(),
                                                                          signal.SIGINT))
    return lambda: signal.signal(signal.SIGTERM, previous)
