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
import json
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from mannlab.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    dump_config,
    load_config,
    parse_config,
    read_yaml,
)

CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = "checkpoint.safetensors"


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
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text(dump_config(config))
    for s in seeds:
        seed_dir(run, s).mkdir()


def open_run(path: str | Path) -> tuple[Path, RunConfig, list[Path]]:
    """Resolve RUN or RUN/seed-k into (run dir, config, seed dirs)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"run directory not found: {path}")
    if path.name.startswith("seed-") and (path.parent / CONFIG_FILE).exists():
        return path.parent, load_config(path.parent / CONFIG_FILE), [path]
    if not (path / CONFIG_FILE).exists():
        raise ConfigError(f"{path}: not a mannlab run directory (no {CONFIG_FILE})")
    seeds = sorted(path.glob("seed-*"), key=lambda p: int(p.name.split("-")[1]))
    if not seeds:
        raise ConfigError(f"{path}: run directory has no seed-* subdirectories")
    return path, load_config(path / CONFIG_FILE), seeds


BUDGET_FIELDS = ("train.max_steps", "train.max_seconds", "train.converge_at",
                 "train.eval_every", "train.log_every", "train.checkpoint_every")
"""What `--resume` may change: when to stop and how often to look, never the maths."""


def extend_budget(run: Path, overrides: list[str]) -> RunConfig:
    """Apply budget overrides to a run's config, save it and return it."""
    for item in overrides:
        if item.split("=", 1)[0].strip() not in BUDGET_FIELDS:
            raise ConfigError(f"--resume accepts only {', '.join(BUDGET_FIELDS)}; got {item!r}")
    raw = apply_overrides(read_yaml((run / CONFIG_FILE).read_text()), overrides)
    config = parse_config(raw, str(run / CONFIG_FILE))
    (run / CONFIG_FILE).write_text(dump_config(config))
    return config


def seed_of(seed_path: Path) -> int:
    return int(seed_path.name.split("-")[1])


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
    path = run / "seeds.json"
    earlier = json.loads(path.read_text()) if path.exists() else []
    fresh = {r["seed"] for r in results}
    merged = [r for r in earlier if r["seed"] not in fresh] + results
    path.write_text(json.dumps(sorted(merged, key=lambda r: r["seed"]), indent=2) + "\n")
