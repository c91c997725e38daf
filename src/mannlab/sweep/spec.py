"""Sweep files: YAML validated by pydantic into a plan of trials.

    # configs/sweeps/example.yaml
    base: ntm-copy                  # a shipped config's name or a YAML path; or a list of them
    set:                            # fixed values for every trial (optional)
      train.max_steps: 20000
    grid:                           # every combination of these values
      model.memory_init: [constant, learned, random]
    variants:                       # or/and: named sets of values, one configuration each
      - {}                          #   (the base as it is)
      - {model.shift_range: 2}
    search:                         # random search, `samples` draws crossed with the grid
      train.learning_rate: {loguniform: [1.0e-5, 1.0e-3]}
      train.batch_size: {choice: [1, 4, 16]}
    samples: 4
    seeds: 10                       # seeds base, base+1, ... (or a list of seeds)
    lengths: [20, 40]               # evaluate every finished trial at these lengths (optional)
    resources: {cpus: 1, gpus: 0}   # per trial
    asha: {grace_period: 2000, reduction_factor: 3}   # early stopping (optional, off)

A configuration is one base config with one choice of the swept values; a
trial is one configuration with one seed, an ordinary one-seed run
directory. Every configuration is built and validated here, before anything
runs: an unknown field, a bad range, a field the base config does not have
or a value its config rejects is a one-line `SweepError` naming the file and
the field.
"""

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mannlab.config import (
    SEED_LIMIT,
    ConfigError,
    RunConfig,
    find_config,
    parse_config,
    read_config_text,
    read_yaml,
    validation_message,
)

SHIPPED_SWEEPS = Path(__file__).resolve().parents[1] / "configs" / "sweeps"
"""The sweep files that ship with mannlab (``configs/sweeps/`` in the repository)."""


class SweepError(ConfigError):
    """A malformed sweep file or sweep directory; the message names the file
    and field (or directory) and the value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Distribution(_Strict):
    """One random-search dimension: exactly one of the four kinds."""

    loguniform: list[float] | None = Field(None, min_length=2, max_length=2)
    uniform: list[float] | None = Field(None, min_length=2, max_length=2)
    randint: list[int] | None = Field(None, min_length=2, max_length=2)
    choice: list[Any] | None = None

    @model_validator(mode="after")
    def _one_valid_kind(self):
        kinds = [k for k in ("loguniform", "uniform", "randint", "choice")
                 if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of loguniform, uniform, randint, choice "
                             f"(got {', '.join(kinds) or 'none'})")
        kind = kinds[0]
        value = getattr(self, kind)
        if kind == "loguniform" and not 0 < value[0] < value[1]:
            raise ValueError(f"loguniform needs 0 < low < high (got {value})")
        if kind in ("uniform", "randint") and not value[0] < value[1]:
            raise ValueError(f"{kind} needs low < high (got {value})")
        if kind == "choice" and not value:
            raise ValueError("choice needs at least one value")
        return self

    def draw(self, rng: np.random.Generator) -> Any:
        if self.loguniform is not None:
            low, high = self.loguniform
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        if self.uniform is not None:
            return float(rng.uniform(*self.uniform))
        if self.randint is not None:
            return int(rng.integers(self.randint[0], self.randint[1] + 1))
        return self.choice[int(rng.integers(len(self.choice)))]


class Resources(_Strict):
    cpus: float = Field(1, gt=0, description="CPUs per trial (Ray's num_cpus)")
    gpus: float = Field(0, ge=0, description="GPUs per trial (Ray's num_gpus)")


class Asha(_Strict):
    """Tune's ASHA scheduler over held-out evaluations (time unit: steps)."""

    grace_period: int = Field(ge=1, description="steps every trial gets before it may be stopped")
    reduction_factor: float = Field(3, gt=1)


