"""Benchmarks: a suite of tasks x models, trained, scored its own way and set
beside the published numbers.

    mannlab bench chomsky --models lstm ntm dnc --tasks reverse_string --seeds 3
    mannlab bench babi --models dnc dnc-md lstm ntm --tasks 1 2 3 19 --seeds 3

A suite (`Suite`) says what is benchmarked: its tasks, the base config of
each model (the config of (task, model) is that base with the suite's task
overrides), how a trained seed is scored, the table's columns and the
published reference table. `run_bench` does the rest once for every suite:
it trains every task x model x learning rate x seed (one sweep over the whole
grid on Ray when Ray is installed, so trials run in parallel; otherwise
`api.train` with seeds), scores every seed (cached in ``DIR/bench.json``
against its checkpoint), and writes the table: per task and model the
suite's summary over seeds and learning rates, and the parameter counts.
Running the same command again skips what is done (finished trials, scored
seeds); other options in the same directory are refused. A suite adds
rows under the tasks (`Suite.summary_rows`: bAbI's mean error and failed
tasks per model) and states its training data and evaluation in the budget
(`Suite.budget`: the Chomsky suite's lengths, bAbI's training size).

    DIR/bench.json        options, budget, every seed's score and curve, the table and
                          its summary rows, the reference table (`viz/bench_report.py`
                          draws it)
    DIR/runs/<unit>/      run directories (without Ray): one per task x model x lr
    DIR/sweep/            the sweep directory (with Ray): trials/<trial>/ are the runs
    DIR/sweep.yaml, DIR/configs/   the sweep file and its base configs (with Ray)
"""

import importlib.util
import json
import math
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import equinox as eqx
import jax
import yaml
from rich.table import Table

from mannlab import api, sweep
from mannlab.bench.babi import BabiSuite
from mannlab.bench.chomsky import ChomskySuite
from mannlab.config import (
    ConfigError,
    RunConfig,
    YamlDumper,
    apply_overrides,
    build_model,
    dump_config,
    find_config,
    parse_config,
    read_config_text,
    read_yaml,
)
from mannlab.training import rundir
from mannlab.training.checkpoint import CheckpointError
from mannlab.training.evaluate import checkpoint_stamp
from mannlab.training.files import write_text_atomic
from mannlab.viz.bench_report import BENCH_FILE, FORMAT, budget_line, cell_text, reference_text

__all__ = ["SUITES", "BenchOptions", "BenchRun", "Suite", "run_bench", "summary_table"]

RUNNERS = ("auto", "sweep", "local")


class Suite(Protocol):
    """What a benchmark suite declares (`bench/chomsky.py`, `bench/babi.py`).

    ``summary_rows`` are rows under the tasks computed from the task cells
    (their published values under the row's name in the reference's
    scores); ``budget`` is the suite's part of every table's stated budget.
    """

    name: str  # the CLI's name: mannlab bench NAME
    title: str
    tasks: tuple[str, ...]  # every task, in table order
    default_tasks: tuple[str, ...]  # without --tasks
    models: dict[str, str]  # model name -> base config (a shipped config's name)
    score_name: str  # what a seed's number is called ("score", "error")
    curve_name: str  # the y axis of the per-length curves ("accuracy")
    higher_is_better: bool
    columns: tuple[tuple[str, str, str], ...]  # (summary key, header, "percent" | "rate")
    solved_note: str  # what the table's mark means

    def reference(self) -> dict:
        """The published table: {"title", "statistic", "models": [...], "sources":
        {key: text}, "missing": text, "scores": {task or row: {model: value, "source":
        key}}, optional "spread": {task or row: {model: s.d.}}}."""

    def task_overrides(self, task: str) -> list[str]:
        """Overrides that make a base config one of `task`."""

    def evaluation(self, max_length: int | None, sequences: int | None) -> dict:
        """The stated evaluation (what `score`, `budget` and `describe_evaluation`
        read); ConfigError naming the option for values it cannot take."""

    def describe_evaluation(self, evaluation: dict) -> str: ...

    def score(self, config: RunConfig, seed_dirs: list[Path], evaluation: dict) -> dict:
        """{seed_dir_name: {"score": float, "curve": {length: value}}}."""

    def summary(self, scores: list[float]) -> dict:
        """The table cell of a task x model over its seeds and learning rates."""

    def solved(self, value: float) -> bool: ...

    def summary_rows(self, table: dict, tasks: list[str], models: list[str]) -> list[dict]:
        """[{"name", "kind": "percent" | "count", "cells": {model: {column key:
        value} or None}}], possibly empty."""

    def budget(self, per_model: Callable[[Callable[[RunConfig], object]], object],
               evaluation: dict) -> dict:
        """The training data and evaluation as the budget states them;
        ``per_model(get)`` is ``get(config)`` if every model agrees, else
        {model: get(config)}."""


