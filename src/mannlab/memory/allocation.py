"""Dynamic memory allocation, part 2: allocation and write weightings (DNC,
Graves et al. 2016, Methods, "Dynamic memory allocation" and "Write weighting").

Shapes: N memory rows, H write heads; usage and allocation [N], weightings
[H, N], gates [H].
"""

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

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


LOG_PRODUCTS_NAME = "allocation_log_products"
"""`jax.ad_checkpoint.checkpoint_name` of the allocation's log-products s [N]
(see `allocation_weighting`): a rematerialised model that saves it skips
the N x N comparison when it recomputes a step for the backward pass."""


def allocation_weighting(usage: jnp.ndarray, eps: float = USAGE_EPS) -> jnp.ndarray:
    """DNC Methods, allocation weighting:
    a_t[phi_t[j]] = (1 - u_t[phi_t[j]]) prod_{i=1}^{j-1} u_t[phi_t[i]],
    where phi_t sorts the locations by ascending usage (ties by index).

    Computed without sorting: location j comes before location i in phi_t iff
    u[j] < u[i], or u[j] == u[i] and j < i, so
    a_t[i] = (1 - u[i]) exp(s[i]),  s[i] = sum_{j before i} log u[j],
    where s is one compare-and-sum over an N x N grid that XLA fuses into a
    single loop (on CPU several times faster than a sort with its gather and
    scatter). Same values as `allocation_weighting_by_sort` up to rounding
    (the log-sum runs in index order instead of sorted order). s is named
    `LOG_PRODUCTS_NAME` for rematerialisation policies.

    The order is treated as a constant for gradients (the sort is not
    differentiable); gradients flow through the usage values only. It is
    the order of the usage as given (`usage_order_keys`), not of any value
    computed from it: XLA's vectorised and scalar code paths may round the
    same input differently (e.g. its log), which would break exact ties in
    usage against the index order (found by a property test).

    Args:
      usage: [N] usage u_t in [0, 1].
      eps: usage is first mapped to eps + (1 - eps) u.
    Returns:
      [N] allocation weighting, each in [0, 1], summing to <= 1.
    """
    u = eps + (1.0 - eps) * usage
    log_products = checkpoint_name(sum_over_predecessors(usage_order_keys(usage), jnp.log(u)),
                                   LOG_PRODUCTS_NAME)
    return (1.0 - u) * jnp.exp(log_products)


def usage_order_keys(usage: jnp.ndarray) -> jnp.ndarray:
    """What the allocation sorts by [N]: sqrt of the usage, with values below
    the smallest normal float (subnormals) as 0, since a CPU that flushes
    subnormals compares them as 0 anyway. No gradient flows through it.

    sqrt keeps the order and, being correctly rounded on every code path,
    keeps equal usages equal (usages within float32 rounding of each other
    may tie, and then their index decides). XLA also treats it as expensive,
    so it computes the keys once instead of fusing the usage's computation
    into every cell of the N x N comparison.
    """
    usage = jax.lax.stop_gradient(usage)
    return jnp.sqrt(jnp.where(usage < jnp.finfo(usage.dtype).tiny, 0.0, usage))


def _sum_over_predecessors(keys: jnp.ndarray, values: jnp.ndarray,
                           transpose: bool) -> jnp.ndarray:
    """sum_{j before i} values[j] for every i (transpose=False), or
    sum_{i after j} values[i] for every j (transpose=True), where j comes before
    i iff keys[j] < keys[i] or (keys[j] == keys[i] and j < i). One fused
    compare-select-sum over an N x N grid, summed over its major axis."""
    index = jnp.arange(keys.shape[-1])
    if transpose:  # grid [i, j]: is j before i? summed over i
        first, second = keys[None, :], keys[:, None]
        first_i, second_i = index[None, :], index[:, None]
    else:  # grid [j, i]: is j before i? summed over j
        first, second = keys[:, None], keys[None, :]
        first_i, second_i = index[:, None], index[None, :]
    before = (first < second) | ((first == second) & (first_i < second_i))
    return jnp.sum(jnp.where(before, values[:, None], 0.0), axis=0)


@jax.custom_vjp
def sum_over_predecessors(keys: jnp.ndarray, values: jnp.ndarray) -> jnp.ndarray:
    """sum_{j before i} values[j] for every i [N], where j comes before i in
    the order of `keys` [N] (ascending, ties by index); values [N].

    Linear in `values`, so its VJP is the transposed sum
    (sum_{i after j} of the cotangent), again one fused compare-and-sum and
    needing only the keys (autodiff would materialise the N x N comparison
    and select). The order is a constant for gradients: keys get none.
    """
    return _sum_over_predecessors(keys, values, transpose=False)


def _sum_over_predecessors_fwd(keys, values):
    return sum_over_predecessors(keys, values), keys


def _sum_over_predecessors_bwd(keys, d_sums):
    return jnp.zeros_like(keys), _sum_over_predecessors(keys, d_sums, transpose=True)


sum_over_predecessors.defvjp(_sum_over_predecessors_fwd, _sum_over_predecessors_bwd)


def allocation_weighting_by_sort(usage: jnp.ndarray, eps: float = USAGE_EPS) -> jnp.ndarray:
    """DNC Methods, allocation weighting, computed as in the paper: sort, exclusive
    cumulative product, scatter back. The reference for `allocation_weighting`
    (same values up to rounding, same gradients), used by
    `DNC(kernels="reference")`:
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
    order = jnp.argsort(usage_order_keys(usage), stable=True)  # phi_t
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
