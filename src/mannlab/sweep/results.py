"""A sweep's results: ``DIR/sweep.json``, ``DIR/sweep.csv`` and the table.

    DIR/
      sweep.json          the plan (configurations, trials) and every trial's outcome
      sweep.csv           one row per trial
      trials/<trial>/     each finished trial's run directory (one seed)
      ray/                Ray Tune's experiment (checkpoints, state) when run locally

A trial's numbers come from its own run directory (``seeds.json``,
``seed-K/eval.json``), so the table says what the trials say; only trials
that did not finish (stopped by the scheduler) take their last numbers from
what they reported to Tune.
"""

import csv
import io
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rich.markup import escape
from rich.table import Table

from mannlab.config import ConfigError, parse_config
from mannlab.sweep.spec import Plan, SweepError, SweepFile, fingerprint
from mannlab.training.files import write_text_atomic
from mannlab.training.rundir import SEEDS_FILE, read_seed_results, seed_dir
from mannlab.viz.sweep_report import FORMAT, SWEEP_FILE, TRIALS_DIR

CSV_FILE = "sweep.csv"
LOCAL_EXPERIMENT = "ray"
"""Tune's experiment directory inside the sweep directory (local runs)."""

FINAL = ("converged", "not_converged", "diverged", "stopped")
"""Statuses of a trial that is done: a re-run leaves it alone."""
STATUSES = (*FINAL, "error", "pending")


@dataclass
class TrialRecord:
    """One trial's outcome (`status`: one of `STATUSES`)."""

    id: str
    configuration: str
    seed: int
    status: str = "pending"
    run: str | None = None  # its run directory, relative to the sweep directory
    steps: int | None = None
    seconds: float | None = None
    converged: dict | None = None  # step, seconds, sequences
    diverged: dict | None = None  # step, seconds, non_finite
    heldout: dict | None = None  # metric -> value at the last evaluation
    eval: dict | None = None  # length -> metric -> value
    error: str | None = None
    failures: int = 0


@dataclass
class Outcome:
    """What Ray Tune knows of a trial at the end of a sweep command."""

    id: str
    state: str  # Tune's trial status: TERMINATED, ERROR, PENDING, RUNNING, PAUSED
    last_result: dict = field(default_factory=dict)
    error: str | None = None
    failures: int = 0


def quartiles(values: list[float]) -> dict | None:
    """Median and quartiles (linear interpolation), None for no values."""
    if not values:
        return None
    q1, median, q3 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "n": len(values)}


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def read_trial_run(sweep_dir: Path, record: TrialRecord) -> None:
    """Fill `record`'s numbers from its run directory's seeds.json and eval.json."""
    run = sweep_dir / TRIALS_DIR / record.id
    results = [r for r in read_seed_results(run / SEEDS_FILE) if r["seed"] == record.seed]
    if not results:
        return
    r = results[0]
    record.run = f"{TRIALS_DIR}/{record.id}"
    record.steps, record.seconds = r["steps"], r["seconds"]
    record.converged, record.diverged, record.heldout = r["converged"], r["diverged"], r["heldout"]
    record.status = ("diverged" if r["diverged"] else
                     "converged" if r["converged"] else "not_converged")
    eval_file = seed_dir(run, record.seed) / "eval.json"
    if eval_file.exists():
        table = json.loads(eval_file.read_text())
        record.eval = table["seeds"].get(f"seed-{record.seed}")


def apply_outcome(sweep_dir: Path, record: TrialRecord, outcome: Outcome) -> None:
    """Update `record` from Tune's `outcome` (and the trial's run directory)."""
    record.failures = outcome.failures
    record.error = None
    result = outcome.last_result or {}
    if outcome.state == "TERMINATED" and result.get("final"):
        read_trial_run(sweep_dir, record)
        if record.status == "pending":  # the run directory is missing: what Tune saw
            raise SweepError(f"{sweep_dir / TRIALS_DIR / record.id}: trial {record.id} "
                             "finished but its run directory has no seeds.json")
    elif outcome.state == "TERMINATED":
        record.status = "stopped"  # by the scheduler, before its budget
        record.steps, record.seconds = result.get("step"), result.get("seconds")
        record.heldout = result.get("heldout_metrics") or None
        if (sweep_dir / TRIALS_DIR / record.id).exists():
            record.run = f"{TRIALS_DIR}/{record.id}"
    elif outcome.state == "ERROR":
        record.status = "error"
        record.error = outcome.error
    else:
        record.status = "pending"


