import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mannlab.memory.lsh import (
    build_index,
    default_bits,
    default_capacity,
    empty_index,
    hash_codes,
    lsh_top_k,
    random_centroids,
    update_index,
)
from mannlab.memory.sparse_read import exact_top_k

AXES = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])  # 4 = 2^2 centroids


def test_random_centroids_are_unit_vectors():
    c = random_centroids(jax.random.key(0), 3, 5)
    assert c.shape == (8, 5)
    np.testing.assert_allclose(jnp.linalg.norm(c, axis=1), 1.0, rtol=1e-6)


def test_hash_codes_hand_values():
    """The nearest centroid by cosine; a vector's norm does not matter."""
    v = jnp.array([[2.0, 0.1], [0.1, 3.0], [-1.0, 0.5], [0.2, -5.0], [-0.01, 0.0]])
    np.testing.assert_array_equal(hash_codes(v, AXES), [0, 1, 2, 3, 2])
    np.testing.assert_array_equal(hash_codes(100.0 * v, AXES), [0, 1, 2, 3, 2])


def test_default_sizes_hand_values():
    """2^P = 4 sqrt(N) cells (P = ceil(log2 N / 2) + 2), C = twice the mean."""
    assert [default_bits(n) for n in (1, 2, 6, 1000, 1024, 8192, 65536, 2 ** 20)] == [
        2, 3, 4, 7, 7, 9, 10, 12]
    assert [default_capacity(n, default_bits(n)) for n in (6, 1024, 65536, 2 ** 20)] == [
        4, 16, 128, 512]


def test_update_moves_rows_and_evicts_the_oldest():
    ix = empty_index(6, bits=2, capacity=2)
    ix = update_index(ix, jnp.array([0, 1, 2], jnp.int32), jnp.array([3, 3, 3], jnp.int32))
    # cell 3 holds two rows: row 2 took row 0's slot, row 0 is no longer indexed
    assert sorted(np.asarray(ix.table[3]).tolist()) == [1, 2]
    np.testing.assert_array_equal(ix.row_bucket[:3], [-1, 3, 3])
    ix = update_index(ix, jnp.array([1], jnp.int32), jnp.array([0], jnp.int32))
    assert sorted(np.asarray(ix.table[3]).tolist()) == [-1, 2]
    np.testing.assert_array_equal(ix.table[0], [1, -1])
    np.testing.assert_array_equal(ix.row_bucket[:3], [-1, 0, 3])


def test_index_views_and_scratch():
    """One buffer seen as table [2^P + 1, C], cursor [2^P + 1], row_bucket
    [N + 1], row_slot [N + 1] (scratch cell and row last), also batched."""
    ix = empty_index(5, bits=2, capacity=3)
    assert ix.data.shape == (5 * 3 + 5 + 6 + 6,)
    assert (ix.table.shape, ix.cursor.shape, ix.row_bucket.shape, ix.row_slot.shape) == (
        (5, 3), (5,), (6,), (6,))
    batched = jax.tree.map(lambda a: jnp.stack([a, a]), ix)
    assert batched.table.shape == (2, 5, 3) and batched.row_slot.shape == (2, 6)


def test_update_is_in_place_under_vmap():
    """SAM updates a batch of indexes (vmap) inside its scan: no whole-array
    copy in the loop (the compiled program copies its one input buffer at
    most, as it is not donated), and the same result as one example at a time."""
    ix = jax.tree.map(lambda a: jnp.stack([a, a]), empty_index(1000, bits=4, capacity=8))
    rows = jnp.array([[1, 2, 1], [5, 6, 7]], jnp.int32)
    codes = jnp.array([[3, 3, 4], [0, 0, 0]], jnp.int32)
    out = jax.vmap(update_index)(ix, rows, codes)
    for b in range(2):
        one = update_index(empty_index(1000, 4, 8), rows[b], codes[b])
        np.testing.assert_array_equal(out.data[b], one.data)
    hlo = jax.jit(jax.vmap(update_index)).lower(ix, rows, codes).compile().as_text()
    whole = f"s32[{','.join(map(str, ix.data.shape))}]"
    assert sum(whole in line for line in hlo.splitlines() if " copy(" in line) <= 1


def test_build_equals_updates_without_overflow():
    memory = jax.random.normal(jax.random.key(0), (40, 5))
    centroids = random_centroids(jax.random.key(1), 4, 5)
    built = build_index(memory, centroids, capacity=40)
    codes = hash_codes(memory, centroids)
    updated = update_index(empty_index(40, 4, 40), jnp.arange(40, dtype=jnp.int32), codes)
    np.testing.assert_array_equal(built.row_bucket[:40], codes)
    np.testing.assert_array_equal(updated.row_bucket[:40], codes)
    for b in range(16):
        assert (sorted(r for r in np.asarray(built.table[b]) if r >= 0)
                == sorted(r for r in np.asarray(updated.table[b]) if r >= 0)
                == sorted(np.flatnonzero(np.asarray(codes) == b).tolist()))


def test_build_hashes_in_chunks_like_at_once():
    """More rows than build_index's chunk of 1,024: the same cells as one hash."""
    memory = jax.random.normal(jax.random.key(0), (2500, 6))
    centroids = random_centroids(jax.random.key(1), 5, 6)
    built = build_index(memory, centroids, capacity=2500)
    np.testing.assert_array_equal(built.row_bucket[:2500], hash_codes(memory, centroids))


