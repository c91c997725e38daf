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


def cosine_reference(keys, memory):
    """NTM eq. 6 in float64 (0 for a zero vector)."""
    k, m = np.asarray(keys, np.float64), np.asarray(memory, np.float64)
    nk, nm = np.linalg.norm(k, axis=-1), np.linalg.norm(m, axis=-1)
    denom = nk[:, None] * nm[None, :]
    return np.divide(k @ m.T, denom, out=np.zeros_like(denom), where=denom > 0)


def constant_memory(rows=6, width=20):
    """The NTM's constant initial memory (1e-6 per entry, rows of norm
    4.5e-6), with two rows written at an ordinary scale."""
    memory = jnp.full((rows, width), 1e-6)
    return memory.at[:2].set(jax.random.normal(jax.random.key(5), (2, width)))


def test_constant_initial_memory_rows_are_nearly_empty_by_design():
    # rows keep the absolute guard sqrt(|v|^2 + EPS^2): a constant row's
    # similarity is sqrt(20 / 21) = 0.976 of eq. 6, the same for every such
    # row; written rows are exact
    keys = jax.random.normal(jax.random.key(4), (3, 20))
    memory = constant_memory()
    expected = cosine_reference(keys, memory)
    expected[:, 2:] *= np.sqrt(20 / 21)
    np.testing.assert_allclose(cosine_similarity(keys, memory), expected, rtol=1e-5, atol=1e-6)


def test_rows_written_with_allocation_tails_count_as_empty():
    # a DNC allocation write puts a in the first free row and 1e-6^k a in
    # the k-th next one; with scale-free row norms a lookup of a would split
    # evenly over all of them (docs/notes-numerics.md)
    from mannlab.memory.allocation import allocation_weighting

    a = jax.random.normal(jax.random.key(1), (20,))
    memory = allocation_weighting(jnp.zeros(8))[:, None] * a[None, :]
    sim = np.asarray(cosine_similarity(a[None], memory))[0]
    np.testing.assert_allclose(sim[0], 1.0, rtol=1e-6)
    assert 0.9 < sim[1] < 0.99  # 1e-6 a: norm ~4.5e-6, near the guard
    assert np.all(np.abs(sim[2:]) < 1e-5)  # 1e-12 a and below: empty
    w = np.asarray(content_weighting(memory, a[None], jnp.array([100.0])))[0]
    assert w[0] > 0.9


# entries 0 or of magnitude >= 1e-3: scaled by down to 1e-6, every
# nonzero key stays far above NEGLIGIBLE (1e-30), below which it counts as
# zero by design
entries = finite.filter(lambda x: x == 0 or abs(x) >= 1e-3)
vectors = st.integers(1, 8).flatmap(
    lambda width: st.tuples(
        arrays(np.float32, (2, width), elements=entries),
        arrays(np.float32, (5, width), elements=entries)))


@settings(max_examples=60, deadline=None)
@given(vectors, st.floats(-6.0, 4.0), st.floats(0.0, 4.0))
def test_cosine_similarity_scale_invariance(key_and_memory, log_c, log_c_rows):
    # keys: K[c k, M] = K[k, M] for c log-uniform in [1e-6, 1e4];
    # rows: K[k, c M] = K[k, M] for c in [1, 1e4] (rows of norm >= 1e-3,
    # where the guard is within 5e-7). Tolerance: c x rounds (0.5 ulp), the
    # unit key and the norms a few ulp more, so the similarities agree to
    # ~1e-6 absolutely; rtol 1e-5 with atol 1e-6 for near-orthogonal pairs.
    keys, memory = key_and_memory
    k, m = jnp.asarray(keys), jnp.asarray(memory)
    base = np.asarray(cosine_similarity(k, m))
    np.testing.assert_allclose(base, cosine_reference(keys, memory), rtol=1e-5, atol=1e-6)
    c = np.float32(10.0 ** log_c)
    np.testing.assert_allclose(cosine_similarity(k * c, m), base, rtol=1e-5, atol=1e-6)
    c_rows = np.float32(10.0 ** log_c_rows)
    np.testing.assert_allclose(cosine_similarity(k, m * c_rows), base, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(base) <= 1 + 1e-6)


def test_tiny_keys_are_exact_and_negligible_ones_zero():
    # keys with entries of 1e-20 and 1e-25 (their squares are below
    # float32's normal range) give eq. 6 exactly; a key with all entries
    # below NEGLIGIBLE (1e-30) counts as zero: similarity 0, zero gradient
    keys = jnp.array([[1e-20, 2e-20, 0.0], [3e-25, 0.0, -1e-25], [1e-31, 1e-31, 0.0]])
    memory = jnp.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    expected = np.concatenate([cosine_reference(keys[:2], memory), np.zeros((1, 2))])
    np.testing.assert_allclose(cosine_similarity(keys, memory), expected, rtol=1e-5, atol=1e-7)
    g = jax.grad(lambda k, m: jnp.sum(cosine_similarity(k, m) * jnp.arange(1.0, 3.0)),
                 argnums=(0, 1))(keys, memory)
    assert all(np.all(np.isfinite(x)) for x in g)
    np.testing.assert_array_equal(g[0][2], 0.0)  # the negligible key


def test_cosine_gradients_match_finite_differences_at_every_scale():
    k = jax.random.split(jax.random.key(2), 2)
    memory = jax.random.normal(k[0], (6, 5))
    keys = jax.random.normal(k[1], (2, 5))
    check_grads(cosine_similarity, (keys, memory), order=1, modes=["fwd", "rev"],
                atol=1e-2, rtol=1e-2)
    # tiny keys, and rows at the constant memory's scale (1e-6), as
    # functions of the unscaled arguments (finite differences need a step
    # below the entries)
    check_grads(lambda q, m: cosine_similarity(q * 1e-12, m * 1e-6), (keys, memory), order=1,
                modes=["fwd", "rev"], atol=1e-2, rtol=1e-2)
    check_grads(lambda q, m: content_weighting(m * 1e-6, q * 1e-12, jnp.array([3.0, 20.0])),
                (keys, memory), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
