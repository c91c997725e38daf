"""The temporal link matrix kept sparse (SDNC: Rae et al. 2016, section 4
and supplementary "Sparse Differentiable Neural Computer"; the DNC paper's
own sparse link approximation, Graves et al. 2016, Methods).

The DNC's link matrix L_t [N, N] (`temporal_links.link_update`,
L_t[i, j] = (1 - w_i - w_j) L_{t-1}[i, j] + w_i p_j, zero diagonal) is
stored twice, never as an N x N array, each with K_L slots per row:

* ``pred`` [N, K_L]: row i's entries (j, L[i, j]): the rows written before i;
* ``succ`` [N, K_L]: column j's entries (i, L[i, j]): the rows written after j,

each as int32 indices and float values (unused slots hold value 0, at an
unspecified index; where a row holds an index more than once, its first
slot holds the entry and the later ones 0: `merge_rows` puts the live
entries first). With a sparse write weighting w (S rows) and a sparse
precedence p (K_L rows), the update changes entry (i, j) only if row i or
column j is written or i gains (w_i p_j > 0). A step therefore touches:

* whole rows (`storage_rows_update`): the rows that gain entries (pred: the
  rows written, u = w; succ: the rows p points to, u = p) decay
  (`link_rows_decay`), are merged with the new entries and cut back to
  their K_L largest (`link_rows_gain`); succ's rows written decay too;
* single entries (`column_decay`): in every other row, the entry of each
  written column j decays, (1 - w_j) L[i, j], found through the other
  storage's list for j (pred's L[i, j] through succ's row j, succ's
  through pred's row i): S K_L entries per storage, not their whole rows.

What is exact. Whenever the two storages hold the same nonzeros (always
without cuts, i.e. at most K_L entries per row and per column, e.g. K_L =
N), every stored value is the dense update's and the two stay the same
matrix (tests/test_sparse_links.py, over several steps from empty
storages). From storages that agree, one step keeps in each row (pred) and
column (succ) the K_L largest entries of the dense update.

After a cut. The storages are cut independently (pred to K_L entries per
row, succ per column), and an entry one of them cut stays in the other.
Such an entry (i, j) is then not found when its column is written (pred's
L[i, j] when j is written, succ's when i is written): that step it keeps
its value where the dense update multiplies it by (1 - w); it still decays
whenever its own row is recomputed (pred: row i written; succ: column j
written or p points to it), and is cut in turn when larger entries arrive.
(Recomputing whole every row that holds a written column, as this module
did before, also decayed such an entry when its row was found through
another of its entries; it made the SDNC's training step 1.4-1.75x
slower at the DNC's benchmark size.)

Both storages follow one rule, A'[r, c] = (1 - x_r - y_c) A[r, c] + u_r v_c
with zero diagonal: pred is L (x = y = u = w, v = p), succ is L^T (x = y =
w, u = p, v = w). Sparse vectors are (indices [S], values [S]) pairs;
indices may repeat (values add up). Repeated rows are found through [N]
integer scratch arrays (`sparse_table`): O(N) integers per step, no
gradient and nothing of size N kept for the backward pass, instead of
comparisons quadratic in the few hundred rows a step touches.
"""

import jax
import jax.numpy as jnp


def first_slots(indices: jnp.ndarray, n: int) -> jnp.ndarray:
    """Each row's first position in `indices`: [S] int32 in [0, n) -> [n] int32
    (S where absent). An O(n) integer scratch and one S-element scatter, in
    place of an S x S comparison."""
    S = indices.shape[0]
    return jnp.full((n,), S, jnp.int32).at[indices].min(jnp.arange(S, dtype=jnp.int32))


def sparse_table(indices: jnp.ndarray, values: jnp.ndarray, n: int):
    """A sparse vector v = (indices [S], values [S], repeats add up) indexed by
    row, for O(1) lookups: slot [n] int32, each row's first position in
    `indices` (S where absent, `first_slots`), and summed [S + 1], the row's
    total at its first position (0 elsewhere and at S). The O(n) integer
    scratch has no gradient; the values stay [S + 1].

    Args:
      indices: [S] int32 in [0, n); values: [S].
      n: rows the indices range over.
    Returns:
      (slot [n] int32, summed [S + 1]).
    """
    slot = first_slots(indices, n)
    return slot, jnp.zeros(indices.shape[0] + 1, values.dtype).at[slot[indices]].add(values)


