"""The copy task (NTM paper, section 4.1).

Input: a sequence of random `bits`-bit vectors, then a delimiter on its own
channel, then silence while the model answers. Target: the same sequence,
scored only during the answer phase. A sequence of length L takes 2L + 1 steps.
"""

import numpy as np

from mannlab.tasks.base import Batch, BitTask, bucket_edges, pad_length


class CopyTask(BitTask):
    heldout_seed = 2014_10_20
    metric_names = ("bits_wrong", "cost")

    def __init__(self, bits: int = 8, min_length: int = 1, max_length: int = 20,
                 length_buckets: int = 4):
        if not 1 <= min_length <= max_length:
            raise ValueError(f"copy: need 1 <= min_length <= max_length, got "
                             f"min_length={min_length}, max_length={max_length}")
        self.bits, self.min_length, self.max_length = bits, min_length, max_length
        self.edges = bucket_edges(min_length, max_length, length_buckets)
        self.input_size = bits + 1
        self.output_size = bits

    def sample(self, rng: np.random.Generator, batch_size: int, length: int | None = None) -> Batch:
        """A batch of the training distribution, or of exactly `length`."""
        if length is None:
            lengths = rng.integers(self.min_length, self.max_length + 1, size=batch_size)
            pad = pad_length(int(lengths.max()), self.edges)
        else:
            lengths = np.full(batch_size, length)
            pad = length
        return self.make_batch(rng.integers(0, 2, size=(pad, batch_size, self.bits)), lengths,
                               pad)

    def make_batch(self, seq: np.ndarray, lengths: np.ndarray, pad: int) -> Batch:
        """Lay out sequences `seq` [pad, B, bits] (cut to `lengths`) as a batch."""
        T, B = 2 * pad + 1, len(lengths)
        t = np.arange(pad)[:, None]
        seq = seq * (t < lengths[None, :])[..., None]
        inputs = np.zeros((T, B, self.input_size), np.float32)
        targets = np.zeros((T, B, self.bits), np.float32)
        loss_mask = np.zeros((T, B), np.float32)
        cols = np.arange(B)
        inputs[:pad, :, : self.bits] = seq
        inputs[lengths, cols, self.bits] = 1.0  # delimiter
        for b, L in enumerate(lengths):
            targets[L + 1: 2 * L + 1, b] = seq[:L, b]
            loss_mask[L + 1: 2 * L + 1, b] = 1.0
        step_mask = np.arange(T)[:, None] < (2 * lengths + 1)[None, :]
        return Batch(inputs, targets, loss_mask, step_mask)
