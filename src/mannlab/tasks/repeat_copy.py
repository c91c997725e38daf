"""The repeat copy task (NTM paper, Graves et al. 2014, section 4.2).

Input: a sequence of L random `bits`-bit vectors, then one step with the
number of repeats K on its own channel (normalised: K / `repeat_normaliser`),
then silence while the model answers. Target: the sequence K times in a row,
then an end marker on its own output channel (channel `bits`). Every output
channel is scored during the answer (so the marker must stay off until the
end). A sequence takes L + 1 + L K + 1 steps.

`repeat_normaliser` is fixed (not taken from the batch or the training
range) so a model trained on repeats 1-10 sees the same encoding of, say, 15
repeats at evaluation time.
"""

import numpy as np

from mannlab.tasks.base import Batch, BitTask, bucket_edges, pad_length


def steps_needed(length: int, repeats: int) -> int:
    """Time steps of one example: input, repeat count, answer, end marker."""
    return length + 1 + length * repeats + 1


class RepeatCopyTask(BitTask):
    heldout_seed = 2014_10_20_42
    metric_names = ("bits_wrong", "cost")

    def __init__(self, bits: int = 8, min_length: int = 1, max_length: int = 10,
                 min_repeats: int = 1, max_repeats: int = 10, repeat_normaliser: float = 10.0,
                 length_buckets: int = 4):
        if not 1 <= min_length <= max_length:
            raise ValueError(f"repeat_copy: need 1 <= min_length <= max_length, got "
                             f"min_length={min_length}, max_length={max_length}")
        if not 1 <= min_repeats <= max_repeats:
            raise ValueError(f"repeat_copy: need 1 <= min_repeats <= max_repeats, got "
                             f"min_repeats={min_repeats}, max_repeats={max_repeats}")
        if repeat_normaliser <= 0:
            raise ValueError(f"repeat_copy: repeat_normaliser must be > 0, got {repeat_normaliser}")
        self.bits = bits
        self.min_length, self.max_length = min_length, max_length
        self.min_repeats, self.max_repeats = min_repeats, max_repeats
        self.repeat_normaliser = float(repeat_normaliser)
        self.edges = bucket_edges(steps_needed(min_length, min_repeats),
                                  steps_needed(max_length, max_repeats), length_buckets)
        self.input_size = bits + 1
        self.output_size = bits + 1

    def sample(self, rng: np.random.Generator, batch_size: int, length: int | None = None,
               repeats: int | None = None) -> Batch:
        """A batch of the training distribution; `length` and `repeats` fix
        either (for generalisation tests) and then no bucket padding is added."""
        if length is None:
            lengths = rng.integers(self.min_length, self.max_length + 1, size=batch_size)
        else:
            lengths = np.full(batch_size, length)
        if repeats is None:
            reps = rng.integers(self.min_repeats, self.max_repeats + 1, size=batch_size)
        else:
            reps = np.full(batch_size, repeats)
        longest = max(steps_needed(int(L), int(K)) for L, K in zip(lengths, reps))
        pad = pad_length(longest, self.edges) if length is None and repeats is None else longest
        seq = rng.integers(0, 2, size=(int(lengths.max()), batch_size, self.bits))
        return self.make_batch(seq, lengths, reps, pad)

    def make_batch(self, seq: np.ndarray, lengths: np.ndarray, repeats: np.ndarray,
                   steps: int) -> Batch:
        """Lay out sequences `seq` [>= max L, B, bits] with `repeats` [B] as a
        batch of `steps` time steps."""
        B = len(lengths)
        inputs = np.zeros((steps, B, self.input_size), np.float32)
        targets = np.zeros((steps, B, self.output_size), np.float32)
        loss_mask = np.zeros((steps, B), np.float32)
        step_mask = np.zeros((steps, B), bool)
        for b, (L, K) in enumerate(zip(lengths, repeats)):
            L, K = int(L), int(K)
            s = seq[:L, b]
            inputs[:L, b, : self.bits] = s
            inputs[L, b, self.bits] = K / self.repeat_normaliser
            start, end = L + 1, L + 1 + L * K
            targets[start:end, b, : self.bits] = np.tile(s, (K, 1))
            targets[end, b, self.bits] = 1.0  # end marker
            loss_mask[start: end + 1, b] = 1.0
            step_mask[: end + 1, b] = True
        return Batch(inputs, targets, loss_mask, step_mask)
