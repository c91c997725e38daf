"""Temporal memory linkage (DNC, Graves et al. 2016, Methods, "Temporal memory
linkage"), with the optional sharpness control of Csordas & Schmidhuber 2019
(section 2.3).

Shapes: N memory rows, R read heads. Write weighting [N] (one write head),
precedence [N], link matrix [N, N] with L[i, j] the degree to which location i
was written right after location j, read weightings [R, N].
"""

import jax
import jax.numpy as jnp

from mannlab.memory.numerics import EPS


def precedence_update(precedence: jnp.ndarray, write_weights: jnp.ndarray) -> jnp.ndarray:
    """DNC Methods, precedence weighting: p_t = (1 - sum_i w_t^w[i]) p_{t-1} + w_t^w.

    p_t[i] is the degree to which location i was the last one written; p_0 = 0.

    Args:
      precedence: [N] p_{t-1}.
      write_weights: [N] w_t^w.
    Returns:
      [N] p_t, summing to <= 1.
    """
    return (1.0 - jnp.sum(write_weights)) * precedence + write_weights


def link_update(link: jnp.ndarray, precedence: jnp.ndarray,
                write_weights: jnp.ndarray) -> jnp.ndarray:
    """DNC Methods, link matrix:
    L_t[i, j] = (1 - w_t^w[i] - w_t^w[j]) L_{t-1}[i, j] + w_t^w[i] p_{t-1}[j],
    L_t[i, i] = 0; L_0 = 0.

    Rows and columns of L_t sum to <= 1 whenever the write weighting does.

    Args:
      link: [N, N] L_{t-1}.
      precedence: [N] p_{t-1} (the precedence *before* this step's write).
      write_weights: [N] w_t^w.
    Returns:
      [N, N] L_t with a zero diagonal.
    """
    w = write_weights
    new = (1.0 - w[:, None] - w[None, :]) * link + w[:, None] * precedence[None, :]
    n = link.shape[-1]
    return jnp.where(jnp.eye(n, dtype=bool), 0.0, new)


def directional_weightings(link: jnp.ndarray, read_weights: jnp.ndarray):
    """DNC Methods, forward and backward weightings:
    f_t^i = L_t w_{t-1}^{r,i},  b_t^i = L_t^T w_{t-1}^{r,i}.

    Args:
      link: [N, N] L_t.
      read_weights: [R, N] the previous read weightings w_{t-1}^{r,i}.
    Returns:
      (forward [R, N], backward [R, N]).
    """
    # L w for each head, written so the N x N matrix is never transposed
    forward = (link @ read_weights.T).T
    backward = read_weights @ link
    return forward, backward


def sharpen_distribution(weights: jnp.ndarray, sharpness: jnp.ndarray) -> jnp.ndarray:
    """Csordas & Schmidhuber 2019, eq. for S(d, s): S(d, s)_i = d_i^s / sum_j d_j^s.

    Applied to the forward and backward weightings with a sharpness s >= 1 per
    head (oneplus of a controller output). The sum in the denominator gets EPS
    so that an all-zero weighting (e.g. before anything was written) stays zero
    instead of becoming uniform; zero entries have finite gradients.

    Args:
      weights: [R, N] non-negative weightings d.
      sharpness: [R] exponents s >= 1.
    Returns:
      [R, N] sharpened weightings summing to <= 1.
    """
    positive = weights > 0
    safe = jnp.where(positive, weights, 1.0)
    powered = jnp.where(positive, safe ** sharpness[:, None], 0.0)
    return powered / (jnp.sum(powered, axis=-1, keepdims=True) + EPS)


def _offdiag(n: int, dtype) -> jnp.ndarray:
    return 1.0 - jnp.eye(n, dtype=dtype)


def _linked(link, precedence, write_weights):
    w = write_weights
    keep = 1.0 - w[:, None] - w[None, :]
    return keep, (keep * link + w[:, None] * precedence[None, :]) * _offdiag(link.shape[-1],
                                                                             link.dtype)


@jax.custom_vjp
def link_step(link: jnp.ndarray, precedence: jnp.ndarray, write_weights: jnp.ndarray,
              read_weights: jnp.ndarray):
    """`link_update` then `directional_weightings`, fused, with a hand-written VJP.

    Same values as the two functions (DNC Methods, link matrix and forward /
    backward weightings). The backward pass saves only the inputs (no N x N
    intermediates besides the previous link matrix, which the recurrence
    needs anyway) and computes every gradient from the cotangent G of the
    new link matrix in a few fused N x N passes:

        G = offdiag(dL_t + df^T w^r + (w^r)^T db)
        dL_{t-1} = (1 - w_i - w_j) G
        dw_i = sum_j G_ij (p_j - L_{t-1}[i, j]) - sum_j G_ji L_{t-1}[j, i]
        dp = G^T w,   dw^r = df L_t + db L_t^T

    Args:
      link: [N, N] L_{t-1}.
      precedence: [N] p_{t-1}.
      write_weights: [N] w_t^w.
      read_weights: [R, N] w_{t-1}^r.
    Returns:
      (L_t [N, N], forward [R, N], backward [R, N]).
    """
    _, new = _linked(link, precedence, write_weights)
    return (new,) + directional_weightings(new, read_weights)


def _link_step_fwd(link, precedence, write_weights, read_weights):
    out = link_step(link, precedence, write_weights, read_weights)
    return out, (link, precedence, write_weights, read_weights)


def _link_step_bwd(residuals, cotangents):
    link, precedence, w, r = residuals
    d_link, d_forward, d_backward = cotangents
    n = link.shape[-1]
    keep, new = _linked(link, precedence, w)
    # both outer products in one matrix product (contraction over 2R)
    outer = jnp.concatenate([d_forward.T, r.T], axis=1) @ jnp.concatenate([r, d_backward])
    g = (d_link + outer) * _offdiag(n, link.dtype)
    # Row and column sums as vector-matrix products: on CPU these are much
    # faster than reductions over an axis. The left vector of ones is made
    # from `w` so that under `vmap` it is batched like the matrix, which keeps
    # the product a plain batched GEMV instead of a transposed copy.
    row_ones = 1.0 + 0.0 * w
    d_w = (g * (precedence[None, :] - link)) @ jnp.ones((n,), link.dtype) - row_ones @ (g * link)
    d_r = d_forward @ new + (new @ d_backward.T).T
    return keep * g, w @ g, d_w, d_r


link_step.defvjp(_link_step_fwd, _link_step_bwd)