class SweepFile(_Strict):
    base: str | list[str]
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    variants: list[dict[str, Any]] = Field(default_factory=list)
    search: dict[str, Distribution] = Field(default_factory=dict)
    samples: int | None = Field(None, ge=1)
    search_seed: int = Field(0, ge=0)
    seeds: int | list[int] = 1
    lengths: list[int] | None = None
    sequences: int = Field(1000, ge=1, description="sequences per evaluation length")
    resources: Resources = Resources()
    max_failures: int = Field(3, ge=0, description="retries of a trial whose process dies")
    asha: Asha | None = None

    @field_validator("base")
    @classmethod
    def _bases(cls, value):
        bases = [value] if isinstance(value, str) else value
        if not bases:
            raise ValueError("give at least one base config")
        if len(set(bases)) < len(bases):
            raise ValueError("a base config is listed twice")
        return value

    @field_validator("grid")
    @classmethod
    def _grid(cls, value):
        for key, values in value.items():
            if not values:
                raise ValueError(f"{key}: an empty list of values")
            dumped = [json.dumps(v, sort_keys=True) for v in values]
            if len(set(dumped)) < len(dumped):
                raise ValueError(f"{key}: a value is listed twice (got {values})")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value):
        if isinstance(value, int) and value < 1:
            raise ValueError("seeds must be >= 1")
        if isinstance(value, list):
            if not value or len(set(value)) < len(value):
                raise ValueError("give distinct seeds")
            if any(not 0 <= s < SEED_LIMIT for s in value):
                raise ValueError(f"seeds must be 0 to {SEED_LIMIT - 1}")
        return value

    @field_validator("lengths")
    @classmethod
    def _lengths(cls, value):
        if value is not None and (not value or any(n < 1 for n in value)):
            raise ValueError("lengths must be positive")
        return value

    @model_validator(mode="after")
    def _search_and_samples(self):
        if bool(self.search) != (self.samples is not None):
            raise ValueError("search and samples go together (samples: how many draws of "
                             "the search space)")
        return self


# ---------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Configuration:
    """One base config with one choice of the swept values."""

    id: str  # c00, c01, ...
    label: str  # "ntm-copy model.memory_init=constant"
    base: str
    values: dict  # the swept fields' values, dotted names
    config: RunConfig  # resolved; its seed is the base config's


@dataclass(frozen=True)
class Trial:
    """One configuration with one seed: one run directory of one seed."""

    id: str  # c00-s3
    configuration: str
    seed: int
    config: RunConfig  # the configuration's, with this seed

    def params(self, plan: "Plan") -> dict:
        """What the trial's process needs (plain JSON: Tune's param space)."""
        return {"id": self.id, "seed": self.seed,
                "config": self.config.model_dump(mode="json"),
                "lengths": list(plan.lengths or []), "sequences": plan.sequences}