SUITES: dict[str, Suite] = {"chomsky": ChomskySuite(), "babi": BabiSuite()}


@dataclass(frozen=True)
class BenchOptions:
    """A bench command's options (None: the suite's or base configs' own)."""

    models: tuple[str, ...]
    tasks: tuple[str, ...] | None = None  # None: suite.default_tasks; ("all",): every task
    steps: int | None = None
    seeds: int = 1
    learning_rates: tuple[float, ...] | None = None
    max_length: int | None = None
    sequences: int | None = None
    sets: tuple[str, ...] = ()  # [MODEL:]section.field=value
    runner: str = "auto"


@dataclass
class BenchRun:
    """A bench directory after `run_bench`: its bench.json content, how many
    seeds this call scored, and the units not (yet) trained."""

    path: Path
    data: dict
    scored: int
    missing: list[str]


@dataclass(frozen=True)
class Unit:
    """One task x model x learning rate: one configuration, `seeds` seeds."""

    task: str
    model: str
    learning_rate: float
    config: RunConfig

    @property
    def key(self) -> str:
        return f"{self.task}-{self.model}-lr{self.learning_rate:g}"


# ---------------------------------------------------------------- options
def _check_names(option: str, given: tuple[str, ...], known, what: str) -> None:
    if not given:
        raise ConfigError(f"{option}: give at least one {what}")
    for name in given:
        if name not in known:
            raise ConfigError(f"{option}: unknown {what} {name!r} (one of {', '.join(known)})")
    repeated = sorted({n for n in given if given.count(n) > 1})
    if repeated:
        raise ConfigError(f"{option}: {repeated[0]} is listed twice")


def _check_options(suite: Suite, o: BenchOptions) -> tuple[list[str], list[float] | None]:
    """Validate `o`; returns (tasks, learning rates or None)."""
    _check_names("--models", o.models, suite.models, "model")
    tasks = (list(suite.tasks) if o.tasks == ("all",) else
             list(o.tasks) if o.tasks is not None else list(suite.default_tasks))
    _check_names("--tasks", tuple(tasks), (*suite.tasks, "all"), "task")
    for option, value in (("--steps", o.steps), ("--seeds", o.seeds),
                          ("--max-length", o.max_length), ("--sequences", o.sequences)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ConfigError(f"{option}: must be a whole number >= 1, got {value!r}")
    if o.seeds is None:
        raise ConfigError("--seeds: must be a whole number >= 1, got None")
    if o.seeds > 1000:
        raise ConfigError(f"--seeds: at most 1000, got {o.seeds}")
    lrs = None
    if o.learning_rates is not None:
        if not o.learning_rates:
            raise ConfigError("--learning-rates: give at least one learning rate")
        for lr in o.learning_rates:
            if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) \
                    or lr <= 0:
                raise ConfigError(f"--learning-rates: must be numbers > 0, got {lr!r}")
        if len(set(o.learning_rates)) < len(o.learning_rates):
            raise ConfigError(f"--learning-rates: a value is listed twice "
                              f"({' '.join(f'{v:g}' for v in o.learning_rates)})")
        lrs = [float(v) for v in o.learning_rates]
    if o.runner not in RUNNERS:
        raise ConfigError(f"--runner: one of {', '.join(RUNNERS)}, got {o.runner!r}")
    return tasks, lrs


