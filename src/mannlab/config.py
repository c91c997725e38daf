"""Run configuration: YAML files validated by pydantic into typed objects.

A config has four sections: ``task``, ``model``, ``train`` and ``seed``. The
``name`` field of ``task`` and ``model`` picks the variant; each variant's
config knows how to build its object (``build``). Unknown fields are errors,
and every error names the field and the offending value.
"""

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """A malformed configuration; the message names the field and the value."""


class Strict(BaseModel):
    """No unknown fields, and no coercion: `true` is not an int, "5" is not a
    number (an int is accepted where a float is expected)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ---------------------------------------------------------------- tasks
class CopyConfig(Strict):
    name: Literal["copy"]
    bits: int = Field(8, ge=1)
    min_length: int = Field(1, ge=1)
    max_length: int = Field(20, ge=1)
    length_buckets: int = Field(4, ge=1)

    def build(self):
        from mannlab.tasks.copy import CopyTask

        return CopyTask(self.bits, self.min_length, self.max_length, self.length_buckets)


class LogicConfig(Strict):
    """Sequential logic (MANN-RL): see `mannlab.tasks.logic`."""

    name: Literal["logic"]
    data_path: str | None = "../shared/data/mann-rl-logic/logic.dataset.json.xz"
    source: Literal["auto", "file", "generator"] = "auto"
    min_operands: int = Field(2, ge=2)
    max_operands: int = Field(20, ge=2)
    score: Literal["all", "answer"] = "all"
    length_buckets: int = Field(4, ge=1)
    heldout_size: int = Field(500, ge=1)

    def build(self):
        from mannlab.tasks.logic import LogicTask

        return LogicTask(**self.model_dump(exclude={"name"}))


class POSConfig(Strict):
    """UPOS tagging of a UD treebank (MANN-RL): see `mannlab.tasks.pos`. Its
    inputs are word ids: build its model with `mannlab.models.embedded.wrap_for_task`."""

    name: Literal["pos"]
    train_path: str = "../shared/data/ud-english-ewt/en_ewt-ud-train.conllu.xz"
    heldout_path: str = "../shared/data/ud-english-ewt/en_ewt-ud-dev.conllu.xz"
    lowercase: bool = True
    min_count: int = Field(2, ge=1)
    embedding_size: int = Field(64, ge=1)
    vectors_path: str | None = None
    freeze_embeddings: bool = False
    length_buckets: int = Field(8, ge=1)

    def build(self):
        from mannlab.tasks.pos import POSTask

        return POSTask(**self.model_dump(exclude={"name"}))


class SentencesConfig(Strict):
    """Sentence memorisation (MANN-RL): see `mannlab.tasks.sentences`."""

    name: Literal["sentences"]
    path: str = "../shared/data/ud-english-ewt/en_ewt-ud-train.conllu.xz"
    count: int = Field(500, ge=1)
    max_chars: int | None = Field(None, ge=1)
    echo_fraction: float = Field(0.1, ge=0, le=1)
    heldout_every: int = Field(10, ge=0)
    score: Literal["all", "answer"] = "all"
    length_buckets: int = Field(4, ge=1)

    def build(self):
        from mannlab.tasks.sentences import SentencesTask

        return SentencesTask(**self.model_dump(exclude={"name"}))


class RepeatCopyConfig(Strict):
    name: Literal["repeat_copy"]
    bits: int = Field(8, ge=1)
    min_length: int = Field(1, ge=1)
    max_length: int = Field(10, ge=1)
    min_repeats: int = Field(1, ge=1)
    max_repeats: int = Field(10, ge=1)
    repeat_normaliser: float = Field(
        10.0, gt=0, description="the repeat channel carries repeats / repeat_normaliser")
    length_buckets: int = Field(4, ge=1)

    def build(self):
        from mannlab.tasks.repeat_copy import RepeatCopyTask

        return RepeatCopyTask(**self.model_dump(exclude={"name"}))


class AssociativeRecallConfig(Strict):
    """Associative recall (NTM paper 4.3): see `mannlab.tasks.associative_recall`.
    Its sequence length (eval ``--lengths``) is the number of items."""

    name: Literal["associative_recall"]
    bits: int = Field(6, ge=1)
    item_length: int = Field(3, ge=1)
    min_items: int = Field(2, ge=2)
    max_items: int = Field(6, ge=2)
    length_buckets: int = Field(4, ge=1)

    @property
    def max_length(self) -> int:
        """The training length, in items (as reports read it)."""
        return self.max_items

    def build(self):
        from mannlab.tasks.associative_recall import AssociativeRecallTask

        return AssociativeRecallTask(**self.model_dump(exclude={"name"}))


class NGramsConfig(Strict):
    """Dynamic n-grams (NTM paper 4.4): see `mannlab.tasks.ngrams`."""

    name: Literal["ngrams"]
    order: int = Field(6, ge=2, le=16, description="n: contexts of n - 1 bits (2^(n-1) of them)")
    min_length: int = Field(200, ge=2)
    max_length: int = Field(200, ge=2)
    beta: float = Field(0.5, gt=0, description="the tables' probabilities are Beta(beta, beta)")
    length_buckets: int = Field(1, ge=1)

    def build(self):
        from mannlab.tasks.ngrams import NGramsTask

        return NGramsTask(**self.model_dump(exclude={"name"}))


class PrioritySortConfig(Strict):
    """Priority sort (NTM paper 4.5): see `mannlab.tasks.priority_sort`."""

    name: Literal["priority_sort"]
    bits: int = Field(8, ge=1)
    min_length: int = Field(20, ge=1)
    max_length: int = Field(20, ge=1)
    sorted_fraction: float = Field(
        0.8, gt=0, le=1, description="the answer lists round(sorted_fraction * length) vectors")
    length_buckets: int = Field(4, ge=1)

    def build(self):
        from mannlab.tasks.priority_sort import PrioritySortTask

        return PrioritySortTask(**self.model_dump(exclude={"name"}))


TaskConfig = Annotated[CopyConfig | RepeatCopyConfig | AssociativeRecallConfig | NGramsConfig
                       | PrioritySortConfig | LogicConfig | POSConfig | SentencesConfig,
                       Field(discriminator="name")]


# ---------------------------------------------------------------- models
class LSTMConfig(Strict):
    name: Literal["lstm"]
    hidden_size: int = Field(256, ge=1)
    layers: int = Field(3, ge=1)

    def build(self, input_size: int, output_size: int, key):
        from mannlab.models.lstm import LSTM

        return LSTM(input_size, output_size, self.hidden_size, self.layers, key=key)


class NTMConfig(Strict):
    name: Literal["ntm"]
    controller: Literal["lstm", "feedforward"] = "lstm"
    controller_size: int = Field(100, ge=1)
    controller_layers: int = Field(1, ge=1)
    memory_size: int = Field(128, ge=1)
    memory_width: int = Field(20, ge=1)
    read_heads: int = Field(1, ge=1)
    write_heads: int = Field(1, ge=1)
    shared_head: bool = False
    shift_range: int = Field(1, ge=0)
    memory_init: Literal["constant", "learned", "random"] = "constant"
    remat: bool = True

    def build(self, input_size: int, output_size: int, key):
        from mannlab.models.ntm import NTM

        return NTM(input_size, output_size, key=key,
                   **self.model_dump(exclude={"name"}))


class DNCConfig(Strict):
    name: Literal["dnc"]
    controller: Literal["lstm", "feedforward"] = "lstm"
    controller_size: int = Field(100, ge=1)
    controller_layers: int = Field(1, ge=1)
    memory_size: int = Field(128, ge=1)
    memory_width: int = Field(20, ge=1)
    read_heads: int = Field(4, ge=1)
    write_heads: Literal[1] = 1
    content_masking: bool = False
    deallocation_erase: bool = False
    link_sharpness: bool = False
    trace_links: bool = False
    remat: bool = True

    def build(self, input_size: int, output_size: int, key):
        from mannlab.models.dnc import DNC

        return DNC(input_size, output_size, key=key,
                   **self.model_dump(exclude={"name", "write_heads"}))


class MannRLConfig(Strict):
    """MANN-RL (Barrett 2025): `mannlab.models.mann_rl`, trained by
    `mannlab.training.mann_rl`. The network fields build the model; the
    recipe fields (the paper's names) drive the memory-net's Q-learning. The
    action network's learner is the ``train`` section (paper: ``optimizer:
    adam``, ``learning_rate: 1e-4``, ``clip_value: 0.01``, ``batch_size: 16``);
    ``train.max_steps`` counts action-network batches."""

    name: Literal["mann_rl"]
    memory_size: int = Field(48, ge=1)
    action_hidden: list[int] = Field(
        [256], description="hidden Linear-BatchNorm-ReLU sizes of the action network")
    memory_hidden: list[int] = Field(
        [], description="hidden blocks of the memory-net (paper: none)")
    embedding_size: int | None = Field(
        None, ge=1, description="Linear-BatchNorm-ReLU embedding of one-hot symbols "
                                "(paper: 96 for sentences; none for logic)")
    memory_init: float = Field(0.0, ge=0, le=1)
    output_feed: Literal["probs", "onehot"] = "probs"
    # -- the recipe
    history: int = Field(32, ge=1, description="training batches whose states fill the buffer")
    settle: int = Field(8, ge=0, description="action batches before buffering starts")
    memory_train_iterations: int = Field(2, ge=0)
    memory_samples: int = Field(8, ge=1, description="(t, t+1) pairs per memory-net update")
    memory_clamp: float = Field(10.0, ge=0)
    gamma: float = Field(0.99, ge=0, le=1)
    memory_optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    memory_learning_rate: float = Field(1e-5, gt=0)
    memory_clipping: float = Field(0.001, gt=0)
    memory_decay: float = Field(0.99, gt=0, lt=1, description="RMSprop decay (PyTorch alpha)")
    target_gradient: bool = Field(
        False, description="let gradients flow through the expected memory (DQN: no)")

    def build(self, input_size: int, output_size: int, key):
        from mannlab.models.mann_rl import MannRL

        return MannRL(input_size, output_size, self.memory_size, tuple(self.action_hidden),
                      tuple(self.memory_hidden), self.embedding_size, self.memory_init,
                      self.output_feed, key=key)


ModelConfig = Annotated[LSTMConfig | NTMConfig | DNCConfig | MannRLConfig,
                        Field(discriminator="name")]


# ---------------------------------------------------------------- training
class TrainConfig(Strict):
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    learning_rate: float = Field(1e-4, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    decay: float = Field(0.95, gt=0, lt=1)
    clip_value: float = Field(10.0, gt=0)
    batch_size: int = Field(1, ge=1)
    max_steps: int = Field(100_000, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    converge_at: float | None = Field(
        0.01, ge=0, description="stop once the held-out convergence metric is below this")
    eval_every: int = Field(1000, ge=1)
    eval_size: int = Field(1000, ge=1)
    log_every: int = Field(100, ge=1)
    checkpoint_every: int = Field(5000, ge=1)
    window: int = Field(1000, ge=1, description="sliding-window length for averages, in steps")
    log_images: bool = Field(
        True, description="TensorBoard images of a test sequence at every evaluation")
    steps_per_call: int = Field(
        1, ge=1, description="training steps run in one compiled call (a lax.scan over "
        "steps): the host's per-call cost is paid once per this many steps; the steps of a "
        "call are padded to the longest of their batches")

    @model_validator(mode="after")
    def _boundaries_align(self):
        for name in ("log_every", "eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if value % self.steps_per_call:
                raise ValueError(f"{name} ({value}) must be a multiple of steps_per_call "
                                 f"({self.steps_per_call})")
        return self


class RunConfig(Strict):
    task: TaskConfig
    model: ModelConfig
    train: TrainConfig = TrainConfig()
    seed: int = 0

    @model_validator(mode="after")
    def _one_step_per_call_for_mann_rl(self):
        if self.model.name == "mann_rl" and self.train.steps_per_call != 1:
            raise ValueError(f"train.steps_per_call: MANN-RL's trainer runs one step per call "
                             f"(got {self.train.steps_per_call})")
        return self


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part, {}), dict):
            raise ConfigError(f"override {dotted}: {part!r} is not a section")
        node = node.setdefault(part, {})
    node[parts[-1]] = value


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading 1e-3 as a number as YAML 1.2 does (YAML
    1.1 wants 1.0e-3 and reads 1e-3 as a string)."""


