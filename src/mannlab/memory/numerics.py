"""Numerical guards shared by the addressing primitives."""

import jax.numpy as jnp

EPS = 1e-6
"""Added under square roots and logs so that gradients stay finite at zero."""


def safe_norm(x: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
    """Euclidean norm along `axis` with a finite gradient at x = 0.

    Computes sqrt(sum(x**2) + EPS**2): equal to |x| up to EPS, never dividing by
    zero in its own derivative.
    """
    return jnp.sqrt(jnp.sum(x * x, axis=axis) + EPS * EPS)