def _split_set(item: str, models) -> tuple[str | None, str]:
    """``[MODEL:]key=value`` -> (MODEL or None, ``key=value``)."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected [MODEL:]section.field=value, e.g. "
                          "model.controller_size=8 or ntm:model.memory_size=64")
    head, _ = item.split("=", 1)
    if ":" in head:
        model, rest = item.split(":", 1)
        if model not in models:
            raise ConfigError(f"--set {item}: {model!r} is not one of the models "
                              f"({', '.join(models)})")
        return model, rest
    return None, item


def _has_field(tree: dict, dotted: str) -> bool:
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _model_sets(suite: Suite, o: BenchOptions) -> dict[str, list[str]]:
    """The --set overrides of each model: ``MODEL:`` ones for that model, the
    others for every model whose base config has the field (at least one must)."""
    per_model: dict[str, list[str]] = {m: [] for m in o.models}
    trees = {m: None for m in o.models}
    for item in o.sets:
        model, override = _split_set(item, o.models)
        key = override.split("=", 1)[0].strip()
        if model is not None:
            per_model[model].append(override)
            continue
        takers = []
        for m in o.models:
            if trees[m] is None:  # every field, those the YAML leaves at defaults too
                trees[m] = parse_config(_base_tree(suite, m),
                                        str(find_config(suite.models[m]))).model_dump(mode="json")
            if _has_field(trees[m], key):
                takers.append(m)
        if not takers:
            raise ConfigError(f"--set {item}: none of the models ({', '.join(o.models)}) has "
                              f"the field {key}")
        for m in takers:
            per_model[m].append(override)
    return per_model


def _base_tree(suite: Suite, model: str) -> dict:
    path = find_config(suite.models[model])
    raw = read_yaml(read_config_text(path), path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: not a config mapping")
    return raw


def plan_units(suite: Suite, o: BenchOptions) -> tuple[list[Unit], list[str], dict]:
    """Every task x model x learning rate with its config, the tasks, and the
    evaluation; one-line ConfigError naming the option for bad input."""
    tasks, lrs = _check_options(suite, o)
    evaluation = suite.evaluation(o.max_length, o.sequences)
    sets = _model_sets(suite, o)
    units = []
    for task in tasks:
        for model in o.models:
            base = suite.models[model]
            overrides = suite.task_overrides(task) + sets[model]
            if o.steps is not None:
                overrides.append(f"train.max_steps={o.steps}")
            tree = apply_overrides(_base_tree(suite, model), overrides)
            source = f"--set / base config {base} for {task}"
            config = parse_config(tree, source)
            for lr in (lrs or [config.train.learning_rate]):
                lr_config = config.model_copy(
                    update={"train": config.train.model_copy(update={"learning_rate": lr})})
                units.append(Unit(task, model, lr, parse_config(
                    lr_config.model_dump(mode="json"), source)))
    return units, tasks, evaluation


# ---------------------------------------------------------------- training
def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def _runner(o: BenchOptions) -> str:
    if o.runner == "auto":
        return "sweep" if ray_installed() else "local"
    if o.runner == "sweep" and not ray_installed():
        raise ConfigError(f"--runner sweep: {sweep.INSTALL_HINT}")
    return o.runner


def _train_local(bench_dir: Path, units: list[Unit], seeds: int, log) -> dict[str, Path]:
    """Each unit's run directory under DIR/runs, trained (or finished) here."""
    runs = {}
    for u in units:
        run = bench_dir / "runs" / u.key
        runs[u.key] = run
        wanted = [u.config.seed + k for k in range(seeds)]
        if run.exists():
            done = {r["seed"] for r in rundir.read_seed_results(run / rundir.SEEDS_FILE)}
            if set(wanted) <= done:
                continue
            log(f"{u.key}: resuming {run}")
            api.resume(run, restart=True)
        else:
            log(f"{u.key}: training {seeds} seed(s) in {run}")
            api.train(u.config, run_dir=run, seeds=seeds)
    return runs


