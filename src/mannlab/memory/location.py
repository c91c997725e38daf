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

    Computed as softmax(gamma * log(w~ + EPS)), which stays finite for zero
    weights and huge gamma. Unlike the link sharpness
    (`temporal_links.sharpen_distribution`, which normalises by the largest
    entry), an absolute EPS is right here: w~ has a fixed scale. It is a distribution
    (the content weighting, the previous weighting and the shift each sum to
    1, and eqs. 7-8 keep that sum), so its largest entry is at least 1 / N
    and EPS = 1e-6 is at most N * 1e-6 of it (1.3e-4 for N = 128). The
    result then differs from eq. 9 by at most about (gamma + 1) N EPS (tested),
    and an entry at 0 keeps a weight of order (EPS / max w~)^gamma and a
    gradient instead of none. It is not scale-invariant, and need not be: eq. 9 is
    only ever applied to such distributions.

    Args:
      weights: [H, N] non-negative weightings.
      gamma: [H] exponents >= 1.
    Returns:
      [H, N] sharpened weightings summing to 1.
    """
    return jax.nn.softmax(gamma[:, None] * jnp.log(weights + EPS), axis=-1)