# ---------------------------------------------------------------- sweep.json
def new_sweep_json(plan: Plan, storage: str, experiment: str) -> dict:
    return {
        "format": FORMAT,
        "sweep": plan.source,
        "fingerprint": plan.fingerprint(),
        "ray": {"storage": storage, "experiment": experiment},
        "lengths": plan.lengths,
        "sequences": plan.sequences,
        "configurations": [{"id": c.id, "label": c.label, "base": c.base, "values": c.values,
                            "config": c.config.model_dump(mode="json")}
                           for c in plan.configurations],
        "trials": [asdict(TrialRecord(t.id, t.configuration, t.seed)) for t in plan.trials],
    }


def _first_difference(old, new, where: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(dict.fromkeys([*old, *new])):
            found = _first_difference(old.get(key), new.get(key), f"{where}.{key}" if where
                                      else key)
            if found:
                return found
        return None
    return None if old == new else f"{where}: {old!r} there, {new!r} now"


def same_plan(data: dict, plan: Plan) -> bool:
    """Whether a sweep.json was made for `plan`: the same fingerprint, or the
    same once its stored configs are read with today's config classes (a
    field added to mannlab since, with a default, changes no trial). If so,
    `data` is brought up to today's fingerprint and configs."""
    if data["fingerprint"] == plan.fingerprint():
        return True
    try:
        configs = {c["id"]: parse_config(c["config"], f"sweep.json {c['id']}")
                   for c in data["configurations"]}
        trials = [(t["id"], configs[t["configuration"]].model_copy(update={"seed": t["seed"]}))
                  for t in data["trials"]]
    except (ConfigError, KeyError):
        return False
    sequences = data.get("sequences", SweepFile.model_fields["sequences"].default)
    if fingerprint(trials, data.get("lengths"), sequences) != plan.fingerprint():
        return False
    data["fingerprint"], data["sequences"] = plan.fingerprint(), plan.sequences
    data["configurations"] = new_sweep_json(plan, "", "")["configurations"]
    return True


def _read_with_defaults(config: dict) -> dict:
    """A stored config with today's defaults filled in (as stored if it no longer parses)."""
    try:
        return parse_config(config).model_dump(mode="json")
    except ConfigError:
        return config


def plan_difference(data: dict, plan: Plan) -> str:
    """What differs between the plan a sweep.json was made for and `plan`, in a few words."""
    old = {c["id"]: _read_with_defaults(c["config"]) for c in data["configurations"]}
    new = {c.id: c.config.model_dump(mode="json") for c in plan.configurations}
    if list(old) != list(new):
        return f"configurations {', '.join(old)} there, {', '.join(new)} now"
    for cid, config in old.items():
        found = _first_difference(config, new[cid])
        if found:
            return f"{cid} {found}"
    old_trials = [t["id"] for t in data["trials"]]
    if old_trials != [t.id for t in plan.trials]:
        return f"trials {', '.join(old_trials)} there, {', '.join(t.id for t in plan.trials)} now"
    return f"lengths {data.get('lengths')} there, {plan.lengths} now (or sequences)"


def read_sweep_json(sweep_dir: Path) -> dict | None:
    path = sweep_dir / SWEEP_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError) as err:
        raise SweepError(f"{path}: not a readable sweep file ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SweepError(f"{path}: not a mannlab sweep file (format {data.get('format')!r} "
                         f"where {FORMAT!r} was expected)" if isinstance(data, dict) else
                         f"{path}: not a mannlab sweep file")
    return data


def recover_finished(sweep_dir: Path, data: dict) -> dict:
    """`data` with its pending or failed trials that have a finished run
    directory (seeds.json) read from it: trials that finished after the last
    time sweep.json was written (the driver was killed)."""
    trials = []
    for t in records(data):
        if t.status not in FINAL:
            read_trial_run(sweep_dir, t)
        trials.append(asdict(t))
    return {**data, "trials": trials}


def records(data: dict) -> list[TrialRecord]:
    return [TrialRecord(**t) for t in data["trials"]]


def summarise(data: dict) -> list[dict]:
    """Per configuration: trials by status, steps and seconds to converge
    (median, quartiles), the final held-out metric (median over trials that
    finished without diverging) and each evaluation length's (median)."""
    out = []
    for c in data["configurations"]:
        trials = [t for t in records(data) if t.configuration == c["id"]]
        counts = {s: sum(t.status == s for t in trials) for s in STATUSES}
        conv = [t for t in trials if t.status == "converged"]
        finished = [t for t in trials if t.status in ("converged", "not_converged")]
        metric = next((next(iter(t.heldout)) for t in finished if t.heldout), None)
        lengths = [str(n) for n in data.get("lengths") or []]
        evals = {n: _median([t.eval[n][metric] for t in finished
                             if t.eval and n in t.eval and metric in t.eval[n]])
                 for n in lengths}
        out.append({
            "id": c["id"], "label": c["label"], "trials": len(trials), **counts,
            "steps_to_converge": quartiles([t.converged["step"] for t in conv]),
            "seconds_to_converge": quartiles([t.converged["seconds"] for t in conv]),
            "metric": metric,
            "heldout": _median([t.heldout[metric] for t in finished
                                if t.heldout and metric in t.heldout]),
            "eval": evals,
        })
    return out


def write_results(sweep_dir: Path, data: dict) -> None:
    """sweep.json (with the per-configuration summary) and sweep.csv."""
    data = {**data, "summary": summarise(data)}
    write_text_atomic(sweep_dir / SWEEP_FILE, json.dumps(data, indent=2) + "\n")
    write_text_atomic(sweep_dir / CSV_FILE, trials_csv(data))


def trials_csv(data: dict) -> str:
    labels = {c["id"]: c["label"] for c in data["configurations"]}
    rows = []
    for t in records(data):
        row = {"trial": t.id, "configuration": t.configuration, "label": labels[t.configuration],
               "seed": t.seed, "status": t.status, "steps": t.steps, "seconds": t.seconds,
               "converged_step": (t.converged or {}).get("step"),
               "converged_seconds": (t.converged or {}).get("seconds"),
               "diverged_step": (t.diverged or {}).get("step")}
        row.update({f"heldout_{k}": v for k, v in (t.heldout or {}).items()})
        for length, metrics in (t.eval or {}).items():
            row.update({f"length_{length}_{k}": v for k, v in metrics.items()})
        row.update({"error": t.error, "run": t.run})
        rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _spread(q: dict | None, digits: str = ".0f") -> str:
    if q is None:
        return "-"
    return f"{q['median']:{digits}} [{q['q1']:{digits}}, {q['q3']:{digits}}]"


def summary_table(data: dict) -> Table:
    """The table printed at the end of a sweep: one row per configuration."""
    summary = summarise(data)
    lengths = [str(n) for n in data.get("lengths") or []]
    metric = next((s["metric"] for s in summary if s["metric"]), "metric")
    table = Table(title=escape(f"sweep {data['sweep']}: per configuration (median [quartiles] "
                               "over converged seeds)"))
    for column in ("configuration", "converged", "diverged", "other",
                   "steps to converge", "seconds to converge", f"held-out {metric}",
                   *(f"{metric} @ {n}" for n in lengths)):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for s in summary:
        other = ", ".join(f"{s[k]} {k}" for k in ("stopped", "error", "pending") if s[k])
        table.add_row(f"{s['id']} {s['label']}", f"{s['converged']}/{s['trials']}",
                      str(s["diverged"]), other or "-",
                      _spread(s["steps_to_converge"]), _spread(s["seconds_to_converge"], ".1f"),
                      "-" if s["heldout"] is None else f"{s['heldout']:.4g}",
                      *("-" if s["eval"].get(n) is None else f"{s['eval'][n]:.4g}"
                        for n in lengths))
    return table
