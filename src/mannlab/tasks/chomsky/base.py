"""What the 15 Chomsky-hierarchy tasks share: the protocol's layout, loss and metrics.

Delétang et al., "Neural Networks and the Chomsky Hierarchy" (ICLR 2023,
arXiv:2207.02098), with the token ids of their reference generators
(google-deepmind/neural_networks_chomsky_hierarchy), so that data sets are
interchangeable between the two projects.

**Layout** (the reference's non-autoregressive protocol, its
``make_model_with_empty_targets``). A task draws an input of ``n`` tokens
(ids ``0 .. vocab_size - 1``) and has an output of ``k = output_length(n)``
tokens (class ids ``0 .. output_size - 1``). The model sees the input one
token per step, then ``k`` blank steps, and its outputs at the blank steps
are the answer (read all at once, not fed back)::

    step      0 .. n-1              n .. n+k-1
    input     one_hot(token, V+1)   one_hot(V, V+1)    <- the blank marker channel
    target    (unscored)            the output tokens
    loss_mask 0                     1

Inputs are one-hot float32 vectors [T, B, V + 1] (channel V marks the blank
steps, as in the reference), not token ids with a learned embedding: the
reference feeds one-hot vectors, so models see what its models saw.

**Loss**: softmax cross-entropy on every output step (the reference's
``loss_fn``, padding after an end token included), the mean per scored
symbol. **Metrics**, per sequence: ``accuracy`` = fraction of output tokens
right, counting, for the tasks with an end token (stack manipulation, binary
addition and multiplication), only the tokens up to and including it (the
reference's ``accuracy_mask``); ``error`` = 1 - accuracy (the first metric:
convergence is judged on it, lower is better); ``sequence_error`` = 1 unless
every counted token is right; ``cost`` = summed cross-entropy (nats).

**Lengths**: a task's ``length`` is the reference's ``length`` argument,
the input's length in tokens, except for modular arithmetic (an even length
gives one token less: its expressions have odd length). Training batches
draw one length per batch uniformly from ``min_length .. max_length`` (the
reference's uniform curriculum samples one length per step) and are padded to
a few length buckets, so few programs compile; `heldout` mixes lengths
within a batch; ``sample(..., length=L)`` gives exactly L.

Each task is pure apart from its sampler: ``answer(tokens) -> tokens``
computes the output of any well-formed input, independently of `generate`
(tests check the two agree, and that `answer` reproduces the reference
generators' fixtures).
"""

import zlib
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from mannlab.tasks.base import Batch, bucket_edges, pad_length
from mannlab.tasks.classes import class_loss

HELDOUT_SEED = 2207_02098
"""The held-out sets' seed (with a checksum of the task's name)."""


def chomsky_loss(ys, targets, loss_mask, end_token: int | None):
    """Cross-entropy on the output steps and the protocol's per-sequence metrics.

    Args:
      ys: [T, B, C] logits.
      targets: [T, B] int32 class ids.
      loss_mask: [T, B] 1 on output steps.
      end_token: the class that ends a task's answer (tokens after it are
        trained on but not counted in the accuracy), or None.
    Returns:
      (loss, metrics): loss is the mean cross-entropy per output step;
      metrics are per-sequence [B]: ``error``, ``accuracy``,
      ``sequence_error``, ``cost`` (see the module doc).
    """
    loss, base = class_loss(ys, targets, loss_mask)
    mask = jnp.asarray(loss_mask).astype(ys.dtype)
    if end_token is not None:
        is_end = (targets == end_token).astype(ys.dtype) * mask
        mask = mask * ((jnp.cumsum(is_end, 0) - is_end) == 0)
    right = (jnp.argmax(ys, -1) == targets).astype(ys.dtype) * mask
    counted = mask.sum(0)
    accuracy = right.sum(0) / jnp.maximum(counted, 1.0)
    return loss, {
        "error": 1.0 - accuracy,
        "accuracy": accuracy,
        "sequence_error": (right.sum(0) < counted).astype(ys.dtype),
        "cost": base["cost"],
    }


def little_endian(value: int, width: int = 0) -> list[int]:
    """The bits of `value` >= 0, least significant first, at least `width` of
    them (zeros appended) and at least one."""
    bits = [int(c) for c in reversed(f"{value:b}")]
    return bits + [0] * (width - len(bits))


def random_positive(rng: np.random.Generator, bits: int) -> int:
    """An integer uniform in [1, 2**bits - 1] (any size), from `bits` random bits."""
    while True:
        value = int("".join(map(str, rng.integers(0, 2, bits))), 2)
        if value:
            return value


