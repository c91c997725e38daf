import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from mannlab.memory.sparse_write import (
    first_occurrence,
    slot_of,
    sparse_write,
    sparse_write_rows,
    sparse_write_weighting,
    undo_write,
    write_indices,
)


def test_write_weighting_hand_values():
    prev = jnp.array([[0.6, 0.4], [1.0, 0.0]])  # two heads, K = 2
    w = sparse_write_weighting(prev, jnp.float32(0.5), jnp.float32(0.8))
    np.testing.assert_allclose(w, [0.5 * 0.8 * 0.3, 0.5 * 0.8 * 0.2, 0.5 * 0.8 * 0.5, 0.0,
                                   0.5 * 0.2], rtol=1e-6)
    np.testing.assert_array_equal(write_indices(jnp.array([[3, 1], [0, 2]]), jnp.int32(5)),
                                  [3, 1, 0, 2, 5])


def test_write_erases_the_lru_row_and_adds_on_the_read_rows():
    memory = jnp.arange(12.0).reshape(4, 3)
    idx = jnp.array([1, 2, 1, 3], jnp.int32)  # row 1 twice; LRU row 3
    w = jnp.array([0.5, 0.25, 0.25, 0.1])
    a = jnp.array([1.0, -2.0, 4.0])
    new = np.asarray(sparse_write(memory, idx, w, a, jnp.int32(3)))
    expected = np.asarray(memory).copy()
    expected[1] += 0.75 * np.asarray(a)
    expected[2] += 0.25 * np.asarray(a)
    expected[3] = 0.1 * np.asarray(a)
    np.testing.assert_allclose(new, expected, rtol=1e-6)
    np.testing.assert_array_equal(undo_write(jnp.asarray(new), idx, memory[idx]), memory)


def test_slots():
    idx = jnp.array([4, 2, 4, 7, 2], jnp.int32)
    np.testing.assert_array_equal(first_occurrence(idx), [0, 1, 0, 3, 1])
    np.testing.assert_array_equal(slot_of(jnp.array([2, 5, 7], jnp.int32), idx), [1, -1, 3])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=2, max_size=7), st.integers(0, 10_000))
def test_local_write_equals_the_global_one_with_repeated_rows(rows, seed):
    """`sparse_write_rows` on the gathered rows gives the rows of `sparse_write`,
    and undoing the write restores the memory exactly."""
    rng = np.random.default_rng(seed)
    memory = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    idx = jnp.array(rows, jnp.int32)
    w = jnp.asarray(rng.uniform(size=len(rows)), jnp.float32)
    a = jnp.asarray(rng.normal(size=3), jnp.float32)
    new = sparse_write(memory, idx, w, a, idx[-1])
    local = sparse_write_rows(memory[idx], first_occurrence(idx), w, a)
    np.testing.assert_allclose(local, new[idx], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(undo_write(new, idx, memory[idx]), memory)


def test_write_gradients_match_finite_differences():
    memory = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    idx = jnp.array([1, 3, 1, 4], jnp.int32)
    f = lambda m, w, a: sparse_write(jnp.asarray(m), idx, w, a, jnp.int32(4))
    check_grads(f, (memory, jnp.array([0.2, 0.3, 0.1, 0.4]), jnp.array([1.0, -1.0, 0.5])),
                order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
    g = lambda rows, w, a: sparse_write_rows(jnp.asarray(rows), first_occurrence(idx), w, a)
    check_grads(g, (memory[idx], jnp.array([0.2, 0.3, 0.1, 0.4]), jnp.array([1.0, -1.0, 0.5])),
                order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
