"""The priority sort task (NTM paper, Graves et al. 2014, section 4.5).

Input: L random `bits`-bit vectors, each with a scalar priority drawn
uniformly from [-1, 1] on its own channel, then one step on the delimiter
channel. Target: the K vectors of highest priority, highest first, in the K
steps after the delimiter (the paper: L = 20, K = 16). K is
``round(sorted_fraction * L)`` (at least 1), so a generalisation test at
another length L keeps the paper's proportion.

The sequence "length" of this task is L, the number of input vectors. An
example takes L + 1 + K steps.
"""

import numpy as np

from mannlab.tasks.base import Batch, BitTask, bucket_edges, pad_length


class PrioritySortTask(BitTask):
    heldout_seed = 2014_10_20_45
    metric_names = ("bits_wrong", "cost")

    def __init__(self, bits: int = 8, min_length: int = 20, max_length: int = 20,
                 sorted_fraction: float = 0.8, length_buckets: int = 4):
        if bits < 1:
            raise ValueError(f"priority_sort: bits must be >= 1, got {bits}")
        if not 1 <= min_length <= max_length:
            raise ValueError(f"priority_sort: need 1 <= min_length <= max_length, got "
                             f"min_length={min_length}, max_length={max_length}")
        if not 0 < sorted_fraction <= 1:
            raise ValueError(f"priority_sort: sorted_fraction must be in (0, 1], got "
                             f"{sorted_fraction}")
        self.bits, self.min_length, self.max_length = bits, min_length, max_length
        self.sorted_fraction = float(sorted_fraction)
        self.edges = bucket_edges(self.steps_needed(min_length), self.steps_needed(max_length),
                                  length_buckets)
        self.input_size = bits + 2  # data bits, priority, delimiter
        self.output_size = bits

    def outputs(self, length: int) -> int:
        """K, how many of `length` vectors the answer lists."""
        return max(1, min(length, round(self.sorted_fraction * length)))

    def steps_needed(self, length: int) -> int:
        """Time steps of one example: the vectors, the delimiter, the answer."""
        return length + 1 + self.outputs(length)

    def sample(self, rng: np.random.Generator, batch_size: int, length: int | None = None) -> Batch:
        """A batch of the training distribution, or of exactly `length` vectors."""
        if length is None:
            lengths = rng.integers(self.min_length, self.max_length + 1, size=batch_size)
            pad = pad_length(self.steps_needed(int(lengths.max())), self.edges)
        else:
            if length < 1:
                raise ValueError(f"priority_sort: length={length}; need at least 1 vector")
            lengths = np.full(batch_size, length)
            pad = self.steps_needed(length)
        longest = int(lengths.max())
        vectors = rng.integers(0, 2, size=(longest, batch_size, self.bits))
        # float32, as the model sees them: the order is decided on those values
        priorities = rng.uniform(-1.0, 1.0, size=(longest, batch_size)).astype(np.float32)
        return self.make_batch(vectors, priorities, lengths, pad)

    def make_batch(self, vectors: np.ndarray, priorities: np.ndarray, lengths: np.ndarray,
                   steps: int) -> Batch:
        """Lay out examples as a batch of `steps` time steps.

        Args:
          vectors: [>= max L, B, bits] in {0, 1}; priorities: [>= max L, B].
          lengths: [B] number of input vectors of each example.
          steps: the padded length T.
        Returns:
          Batch: inputs [T, B, bits + 2], targets [T, B, bits], masks [T, B].
        """
        B, d = len(lengths), self.bits
        inputs = np.zeros((steps, B, self.input_size), np.float32)
        targets = np.zeros((steps, B, d), np.float32)
        loss_mask = np.zeros((steps, B), np.float32)
        step_mask = np.zeros((steps, B), bool)
        for b, L in enumerate(lengths):
            L, K = int(L), self.outputs(int(L))
            inputs[:L, b, :d] = vectors[:L, b]
            inputs[:L, b, d] = priorities[:L, b]
            inputs[L, b, d + 1] = 1.0  # delimiter
            order = np.argsort(-priorities[:L, b], kind="stable")[:K]
            targets[L + 1:L + 1 + K, b] = vectors[order, b]
            loss_mask[L + 1:L + 1 + K, b] = 1.0
            step_mask[:L + 1 + K, b] = True
        return Batch(inputs, targets, loss_mask, step_mask)