def sparse_lookup(queries: jnp.ndarray, table) -> jnp.ndarray:
    """v[q] at each query row, from `sparse_table(v)`: queries [...] -> [...]."""
    slot, summed = table
    return summed[slot[queries]]


def table_firsts(indices: jnp.ndarray, table):
    """For a sparse vector's `sparse_table`: whether each position is its
    index's first, and there the index's total: indices [S] -> ([S] bool, [S])."""
    slot, summed = table
    return slot[indices] == jnp.arange(indices.shape[0]), summed[:indices.shape[0]]


def merge_top(indices: jnp.ndarray, values: jnp.ndarray, k: int, n: int):
    """The k largest entries of a sparse vector given with repeats: repeated
    indices are summed first (each kept at its first position). With fewer
    than k distinct entries the rest are value 0 (at some index already
    present). Repeats are found through an [n] integer scratch
    (`sparse_table`): O(n + C), not O(C^2).

    Args:
      indices: [C] int32 in [0, n); values: [C] (non-negative).
      k: entries kept, k <= C.
      n: rows the indices range over.
    Returns:
      (indices [k] int32, values [k]).
    """
    first, total = table_firsts(indices, sparse_table(indices, values, n))
    _, pos = jax.lax.top_k(jnp.where(first, jax.lax.stop_gradient(total), -jnp.inf), k)
    return indices[pos].astype(jnp.int32), jnp.where(first[pos], total[pos], 0.0)


def merge_rows(ids: jnp.ndarray, vals: jnp.ndarray, new_ids: jnp.ndarray,
               new_first: jnp.ndarray, new_vals: jnp.ndarray):
    """Each row's sparse vector (ids, vals) plus one shared set of new indices,
    cut back to its C1 largest entries (repeats summed, as `merge_top` of the
    concatenation; with fewer than C1 distinct entries the rest are value 0
    at an index present). An index both in a row and among the new ones is
    summed into the new one's position; one comparison of the row's C1
    indices with the C2 new ones, nothing quadratic in C1 + C2.

    Args:
      ids, vals: [G, C1] each row's entries, non-negative; a row's repeated
        indices hold value 0 but for one (as this function's own output).
      new_ids: [C2] int32 the new indices (may repeat).
      new_first: [C2] bool, whether each is its index's first position.
      new_vals: [G, C2] at first positions each new index's total (repeats
        summed) in each row, non-negative.
    Returns:
      (ids [G, C1] int32, vals [G, C1]).
    """
    k = ids.shape[-1]
    match = new_ids[:, None] == ids[:, None, :]                # [G, C2, C1]
    old_live = ~jnp.any(match, axis=1)
    new_total = new_vals + jnp.sum(jnp.where(match, vals[:, None, :], 0.0), axis=-1)
    cand_ids = jnp.concatenate([ids, jnp.broadcast_to(new_ids, new_vals.shape)], axis=1)
    total = jnp.concatenate([vals, new_total], axis=1)
    live = jnp.concatenate([old_live, jnp.broadcast_to(new_first, new_vals.shape)], axis=1)
    _, pos = jax.lax.top_k(jnp.where(live, jax.lax.stop_gradient(total), -jnp.inf), k)
    take = lambda a: jnp.take_along_axis(a, pos, axis=1)
    return take(cand_ids).astype(jnp.int32), jnp.where(take(live), take(total), 0.0)


def sparse_precedence_update(p_indices: jnp.ndarray, p_values: jnp.ndarray,
                             w_indices: jnp.ndarray, w_values: jnp.ndarray, n: int):
    """DNC Methods, precedence p_t = (1 - sum_i w_i) p_{t-1} + w, kept to its
    K_L largest entries.

    Args:
      p_indices, p_values: [K_L] p_{t-1}.
      w_indices, w_values: [S] the write weighting w_t.
      n: rows the indices range over.
    Returns:
      (indices [K_L], values [K_L]) p_t.
    """
    first, total = table_firsts(w_indices, sparse_table(w_indices, w_values, n))
    scaled = (1.0 - jnp.sum(w_values)) * p_values
    ids, vals = merge_rows(p_indices[None], scaled[None], w_indices, first, total[None])
    return ids[0], vals[0]


