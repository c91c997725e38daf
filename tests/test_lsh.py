import jax
import jax.numpy as jnp
import numpy as np

from mannlab.memory.lsh import (
    build_index,
    empty_index,
    hash_codes,
    lsh_top_k,
    random_planes,
    update_index,
)
from mannlab.memory.sparse_read import exact_top_k


def test_hash_codes_hand_values():
    planes = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    v = jnp.array([[1.0, 1.0], [-1.0, 2.0], [3.0, -1.0], [-1.0, -1.0]])
    np.testing.assert_array_equal(hash_codes(v, planes), [3, 2, 1, 0])


def test_update_moves_rows_and_evicts_the_oldest():
    ix = empty_index(6, bits=2, capacity=2)
    ix = update_index(ix, jnp.array([0, 1, 2], jnp.int32), jnp.array([3, 3, 3], jnp.int32))
    # bucket 3 holds two rows: row 2 took row 0's slot, row 0 is no longer indexed
    assert sorted(np.asarray(ix.table[3]).tolist()) == [1, 2]
    np.testing.assert_array_equal(ix.row_bucket[:3], [-1, 3, 3])
    ix = update_index(ix, jnp.array([1], jnp.int32), jnp.array([0], jnp.int32))
    assert sorted(np.asarray(ix.table[3]).tolist()) == [-1, 2]
    np.testing.assert_array_equal(ix.table[0], [1, -1])
    np.testing.assert_array_equal(ix.row_bucket[:3], [-1, 0, 3])


def test_build_equals_updates_without_overflow():
    memory = jax.random.normal(jax.random.key(0), (40, 5))
    planes = random_planes(jax.random.key(1), 4, 5)
    built = build_index(memory, planes, capacity=40)
    codes = hash_codes(memory, planes)
    updated = update_index(empty_index(40, 4, 40), jnp.arange(40, dtype=jnp.int32), codes)
    np.testing.assert_array_equal(built.row_bucket, codes)
    np.testing.assert_array_equal(updated.row_bucket, codes)
    for b in range(16):
        assert (sorted(r for r in np.asarray(built.table[b]) if r >= 0)
                == sorted(r for r in np.asarray(updated.table[b]) if r >= 0)
                == sorted(np.flatnonzero(np.asarray(codes) == b).tolist()))


def test_probing_every_bucket_is_the_exact_search():
    """One hyperplane: the key's bucket and the one a bit away are all rows."""
    memory = jax.random.normal(jax.random.key(0), (300, 6))
    planes = random_planes(jax.random.key(1), 1, 6)
    keys = jax.random.normal(jax.random.key(2), (5, 6))
    index = build_index(memory, planes, capacity=300)
    np.testing.assert_array_equal(lsh_top_k(memory, keys, planes, index, 4),
                                  exact_top_k(memory, keys, 4))


def test_near_duplicate_keys_find_their_row():
    """A key close to a stored row (a read of stored content) finds that row
    first, unless its code is two bits or more away (measured here: 45 of
    50). The other K - 1 exact neighbours of a random memory are barely more
    similar than any row and mostly not found (benchmarks/approximate_search.py
    measures recall@K at scale)."""
    n, w, k = 2000, 20, 4
    memory = jax.random.normal(jax.random.key(0), (n, w))
    planes = random_planes(jax.random.key(1), 8, w)
    index = build_index(memory, planes, capacity=32)
    targets = jax.random.choice(jax.random.key(2), n, (50,), replace=False)
    keys = memory[targets] + 0.1 * jax.random.normal(jax.random.key(3), (50, w))
    approx = np.asarray(lsh_top_k(memory, keys, planes, index, k))
    assert np.mean(approx[:, 0] == np.asarray(targets)) >= 0.85


def test_empty_index_fills_with_rows_0_to_k():
    ix = empty_index(10, 3, 4)
    out = lsh_top_k(jnp.zeros((10, 2)), jnp.ones((2, 2)), jnp.ones((3, 2)), ix, 3)
    np.testing.assert_array_equal(out, [[0, 1, 2], [0, 1, 2]])