class ChomskyTask:
    """Base of the 15 tasks. A subclass sets the class variables and
    implements `generate`, `answer` and, where the output is not one token,
    `output_length`."""

    name: ClassVar[str]
    level: ClassVar[str]
    """"regular", "dcf" (deterministic context-free) or "cs" (context-sensitive)."""
    vocab_size: ClassVar[int]
    """Input token ids are 0 .. vocab_size - 1 (the reference's input_size)."""
    output_size: ClassVar[int]
    end_token: ClassVar[int | None] = None
    metric_names = ("error", "accuracy", "sequence_error", "cost")
    embedding = None
    inputs_fingerprint = None
    heldout_split = "heldout"

    def __init__(self, min_length: int = 1, max_length: int = 40, length_buckets: int = 4):
        if not 1 <= min_length <= max_length:
            raise ValueError(f"{self.name}: need 1 <= min_length <= max_length, got "
                             f"min_length={min_length}, max_length={max_length}")
        self.min_length, self.max_length = min_length, max_length
        self.edges = bucket_edges(min_length, max_length, length_buckets)
        self.input_size = self.vocab_size + 1
        self.blank = self.vocab_size

    # ------------------------------------------------------------ per task
    def input_length(self, length: int) -> int:
        """Tokens of an input of `length` (the reference's length argument)."""
        return length

    def output_length(self, input_length: int) -> int:
        """Tokens of the output of an input of `input_length` tokens."""
        return 1

    def generate(self, rng: np.random.Generator, count: int,
                 length: int) -> tuple[np.ndarray, np.ndarray]:
        """`count` random examples of `length`: inputs [count, n] and their
        outputs [count, k] (int64 token ids), drawn as the reference draws them."""
        raise NotImplementedError

    def answer(self, tokens) -> np.ndarray:
        """The output tokens [k] of input `tokens` [n] (any well-formed input)."""
        raise NotImplementedError

    # ------------------------------------------------------------ shared
    def check_input(self, tokens) -> np.ndarray:
        """`tokens` as a 1-D int64 array of ids in range; ValueError if not."""
        arr = np.asarray(tokens)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{self.name}: input must be a non-empty 1-D token sequence, got "
                             f"shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{self.name}: input tokens must be integers, got {arr.dtype}")
        bad = arr[(arr < 0) | (arr >= self.vocab_size)]
        if bad.size:
            raise ValueError(f"{self.name}: input token {int(bad[0])} out of range "
                             f"0..{self.vocab_size - 1}")
        return arr.astype(np.int64)

    def steps(self, length: int) -> int:
        """Time steps of an example of `length`: input, then the blank steps."""
        n = self.input_length(length)
        return n + self.output_length(n)

    def has_length(self, length: int) -> bool:
        """Every task generates any length from 1."""
        return length >= 1

    def _check_length(self, length: int) -> int:
        if isinstance(length, bool) or not isinstance(length, int | np.integer) or length < 1:
            raise ValueError(f"{self.name}: length must be an integer >= 1, got {length!r}")
        return int(length)

    def layout(self, groups: list[tuple[np.ndarray, np.ndarray]],
               steps: int | None = None) -> Batch:
        """Lay out groups of examples (inputs [b, n], outputs [b, k]) as one
        time-major batch of `steps` time steps (default: the longest)."""
        total = [i.shape[1] + o.shape[1] for i, o in groups]
        steps = max(total) if steps is None else steps
        if steps < max(total):
            raise ValueError(f"{self.name}: steps={steps} is shorter than an example "
                             f"({max(total)} steps)")
        B = sum(len(i) for i, _ in groups)
        ids = np.zeros((steps, B), np.int64)
        targets = np.zeros((steps, B), np.int32)
        loss_mask = np.zeros((steps, B), np.float32)
        step_mask = np.zeros((steps, B), bool)
        col = 0
        for inp, out in groups:
            b, n, k = len(inp), inp.shape[1], out.shape[1]
            cols = slice(col, col + b)
            ids[:n, cols] = inp.T
            ids[n:n + k, cols] = self.blank
            targets[n:n + k, cols] = out.T
            loss_mask[n:n + k, cols] = 1.0
            step_mask[:n + k, cols] = True
            col += b
        inputs = np.zeros((steps, B, self.input_size), np.float32)
        inputs[np.arange(steps)[:, None], np.arange(B)[None, :], ids] = 1.0
        inputs *= step_mask[..., None]
        return Batch(inputs, targets, loss_mask, step_mask)

    def sample(self, rng: np.random.Generator, batch_size: int,
               length: int | None = None) -> Batch:
        """A training batch (one length for the whole batch, uniform in
        min_length .. max_length, padded to its bucket), or exactly `length`."""
        if length is None:
            length = int(rng.integers(self.min_length, self.max_length + 1))
            steps = self.steps(pad_length(length, self.edges))
        else:
            length = self._check_length(length)
            steps = None
        return self.layout([self.generate(rng, batch_size, length)], steps)

    def heldout(self, size: int, chunk: int = 500) -> list[Batch]:
        """`size` sequences of the training lengths, each of its own uniform
        length, from the task's fixed seed, in batches of `chunk`."""
        rng = np.random.default_rng([HELDOUT_SEED, zlib.crc32(self.name.encode())])
        batches = []
        for start in range(0, size, chunk):
            lengths = rng.integers(self.min_length, self.max_length + 1, min(chunk, size - start))
            values, counts = np.unique(lengths, return_counts=True)
            batches.append(self.layout([self.generate(rng, int(c), int(v))
                                        for v, c in zip(values, counts)]))
        return batches

    def loss(self, ys, batch: Batch):
        return chomsky_loss(ys, batch.targets, batch.loss_mask, self.end_token)

    def splits(self, train_limit: int | None = None) -> dict[str, list[Batch]]:
        """None: a generated task is scored by its metrics at each length."""
        return {}

    def scores(self, outputs) -> dict[str, float]:
        return {}

    def baselines(self) -> dict[str, dict[str, dict[str, float]]]:
        return {}


def predictions(ys, batch: Batch) -> list[np.ndarray]:
    """Each sequence's predicted output tokens (argmax at its output steps).

    Args:
      ys: [T, B, C] logits; batch: the `Batch` they answer.
    Returns:
      B arrays of output tokens [k_b].
    """
    pred = np.asarray(jax.device_get(ys)).argmax(-1)
    mask = np.asarray(batch.loss_mask) != 0
    return [pred[mask[:, b], b] for b in range(pred.shape[1])]
