"""Sparse writes (SAM: Rae et al. 2016, section 3.2) and the K-row
bookkeeping SAM's memory-free backward pass needs.

SAM writes only to the rows read at the previous step and to the least
recently used row:

    w_t^W = alpha_t (gamma_t w_{t-1}^R + (1 - gamma_t) I_t^U)
    M_t   = (1 - R_t) o M_{t-1} + w_t^W a_t^T,   R_t = I_t^U 1^T

so the LRU row is erased and written (a fresh slot) while the previously
read rows are added to. With R read heads w_{t-1}^R is their mean. The
memory is one buffer updated by scatters of S = R K + 1 rows.

"Slots": one step touches a few rows, some of them possibly the same row
twice (two heads read it, or the LRU row was also read). The fast backward
pass recomputes a step from those rows alone, gathered into S local slots;
`first_occurrence` and `slot_of` map positions to the slot that holds each
distinct row, so a local computation gives exactly the global one.

Shapes: memory [N, W]; write indices and weights [S]; add [W]; prev read
indices and weights [R, K]; rows [S, W].
"""

import jax.numpy as jnp


def write_indices(prev_read_indices: jnp.ndarray, lru: jnp.ndarray) -> jnp.ndarray:
    """The rows SAM's write may touch: the previous step's read rows, then the
    least recently used row (last).

    Args:
      prev_read_indices: [R, K] int32.
      lru: [] int32.
    Returns:
      [R K + 1] int32.
    """
    return jnp.concatenate([prev_read_indices.ravel(), lru[None]]).astype(jnp.int32)


def sparse_write_weighting(prev_read_weights: jnp.ndarray, alpha: jnp.ndarray,
                           gamma: jnp.ndarray) -> jnp.ndarray:
    """SAM section 3.2: w_t^W = alpha_t (gamma_t w_{t-1}^R + (1 - gamma_t) I_t^U),
    on the rows of `write_indices` (w_{t-1}^R averaged over the R heads).

    Args:
      prev_read_weights: [R, K] w_{t-1}^R on the previously read rows.
      alpha: [] write gate in [0, 1].
      gamma: [] interpolation gate in [0, 1] (1: the read rows, 0: the LRU row).
    Returns:
      [R K + 1] write weights (the last is the LRU row's), summing to <= alpha.
    """
    heads = prev_read_weights.shape[0]
    on_read = alpha * gamma * prev_read_weights.ravel() / heads
    return jnp.concatenate([on_read, (alpha * (1.0 - gamma))[None]])


def sparse_write(memory: jnp.ndarray, indices: jnp.ndarray, weights: jnp.ndarray,
                 add: jnp.ndarray, erase_row: jnp.ndarray) -> jnp.ndarray:
    """SAM section 3.2: M_t = (1 - R_t) o M_{t-1} + w_t^W a_t^T with R_t = I^U 1^T:
    row `erase_row` (the LRU row) is cleared, then w a^T is added on the S
    rows (repeated indices add up), as two scatters of S rows.

    Args:
      memory: [N, W] M_{t-1}.
      indices: [S] int32 rows written (may repeat).
      weights: [S] their write weights.
      add: [W] the write vector a_t.
      erase_row: [] int32 the LRU row.
    Returns:
      [N, W] M_t.
    """
    return memory.at[erase_row].set(0.0).at[indices].add(weights[:, None] * add[None, :])


def undo_write(memory: jnp.ndarray, indices: jnp.ndarray, old_rows: jnp.ndarray) -> jnp.ndarray:
    """SAM's efficient backward pass: M_{t-1} from M_t, by putting back the
    rows a step overwrote (their old contents, kept in the forward pass).

    Args:
      memory: [N, W] M_t.
      indices: [S] int32 the rows the step wrote (repeats hold the same old row).
      old_rows: [S, W] M_{t-1}[indices].
    Returns:
      [N, W] M_{t-1}.
    """
    return memory.at[indices].set(old_rows)


def first_occurrence(indices: jnp.ndarray) -> jnp.ndarray:
    """For each position s, the first position holding the same row:
    min{p : indices[p] = indices[s]} (an S x S comparison, S = R K + 1).

    Args:
      indices: [S] int32.
    Returns:
      [S] int32 positions.
    """
    same = indices[None, :] == indices[:, None]
    return jnp.argmax(same, axis=1).astype(jnp.int32)


def slot_of(queries: jnp.ndarray, indices: jnp.ndarray) -> jnp.ndarray:
    """For each queried row, the first position of `indices` holding it, or -1.

    Args:
      queries: [Q] int32 rows (e.g. the rows read after the write).
      indices: [S] int32 rows written.
    Returns:
      [Q] int32 positions in [0, S), or -1 where the row was not written.
    """
    same = queries[:, None] == indices[None, :]
    return jnp.where(same.any(axis=1), jnp.argmax(same, axis=1), -1).astype(jnp.int32)


def sparse_write_rows(old_rows: jnp.ndarray, first: jnp.ndarray, weights: jnp.ndarray,
                      add: jnp.ndarray) -> jnp.ndarray:
    """`sparse_write` computed on the touched rows alone: given M_{t-1}[indices]
    and `first_occurrence(indices)` (the erased LRU row is the last
    position), the new rows M_t[indices], equal to
    `sparse_write(...)[indices]`. Each distinct row lives in the slot of its
    first position; repeats read their slot.

    Args:
      old_rows: [S, W] M_{t-1}[indices].
      first: [S] int32 `first_occurrence(indices)`.
      weights: [S] write weights.
      add: [W] a_t.
    Returns:
      [S, W] M_t[indices].
    """
    local = old_rows.at[first[-1]].set(0.0).at[first].add(weights[:, None] * add[None, :])
    return local[first]
