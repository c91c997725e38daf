"""Location-based addressing (NTM eqs. 7-9): interpolation, shift, sharpening.

Shapes: weightings [H, N], gates [H], shift distributions [H, 2S+1] over the
offsets -S..S, sharpening exponents [H].
"""

import jax
import jax.numpy as jnp

from mannlab.memory.numerics import EPS


def interpolate(
    content_weights: jnp.ndarray, previous_weights: jnp.ndarray, gate: jnp.ndarray
) -> jnp.ndarray:
    """NTM eq. 7: w_g = g w_c + (1 - g) w_{t-1}.

    Args:
      content_weights: [H, N].
      previous_weights: [H, N].
      gate: [H] interpolation gates in [0, 1].
    Returns:
      [H, N] gated weightings.
    """
    g = gate[:, None]
    return g * content_weights + (1.0 - g) * previous_weights


def circular_shift(weights: jnp.ndarray, shift: jnp.ndarray) -> jnp.ndarray:
    """NTM eq. 8: w~(i) = sum_j w(j) s(i - j), indices modulo N.

    `shift[h, k]` is the probability of moving head h by offset k - S, so with
    S = 1 the columns are offsets -1, 0, +1.

    Args:
      weights: [H, N].
      shift: [H, 2S+1] shift distributions.
    Returns:
      [H, N] shifted weightings.
    """
    s = (shift.shape[-1] - 1) // 2
    rolled = jnp.stack([jnp.roll(weights, k, axis=-1) for k in range(-s, s + 1)], axis=1)
    return jnp.einsum("hkn,hk->hn", rolled, shift)


def sharpen(weights: jnp.ndarray, gamma: jnp.ndarray) -> jnp.ndarray:
    """NTM eq. 9: w(i) = w~(i)^gamma / sum_j w~(j)^gamma.

    Computed as softmax(gamma * log(w~ + EPS)), which equals eq. 9 up to EPS and
    stays finite for zero weights and huge gamma.

    Args:
      weights: [H, N] non-negative weightings.
      gamma: [H] exponents >= 1.
    Returns:
      [H, N] sharpened weightings summing to 1.
    """
    return jax.nn.softmax(gamma[:, None] * jnp.log(weights + EPS), axis=-1)