def link_rows_decay(rows: jnp.ndarray, ids: jnp.ndarray, vals: jnp.ndarray, x, y):
    """DNC Methods, link matrix update, first part, on whole rows of one
    sparse storage: every entry decays, (1 - x_r - y_c) A[r, c] (the whole
    update for a row with u_r = 0: same entries, nothing to cut).

    Args:
      rows: [U] int32; ids, vals: [U, K_L] their entries (column indices and
        values) before; x, y: `sparse_table`s of sparse vectors over N rows.
    Returns:
      [U, K_L] the decayed values.
    """
    return (1.0 - sparse_lookup(rows, x)[:, None] - sparse_lookup(ids, y)) * vals


def link_rows_gain(rows: jnp.ndarray, ids: jnp.ndarray, kept: jnp.ndarray, u, v_idx: jnp.ndarray,
                   v):
    """DNC Methods, link matrix update, second part, on rows that may gain
    entries: A'[r, c] = kept[r, c] + u_r v_c, A'[r, r] = 0, each row cut to
    its K_L largest entries (`merge_rows`).

    Args:
      rows: [G] int32; ids, kept: [G, K_L] their entries, decayed
        (`link_rows_decay`).
      u, v: `sparse_table`s of sparse vectors over the N rows; v's indices
        are v_idx [V].
    Returns:
      (ids [G, K_L], vals [G, K_L]) the rows after.
    """
    diagonal = rows[:, None]
    first, total = table_firsts(v_idx, v)
    new = sparse_lookup(rows, u)[:, None] * total[None, :]
    return merge_rows(ids, jnp.where(ids == diagonal, 0.0, kept), v_idx, first,
                      jnp.where(v_idx == diagonal, 0.0, new))


def scatter_rows(ids: jnp.ndarray, vals: jnp.ndarray, rows: jnp.ndarray,
                 new_ids: jnp.ndarray, new_vals: jnp.ndarray, old_vals: jnp.ndarray):
    """Store recomputed rows; where `rows` repeats, the first position's row is
    stored (the others are dropped). The values as a scatter-add of
    (new - old), a linear operation whose gradient needs nothing of the
    [N, K_L] storage; new indices only for the first G rows (the others keep
    theirs).

    Args:
      ids, vals: [N, K_L] a storage; rows [U]; new_ids [G, K_L] (G <= U);
      new_vals, old_vals [U, K_L] (old_vals = vals[rows]).
    Returns:
      (ids, vals) [N, K_L] updated.
    """
    n = ids.shape[0]
    first = first_slots(rows, n)[rows] == jnp.arange(rows.shape[0])
    target = jnp.where(first, rows, n)  # out of range: dropped
    return (ids.at[target[:new_ids.shape[0]]].set(new_ids, mode="drop"),
            vals.at[target].add(new_vals - old_vals, mode="drop"))


def storage_rows_update(ids: jnp.ndarray, vals: jnp.ndarray, gaining: jnp.ndarray,
                        decaying: jnp.ndarray, x, y, u, v_idx: jnp.ndarray, v):
    """One storage's whole-row part of a step: the rows `gaining` (u_r may be
    > 0) decay (`link_rows_decay`), gain the new entries and are cut
    (`link_rows_gain`); the rows `decaying` (x_r may be > 0, u_r = 0 unless
    they are also in `gaining`, which comes first) decay and keep their
    entries; all are stored back (`scatter_rows`).

    Args:
      ids, vals: [N, K_L] the storage.
      gaining: [G] int32; decaying: [D] int32 rows.
      x, y, u, v: `sparse_table`s; v_idx [V] v's indices.
    Returns:
      (ids, vals) after.
    """
    G = gaining.shape[0]
    rows = jnp.concatenate([gaining, decaying])
    old_ids, old_vals = ids[rows], vals[rows]
    decayed = link_rows_decay(rows, old_ids, old_vals, x, y)
    gained_ids, gained_vals = link_rows_gain(gaining, old_ids[:G], decayed[:G], u, v_idx, v)
    return scatter_rows(ids, vals, rows, gained_ids, jnp.concatenate([gained_vals, decayed[G:]]),
                        old_vals)


