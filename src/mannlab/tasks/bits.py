"""Loss and metrics for tasks whose outputs are bit vectors (copy, repeat copy,
associative recall, priority sort).

Outputs are logits; each bit is an independent Bernoulli (sigmoid).
"""

import jax.numpy as jnp
import optax

LN2 = 0.6931471805599453


def bit_loss(ys: jnp.ndarray, targets: jnp.ndarray, loss_mask: jnp.ndarray):
    """Binary cross-entropy summed over bits and scored steps.

    Args:
      ys: [T, B, O] logits.
      targets: [T, B, O] bits in {0, 1}.
      loss_mask: [T, B] 1 where scored.
    Returns:
      (loss, metrics): loss is the mean over the batch of the per-sequence
      cost in nats; metrics are per-sequence [B] arrays:
      ``bits_wrong`` (thresholded output vs target) and ``cost`` (bits).
    """
    bce = optax.sigmoid_binary_cross_entropy(ys, targets).sum(-1) * loss_mask
    cost = bce.sum(0)
    wrong = (jnp.abs((ys > 0).astype(targets.dtype) - targets).sum(-1) * loss_mask).sum(0)
    return cost.mean(), {"bits_wrong": wrong, "cost": cost / LN2}
