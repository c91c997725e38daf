"""What every task provides (`Task`), and the batch it produces (`Batch`).

A task has ``input_size`` and ``output_size``, ``sample(rng, batch_size,
length=None) -> Batch`` (numpy, from a seeded ``np.random.Generator``; ``length``
None means the training distribution, an int means exactly that length, for
generalisation tests), ``has_length(length) -> bool`` (whether `sample` can
give that length), and a pure JAX ``loss(ys, batch) -> (loss, metrics)``
where ``loss`` is the scalar to minimise and ``metrics`` maps names to
per-sequence values [B]. ``metric_names`` lists them, the first being the one
convergence is judged on.
"""

from typing import NamedTuple, Protocol

import numpy as np

from mannlab.models.embedded import Embedding
from mannlab.tasks.bits import bit_loss


class Batch(NamedTuple):
    """A padded, time-major batch.

    inputs: [T, B, I] float32.
    targets: [T, B, O] float32 (bit targets) or [T, B] int32 (class targets).
    loss_mask: [T, B] float32, 1 where the target is scored.
    step_mask: [T, B] bool, False on padding after a sequence's end.
    """

    inputs: np.ndarray
    targets: np.ndarray
    loss_mask: np.ndarray
    step_mask: np.ndarray


class Task(Protocol):
    """The interface the training loop, evaluation and figures use.

    ``max_length`` is the longest training length in the task's own unit
    (what ``mannlab eval --lengths`` varies: vectors for copy, items for
    associative recall, bits for n-grams, symbols for the language tasks).
    ``embedding`` is None when inputs are vectors [T, B, input_size], and an
    `Embedding` when they are token ids [T, B] (then ``input_size`` is the
    vocabulary size).
    """

    input_size: int
    output_size: int
    metric_names: tuple[str, ...]
    max_length: int
    embedding: Embedding | None
    inputs_fingerprint: dict | None
    """What identifies input features the task computes outside the model
    (frozen word vectors: their source and SHA-256), which a checkpoint must
    be used with; None for a task without such."""
    heldout_split: str
    """The records' name of what `heldout` returns: "heldout", or
    "train_eval" for a task that holds nothing out and evaluates on its
    training data (never labelled held-out)."""

    def sample(self, rng: np.random.Generator, batch_size: int,
               length: int | None = None) -> "Batch": ...

    def has_length(self, length: int) -> bool: ...

    def heldout(self, size: int) -> list["Batch"]: ...

    def loss(self, ys, batch: "Batch"): ...

    def splits(self, train_limit: int | None = None) -> dict[str, list["Batch"]]:
        """Fixed evaluation splits that `scores` reports on, by name ({} if
        the task has none beyond `heldout`)."""

    def scores(self, outputs: list[tuple[np.ndarray, "Batch"]]) -> dict[str, float]:
        """The task's own scores of model outputs on a split: ``(ys, batch)`` pairs."""

    def baselines(self) -> dict[str, dict[str, dict[str, float]]]:
        """Reference predictors' `scores` per split, by name."""


class BitTask:
    """Shared by the generated bit-vector tasks (copy, repeat copy, associative
    recall, priority sort, n-grams): their loss and a fixed held-out set drawn
    from the task's own PRNG stream (``heldout_seed``), the same for every run
    and seed."""

    heldout_seed: int
    embedding = None
    heldout_split = "heldout"
    inputs_fingerprint = None

    def has_length(self, length: int) -> bool:
        """Generated sequences can have any positive length."""
        return length >= 1

    def loss(self, ys, batch: Batch):
        return bit_loss(ys, batch.targets, batch.loss_mask)

    def splits(self, train_limit: int | None = None) -> dict[str, list[Batch]]:
        """None: a generated task is scored by its metrics at each length."""
        return {}

    def scores(self, outputs) -> dict[str, float]:
        return {}

    def baselines(self) -> dict[str, dict[str, dict[str, float]]]:
        return {}

    def heldout(self, size: int, chunk: int = 500) -> list[Batch]:
        """`size` sequences of the training distribution, in batches of `chunk`."""
        rng = np.random.default_rng(self.heldout_seed)
        return [self.sample(rng, min(chunk, size - i)) for i in range(0, size, chunk)]


def bucket_edges(min_length: int, max_length: int, buckets: int) -> list[int]:
    """Maximum lengths of `buckets` padding buckets spread over [min, max].

    Batches are padded to the smallest edge that holds them, so at most
    `buckets` programs are compiled and padding wastes little time.
    """
    if buckets < 1:
        raise ValueError(f"length_buckets must be >= 1, got {buckets}")
    span = max_length - min_length
    edges = {min_length + int(np.ceil(span * (k + 1) / buckets)) for k in range(buckets)}
    return sorted(edges)


def pad_length(length: int, edges: list[int]) -> int:
    """The smallest bucket edge >= length (or length itself beyond the last)."""
    for edge in edges:
        if edge >= length:
            return edge
    return length


def pad_time(batch: Batch, steps: int) -> Batch:
    """Extend a batch with inert padding steps up to `steps` time steps."""
    extra = steps - batch.inputs.shape[0]
    if extra < 0:
        raise ValueError(f"cannot pad a batch of {batch.inputs.shape[0]} steps to {steps}")
    if extra == 0:
        return batch
    return Batch(*(np.concatenate([a, np.zeros((extra,) + a.shape[1:], a.dtype)]) for a in batch))


def stack_chunk(rows: list[list[Batch]]) -> Batch:
    """K rows of S batches (one per seed) -> one Batch with leading axes [K, S],
    every batch padded with inert steps to the longest of them."""
    steps = max(b.inputs.shape[0] for row in rows for b in row)
    return Batch(*(np.stack(parts) for parts in zip(*(
        Batch(*(np.stack(parts) for parts in zip(*(pad_time(b, steps) for b in row))))
        for row in rows))))