def first_in_rows(ids: jnp.ndarray) -> jnp.ndarray:
    """Whether each slot holds its index's first occurrence in its row:
    ids [..., K] -> [..., K] bool (one K x K comparison per row)."""
    k = ids.shape[-1]
    earlier = jnp.tril(jnp.ones((k, k), bool), -1)  # [a, b]: slot b comes before slot a
    return ~jnp.any((ids[..., :, None] == ids[..., None, :]) & earlier, axis=-1)


def column_decay(ids: jnp.ndarray, vals: jnp.ndarray, found: jnp.ndarray, c_idx: jnp.ndarray,
                 y, whole: jnp.ndarray) -> jnp.ndarray:
    """DNC Methods, link matrix update, the decay of the columns written, entry
    by entry: A'[r, c] = (1 - y_c) A[r, c] for each column c in y and each
    row r the other storage lists for c (r not in `whole`, the rows
    recomputed whole, where x_r or u_r may be > 0). A row's entry for c is
    its first slot holding c (later repeats hold 0); a row listed twice for c
    (a value-0 repeat) and a column repeated in c_idx decay once.

    Args:
      ids, vals: [N, K_L] the storage (rows outside `whole` as before).
      found: [C, K_L] int32 rows r: the other storage's list for each c_idx.
      c_idx: [C] int32 the columns (y's indices); y: their `sparse_table`.
      whole: [U] int32 rows left alone here.
    Returns:
      [N, K_L] the values after.
    """
    n, k = ids.shape
    first_c, y_c = table_firsts(c_idx, y)                          # [C]
    hit = ids[found] == c_idx[:, None, None]                       # [C, K_L, K_L]
    take = (jnp.any(hit, axis=-1) & first_c[:, None] & first_in_rows(found)
            & (first_slots(whole, n)[found] == whole.shape[0]))    # [C, K_L]
    flat = found * k + jnp.argmax(hit, axis=-1)
    flat_vals = vals.reshape(-1)
    return flat_vals.at[jnp.where(take, flat, n * k)].add(
        -y_c[:, None] * flat_vals[flat], mode="drop").reshape(n, k)


def sparse_link_update(pred, succ, p, w):
    """DNC Methods, link matrix L_t from L_{t-1}, p_{t-1} and w_t, on both sparse
    storages (see the module): pred's rows written (u = x = w, v = p) and
    succ's rows p points to (u = p, v = w) and rows written (x = w) are
    recomputed whole; then each storage's entries in the columns written
    decay one by one, found through the other storage (`column_decay`).

    Args:
      pred, succ: each (ids [N, K_L] int32, vals [N, K_L]).
      p: (indices [K_L], values [K_L]) p_{t-1}.
      w: (indices [S], values [S]) w_t.
    Returns:
      (pred, succ) after the update.
    """
    n = pred[0].shape[0]
    w_idx, p_idx = w[0], p[0]
    w_table, p_table = sparse_table(*w, n), sparse_table(*p, n)
    pred_ids, pred_vals = storage_rows_update(*pred, w_idx, w_idx[:0], w_table, w_table, w_table,
                                              p_idx, p_table)
    succ_ids, succ_vals = storage_rows_update(*succ, p_idx, w_idx, w_table, w_table, p_table,
                                              w_idx, w_table)
    pred_vals = column_decay(pred_ids, pred_vals, succ[0][w_idx], w_idx, w_table, w_idx)
    succ_vals = column_decay(succ_ids, succ_vals, pred[0][w_idx], w_idx, w_table,
                             jnp.concatenate([p_idx, w_idx]))
    return (pred_ids, pred_vals), (succ_ids, succ_vals)


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