@pytest.mark.parametrize("bits", [0, 1, 3])
def test_probing_every_cell_is_the_exact_search(bits):
    """A candidate budget that covers all N rows (every cell probed, room for
    every row): recall 1.0, the exact search's rows in its order."""
    memory = jax.random.normal(jax.random.key(0), (300, 6))
    centroids = random_centroids(jax.random.key(1), bits, 6)
    keys = jax.random.normal(jax.random.key(2), (5, 6))
    index = build_index(memory, centroids, capacity=300)
    np.testing.assert_array_equal(lsh_top_k(memory, keys, centroids, index, 4, 2 ** bits),
                                  exact_top_k(memory, keys, 4))


def test_a_stored_row_is_found_by_a_key_equal_to_it():
    """The key's nearest centroid is its row's cell, the first one probed:
    one probe suffices."""
    memory = jax.random.normal(jax.random.key(0), (500, 8))
    centroids = random_centroids(jax.random.key(1), 4, 8)
    index = build_index(memory, centroids, capacity=500)
    rows = jnp.arange(0, 500, 7)
    out = lsh_top_k(memory, memory[rows], centroids, index, 3, probes=1)
    np.testing.assert_array_equal(out[:, 0], rows)


def test_shapes_are_fixed():
    """[H, K] int32 whatever the probes (more than the cells: all of them);
    an update keeps the index's shapes."""
    memory = jax.random.normal(jax.random.key(0), (64, 4))
    centroids = random_centroids(jax.random.key(1), 2, 4)
    index = build_index(memory, centroids, capacity=8)
    keys = jax.random.normal(jax.random.key(2), (3, 4))
    for probes in (1, 2, 4, 100):
        out = lsh_top_k(memory, keys, centroids, index, 5, probes)
        assert out.shape == (3, 5) and out.dtype == jnp.int32
    after = update_index(index, jnp.array([1, 2], jnp.int32), jnp.array([0, 3], jnp.int32))
    assert jax.tree.map(jnp.shape, after) == jax.tree.map(jnp.shape, index)


def test_a_written_row_is_found_after_its_update():
    """SAM's use: memory starts empty, a write changes a row and updates the
    index; a key equal to the new content finds it, and the row's old cell no
    longer holds it."""
    n, w = 50, 6
    centroids = random_centroids(jax.random.key(1), 3, w)
    memory = jax.random.normal(jax.random.key(0), (n, w))
    index = build_index(memory, centroids, capacity=n)
    new = -memory[7] + 0.5
    memory = memory.at[7].set(new)
    index = update_index(index, jnp.array([7], jnp.int32), hash_codes(new[None], centroids))
    assert int(index.row_bucket[7]) == int(hash_codes(new, centroids))
    assert (np.asarray(index.table) == 7).sum() == 1
    np.testing.assert_array_equal(lsh_top_k(memory, new[None], centroids, index, 2, 1)[0, 0], 7)


def test_default_probes_reach_recall_0_9_on_a_random_memory():
    """8,192 random rows, the default 2^9 cells of 32 slots and 128 probes:
    recall@8 of random keys >= 0.9 (benchmarks/approximate_search.py
    measures it to 1M rows)."""
    n, w, k = 8192, 20, 8
    memory = jax.random.normal(jax.random.key(0), (n, w))
    centroids = random_centroids(jax.random.key(1), default_bits(n), w)
    index = build_index(memory, centroids, capacity=default_capacity(n, default_bits(n)))
    keys = jax.random.normal(jax.random.key(2), (64, w))
    approx = np.asarray(lsh_top_k(memory, keys, centroids, index, k))
    exact = np.asarray(exact_top_k(memory, keys, k))
    recall = np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)])
    assert recall >= 0.9


def test_empty_index_fills_with_rows_0_to_k():
    ix = empty_index(10, 2, 4)
    out = lsh_top_k(jnp.zeros((10, 2)), jnp.ones((2, 2)), AXES, ix, 3)
    np.testing.assert_array_equal(out, [[0, 1, 2], [0, 1, 2]])


def test_candidates_are_the_first_rows_of_the_nearest_cells():
    """B = 3 candidates from the T = 2 cells nearest the key [1, 0.1] (cell 0,
    the +x axis, then cell 1, +y): rows 0 and 1 of cell 0 and the first row
    of cell 1 (row 2); row 3 (cell 1, more similar to the key than row 2) is
    past the budget, row 4 (cell 2) is not probed."""
    memory = jnp.array([[1.0, 0.0], [1.0, -0.5], [-0.5, 1.0], [0.4, 1.0], [-1.0, 0.0]])
    index = build_index(memory, AXES, capacity=4)
    key = jnp.array([[1.0, 0.1]])
    np.testing.assert_array_equal(lsh_top_k(memory, key, AXES, index, 3, 2, 3), [[0, 1, 2]])
    np.testing.assert_array_equal(lsh_top_k(memory, key, AXES, index, 3, 2, 4), [[0, 1, 3]])
    np.testing.assert_array_equal(lsh_top_k(memory, key, AXES, index, 3, 4, 5),
                                  exact_top_k(memory, key, 3))
