"""Approximate top-K search by spherical (Voronoi) hashing with query-directed
multi-probe and exact re-ranking, in pure JAX: SAM's approximate
nearest-neighbour index (Rae et al. 2016, section 3.5 uses FLANN / LSH
indexes) kept as fixed-shape arrays and updated by K-row scatters.

The hash is the nearest of 2^P fixed random unit vectors (the centroids) by
cosine: spherical LSH (Terasawa & Tanaka 2007; Andoni et al. 2015's
cross-polytope hash is the same with 2W orthogonal centroids). Its cells are
the Voronoi cells of the centroids on the sphere, so the index is an inverted
file over a coarse quantiser (Sivic & Zisserman 2003; Jegou et al. 2011's
IVF) whose quantiser is random rather than learnt: it needs no training and
stays valid whatever the memory holds, so a written row is indexed at once.

The index is a table of 2^P cells with C slots each (a ring: when a cell is
full its oldest entry is dropped and can no longer be found), each row's
cell and slot, and each cell's next slot. A query ranks the 2^P centroids by
cosine, probes its T nearest cells (multi-probe directed by the query, as
Lv et al. 2007 rank a hash's neighbouring buckets), compacts the row ids
found there, nearest cells first, into B candidates and re-ranks those by
exact cosine, keeping the K best: O(2^P W + T C + B W) per query instead of
O(N W). Re-ranking the candidates exactly is what makes recall@K high once
the true neighbours are among them. Defaults (`default_bits`,
`default_capacity`, `DEFAULT_PROBES`, `default_candidates`): 2^P = 4 sqrt(N)
cells, C twice the mean, T = 128, B the rows T cells hold on average, all
growing as sqrt(N); recall@8 against the exact top 8 in a random memory of
W = 20 is 0.93-0.99 from N = 1K to 1M (`benchmarks/approximate_search.py`).

Rows enter the index when written (`update_index`, `build_index` for a
whole memory); rows never written are never found (for SAM they are empty).

Shapes: memory [N, W]; centroids [2^P, W]; table [2^P + 1, C] (a scratch
cell last); keys [H, W].
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from mannlab.memory.content import cosine_similarity


class LSHIndex(eqx.Module):
    """The index as one int32 buffer `data` [..., L] (leading axes: a batch),
    seen as table [2^P + 1, C] row ids (-1: empty); cursor [2^P + 1] the next
    slot of each cell; row_bucket [N + 1] each row's cell (-1: not indexed);
    row_slot [N + 1]. The last cell and the last row are scratch: never
    probed, never a real row, they absorb the writes of `update_index` that a
    condition cancels. One buffer, so that an update reads it and then
    writes it once (two arrays each read for the other's write make XLA's
    CPU backend copy both whole)."""

    data: jnp.ndarray
    cells: int = eqx.field(static=True)
    capacity: int = eqx.field(static=True)
    rows: int = eqx.field(static=True)

    def _part(self, start: int, shape: tuple) -> jnp.ndarray:
        size = math.prod(shape)
        return self.data[..., start:start + size].reshape(self.data.shape[:-1] + shape)

    @property
    def offsets(self) -> tuple[int, int, int]:
        """Where cursor, row_bucket and row_slot start in `data`."""
        cursor = (self.cells + 1) * self.capacity
        return cursor, cursor + self.cells + 1, cursor + self.cells + 1 + self.rows + 1

    @property
    def table(self) -> jnp.ndarray:
        return self._part(0, (self.cells + 1, self.capacity))

    @property
    def cursor(self) -> jnp.ndarray:
        return self._part(self.offsets[0], (self.cells + 1,))

    @property
    def row_bucket(self) -> jnp.ndarray:
        return self._part(self.offsets[1], (self.rows + 1,))

    @property
    def row_slot(self) -> jnp.ndarray:
        return self._part(self.offsets[2], (self.rows + 1,))


def _pack(table: jnp.ndarray, cursor: jnp.ndarray, row_bucket: jnp.ndarray,
          row_slot: jnp.ndarray) -> LSHIndex:
    """An LSHIndex of its four arrays (unbatched)."""
    data = jnp.concatenate([table.ravel(), cursor, row_bucket, row_slot]).astype(jnp.int32)
    return LSHIndex(data, table.shape[0] - 1, table.shape[1], row_bucket.shape[0] - 1)


def random_centroids(key: jax.Array, bits: int, width: int) -> jnp.ndarray:
    """2^P random unit vectors, uniform on the sphere (normalised standard
    normal): [2^P, W]."""
    c = jax.random.normal(key, (2 ** bits, width))
    return c / jnp.linalg.norm(c, axis=-1, keepdims=True)


def hash_codes(vectors: jnp.ndarray, centroids: jnp.ndarray) -> jnp.ndarray:
    """Spherical hash: the index of the centroid nearest by cosine,
    argmax_c centroids_c . v (centroids are unit vectors, so v's norm does not
    matter; a zero vector goes to cell 0).

    Args:
      vectors: [..., W]; centroids: [2^P, W] unit rows.
    Returns:
      [...] int32 cells in [0, 2^P).
    """
    return jnp.argmax(vectors @ centroids.T, axis=-1).astype(jnp.int32)


def empty_index(rows: int, bits: int, capacity: int) -> LSHIndex:
    """An index of N = `rows` rows, 2^bits cells of `capacity` slots (and the
    scratch cell and row), holding nothing."""
    return _pack(jnp.full((2 ** bits + 1, capacity), -1, jnp.int32),
                 jnp.zeros((2 ** bits + 1,), jnp.int32),
                 jnp.full((rows + 1,), -1, jnp.int32), jnp.zeros((rows + 1,), jnp.int32))


def build_index(memory: jnp.ndarray, centroids: jnp.ndarray, capacity: int,
                rows: jnp.ndarray | None = None) -> LSHIndex:
    """An index of `rows` (default: all N rows of memory), built at once: rows
    hashed in chunks of 1,024 (no [N, 2^P] array), sorted by cell, the first
    `capacity` of each cell kept.

    Args:
      memory: [N, W]; centroids: [2^P, W]; capacity: C.
      rows: optional [M] int32 distinct rows to index.
    Returns:
      LSHIndex.
    """
    n, cells = memory.shape[0], centroids.shape[0]
    rows = jnp.arange(n, dtype=jnp.int32) if rows is None else rows.astype(jnp.int32)
    codes = jax.lax.map(lambda v: hash_codes(v, centroids), memory[rows], batch_size=1024)
    order = jnp.argsort(codes, stable=True)
    codes, rows = codes[order], rows[order]
    start = jnp.searchsorted(codes, codes, side="left")
    rank = jnp.arange(codes.shape[0], dtype=jnp.int32) - start.astype(jnp.int32)
    kept = rank < capacity
    bucket = jnp.where(kept, codes, cells + 1)  # out of range: dropped by the scatter
    table = jnp.full((cells + 1, capacity), -1, jnp.int32).at[bucket, rank].set(
        rows, mode="drop")
    cursor = jnp.zeros((cells + 1,), jnp.int32).at[codes].max(
        jnp.minimum(rank + 1, capacity) % capacity)
    row_bucket = jnp.full((n + 1,), -1, jnp.int32).at[rows].set(jnp.where(kept, codes, -1))
    row_slot = jnp.zeros((n + 1,), jnp.int32).at[rows].set(jnp.where(kept, rank, 0))
    return _pack(table, cursor, row_bucket, row_slot)


def update_index(index: LSHIndex, rows: jnp.ndarray, codes: jnp.ndarray) -> LSHIndex:
    """Move each written row to the cell of its new code (rows may repeat;
    the last occurrence wins), as S sequential O(1) updates: remove the row
    from its old slot, put it in its new cell's next slot (dropping the row
    there, if any, from the index); a row already in its new cell stays.
    Each update reads the buffer, then writes its six elements in one
    scatter; a write that a condition cancels goes to the scratch cell or
    row. No select over a whole array (which `lax.cond` becomes under
    `vmap`), no out-of-range scatter and no read of one array for the write
    of another that is read for the first's (XLA's CPU backend copies whole
    arrays for each of these): O(S) in place, not O(2^P C + N), per call.

    Args:
      index: LSHIndex; rows: [S] int32; codes: [S] int32 their new cells.
    Returns:
      LSHIndex.
    """
    cells, capacity, n = index.cells, index.capacity, index.rows
    at_cursor, at_bucket, at_slot = index.offsets

    def one(i, data: jnp.ndarray) -> jnp.ndarray:
        row, code = rows[i], codes[i]
        old, old_slot = data[at_bucket + row], data[at_slot + row]
        slot = data[at_cursor + code]
        evicted = data[code * capacity + slot]
        move = old != code
        cleared = jnp.where(move & (old >= 0), old, cells)
        cell = jnp.where(move, code, cells)
        gone = jnp.where(move & (evicted >= 0), evicted, n)
        at = jnp.where(move, row, n)
        where = jnp.stack([cleared * capacity + old_slot, cell * capacity + slot,
                           at_cursor + cell, at_bucket + gone, at_bucket + at, at_slot + at])
        values = jnp.stack([-1, row, (slot + 1) % capacity, -1, code, slot])
        return data.at[where].set(values, mode="promise_in_bounds")

    data = jax.lax.fori_loop(0, rows.shape[0], one, index.data)
    return LSHIndex(data, cells, capacity, n)


DEFAULT_PROBES = 128
"""T, the cells a query probes by default (at most all 2^P): with
`default_bits` it keeps recall@8 of random keys in a random memory >= 0.9
from N = 1K to 1M (`benchmarks/approximate_search.py`)."""


def default_bits(rows: int) -> int:
    """P for N = `rows`: 2^P = 4 sqrt(N) cells (P = ceil(log2(N) / 2) + 2),
    about sqrt(N) / 4 rows per cell, so that ranking the centroids (2^P W)
    and re-ranking T cells' rows (T C W) both grow as sqrt(N)."""
    return -(-(max(rows, 1) - 1).bit_length() // 2) + 2  # ceil(log2 N) = (N - 1).bit_length()


def default_capacity(rows: int, bits: int) -> int:
    """C for N = `rows` in 2^P cells: twice the mean occupancy, at least 4
    (at the default P, a random memory fills every row into a slot up to 1M
    rows; `benchmarks/approximate_search.py` prints the fraction indexed)."""
    return max(4, 2 * -(-rows // 2 ** bits))


def default_candidates(rows: int, bits: int, probes: int = DEFAULT_PROBES) -> int:
    """B for N = `rows` in 2^P cells, T probed: the rows T cells hold on
    average, T ceil(N / 2^P)."""
    return probes * -(-rows // 2 ** bits)


def lsh_top_k(memory: jnp.ndarray, keys: jnp.ndarray, centroids: jnp.ndarray, index: LSHIndex,
              k: int, probes: int = DEFAULT_PROBES, candidates: int | None = None
              ) -> jnp.ndarray:
    """Approximate `sparse_read.exact_top_k`: the K most similar rows (exact
    cosine) among the first B = `candidates` indexed rows of the T = `probes`
    cells whose centroids are nearest the key, taken in that order (T at
    most all 2^P; B default T C, every slot: `default_candidates` gives the
    rows T cells hold on average). The T C slots' row ids are compacted into
    B (a cumulative sum and a scatter of int32) so that only B rows of the
    memory are gathered: the gather is the cost that counts. Where fewer than
    K indexed rows are found, the rest are filled with rows 0, 1, ... (not
    indexed: empty for SAM). No gradient (a discrete choice).

    Args:
      memory: [N, W]; keys: [H, W]; centroids: [2^P, W]; index: LSHIndex;
      k: K; probes: T; candidates: B >= K.
    Returns:
      [H, K] int32 row indices.
    """
    memory, keys = jax.lax.stop_gradient(memory), jax.lax.stop_gradient(keys)
    probes = min(probes, centroids.shape[0])
    slots = probes * index.table.shape[1]
    budget = slots if candidates is None else max(k, min(candidates, slots))
    _, probed = jax.lax.top_k(keys @ centroids.T, probes)  # [H, T]
    ids = index.table[probed].reshape(keys.shape[0], -1)  # [H, T C], nearest cells first
    valid = ids >= 0
    pos = jnp.where(valid, jnp.cumsum(valid, axis=1) - 1, budget)  # past the end: dropped
    cand = jax.vmap(lambda i, p: jnp.full((budget,), -1, jnp.int32).at[p].set(i, mode="drop"))(
        ids, pos)  # [H, B]
    rows = memory[jnp.maximum(cand, 0)]  # [H, B, W]
    sims = jax.vmap(lambda q, r: cosine_similarity(q[None], r)[0])(keys, rows)
    sims = jnp.where(cand >= 0, sims, -jnp.inf)
    best, pos = jax.lax.top_k(sims, k)
    found = jnp.take_along_axis(cand, pos, axis=1)
    fill = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), found.shape)
    return jnp.where(jnp.isfinite(best), found, fill)
