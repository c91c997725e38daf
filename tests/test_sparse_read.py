import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jax.test_util import check_grads

from mannlab.memory.content import content_weighting
from mannlab.memory.sparse_read import (
    exact_top_k,
    gather_rows,
    sparse_content_weighting,
    sparse_read,
)

finite = st.floats(-10, 10, allow_nan=False, width=32)
MEMORY = jnp.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0], [3.0, 3.0], [0.0, 0.0]])


def test_top_k_of_a_known_memory():
    keys = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    # key (1, 0): cosines 1, 0, -1, 0.707, 0 -> rows 0, 3; key (0, 1): 0, 1, 0, 0.707, 0 -> 1, 3
    np.testing.assert_array_equal(exact_top_k(MEMORY, keys, 2), [[0, 3], [1, 3]])


def test_empty_rows_rank_after_every_written_row():
    """An all-zero row (never written, or erased) is chosen only after every
    row holding something, even rows pointing away from the key. Ranked at
    cosine 0, the empty rows would beat all three written rows here; the
    head would read zeros and its key would get no gradient (the cosine to
    a zero row is constant), so nothing would turn it back."""
    memory = jnp.array([[-1.0, 0.5], [0.0, 0.0], [-0.5, -1.0], [-1.0, -1.0], [0.0, 0.0]])
    keys = jnp.array([[1.0, 0.0]])  # cosines -0.894, (empty), -0.447, -0.707, (empty)
    np.testing.assert_array_equal(exact_top_k(memory, keys, 2), [[2, 3]])
    np.testing.assert_array_equal(exact_top_k(memory, keys, 4), [[2, 3, 0, 1]])
    idx = exact_top_k(memory, keys, 2)
    d_key = jax.grad(lambda q: sparse_read(gather_rows(memory, idx), sparse_content_weighting(
        gather_rows(memory, idx), q, jnp.array([3.0])))[0, 0])(keys)
    assert np.abs(np.asarray(d_key)).max() > 1e-3


def test_top_k_read_hand_values():
    keys, beta = jnp.array([[1.0, 0.0]]), jnp.array([2.0])
    idx = exact_top_k(MEMORY, keys, 2)
    rows = gather_rows(MEMORY, idx)
    w = sparse_content_weighting(rows, keys, beta)
    s = 1 / np.sqrt(2)
    expected = np.exp([2.0, 2 * s]) / np.exp([2.0, 2 * s]).sum()
    np.testing.assert_allclose(w, [expected], rtol=1e-5)
    np.testing.assert_allclose(sparse_read(rows, w),
                               [expected[0] * np.array([1, 0]) + expected[1] * np.array([3, 3])],
                               rtol=1e-5)


def test_all_rows_read_equals_dense_content_weighting():
    keys, beta = jnp.array([[0.3, -1.0], [2.0, 1.0]]), jnp.array([1.5, 4.0])
    idx = jnp.broadcast_to(jnp.arange(5), (2, 5))
    w = sparse_content_weighting(gather_rows(MEMORY, idx), keys, beta)
    np.testing.assert_allclose(w, content_weighting(MEMORY, keys, beta), rtol=1e-5)


def test_zero_memory_and_zero_keys_are_finite():
    memory, keys = jnp.zeros((6, 3)), jnp.zeros((2, 3))
    idx = exact_top_k(memory, keys, 3)
    np.testing.assert_array_equal(idx, [[0, 1, 2], [0, 1, 2]])  # ties: lowest rows first
    f = lambda m, k, b: sparse_read(gather_rows(m, idx),
                                    sparse_content_weighting(gather_rows(m, idx), k, b)).sum()
    grads = jax.grad(f, argnums=(0, 1, 2))(memory, keys, jnp.array([1.0, 1e4]))
    assert all(np.isfinite(g).all() for g in grads)
    w = sparse_content_weighting(gather_rows(memory, idx), keys, jnp.array([1.0, 1e30]))
    np.testing.assert_allclose(w, np.full((2, 3), 1 / 3), rtol=1e-6)


def test_gradient_touches_only_the_read_rows():
    keys = jnp.array([[1.0, 0.2]])
    idx = exact_top_k(MEMORY, keys, 2)
    g = jax.grad(lambda m: sparse_read(gather_rows(m, idx), sparse_content_weighting(
        gather_rows(m, idx), keys, jnp.array([3.0]))).sum())(MEMORY)
    touched = np.zeros(5, bool)
    touched[np.asarray(idx).ravel()] = True
    assert np.all(np.asarray(g)[~touched] == 0) and np.any(np.asarray(g)[touched] != 0)


def test_bad_k_is_a_one_line_error():
    with pytest.raises(ValueError, match="k: must be between 1 and the 5 memory rows, got 6"):
        exact_top_k(MEMORY, jnp.ones((1, 2)), 6)


def test_sparse_read_gradients_match_finite_differences():
    k = jax.random.split(jax.random.PRNGKey(0), 2)
    rows = jax.random.normal(k[0], (2, 3, 4))
    keys = jax.random.normal(k[1], (2, 4))
    f = lambda r, q, b: sparse_read(r, sparse_content_weighting(r, q, b))
    check_grads(f, (rows, keys, jnp.array([2.0, 5.0])), order=1, modes=["rev"],
                atol=1e-2, rtol=1e-2)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([1, 3, 7]), st.data())
def test_sparse_weights_are_distributions_over_the_best_rows(k, data):
    heads, rows, width = 2, 7, 3  # fixed shapes: one compile per k
    memory = data.draw(arrays(np.float32, (rows, width), elements=finite))
    keys = data.draw(arrays(np.float32, (heads, width), elements=finite))
    beta = data.draw(arrays(np.float32, (heads,), elements=st.floats(0, 1e4, width=32)))
    idx = exact_top_k(jnp.asarray(memory), jnp.asarray(keys), k)
    w = np.asarray(sparse_content_weighting(gather_rows(jnp.asarray(memory), idx),
                                            jnp.asarray(keys), jnp.asarray(beta)))
    assert np.all(w >= 0) and np.allclose(w.sum(-1), 1.0, atol=1e-5)
    # the chosen rows are at least as similar as every row left out
    dense = np.asarray(content_weighting(jnp.asarray(memory), jnp.asarray(keys),
                                         jnp.ones(heads)))
    # (empty rows rank below every other row)
    score = np.where((memory == 0).all(-1)[None, :], -2.0, dense)
    for h in range(heads):
        chosen = set(np.asarray(idx)[h].tolist())
        assert len(chosen) == k
        left = [score[h, i] for i in range(rows) if i not in chosen]
        if left:
            assert min(score[h, list(chosen)]) >= max(left) - 1e-6
