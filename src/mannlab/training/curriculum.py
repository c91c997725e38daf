"""Curricula over sequence length (``train.curriculum``).

``uniform`` (the default) draws every batch from the task's own training
distribution: lengths uniform over its configured range, the protocol of
the Chomsky-hierarchy suite and of the NTM paper. ``grow`` (`GrowingLength`)
starts on short sequences and lengthens them as the model masters them, as
the public NTM and DNC implementations' curricula do: each batch has one
length, drawn uniformly from the task's shortest up to a current maximum;
every ``log_every`` steps the convergence metric averaged over the training
steps since the last decision is compared with the threshold, and if below
it the maximum grows by ``curriculum_step`` (up to the task's
``max_length``). The maximum and the values since the last decision are
part of the seed's checkpoint, so a resumed run continues exactly.
"""

from dataclasses import dataclass, field

import numpy as np

from mannlab.config import TrainConfig
from mannlab.tasks.base import Batch, Task, pad_time

PAD_MULTIPLE = 16
"""A grown batch is padded with inert steps to a multiple of this many time
steps, so that a curriculum over lengths compiles a few programs, not one
per length."""


@dataclass
class GrowingLength:
    """``train.curriculum: grow`` for one seed.

    shortest: the shortest length the task can make.
    longest: the task's longest training length (``max_length``).
    maximum: the current longest length drawn.
    step, threshold, every: how much, below what, and how often it grows.
    values: the convergence metric of each training step since the last decision.
    """

    shortest: int
    longest: int
    maximum: int
    step: int
    threshold: float
    every: int
    values: list[float] = field(default_factory=list)

    def sample(self, task: Task, rng: np.random.Generator, batch_size: int) -> Batch:
        """A batch of one length, uniform over [shortest, maximum], padded
        with inert steps to a multiple of `PAD_MULTIPLE` time steps."""
        length = int(rng.integers(self.shortest, self.maximum + 1))
        batch = task.sample(rng, batch_size, length)
        steps = batch.inputs.shape[0]
        return pad_time(batch, -(-steps // PAD_MULTIPLE) * PAD_MULTIPLE)

    def observe(self, step: int, value: float) -> None:
        """Take training step `step`'s convergence metric; at a multiple of
        `every`, grow the maximum if the mean since the last decision is
        below the threshold."""
        self.values.append(value)
        if step % self.every:
            return
        if self.maximum < self.longest and float(np.mean(self.values)) < self.threshold:
            self.maximum = min(self.maximum + self.step, self.longest)
        self.values = []

    def to_json(self) -> dict:
        return {"maximum": self.maximum, "values": list(self.values)}

    def restore(self, state: dict) -> None:
        self.maximum, self.values = int(state["maximum"]), [float(v) for v in state["values"]]


def make_curriculum(cfg: TrainConfig, task: Task) -> GrowingLength | None:
    """A seed's curriculum state: None for ``uniform`` (the task samples
    itself), a `GrowingLength` for ``grow``.

    Raises:
      ValueError: ``grow`` on a task whose sequences have no length, one line.
    """
    if cfg.curriculum == "uniform":
        return None
    longest = task.max_length
    lengths = [n for n in range(1, longest + 1) if task.has_length(n)]
    if not lengths:
        raise ValueError(f"train.curriculum: grow needs a task that makes sequences of "
                         f"lengths up to its max_length ({longest}); this one makes none")
    threshold = cfg.curriculum_threshold if cfg.curriculum_threshold is not None \
        else cfg.converge_at
    return GrowingLength(lengths[0], longest, max(lengths[0], min(cfg.curriculum_start, longest)),
                         cfg.curriculum_step, threshold, cfg.log_every)
