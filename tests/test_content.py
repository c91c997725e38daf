import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jax.test_util import check_grads

from mannlab.memory.content import content_weighting, cosine_similarity

finite = st.floats(-10, 10, allow_nan=False, width=32)


def test_cosine_similarity_hand_values():
    keys = jnp.array([[1.0, 0.0], [1.0, 1.0]])
    memory = jnp.array([[2.0, 0.0], [0.0, 3.0], [-1.0, -1.0]])
    s = 1 / np.sqrt(2)
    expected = [[1.0, 0.0, -s], [s, s, -1.0]]
    np.testing.assert_allclose(cosine_similarity(keys, memory), expected, atol=1e-5)


def test_zero_key_and_zero_memory_are_finite_with_finite_gradients():
    keys, memory = jnp.zeros((2, 4)), jnp.zeros((5, 4))
    assert np.all(cosine_similarity(keys, memory) == 0)
    w = content_weighting(memory, keys, jnp.array([1.0, 100.0]))
    np.testing.assert_allclose(w, np.full((2, 5), 0.2), atol=1e-6)
    grads = jax.grad(lambda k, m: content_weighting(m, k, jnp.ones(2))[:, 0].sum(),
                     argnums=(0, 1))(keys, memory)
    assert all(np.isfinite(g).all() for g in grads)


def test_huge_strength_gives_one_hot_without_nan():
    memory = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    w = content_weighting(memory, jnp.array([[1.0, 0.1]]), jnp.array([1e30]))
    np.testing.assert_allclose(w, [[1.0, 0.0, 0.0]])
    g = jax.grad(lambda b: content_weighting(memory, jnp.array([[1.0, 0.1]]), b)[0, 0])(
        jnp.array([1e6]))
    assert np.isfinite(g).all()


def test_content_weighting_gradients_match_finite_differences():
    k = jax.random.split(jax.random.PRNGKey(0), 2)
    memory = jax.random.normal(k[0], (6, 3))
    keys = jax.random.normal(k[1], (2, 3))
    check_grads(lambda m, q, b: content_weighting(m, q, b), (memory, keys, jnp.array([2.0, 5.0])),
                order=1, modes=["rev"], atol=1e-2, rtol=1e-2)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 9), st.integers(1, 5), st.data())
def test_content_weightings_are_distributions(heads, rows, width, data):
    memory = data.draw(arrays(np.float32, (rows, width), elements=finite))
    keys = data.draw(arrays(np.float32, (heads, width), elements=finite))
    beta = data.draw(arrays(np.float32, (heads,), elements=st.floats(0, 1e4, width=32)))
    w = np.asarray(content_weighting(jnp.asarray(memory), jnp.asarray(keys), jnp.asarray(beta)))
    assert w.shape == (heads, rows)
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