def _train_sweep(bench_dir: Path, units: list[Unit], lrs: list[float], seeds: int,
                 log) -> tuple[dict[tuple[str, int], Path], list[str]]:
    """One sweep over every (task, model) base config x learning rate x seed;
    returns each finished (unit key, seed)'s run directory and the trials not done."""
    configs = bench_dir / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    bases = {}
    for u in units:
        name = f"configs/{u.task}-{u.model}.yaml"
        if name not in bases:
            base = u.config.model_copy(update={"train": u.config.train.model_copy(
                update={"learning_rate": lrs[0]})})
            write_text_atomic(bench_dir / name, dump_config(base))
            bases[name] = (u.task, u.model)
    sweep_file = bench_dir / "sweep.yaml"
    spec = {"base": list(bases), "grid": {"train.learning_rate": lrs}, "seeds": seeds}
    write_text_atomic(sweep_file, "# written by mannlab bench\n"
                      + yaml.dump(spec, Dumper=YamlDumper, sort_keys=False))
    done = sweep.run_sweep(sweep_file, bench_dir / "sweep", log=log)
    configurations = {c["id"]: c for c in done.data["configurations"]}
    found, missing = {}, []
    for t in done.data["trials"]:
        c = configurations[t["configuration"]]
        task, model = bases[c["base"]]
        lr = c["values"]["train.learning_rate"]
        key = Unit(task, model, lr, None).key
        if t["status"] in ("converged", "not_converged", "diverged", "stopped") and t["run"]:
            found[(key, t["seed"])] = done.path / t["run"]
        else:
            missing.append(f"{key} seed {t['seed']} ({t['status']})")
    return found, missing


# ---------------------------------------------------------------- scoring
def count_parameters(config: RunConfig) -> int:
    model = build_model(config, config.task.build(), config.seed)
    return int(sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))))


def _score_runs(suite: Suite, groups: list[tuple[Unit, Path, list[Path]]], evaluation: dict,
                cache: dict, log) -> tuple[list[dict], int]:
    """Every seed's score, from `cache` ({unit/seed: record}) where its
    checkpoint is the one scored, else computed (one call per run directory)."""
    records, scored = [], 0
    for unit, run, seed_dirs in groups:
        todo, stamps = [], {}
        for d in seed_dirs:
            try:
                stamps[d] = checkpoint_stamp(d)
            except (OSError, CheckpointError, KeyError, ValueError):
                continue  # no checkpoint: the seed did not train (reported as missing)
            cached = cache.get(f"{unit.key}/{d.name}")
            if cached is None or cached.get("checkpoint") != stamps[d]:
                todo.append(d)
        fresh = {}
        if todo:
            _, config, _ = rundir.open_run(run)
            log(f"{unit.key}: scoring {len(todo)} seed(s) ({suite.describe_evaluation(evaluation)})")
            fresh = suite.score(config, todo, evaluation)
            scored += len(todo)
        for d in seed_dirs:
            if d not in stamps:
                continue
            key = f"{unit.key}/{d.name}"
            if d in todo:
                s = fresh[d.name]
                record = {"unit": unit.key, "task": unit.task, "model": unit.model,
                          "learning_rate": unit.learning_rate, "seed": rundir.seed_of(d),
                          "seed_dir": d.name, "score": s["score"],
                          "solved": bool(suite.solved(s["score"])),
                          "curve": {str(k): v for k, v in s["curve"].items()},
                          "checkpoint": stamps[d]}
            else:
                record = cache[key]
            record["run"] = str(d)
            records.append(record)
    return records, scored


