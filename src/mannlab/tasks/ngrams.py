"""The dynamic n-grams task (NTM paper, Graves et al. 2014, section 4.4).

Each sequence has its own n-gram model: for every context of n - 1 bits, the
probability that the next bit is 1 is drawn from Beta(a, a) (the paper: n =
6, a = 1/2, so 32 probabilities). A sequence of L bits starts with n - 1
uniform bits and continues from that table. The model sees one bit per step
and predicts the next; predictions are scored once a full context has been
seen (bits n - 1 .. L - 1 are predicted).

No model can be certain of a bit, so bits wrong is no measure here. The
metrics are the cost in bits per sequence and its excess over the
Bayes-optimal predictor, which knows how the tables are drawn and counts
what followed the current context so far in this sequence:

    P(next = 1 | context) = (N1 + a) / (N1 + N0 + 2a)          (paper, eq. 10)

The sequence "length" of this task is L, the number of bits (paper: 200).
"""

import jax
import jax.numpy as jnp
import numpy as np

from mannlab.tasks.base import Batch, BitTask, bucket_edges, pad_length
from mannlab.tasks.bits import LN2, bit_loss


def context_codes(bits: jnp.ndarray, order: int) -> jnp.ndarray:
    """The last `order` - 1 bits up to each step as an integer.

    Args:
      bits: [T, B] in {0, 1}.
    Returns:
      [T, B] int32 in [0, 2^(order - 1)): sum_j bits[t - j] 2^j over
      j < order - 1 (bits before the start count as 0).
    """
    code = jnp.zeros(bits.shape, jnp.int32)
    for j in range(order - 1):
        shifted = jnp.concatenate([jnp.zeros((j,) + bits.shape[1:]), bits[:bits.shape[0] - j]])
        code = code + shifted.astype(jnp.int32) * (2 ** j)
    return code


def bayes_optimal_cost(bits: jnp.ndarray, next_bits: jnp.ndarray, mask: jnp.ndarray,
                       order: int, prior: float) -> jnp.ndarray:
    """Cost in bits of the Bayes-optimal predictor (paper eq. 10) per sequence.

    The counts N1, N0 of a context cover the scored steps before the current
    one (a scored step has a full context and a next bit).

    Args:
      bits: [T, B] the bit seen at each step; next_bits: [T, B] the bit to predict.
      mask: [T, B] 1 where the prediction is scored.
      order: n; prior: a of the Beta(a, a) the tables are drawn from.
    Returns:
      [B] cost in bits.
    """
    onehot = jax.nn.one_hot(context_codes(bits, order), 2 ** (order - 1))  # [T, B, C]
    seen = onehot * mask[..., None]
    ones = seen * next_bits[..., None]
    n1 = jnp.cumsum(ones, 0) - ones  # counts before this step
    n0 = jnp.cumsum(seen - ones, 0) - (seen - ones)
    N1, N0 = (n1 * onehot).sum(-1), (n0 * onehot).sum(-1)
    # log P(the bit that came), from its own count: no 1 - p1 to round to 0
    # when the prior is tiny
    log_p = (jnp.log(jnp.where(next_bits > 0.5, N1, N0) + prior)
             - jnp.log(N1 + N0 + 2 * prior))
    return -jnp.where(mask > 0, log_p, 0.0).sum(0) / LN2


def ngram_sequence(table: np.ndarray, first: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Bits from an n-gram table.

    Args:
      table: [2^(n - 1)] P(next bit = 1) for each context, indexed as
        `context_codes` does (the newest bit is the lowest).
      first: [n - 1] the opening bits.
      uniforms: [L] draws in [0, 1); bit t >= n - 1 is 1 iff uniforms[t] <
        table[context of bits t - n + 1 .. t - 1].
    Returns:
      [L] bits (int64).
    """
    context = len(first)
    bits = np.zeros(len(uniforms), np.int64)
    bits[:context] = first
    weights = 2 ** np.arange(context)  # bit t - 1 - j has weight 2^j
    for t in range(context, len(uniforms)):
        code = int(bits[t - context:t][::-1] @ weights)
        bits[t] = uniforms[t] < table[code]
    return bits


class NGramsTask(BitTask):
    heldout_seed = 2014_10_20_44
    metric_names = ("cost", "excess_cost")

    def __init__(self, order: int = 6, min_length: int = 200, max_length: int = 200,
                 beta: float = 0.5, length_buckets: int = 1):
        if order < 2:
            raise ValueError(f"ngrams: order must be >= 2, got {order}")
        if not order <= min_length <= max_length:
            raise ValueError(f"ngrams: need order <= min_length <= max_length, got "
                             f"order={order}, min_length={min_length}, max_length={max_length}")
        if beta <= 0:
            raise ValueError(f"ngrams: beta must be > 0, got {beta}")
        self.order, self.min_length, self.max_length = order, min_length, max_length
        self.beta = float(beta)
        self.edges = bucket_edges(min_length, max_length, length_buckets)
        self.input_size = 1
        self.output_size = 1

    def has_length(self, length: int) -> bool:
        """At least one prediction with a full context: `length` >= order."""
        return length >= self.order

    def sample(self, rng: np.random.Generator, batch_size: int, length: int | None = None) -> Batch:
        """A batch of the training distribution, or of exactly `length` bits."""
        if length is None:
            lengths = rng.integers(self.min_length, self.max_length + 1, size=batch_size)
            pad = pad_length(int(lengths.max()), self.edges)
        else:
            if not self.has_length(length):
                raise ValueError(f"ngrams: length={length} < order={self.order}: no "
                                 "prediction would have a full context")
            lengths = np.full(batch_size, length)
            pad = length
        seqs = [self.sequence(rng, int(L)) for L in lengths]
        return self.make_batch(seqs, pad)

    def sequence(self, rng: np.random.Generator, length: int) -> np.ndarray:
        """[length] bits from a fresh n-gram table."""
        context = self.order - 1
        table = rng.beta(self.beta, self.beta, size=2 ** context)
        first = rng.integers(0, 2, size=context)
        return ngram_sequence(table, first, rng.random(length))

    def make_batch(self, seqs: list[np.ndarray], steps: int) -> Batch:
        """Lay out bit sequences as a batch of T = `steps` time steps: input
        bit t, target bit t + 1, scored for t in [order - 2, L - 2].
        Inputs and targets are [T, B, 1], masks [T, B]."""
        B = len(seqs)
        inputs = np.zeros((steps, B, 1), np.float32)
        targets = np.zeros((steps, B, 1), np.float32)
        loss_mask = np.zeros((steps, B), np.float32)
        step_mask = np.zeros((steps, B), bool)
        for b, s in enumerate(seqs):
            L = len(s)
            inputs[:L, b, 0] = s
            targets[:L - 1, b, 0] = s[1:]
            loss_mask[self.order - 2:L - 1, b] = 1.0
            step_mask[:L, b] = True
        return Batch(inputs, targets, loss_mask, step_mask)

    def loss(self, ys, batch: Batch):
        """Binary cross-entropy of the next-bit predictions `ys` [T, B, 1] (logits).

        Returns (mean cost in nats, {"cost": bits per sequence [B],
        "excess_cost": cost minus the Bayes-optimal predictor's [B]}).
        """
        loss, metrics = bit_loss(ys, batch.targets, batch.loss_mask)
        optimal = bayes_optimal_cost(batch.inputs[..., 0], batch.targets[..., 0],
                                     batch.loss_mask, self.order, self.beta)
        return loss, {"cost": metrics["cost"], "excess_cost": metrics["cost"] - optimal}
