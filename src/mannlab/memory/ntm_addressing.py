"""The NTM's full addressing pipeline (Graves et al. 2014, Figure 2, eqs. 5-9)."""

import jax.numpy as jnp

from mannlab.memory.content import content_weighting
from mannlab.memory.location import circular_shift, interpolate, sharpen


def address(
    memory: jnp.ndarray,
    previous_weights: jnp.ndarray,
    keys: jnp.ndarray,
    strengths: jnp.ndarray,
    gates: jnp.ndarray,
    shifts: jnp.ndarray,
    gammas: jnp.ndarray,
) -> jnp.ndarray:
    """Content focus (eqs. 5-6), interpolation (7), shift (8), sharpening (9).

    Args:
      memory: [N, M].
      previous_weights: [H, N] weightings of the previous step.
      keys: [H, M]; strengths: [H] (>= 0); gates: [H] (in [0, 1]);
      shifts: [H, 2S+1] (distributions); gammas: [H] (>= 1).
    Returns:
      [H, N] weightings for this step.
    """
    w = content_weighting(memory, keys, strengths)
    w = interpolate(w, previous_weights, gates)
    w = circular_shift(w, shifts)
    return sharpen(w, gammas)
