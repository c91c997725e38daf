"""Run directories.

    RUN/
      config.yaml          the resolved config (what `--resume` and `eval` rebuild from)
      model.txt            model summary with parameter counts
      seeds.json           every seed's result (what `mannlab train` printed)
      seed-<k>/            one per seed, also one TensorBoard run each
        checkpoint.safetensors
        metrics.jsonl      one JSON object per log interval and per evaluation
        summary.json       final status: steps, seconds, held-out metrics, converged
        eval.json          generalisation table from `mannlab eval`
        events.out.tfevents.*
"""

import datetime
import importlib.resources
import json
import re
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from mannlab.config import (
    SEED_LIMIT,
    ConfigError,
    RunConfig,
    apply_overrides,
    dump_config,
    load_config,
    parse_config,
    read_config_text,
    read_yaml,
)
from mannlab.training.files import write_text_atomic

CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = "checkpoint.safetensors"
SEEDS_FILE = "seeds.json"

SEED_DIR = re.compile(r"seed-(0|[1-9][0-9]*)")
"""A seed's directory: ``seed-<k>`` exactly as `seed_dir` names it (not
``seed-old``, ``seed-07`` or ``seed-0.bak``, which are not the run's)."""


PRETRAINED = "pretrained:"
"""Prefix that names a model shipped in the package (``pretrained:ntm-copy``)
wherever a run directory is accepted."""
PRETRAINED_FILE = "pretrained.json"


def pretrained_root() -> Path:
    """The installed package's directory of pretrained models: read-only run
    directories, one per model, each with a `PRETRAINED_FILE` saying how it
    was trained (scripts/pretrained.py makes them)."""
    return Path(str(importlib.resources.files("mannlab"))) / "pretrained"


def pretrained_names() -> list[str]:
    root = pretrained_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / PRETRAINED_FILE).is_file())


def pretrained_dir(name: str) -> Path:
    """The run directory of the shipped model `name`; ConfigError naming the
    shipped ones if there is none of that name."""
    names = pretrained_names()
    if name not in names:
        raise ConfigError(f"{PRETRAINED}{name}: no such pretrained model (shipped: "
                          f"{', '.join(names)})")
    return pretrained_root() / name


def resolve_run(path: str | Path) -> Path:
    """A run directory from a path or ``pretrained:NAME``."""
    text = str(path)
    if text.startswith(PRETRAINED):
        return pretrained_dir(text.removeprefix(PRETRAINED))
    return Path(path)


def is_pretrained(path: Path) -> bool:
    """Whether `path` (a run or seed directory) is a shipped pretrained model,
    which nothing writes to."""
    return pretrained_root().resolve() in Path(path).resolve().parents


def new_run_dir(root: str | Path, name: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{name}-{stamp}-{n}"
    return path


def seed_dir(run: Path, seed: int) -> Path:
    return run / f"seed-{seed}"


def create_run(run: Path, config: RunConfig, seeds: list[int]) -> None:
    """Make the run directory `run` (which must not exist) with its config
    and one directory per seed."""
    if run.exists():
        raise ConfigError(f"--run-dir: {run} already exists (continue it with --resume {run}, "
                          "or choose another directory)")
    for s in seeds:
        if not 0 <= s < SEED_LIMIT:
            raise ConfigError(f"seeds: seed {s} is outside 0 to {SEED_LIMIT - 1} (the seeds "
                              f"are {seeds[0]} to {seeds[-1]})")
    try:
        run.mkdir(parents=True)
    except OSError as err:
        raise ConfigError(f"--run-dir: cannot create {run} "
                          f"({err.strerror or type(err).__name__})") from None
    try:
        write_text_atomic(run / CONFIG_FILE, dump_config(config))
        for s in seeds:
            try:
                seed_dir(run, s).mkdir()
            except OSError as err:
                raise ConfigError(f"--run-dir: cannot create {seed_dir(run, s)} "
                                  f"({err.strerror or type(err).__name__})") from None
    except ConfigError:
        _remove_new_run(run)  # no half-made run directory left behind
        raise


def _remove_new_run(run: Path) -> None:
    """Remove what `create_run` made (its config and empty seed directories)."""
    for entry in [*run.glob("seed-*"), run / CONFIG_FILE]:
        try:
            entry.rmdir() if entry.is_dir() else entry.unlink(missing_ok=True)
        except OSError:
            pass
    try:
        run.rmdir()
    except OSError:
        pass


def open_run(path: str | Path) -> tuple[Path, RunConfig, list[Path]]:
    """Resolve RUN, RUN/seed-k or ``pretrained:NAME`` into (run dir, config,
    seed dirs), checking the run's files (`check_run_files`) first."""
    path = resolve_run(path)
    if not path.exists():
        raise ConfigError(f"run directory not found: {path}")
    if not path.is_dir():
        raise ConfigError(f"{path}: not a mannlab run directory (a file, not a directory)")
    if (path.parent / CONFIG_FILE).exists() and not (path / CONFIG_FILE).exists():
        if SEED_DIR.fullmatch(path.name):
            return path.parent, check_run_files(path.parent), [path]
        if path.name.startswith("seed-"):
            raise ConfigError(f"{path}: not a seed directory of {path.parent} (a seed's "
                              "directory is seed-<number>)")
    if not (path / CONFIG_FILE).exists():
        raise ConfigError(f"{path}: not a mannlab run directory (no {CONFIG_FILE})")
    config = check_run_files(path)
    seeds = seed_dirs(path)
    if not seeds:
        raise ConfigError(f"{path}: run directory has no seed-<number> subdirectories")
    return path, config, seeds


def seed_dirs(run: Path) -> list[Path]:
    """The run's seed directories (``seed-<k>``; other entries are not the
    run's), in seed order."""
    found = [p for p in run.iterdir() if SEED_DIR.fullmatch(p.name) and p.is_dir()]
    return sorted(found, key=seed_of)


def check_run_files(run: Path) -> RunConfig:
    """The run's config, after checking the files the run reads back
    (config.yaml, seeds.json): ConfigError naming the file and the problem."""
    config = load_config(run / CONFIG_FILE)
    read_seed_results(run / SEEDS_FILE)
    return config


def read_seed_results(path: Path) -> list[dict]:
    """seeds.json's results (none if it does not exist yet); ConfigError
    naming the file if it is not a list of objects with an integer seed."""
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror or type(err).__name__})") from None
    try:
        results = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
                          f"{err.start})") from None
    except ValueError as err:  # JSONDecodeError
        raise ConfigError(f"{path}: not JSON ({err})") from None
    if not isinstance(results, list):
        raise ConfigError(f"{path}: expected a list of seed results, got "
                          f"{type(results).__name__}")
    for i, r in enumerate(results):
        seed = r.get("seed") if isinstance(r, dict) else None
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"{path}: result {i} has no integer seed (got "
                              f"{json.dumps(r)[:80]})")
    return results


