"""Temporal memory linkage (DNC, Graves et al. 2016, Methods, "Temporal memory
linkage"), with the optional sharpness control of Csordas & Schmidhuber 2019
(section 2.3).

Shapes: N memory rows, R read heads. Write weighting [N] (one write head),
precedence [N], link matrix [N, N] with L[i, j] the degree to which location i
was written right after location j, read weightings [R, N].
"""

import jax
import jax.numpy as jnp

from mannlab.memory.numerics import NEGLIGIBLE


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


def _link_times(link: jnp.ndarray, vectors: jnp.ndarray) -> jnp.ndarray:
    """L v for each row v of vectors: link [N, N], vectors [K, N] -> [K, N].

    The product is formed as [N, K] and transposed after an optimisation
    barrier: when XLA fuses the transpose into the product, its CPU code ran
    the batched product 3.5x slower (docs/benchmarks.md). Fast path only
    (`link_step`, `directional_weightings_from_previous`); the paper's
    `directional_weightings` has no barrier.
    """
    return jax.lax.optimization_barrier(link @ vectors.T).T


def directional_weightings(link: jnp.ndarray, read_weights: jnp.ndarray):
    """DNC Methods, forward and backward weightings:
    f_t^i = L_t w_{t-1}^{r,i},  b_t^i = L_t^T w_{t-1}^{r,i}.

    Args:
      link: [N, N] L_t.
      read_weights: [R, N] the previous read weightings w_{t-1}^{r,i}.
    Returns:
      (forward [R, N], backward [R, N]).
    """
    # row i of forward is (L w^i)^T = w^i L^T; plain products, left to autodiff
    # (the fast path's `link_step` forms these from L_{t-1} instead)
    forward = read_weights @ link.T
    backward = read_weights @ link
    return forward, backward


def link_step_reference(link: jnp.ndarray, precedence: jnp.ndarray,
                        write_weights: jnp.ndarray, read_weights: jnp.ndarray):
    """The paper's link matrix and forward / backward weightings, composed
    plainly: `link_update` (DNC Methods, link matrix) then
    `directional_weightings` of L_t (DNC Methods, forward and backward
    weightings), differentiated by autodiff. The reference for `link_step`
    (same arguments and results, no hand-written VJP).

    Args:
      link: [N, N] L_{t-1}.
      precedence: [N] p_{t-1}.
      write_weights: [N] w_t^w.
      read_weights: [R, N] w_{t-1}^r.
    Returns:
      (L_t [N, N], forward [R, N], backward [R, N]).
    """
    new = link_update(link, precedence, write_weights)
    return (new,) + directional_weightings(new, read_weights)


def directional_weightings_from_previous(link: jnp.ndarray, precedence: jnp.ndarray,
                                         write_weights: jnp.ndarray,
                                         read_weights: jnp.ndarray):
    """DNC Methods, forward and backward weightings f_t^i = L_t w_{t-1}^{r,i} and
    b_t^i = L_t^T w_{t-1}^{r,i}, computed from L_{t-1} without forming L_t.

    With L_t[i, j] = (1 - w_i - w_j) L_{t-1}[i, j] + w_i p_j off the diagonal
    (`link_update`; w = w_t^w, p = p_{t-1}) and L_{t-1} zero on its diagonal:
        f = (1 - w) o (L_{t-1} r) - L_{t-1} (w o r) + w (p . r) - w o p o r,
        b = (1 - w) o (L_{t-1}^T r) - L_{t-1}^T (w o r) + p (w . r) - w o p o r,
    so all heads need one matrix product per direction with L_{t-1}.

    Args:
      link: [N, N] L_{t-1}, zero on its diagonal (as every `link_update` output).
      precedence: [N] p_{t-1}.
      write_weights: [N] w_t^w.
      read_weights: [R, N] w_{t-1}^r.
    Returns:
      (forward [R, N], backward [R, N]), equal to `directional_weightings` of
      `link_update(link, precedence, write_weights)` up to rounding.
    """
    w, p, r = write_weights, precedence, read_weights
    heads = r.shape[0]
    both = jnp.concatenate([r, w * r])  # [2R, N]
    from_rows = _link_times(link, both)  # L r, L (w o r)
    from_cols = both @ link  # L^T r, L^T (w o r)
    wpr = w * p * r
    forward = (1.0 - w) * from_rows[:heads] - from_rows[heads:] + w * (r @ p)[:, None] - wpr
    backward = (1.0 - w) * from_cols[:heads] - from_cols[heads:] + p * (r @ w)[:, None] - wpr
    return forward, backward


