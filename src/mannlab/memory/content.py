"""Content-based addressing (NTM eqs. 5-6; DNC Methods, "content-based addressing").

Shapes: memory [N, M], keys [H, M], strengths [H], weightings [H, N].
"""

import jax
import jax.numpy as jnp

from mannlab.memory.numerics import safe_norm


def cosine_similarity(keys: jnp.ndarray, memory: jnp.ndarray) -> jnp.ndarray:
    """NTM eq. 6: K[u, v] = u.v / (|u| |v|), for every key and every row.

    Zero keys or zero rows give similarity 0 with finite gradients (the norms
    are guarded, see `safe_norm`).

    Args:
      keys: [H, M].
      memory: [N, M].
    Returns:
      [H, N] similarities in [-1, 1].
    """
    dots = keys @ memory.T
    return dots / (safe_norm(keys)[:, None] * safe_norm(memory)[None, :])


def content_weighting(
    memory: jnp.ndarray, keys: jnp.ndarray, strengths: jnp.ndarray
) -> jnp.ndarray:
    """NTM eq. 5: w_c(i) = softmax_i(beta K[k, M(i)]).

    The softmax subtracts its maximum, so very large strengths stay finite.

    Args:
      memory: [N, M].
      keys: [H, M] lookup keys.
      strengths: [H] key strengths beta >= 0.
    Returns:
      [H, N] weightings; each row is non-negative and sums to 1.
    """
    return jax.nn.softmax(strengths[:, None] * cosine_similarity(keys, memory), axis=-1)