def fingerprint(trials: list[tuple[str, RunConfig]], lengths: list[int] | None,
                sequences: int) -> str:
    """A hash of trials (id and resolved config) and their evaluation."""
    text = json.dumps([[tid, config.model_dump(mode="json")] for tid, config in trials]
                      + [lengths, sequences], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Plan:
    """Every trial of a sweep, with how to run them."""

    source: str
    configurations: list[Configuration]
    trials: list[Trial]
    lengths: list[int] | None
    sequences: int
    resources: Resources
    max_failures: int
    asha: Asha | None

    def configuration(self, config_id: str) -> Configuration:
        return next(c for c in self.configurations if c.id == config_id)

    def fingerprint(self) -> str:
        """A hash of what the trials compute (configs, seeds, evaluation): a
        sweep directory belongs to one plan."""
        return fingerprint([(t.id, t.config) for t in self.trials], self.lengths, self.sequences)

    def max_steps(self) -> int:
        return max(t.config.train.max_steps for t in self.trials)


def find_sweep(name_or_path: str | Path) -> Path:
    """A sweep file: `name_or_path` if it is a file, else the shipped sweep
    of that name (``ntm-memory-init``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SHIPPED_SWEEPS / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    raise SweepError(f"sweep file not found: {name_or_path} (and no shipped sweep of that "
                     f"name: {', '.join(sorted(p.stem for p in SHIPPED_SWEEPS.glob('*.yaml')))})")


def read_sweep_file(path: str | Path) -> SweepFile:
    path = Path(path)
    try:
        raw = read_yaml(read_config_text(path), path)
    except SweepError:
        raise
    except ConfigError as err:
        raise SweepError(str(err)) from None
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: expected a mapping with a base config (base: ntm-copy), "
                         f"got {type(raw).__name__ if raw is not None else 'an empty file'}")
    try:
        return SweepFile.model_validate(raw)
    except ValidationError as err:
        raise SweepError(f"{path}: {validation_message(err)}") from None


def _base_path(base: str, sweep_path: Path) -> Path:
    """A base config: a file beside the sweep file, or `find_config`'s."""
    beside = sweep_path.parent / base
    if beside.is_file():
        return beside
    try:
        return find_config(base)
    except ConfigError as err:
        raise SweepError(f"{sweep_path}: base: {err}") from None


def _fields(tree: dict, prefix: str = "") -> set[str]:
    """Every dotted field name of a config dump (sections too)."""
    out = set()
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.add(name)
        if isinstance(value, dict):
            out |= _fields(value, f"{name}.")
    return out


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def load_plan(path: str | Path) -> Plan:
    """Read and validate a sweep file and build every trial's config.

    Raises:
      SweepError: one line naming the file, the field and the value.
    """
    path = find_sweep(path)
    sweep = read_sweep_file(path)
    places = {"set": list(sweep.set), "grid": list(sweep.grid), "search": list(sweep.search),
              "variants": sorted({k for v in sweep.variants for k in v})}
    owners: dict[str, str] = {}
    for place, keys in places.items():
        for key in keys:
            if key == "seed":
                raise SweepError(f"{path}: {place}.seed: seeds are the sweep's `seeds` field")
            if key in owners:
                raise SweepError(f"{path}: {key} is given under both {owners[key]} and {place}; "
                                 "give a field in one place")
            owners[key] = place

    rng = np.random.default_rng(sweep.search_seed)
    draws = [{k: d.draw(rng) for k, d in sweep.search.items()}
             for _ in range(sweep.samples or 0)] or [{}]
    combos = [dict(zip(sweep.grid, values))
              for values in itertools.product(*sweep.grid.values())]
    variants = sweep.variants or [{}]
    bases = [sweep.base] if isinstance(sweep.base, str) else sweep.base

    choices = []
    for base in bases:
        base_path = _base_path(base, path)
        raw = read_yaml(read_config_text(base_path), base_path)
        config = parse_config(raw, str(base_path)) if isinstance(raw, dict) else None
        if config is None:
            raise SweepError(f"{path}: base {base}: {base_path} is not a config mapping")
        known = _fields(config.model_dump(mode="json"))
        for key, place in owners.items():
            if key not in known:
                raise SweepError(f"{path}: {place}.{key}: the base config {base} has no field "
                                 f"{key}")
        for variant, combo, draw in itertools.product(variants, combos, draws):
            choices.append((base, raw, {**variant, **combo, **draw}))

    width = len(str(len(choices) - 1))
    configurations = []
    for k, (base, raw, values) in enumerate(choices):
        tree = json.loads(json.dumps(raw))
        for key, value in {**sweep.set, **values}.items():
            _set_dotted(tree, key, value)
        shown = " ".join(f"{key}={_short(v)}" for key, v in values.items())
        label = " ".join(p for p in (base if len(bases) > 1 else "", shown) if p) or base
        try:
            config = parse_config(tree, f"{path}: {label}")
        except ConfigError as err:
            raise SweepError(str(err)) from None
        configurations.append(Configuration(f"c{k:0{width}d}", label, base, values, config))

    trials = []
    for c in configurations:
        seeds = (sweep.seeds if isinstance(sweep.seeds, list)
                 else [c.config.seed + k for k in range(sweep.seeds)])
        for s in seeds:
            if not 0 <= s < SEED_LIMIT:
                raise SweepError(f"{path}: seeds: seed {s} of {c.label} is outside 0 to "
                                 f"{SEED_LIMIT - 1}")
            config = c.config.model_copy(update={"seed": s})
            trials.append(Trial(f"{c.id}-s{s}", c.id, s, config))
    _check_buildable(path, configurations, sweep.lengths)
    return Plan(str(path), configurations, trials, sweep.lengths, sweep.sequences,
                sweep.resources, sweep.max_failures, sweep.asha)


def _check_buildable(path: Path, configurations: list[Configuration],
                     lengths: list[int] | None) -> None:
    """Build each distinct task once (a combination of fields the task
    rejects, or a missing data file, is an error before anything runs)."""
    built: dict[str, Any] = {}
    for c in configurations:
        key = json.dumps(c.config.task.model_dump(mode="json"), sort_keys=True)
        if key in built:
            continue
        try:
            built[key] = c.config.task.build()
        except (ValueError, OSError) as err:
            raise SweepError(f"{path}: {c.label}: {err}") from None
        if lengths and not any(built[key].has_length(n) for n in lengths):
            raise SweepError(f"{path}: lengths: the {c.config.task.name} task of {c.label} has "
                             f"no sequence of length {' or '.join(map(str, lengths))}")