# ---------------------------------------------------------------- bench.json and the table
def _budget(suite: Suite, units: list[Unit], seeds: int, evaluation: dict) -> dict:
    def values(get):
        found = {}
        for u in units:
            found.setdefault(u.model, get(u.config))
        distinct = {json.dumps(v) for v in found.values()}
        return next(iter(found.values())) if len(distinct) == 1 else found

    budget = {"steps": values(lambda c: c.train.max_steps),
              "batch_size": values(lambda c: c.train.batch_size),
              "optimizer": values(lambda c: c.train.optimizer),
              "seeds": seeds,
              "learning_rates": sorted({u.learning_rate for u in units})}
    return {**budget, **suite.budget(values, evaluation)}


def _table(suite: Suite, tasks: list[str], models: tuple[str, ...], records: list[dict]) -> dict:
    table = {}
    for task in tasks:
        table[task] = {}
        for model in models:
            scores = [r["score"] for r in records if r["task"] == task and r["model"] == model]
            cell = suite.summary(scores) if scores else None
            if cell is not None:
                cell["solved"] = bool(suite.solved(cell["best"]))
                best = max((r for r in records if r["task"] == task and r["model"] == model),
                           key=lambda r: r["score"] if suite.higher_is_better else -r["score"])
                cell["best_seed"] = {"learning_rate": best["learning_rate"],
                                     "seed": best["seed"]}
            table[task][model] = cell
    return table


def command_line(suite: Suite, o: BenchOptions, bench_dir: Path) -> str:
    parts = ["mannlab", "bench", suite.name, "--models", *o.models]
    if o.tasks is not None:
        parts += ["--tasks", *o.tasks]
    for flag, value in (("--steps", o.steps), ("--max-length", o.max_length),
                        ("--sequences", o.sequences)):
        if value is not None:
            parts += [flag, str(value)]
    parts += ["--seeds", str(o.seeds)]
    if o.learning_rates is not None:
        parts += ["--learning-rates", *(f"{v:g}" for v in o.learning_rates)]
    for item in o.sets:
        parts += ["--set", item]
    if o.runner != "auto":
        parts += ["--runner", o.runner]
    parts += ["--dir", str(bench_dir)]
    return shlex.join(parts)


def read_bench_json(bench_dir: Path) -> dict | None:
    path = bench_dir / BENCH_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot read it ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a mannlab bench file (format {FORMAT})")
    return data


def _first_difference(old: dict, new: dict) -> str | None:
    for key in dict.fromkeys([*old, *new]):
        if old.get(key) != new.get(key):
            return f"{key}: {old.get(key)!r} there, {new.get(key)!r} now"
    return None