BUDGET_FIELDS = ("train.max_steps", "train.max_seconds", "train.converge_at",
                 "train.eval_every", "train.log_every", "train.checkpoint_every",
                 "train.score_every", "train.score_train_limit")
"""What `--resume` may change: when to stop and how often to look, never the maths."""


def extend_budget(run: Path, overrides: list[str], at_step: int = 0) -> RunConfig:
    """Apply budget overrides to a run's config, save it and return it. A
    step budget below `at_step` (where the run's seeds are) is refused."""
    for item in overrides:
        if item.split("=", 1)[0].strip() not in BUDGET_FIELDS:
            raise ConfigError(f"--resume accepts only {', '.join(BUDGET_FIELDS)}; got {item!r}")
    path = run / CONFIG_FILE
    raw = read_yaml(read_config_text(path), path)
    if not isinstance(raw, dict):
        parse_config(raw, str(path))  # says what it is instead of a mapping
    config = parse_config(apply_overrides(raw, overrides), str(path))
    if config.train.max_steps < at_step:
        raise ConfigError(f"train.max_steps={config.train.max_steps}: below step {at_step}, "
                          f"where {run} already is")
    write_text_atomic(path, dump_config(config))
    return config


def seed_of(seed_path: Path) -> int:
    """The seed of a seed directory (``seed-<k>``)."""
    match = SEED_DIR.fullmatch(Path(seed_path).name)
    if not match:
        raise ConfigError(f"{seed_path}: not a seed directory (a seed's directory is "
                          "seed-<number>)")
    return int(match.group(1))


def model_summary(model: eqx.Module, config: RunConfig) -> str:
    """Parameter counts per top-level part of the model, and the total."""
    lines = [f"model: {config.model.name}  task: {config.task.name}", ""]
    total = 0
    for name in model.__dataclass_fields__:
        value = getattr(model, name)
        count = sum(int(np.size(x)) for x in jax.tree.leaves(eqx.filter(value, eqx.is_array)))
        if count:
            lines.append(f"  {name:<20} {count:>10,}")
            total += count
    lines += ["", f"  {'total':<20} {total:>10,}", "", repr(config.model)]
    return "\n".join(lines) + "\n"


def write_seed_results(run: Path, results: list[dict]) -> None:
    """seeds.json: every seed's result, these replacing earlier ones of the
    same seeds (resuming one seed keeps the others' results)."""
    path = run / SEEDS_FILE
    earlier = read_seed_results(path)
    fresh = {r["seed"] for r in results}
    merged = [r for r in earlier if r["seed"] not in fresh] + results
    write_text_atomic(path, json.dumps(sorted(merged, key=lambda r: r["seed"]), indent=2) + "\n")
