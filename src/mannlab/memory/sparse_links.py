"""The temporal link matrix kept sparse (SDNC: Rae et al. 2016, section 4
and supplementary "Sparse Differentiable Neural Computer"; the DNC paper's
own sparse link approximation, Graves et al. 2016, Methods).

The DNC's link matrix L_t [N, N] (`temporal_links.link_update`,
L_t[i, j] = (1 - w_i - w_j) L_{t-1}[i, j] + w_i p_j, zero diagonal) is
stored twice, never as an N x N array, each with K_L slots per row:

* ``pred`` [N, K_L]: row i's entries (j, L[i, j]): the rows written before i;
* ``succ`` [N, K_L]: column j's entries (i, L[i, j]): the rows written after j,

each as int32 indices and float values (unused slots hold value 0). With a
sparse write weighting w (S rows) and a sparse precedence p (K_L rows), a
step changes only the rows written, the rows p points to, and the rows whose
list holds a written row (found through the other storage): a few hundred
rows, each recomputed from its K_L entries plus the new ones and cut back to
its K_L largest (`link_rows_update`).

The storages are cut independently (pred to K_L entries per row, succ per
column). An entry one of them cut is not removed from the other, which no
longer finds that row through its transpose when the entry's other row is
written: there the entry stops decaying. Without cuts (fewer than K_L
entries per row and column, e.g. K_L = N) the two are the same matrix and
every value is the dense one (tests); with cuts, the rows a step recomputes
are exact cuts of the dense update (tests/test_sparse_links.py).

Both storages follow one rule, A'[r, c] = (1 - x_r - y_c) A[r, c] + u_r v_c
with zero diagonal: pred is L (x = y = u = w, v = p), succ is L^T (x = y =
w, u = p, v = w). Sparse vectors are (indices [S], values [S]) pairs;
indices may repeat (values add up).
"""

import jax
import jax.numpy as jnp


def sparse_lookup(queries: jnp.ndarray, indices: jnp.ndarray,
                  values: jnp.ndarray) -> jnp.ndarray:
    """v[q] of a sparse vector v = (indices, values) at each query row (repeated
    indices add up): queries [...] -> [...]."""
    same = queries[..., None] == indices
    return jnp.sum(jnp.where(same, values, 0.0), axis=-1)


def merge_top(indices: jnp.ndarray, values: jnp.ndarray, k: int):
    """The k largest entries of a sparse vector given with repeats: repeated
    indices are summed first. With fewer than k distinct entries the rest
    are value 0 (at some index already present).

    Args:
      indices: [C] int32; values: [C] (non-negative).
      k: entries kept, k <= C.
    Returns:
      (indices [k] int32, values [k]).
    """
    same = indices[:, None] == indices[None, :]
    first = jnp.argmax(same, axis=1) == jnp.arange(indices.shape[0])
    summed = jnp.sum(jnp.where(same, values[None, :], 0.0), axis=1)
    score = jnp.where(first, jax.lax.stop_gradient(summed), -jnp.inf)
    _, pos = jax.lax.top_k(score, k)
    kept = jnp.isfinite(score[pos])
    return indices[pos].astype(jnp.int32), jnp.where(kept, summed[pos], 0.0)


def sparse_precedence_update(p_indices: jnp.ndarray, p_values: jnp.ndarray,
                             w_indices: jnp.ndarray, w_values: jnp.ndarray):
    """DNC Methods, precedence p_t = (1 - sum_i w_i) p_{t-1} + w, kept to its
    K_L largest entries.

    Args:
      p_indices, p_values: [K_L] p_{t-1}.
      w_indices, w_values: [S] the write weighting w_t.
    Returns:
      (indices [K_L], values [K_L]) p_t.
    """
    scaled = (1.0 - jnp.sum(w_values)) * p_values
    return merge_top(jnp.concatenate([p_indices, w_indices]),
                     jnp.concatenate([scaled, w_values]), p_indices.shape[0])


