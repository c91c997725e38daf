"""Dynamic memory allocation, part 2: allocation and write weightings (DNC,
Graves et al. 2016, Methods, "Dynamic memory allocation" and "Write weighting").

Shapes: N memory rows, H write heads; usage and allocation [N], weightings
[H, N], gates [H].
"""

import jax
import jax.numpy as jnp

USAGE_EPS = 1e-6
"""Usage is mapped to eps + (1 - eps) u before allocation (as in the DNC), so
products of usages are never exactly 0 and their logarithms stay finite."""


def exclusive_cumprod(x: jnp.ndarray) -> jnp.ndarray:
    """prod_{i < j} x_i for every j (1 for j = 0), for x in (0, 1].

    Computed as exp of an exclusive cumulative sum of log x, the sum being one
    product with a strictly triangular matrix: no division by x (so no NaN at
    small x) and a single matrix product forward and backward.

    Args:
      x: [N] positive values.
    Returns:
      [N] exclusive cumulative products.
    """
    n = x.shape[-1]
    strictly_before = jnp.triu(jnp.ones((n, n), x.dtype), k=1)  # [i, j] = 1 if i < j
    return jnp.exp(jnp.log(x) @ strictly_before)


def allocation_weighting(usage: jnp.ndarray, eps: float = USAGE_EPS) -> jnp.ndarray:
    """DNC Methods, allocation weighting:
    a_t[phi_t[j]] = (1 - u_t[phi_t[j]]) prod_{i=1}^{j-1} u_t[phi_t[i]],
    where phi_t sorts the locations by ascending usage (ties by index).

    The permutation phi_t is treated as a constant for gradients (the sort is
    not differentiable); gradients flow through the usage values only.

    Args:
      usage: [N] usage u_t in [0, 1].
      eps: usage is first mapped to eps + (1 - eps) u.
    Returns:
      [N] allocation weighting, each in [0, 1], summing to <= 1.
    """
    u = eps + (1.0 - eps) * usage
    order = jax.lax.stop_gradient(jnp.argsort(u, stable=True))  # phi_t
    sorted_u = u[order]
    sorted_alloc = (1.0 - sorted_u) * exclusive_cumprod(sorted_u)
    return jnp.zeros_like(u).at[order].set(sorted_alloc, unique_indices=True)


def write_weighting(allocation: jnp.ndarray, write_content: jnp.ndarray,
                    allocation_gate: jnp.ndarray, write_gate: jnp.ndarray) -> jnp.ndarray:
    """DNC Methods, write weighting: w_t^w = g^w [g^a a_t + (1 - g^a) c_t^w].

    Args:
      allocation: [N] allocation weighting a_t (shared by the heads).
      write_content: [H, N] content weightings c_t^w of the write keys.
      allocation_gate: [H] g^a in [0, 1].
      write_gate: [H] g^w in [0, 1].
    Returns:
      [H, N] write weightings, each row summing to <= 1.
    """
    ga, gw = allocation_gate[:, None], write_gate[:, None]
    return gw * (ga * allocation[None, :] + (1.0 - ga) * write_content)