def sharpen_distribution(weights: jnp.ndarray, sharpness: jnp.ndarray) -> jnp.ndarray:
    """Csordas & Schmidhuber 2019, section 2.3, sharpness of the temporal links:
    S(d, s)_i = d_i^s / sum_j d_j^s.

    Applied to the forward and backward weightings with a sharpness s >= 1 per
    head (oneplus of a controller output). S does not depend on the scale of
    d (S(c d, s) = S(d, s) for every c > 0) and sums to 1 whenever d has any
    mass, however small: a forward weighting of total mass 0.03 is sharpened
    to a distribution, as in the paper. It is computed in that scale-free
    form, S_i = r_i^s / sum_j r_j^s with r = d / max_j d_j in (0, 1]: the
    largest term is 1 (to an ulp) and the sum lies in about [1, N], so neither huge s
    nor tiny d can underflow the denominator (d entries of 1e-30 with s = 50
    are exact), and rounding stays relative: S_i is within about s ulp of
    its exact value whatever the scale of d.

    Entries with r_i below the smallest normal float (zeros, negative
    entries, and terms r_i^s < 1e-38 anyway) count as 0 and stay 0. A
    weighting whose largest entry is below `numerics.NEGLIGIBLE` (1e-30;
    nothing linked yet) stays all zero instead of becoming uniform: this
    bounds the gradient, which grows as s / max_j d_j. Gradients are finite
    everywhere: zero for the zero entries (the derivative of d_i^s at d_i = 0
    for s > 1) and all-zero rows; max_j d_j is a constant for them, which is
    exact since S does not depend on the scale.

    Args:
      weights: [R, N] non-negative weightings d.
      sharpness: [R] exponents s >= 1.
    Returns:
      [R, N] sharpened weightings: each row sums to 1, or is all zero when d is.
    """
    tiny = jnp.finfo(weights.dtype).tiny
    top = jax.lax.stop_gradient(jnp.max(weights, axis=-1, keepdims=True))
    has_mass = top >= NEGLIGIBLE
    ratio = weights / jnp.where(has_mass, top, 1.0)  # the largest entry is 1 (to an ulp)
    kept = has_mass & (ratio >= tiny)
    log_ratio = jnp.log(jnp.where(kept, ratio, 1.0))  # <= 0
    powered = jnp.where(kept, jnp.exp(sharpness[:, None] * log_ratio), 0.0)  # r^s in [0, 1]
    total = jnp.sum(powered, axis=-1, keepdims=True)  # about [1, N], or 0 for an all-zero row
    return powered / jnp.where(total > 0, total, 1.0)


def _offdiag(n: int, dtype) -> jnp.ndarray:
    return 1.0 - jnp.eye(n, dtype=dtype)