YAML12_FLOAT = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?$"
    r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")
"""A number with a digit before or after an optional point and an optional
exponent (1e-3, 3., .5, 1_000.5), or .inf / .nan. Plain integers also match,
but PyYAML's int rule, checked first, keeps them ints."""


class YamlDumper(yaml.SafeDumper):
    """Writes strings that `YamlLoader` would read as numbers (e.g. a path
    named 2e3) in quotes, so that a saved config reads back the same."""


for _yaml_class in (YamlLoader, YamlDumper):
    _yaml_class.add_implicit_resolver("tag:yaml.org,2002:float", YAML12_FLOAT,
                                      list("-+0123456789."))


def read_yaml(text: str) -> Any:
    """Parse YAML text with `YamlLoader`."""
    return yaml.load(text, Loader=YamlLoader)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` overrides; values are parsed as YAML scalars."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.batch_size=16")
        key, value = item.split("=", 1)
        try:
            parsed = read_yaml(value)
        except (yaml.YAMLError, ValueError) as err:
            raise ConfigError(f"override {item!r}: not a YAML value "
                              f"({str(err).splitlines()[0]})") from None
        _set_dotted(raw, key.strip(), parsed)
    return raw


def _format(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"] if not str(p).startswith("function-")]
        if len(loc) > 2 and loc[0] in ("task", "model"):
            del loc[1]  # the variant's name (pydantic's union tag): model.ntm.x -> model.x
        where = ".".join(loc)
        got = e.get("input")
        got = "" if isinstance(got, dict) else f" (got {got!r})"  # a whole section: no echo
        message = e["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}{got}" if where else message)
    return "; ".join(parts)


def parse_config(raw: Any, source: str = "config") -> RunConfig:
    """Validate a dict into a RunConfig, raising ConfigError with one line."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with task and model sections, "
                          f"got {type(raw).__name__}")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_format(err)}") from None


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read, override and validate a YAML config file."""
    path = Path(path)
    try:
        raw = read_yaml(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    return parse_config(apply_overrides(raw or {}, list(overrides)), str(path))


def dump_config(config: RunConfig) -> str:
    return yaml.dump(config.model_dump(mode="json"), Dumper=YamlDumper, sort_keys=False)
