"""Numerical guards shared by the addressing primitives.

An absolute guard (x + EPS) is right where x has a fixed scale: a
distribution summing to 1 (`location.sharpen`), or a memory row, whose scale
is set by what the heads write, so that a row far below it is empty
(`safe_norm`, used for the rows in `content.cosine_similarity`). Quantities
without one (the direction of a key, the shape of a link weighting whose
mass may be anything) are normalised relative to their own scale instead:
divided by their largest entry first, so that no guard competes with the
values and no square or power under- or overflows (`inverse_norms`,
`unit_vectors`, `temporal_links.sharpen_distribution`).
"""

import jax
import jax.numpy as jnp

EPS = 1e-6
"""The absolute guard for quantities with a fixed scale: added to weightings
summing to 1 before a log (`location.sharpen`), and the norm below which a
memory row counts as empty (`safe_norm`)."""

NEGLIGIBLE = 1e-30
"""Below this largest magnitude a vector counts as zero in the scale-free
primitives (`inverse_norms`, `unit_vectors`,
`temporal_links.sharpen_distribution`). A scale-free function's gradient
grows as 1 / scale; at 1e-30 it stays below ~1e30 times the factors that
follow it in backpropagation, 8 decades short of float32's largest number
(3.4e38). Everything a memory holds is far above it (the NTM's constant
initial memory is 1e-6 per entry)."""


def inverse_norms(x: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
    """1 / |x| along `axis` (the normalisation in NTM eq. 6's cosine), exact
    whatever the scale of x, and 0 for a zero vector.

    Computed as (1 / t) / |x / t| with t = max_i |x_i|, so |x / t| lies in
    [1, sqrt(n)]: no square underflows (entries of 1e-20 would: their squares
    are below float32's normal range) or overflows, and no guard is added to
    the norm, so inverse_norms(c x) = inverse_norms(x) / c for every c > 0 up
    to rounding. t is a constant for gradients, which is exact: the function
    does not depend on how it is split. Vectors with all |x_i| < NEGLIGIBLE
    (exact zeros included) give 0 with zero gradient.

    Args:
      x: any shape; reduced along `axis` (n entries).
    Returns:
      x's shape without `axis`: the inverse norms, or 0.
    """
    top = jax.lax.stop_gradient(jnp.max(jnp.abs(x), axis=axis, keepdims=True))
    nonzero = top >= NEGLIGIBLE
    inv_top = 1.0 / jnp.where(nonzero, top, 1.0)
    squares = jnp.sum(jnp.square(x * inv_top), axis=axis, keepdims=True)  # in [1, n]
    inverse = jnp.where(nonzero, inv_top * jax.lax.rsqrt(jnp.where(nonzero, squares, 1.0)), 0.0)
    return jnp.squeeze(inverse, axis=axis)


def safe_norm(x: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
    """sqrt(|x|^2 + EPS^2) along `axis`: the norm of a memory row in NTM eq.
    6's cosine, with an absolute guard that is deliberate, not only numerical.

    Memory has a scale, set by what the heads write (add vectors of order
    1); a row's norm records how much was written there, and rows of norm
    well below EPS = 1e-6 count as empty: their similarity to any key tends
    to 0, and the derivative stays finite at x = 0. The DNC needs this: its
    allocation writes 1e-6^k a to the k-th next free row along with a itself
    (`allocation.USAGE_EPS`), and a scale-free norm would make those rows
    exact copies of a for a content lookup (measured in
    docs/notes-numerics.md: a lookup of a then reads a / 6 whatever the key
    strength). The price: a row of the NTM's constant initial memory (1e-6
    per entry, norm 4.5e-6 at width 20) has norm sqrt(21) 1e-6 here, so its
    similarities are sqrt(20 / 21) = 0.976 of eq. 6's, the same for every
    such row. Rows above ~1e-3 are within 5e-7 of their norm.

    Args:
      x: any shape; reduced along `axis`.
    Returns:
      x's shape without `axis`: the guarded norms, >= EPS.
    """
    return jnp.sqrt(jnp.sum(x * x, axis=axis) + EPS * EPS)


def unit_vectors(x: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
    """x / |x| along `axis`, exact whatever the scale of x (unit_vectors(c x)
    = unit_vectors(x) for c > 0), and 0 for vectors below NEGLIGIBLE; see
    `inverse_norms`.

    Args:
      x: any shape; normalised along `axis`.
    Returns:
      x's shape: unit vectors, or zeros.
    """
    return x * jnp.expand_dims(inverse_norms(x, axis=axis), axis)