@jax.custom_vjp
def link_step(link: jnp.ndarray, precedence: jnp.ndarray, write_weights: jnp.ndarray,
              read_weights: jnp.ndarray):
    """`link_update` and `directional_weightings` of its result, fused, with a
    hand-written VJP: the DNC's fast kernel (`link_step_reference` is the
    plain composition it replaces).

    Same values as the two functions up to rounding (DNC Methods, link matrix
    and forward / backward weightings); the weightings come from L_{t-1}
    (`directional_weightings_from_previous`), so L_{t-1} must be zero on its
    diagonal, as every link matrix made by `link_update` (and L_0 = 0) is.
    The backward pass saves only the inputs and needs no N x N intermediate
    besides L_{t-1}. With G the cotangent of L_t and df, db those of the
    weightings (w = w_t^w, p = p_{t-1}, r = w_{t-1}^r, summed over heads):

        H = offdiag(G + df^T r + r^T db)   (the total cotangent of L_t)
        dL_{t-1} = (1 - w_i - w_j) H
        dw_i = sum_j H_ij (p_j - L_{t-1}[i, j]) - sum_j H_ji L_{t-1}[j, i]
        dp = H^T w,   dr = df L_t + db L_t^T (products with L_t written as
                      products with L_{t-1}, as in the forward pass)

    The row and column sums of H o L_{t-1} are plain reductions (XLA's CPU
    runtime runs these well); the two products with L_{t-1} stack all heads'
    vectors, and H is never formed on its own.

    Args:
      link: [N, N] L_{t-1} (zero diagonal).
      precedence: [N] p_{t-1}.
      write_weights: [N] w_t^w.
      read_weights: [R, N] w_{t-1}^r.
    Returns:
      (L_t [N, N], forward [R, N], backward [R, N]).
    """
    new = link_update(link, precedence, write_weights)
    return (new,) + directional_weightings_from_previous(link, precedence, write_weights,
                                                         read_weights)


def _link_step_fwd(link, precedence, write_weights, read_weights):
    out = link_step(link, precedence, write_weights, read_weights)
    return out, (link, precedence, write_weights, read_weights)


def _link_step_bwd(residuals, cotangents):
    link, p, w, r = residuals
    d_link, df, db = cotangents
    n = link.shape[-1]
    keep = 1.0 - w[:, None] - w[None, :]
    # The total cotangent of L_t is H = offdiag(G + O), O = sum over heads of
    # df r^T + r db^T (from f = L_t r, b = L_t^T r): one matrix product with
    # contraction 2R. (Written elementwise instead, XLA may fuse the vectors'
    # producers into the N x N loop and recompute them per element: slower.)
    outer = jnp.concatenate([df, r]).T @ jnp.concatenate([r, db])
    total = d_link + outer  # H, before removing its diagonal
    h_diag = jnp.diagonal(d_link) + jnp.sum(df * r + r * db, axis=0)
    d_prev = keep * total * _offdiag(n, link.dtype)
    # L_t = offdiag((1 - w_i - w_j) L + w p^T):
    #   dw_i = sum_j H_ij (p_j - L_ij) - sum_j H_ji L_ji,  dp = H^T w.
    # L has a zero diagonal, so H o L = total o L; the products with H are
    # the products with G plus the rank-2R part's, minus the diagonal.
    h_link = total * link
    h_p = d_link @ p + (df.T @ (r @ p) + r.T @ (db @ p)) - h_diag * p
    w_h = w @ d_link + ((df @ w) @ r + (r @ w) @ db) - h_diag * w
    d_w = h_p - jnp.sum(h_link, axis=1) - jnp.sum(h_link, axis=0)
    # dr = df L_t + (L_t db^T)^T, written with L_{t-1} (all heads stacked):
    # df L_t = (1 - w) o (df L) - (w o df) L + p (df . w) - w o p o df, and
    # L_t db likewise with L (db), L (w o db)
    from_cols = jnp.concatenate([df, w * df]) @ link
    from_rows = _link_times(link, jnp.concatenate([db, w * db]))
    lt_df, lt_wdf = jnp.split(from_cols, 2)
    l_db, l_wdb = jnp.split(from_rows, 2)
    d_r = ((1.0 - w) * (lt_df + l_db) - lt_wdf - l_wdb + p * (df @ w)[:, None]
           + w * (db @ p)[:, None] - w * p * (df + db))
    return d_prev, w_h, d_w, d_r


link_step.defvjp(_link_step_fwd, _link_step_bwd)