def run_bench(suite: Suite | str, options: BenchOptions, bench_dir: str | Path,
              log=print) -> BenchRun:
    """Train and score `options` of `suite` in `bench_dir` and write bench.json.

    Raises:
      ConfigError: bad options (one line naming the option and the value), or
        a directory holding a bench of other options.
    """
    if isinstance(suite, str):
        if suite not in SUITES:
            raise ConfigError(f"bench: unknown suite {suite!r} (one of {', '.join(SUITES)})")
        suite = SUITES[suite]
    bench_dir = Path(bench_dir)
    units, tasks, evaluation = plan_units(suite, options)
    runner = _runner(options)
    stated = {**asdict(options), "tasks": tasks, "runner": runner,
              "learning_rates": sorted({u.learning_rate for u in units})}
    stated = json.loads(json.dumps(stated))
    data = read_bench_json(bench_dir)
    if data is not None and data["options"] != stated:
        raise ConfigError(f"--dir {bench_dir}: holds a bench of other options "
                          f"({_first_difference(data['options'], stated)}); choose another "
                          "--dir")
    cache = {f"{r['unit']}/{r['seed_dir']}": r for r in (data or {}).get("runs", [])}
    try:
        bench_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--dir: cannot create {bench_dir} "
                          f"({err.strerror or type(err).__name__})") from None
    base = {"format": FORMAT, "suite": suite.name, "title": suite.title,
            "command": command_line(suite, options, bench_dir), "options": stated,
            "score": {"name": suite.score_name, "curve": suite.curve_name,
                      "higher_is_better": suite.higher_is_better,
                      "columns": [list(c) for c in suite.columns],
                      "solved_note": suite.solved_note},
            "tasks": tasks, "models": list(options.models),
            "budget": _budget(suite, units, options.seeds, evaluation),
            "evaluation": evaluation, "reference": suite.reference()}
    if data is None:
        _write(bench_dir, {**base, "runs": [], "table": {}, "parameters": {}, "missing": []})

    seeds = options.seeds
    if runner == "local":
        runs = _train_local(bench_dir, units, seeds, log)
        groups = [(u, runs[u.key], [rundir.seed_dir(runs[u.key], u.config.seed + k)
                                    for k in range(seeds)]) for u in units]
        missing = []
    else:
        lrs = sorted({u.learning_rate for u in units})
        found, missing = _train_sweep(bench_dir, units, lrs, seeds, log)
        groups = []
        for u in units:
            for k in range(seeds):
                run = found.get((u.key, u.config.seed + k))
                if run is not None:
                    groups.append((u, run, [rundir.seed_dir(run, u.config.seed + k)]))
    records, scored = _score_runs(suite, groups, evaluation, cache, log)
    parameters = {}
    for u in units:
        parameters.setdefault(u.model, {})
        if u.task not in parameters[u.model]:
            parameters[u.model][u.task] = count_parameters(u.config)
    table = _table(suite, tasks, options.models, records)
    data = {**base, "runs": records, "parameters": parameters, "missing": missing,
            "table": table, "rows": suite.summary_rows(table, tasks, list(options.models))}
    _write(bench_dir, data)
    return BenchRun(bench_dir, data, scored, missing)


def _write(bench_dir: Path, data: dict) -> None:
    write_text_atomic(bench_dir / BENCH_FILE, json.dumps(data, indent=1) + "\n")


def summary_table(data: dict) -> Table:
    """The bench's table: tasks x models (ours: the suite's columns, * marks
    solved), then the reference's columns, titled with the budget; the
    suite's summary rows (if any) under the tasks."""
    columns = data["score"]["columns"]
    reference = data["reference"]
    table = Table(title=f"{data['title']}: {data['score']['name']} in percent over seeds and "
                        f"learning rates\nbudget: {budget_line(data['budget'])}",
                  caption=(f"{data['score']['solved_note']}; published: "
                           f"{reference['title']} ({reference['statistic']}); '-' = not "
                           "available"))
    table.add_column("task")
    for model in data["models"]:
        counts = sorted(set(data["parameters"].get(model, {}).values()))
        size = (f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}-{counts[-1]:,}"
                if counts else "?")
        for _, header, _ in columns:
            table.add_column(f"{model} {header}\n({size} params)" if header == columns[0][1]
                             else f"{model} {header}", justify="right")
    for name in reference["models"]:
        table.add_column(f"paper {name}", justify="right")
    for task in data["tasks"]:
        row = [task]
        for model in data["models"]:
            cell = data["table"].get(task, {}).get(model)
            for key, _, kind in columns:
                mark = "*" if cell and key == "best" and cell.get("solved") else ""
                row.append(cell_text(cell, key, kind) + mark)
        row += [reference_text(reference, task, m) for m in reference["models"]]
        table.add_row(*row)
    for extra in data.get("rows", []):
        row = [extra["name"]]
        for model in data["models"]:
            row += [cell_text(extra["cells"].get(model), key,
                              kind if kind == "rate" else extra["kind"])
                    for key, _, kind in columns]
        row += [reference_text(reference, extra["name"], m) for m in reference["models"]]
        table.add_row(*row, style="bold")
    return table