def link_rows_update(rows: jnp.ndarray, ids: jnp.ndarray, vals: jnp.ndarray,
                     x, y, u, v):
    """DNC Methods, link matrix update, on a few rows of one sparse storage:
    A'[r, c] = (1 - x_r - y_c) A[r, c] + u_r v_c, A'[r, r] = 0, each new
    row cut to its K_L largest entries.

    Args:
      rows: [U] int32 the rows recomputed.
      ids, vals: [U, K_L] their entries (column indices and values) before.
      x, y, u, v: sparse vectors, each (indices [S], values [S]).
    Returns:
      (ids [U, K_L], vals [U, K_L]) the rows after.
    """
    k = ids.shape[-1]
    x_r, u_r = sparse_lookup(rows, *x), sparse_lookup(rows, *u)
    kept = (1.0 - x_r[:, None] - sparse_lookup(ids, *y)) * vals
    v_idx, v_val = v
    new_ids = jnp.broadcast_to(v_idx, (rows.shape[0],) + v_idx.shape)
    cand_ids = jnp.concatenate([ids, new_ids], axis=1)
    cand = jnp.concatenate([kept, u_r[:, None] * v_val[None, :]], axis=1)
    cand = jnp.where(cand_ids == rows[:, None], 0.0, cand)
    return jax.vmap(lambda i, c: merge_top(i, c, k))(cand_ids, cand)


def scatter_rows(ids: jnp.ndarray, vals: jnp.ndarray, rows: jnp.ndarray,
                 new_ids: jnp.ndarray, new_vals: jnp.ndarray):
    """Store recomputed rows (repeats in `rows` carry the same new row): the
    values as a scatter-add of (new - old) on each row's first position, a
    linear operation whose gradient needs nothing of the [N, K_L] storage.

    Args:
      ids, vals: [N, K_L] a storage; rows [U]; new_ids, new_vals [U, K_L].
    Returns:
      (ids, vals) [N, K_L] updated.
    """
    first = jnp.argmax(rows[:, None] == rows[None, :], axis=1) == jnp.arange(rows.shape[0])
    delta = jnp.where(first[:, None], new_vals - vals[rows], 0.0)
    return ids.at[rows].set(new_ids), vals.at[rows].add(delta)


def sparse_link_update(pred, succ, p, w):
    """DNC Methods, link matrix L_t from L_{t-1}, p_{t-1} and w_t, on both sparse
    storages (see the module).

    Args:
      pred, succ: each (ids [N, K_L] int32, vals [N, K_L]).
      p: (indices [K_L], values [K_L]) p_{t-1}.
      w: (indices [S], values [S]) w_t.
    Returns:
      (pred, succ) after the update.
    """
    w_idx = w[0]
    pred_rows = jnp.concatenate([w_idx, succ[0][w_idx].ravel()])
    succ_rows = jnp.concatenate([w_idx, p[0], pred[0][w_idx].ravel()])
    new_pred = link_rows_update(pred_rows, pred[0][pred_rows], pred[1][pred_rows], w, w, w, p)
    new_succ = link_rows_update(succ_rows, succ[0][succ_rows], succ[1][succ_rows], w, w, p, w)
    return (scatter_rows(*pred, pred_rows, *new_pred),
            scatter_rows(*succ, succ_rows, *new_succ))


def sparse_directional_weightings(pred, succ, read_indices: jnp.ndarray,
                                  read_weights: jnp.ndarray):
    """DNC Methods, forward f = L_t w^r and backward b = L_t^T w^r weightings
    for sparse read weightings, as sparse vectors: f from the read rows'
    successor lists, b from their predecessor lists.

    Args:
      pred, succ: each (ids [N, K_L], vals [N, K_L]).
      read_indices, read_weights: [R, K] w_{t-1}^r.
    Returns:
      ((f indices, f values), (b indices, b values)), each [R, K K_L].
    """
    R = read_indices.shape[0]

    def spread(storage):
        ids, vals = storage[0][read_indices], storage[1][read_indices]  # [R, K, K_L]
        return ids.reshape(R, -1), (vals * read_weights[..., None]).reshape(R, -1)

    return spread(succ), spread(pred)


def to_dense(ids: jnp.ndarray, vals: jnp.ndarray, n: int) -> jnp.ndarray:
    """The [N, N] matrix of a storage (A[r, ids[r, k]] += vals[r, k]): for tests
    and figures at small N only."""
    rows = jnp.broadcast_to(jnp.arange(ids.shape[0])[:, None], ids.shape)
    return jnp.zeros((ids.shape[0], n), vals.dtype).at[rows, ids].add(vals)
