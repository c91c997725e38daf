"""Approximate top-K search by random-hyperplane hashing (SimHash; Charikar
2002), in pure JAX: SAM's approximate nearest-neighbour index (Rae et al.
2016, section 3.5 uses FLANN / LSH-style indexes) kept as fixed-shape
arrays and updated by K-row scatters.

Each row's code is the signs of its projections on P fixed random
hyperplanes (a P-bit integer); rows with the same code share a bucket, and
vectors at a small angle share most bits. The index is a table of 2^P
buckets with C slots each (a ring: when a bucket is full the oldest entry
is dropped and can no longer be found), each row's bucket and slot, and
each bucket's next slot. A query probes its own bucket and the P buckets one
bit away (multi-probe; or also those two bits away), computes the cosine
similarity to those at most (P + 1) C rows (1 + P + P (P - 1) / 2 buckets
at radius 2), and takes the K best: O(P C W) (O(P^2 C W)) per query
instead of O(N W).

Rows enter the index when written (`update_index`, `build_index` for a
whole memory); rows never written are never found (for SAM they are empty).

Shapes: memory [N, W]; planes [P, W]; table [2^P, C]; keys [H, W].
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mannlab.memory.content import cosine_similarity


class LSHIndex(NamedTuple):
    """table [2^P, C] int32 row ids (-1: empty); cursor [2^P] int32 the next
    slot of each bucket; row_bucket [N] int32 (-1: not indexed); row_slot [N]
    int32."""

    table: jnp.ndarray
    cursor: jnp.ndarray
    row_bucket: jnp.ndarray
    row_slot: jnp.ndarray


def random_planes(key: jax.Array, bits: int, width: int) -> jnp.ndarray:
    """P random hyperplanes through the origin: [P, W] standard normal."""
    return jax.random.normal(key, (bits, width))


def hash_codes(vectors: jnp.ndarray, planes: jnp.ndarray) -> jnp.ndarray:
    """SimHash: code = sum_p [planes_p . v >= 0] 2^p.

    Args:
      vectors: [..., W]; planes: [P, W] (P <= 30).
    Returns:
      [...] int32 codes in [0, 2^P).
    """
    bits = (vectors @ planes.T >= 0).astype(jnp.int32)
    return jnp.sum(bits << jnp.arange(planes.shape[0], dtype=jnp.int32), axis=-1)


def empty_index(rows: int, bits: int, capacity: int) -> LSHIndex:
    """An index of N = `rows` rows, 2^bits buckets of `capacity` slots, holding nothing."""
    return LSHIndex(jnp.full((2 ** bits, capacity), -1, jnp.int32),
                    jnp.zeros((2 ** bits,), jnp.int32),
                    jnp.full((rows,), -1, jnp.int32), jnp.zeros((rows,), jnp.int32))


def build_index(memory: jnp.ndarray, planes: jnp.ndarray, capacity: int,
                rows: jnp.ndarray | None = None) -> LSHIndex:
    """An index of `rows` (default: all N rows of memory), built at once: rows
    sorted by code, the first `capacity` of each bucket kept.

    Args:
      memory: [N, W]; planes: [P, W]; capacity: C.
      rows: optional [M] int32 distinct rows to index.
    Returns:
      LSHIndex.
    """
    n, bits = memory.shape[0], planes.shape[0]
    rows = jnp.arange(n, dtype=jnp.int32) if rows is None else rows.astype(jnp.int32)
    codes = hash_codes(memory[rows], planes)
    order = jnp.argsort(codes, stable=True)
    codes, rows = codes[order], rows[order]
    start = jnp.searchsorted(codes, codes, side="left")
    rank = jnp.arange(codes.shape[0], dtype=jnp.int32) - start.astype(jnp.int32)
    kept = rank < capacity
    bucket = jnp.where(kept, codes, 2 ** bits)  # out of range: dropped by the scatter
    table = jnp.full((2 ** bits, capacity), -1, jnp.int32).at[bucket, rank].set(
        rows, mode="drop")
    cursor = jnp.zeros((2 ** bits,), jnp.int32).at[codes].max(
        jnp.minimum(rank + 1, capacity) % capacity)
    row_bucket = jnp.full((n,), -1, jnp.int32).at[rows].set(jnp.where(kept, codes, -1))
    row_slot = jnp.zeros((n,), jnp.int32).at[rows].set(jnp.where(kept, rank, 0))
    return LSHIndex(table, cursor, row_bucket, row_slot)


def update_index(index: LSHIndex, rows: jnp.ndarray, codes: jnp.ndarray) -> LSHIndex:
    """Move each written row to the bucket of its new code (rows may repeat;
    the last occurrence wins), as S sequential O(1) updates: remove the row
    from its old slot, put it in its new bucket's next slot (dropping the
    row there, if any, from the index).

    Args:
      index: LSHIndex; rows: [S] int32; codes: [S] int32 their new codes.
    Returns:
      LSHIndex.
    """
    capacity = index.table.shape[1]

    def one(i, ix: LSHIndex) -> LSHIndex:
        row, code = rows[i], codes[i]
        old = ix.row_bucket[row]

        def move(ix: LSHIndex) -> LSHIndex:
            table = jnp.where(old >= 0, ix.table.at[jnp.maximum(old, 0), ix.row_slot[row]].set(-1),
                              ix.table)
            slot = ix.cursor[code]
            evicted = table[code, slot]
            row_bucket = jnp.where(evicted >= 0,
                                   ix.row_bucket.at[jnp.maximum(evicted, 0)].set(-1),
                                   ix.row_bucket)
            return LSHIndex(table.at[code, slot].set(row),
                            ix.cursor.at[code].set((slot + 1) % capacity),
                            row_bucket.at[row].set(code), ix.row_slot.at[row].set(slot))

        return jax.lax.cond(old == code, lambda ix: ix, move, ix)

    return jax.lax.fori_loop(0, rows.shape[0], one, index)


def probe_masks(bits: int, radius: int) -> jnp.ndarray:
    """The XOR masks of every code within `radius` (0, 1 or 2) bits of a
    code: 1 + P (+ P (P - 1) / 2) masks, int32."""
    if radius not in (0, 1, 2):
        raise ValueError(f"radius: 0, 1 or 2 bits, got {radius!r}")
    masks = [0]
    if radius >= 1:
        masks += [1 << p for p in range(bits)]
    if radius == 2:
        masks += [(1 << p) | (1 << q) for p in range(bits) for q in range(p + 1, bits)]
    return jnp.array(masks, jnp.int32)


def lsh_top_k(memory: jnp.ndarray, keys: jnp.ndarray, planes: jnp.ndarray, index: LSHIndex,
              k: int, radius: int = 1) -> jnp.ndarray:
    """Approximate `sparse_read.exact_top_k`: the K most similar rows among
    those in the buckets within `radius` bits of the key's code (its own and
    the P one bit away by default; radius 2 adds the P (P - 1) / 2 two bits
    away). Where fewer than K indexed rows are found, the rest are filled
    with rows 0, 1, ... (not indexed: empty for SAM). No gradient (a
    discrete choice).

    Args:
      memory: [N, W]; keys: [H, W]; planes: [P, W]; index: LSHIndex; k: K;
      radius: 0, 1 or 2.
    Returns:
      [H, K] int32 row indices.
    """
    memory, keys = jax.lax.stop_gradient(memory), jax.lax.stop_gradient(keys)
    code = hash_codes(keys, planes)  # [H]
    buckets = code[:, None] ^ probe_masks(planes.shape[0], radius)[None, :]  # [H, probes]
    cand = index.table[buckets].reshape(keys.shape[0], -1)  # [H, (P + 1) C]
    valid = cand >= 0
    rows = memory[jnp.maximum(cand, 0)]  # [H, M, W]
    sims = jax.vmap(lambda q, r: cosine_similarity(q[None], r)[0])(keys, rows)
    sims = jnp.where(valid, sims, -jnp.inf)
    best, pos = jax.lax.top_k(sims, k)
    found = jnp.take_along_axis(cand, pos, axis=1)
    fill = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), found.shape)
    return jnp.where(jnp.isfinite(best), found, fill)
