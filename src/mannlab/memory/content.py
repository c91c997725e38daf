"""Content-based addressing (NTM eqs. 5-6; DNC Methods, "content-based addressing").

Shapes: memory [N, M], keys [H, M], strengths [H], weightings [H, N].
"""

import jax
import jax.numpy as jnp

from mannlab.memory.numerics import safe_norm, unit_vectors


def cosine_similarity(keys: jnp.ndarray, memory: jnp.ndarray) -> jnp.ndarray:
    """NTM eq. 6: K[u, v] = u.v / (|u| |v|), for every key and every row.

    Keys and rows are treated differently, on purpose:
    - a key's scale means nothing (the strength beta carries that), so its
      norm is exact and scale-free: K[c u, v] = K[u, v] for every c > 0 up to
      rounding, however small the key (`numerics.unit_vectors`; a zero key,
      all entries below `numerics.NEGLIGIBLE`, gives 0 with zero gradient);
    - a row's scale records how much was written there, so its norm keeps
      the absolute guard sqrt(|v|^2 + EPS^2) (`numerics.safe_norm`): rows
      well below EPS = 1e-6 count as empty. K[u, c v] = K[u, v] holds for
      rows of norm above ~1e-3 (to 5e-7); a row of the NTM's constant
      initial memory (norm 4.5e-6) gets 0.976 of eq. 6, the same for every
      such row. Making the rows scale-free as well made a DNC content lookup
      split evenly over a written row and the rows that allocation wrote with
      1e-6^k of it, and it did not converge measurably faster on NTM copy or
      associative recall (docs/notes-numerics.md).

    Args:
      keys: [H, M].
      memory: [N, M].
    Returns:
      [H, N] similarities in [-1, 1].
    """
    return (unit_vectors(keys) @ memory.T) / safe_norm(memory)[None, :]


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
