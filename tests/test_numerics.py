import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jax.test_util import check_grads

from mannlab.memory.numerics import NEGLIGIBLE, inverse_norms, unit_vectors

entries = st.floats(-10, 10, width=32).filter(lambda x: x == 0 or abs(x) >= 1e-3)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9).flatmap(lambda n: arrays(np.float32, (4, n), elements=entries)),
       st.floats(-18.0, 18.0))
def test_unit_vectors_are_exact_at_every_scale(x, log_c):
    # x / |x| for x scaled by 1e-18..1e18: squares of the small ones would
    # underflow float32 and of the large ones overflow; rescaling by max|x|
    # keeps both exact. Tolerance: c x and x / max|x| round (0.5 ulp each),
    # the norm a few ulp more: rtol 1e-6, atol 1e-7 for near-zero entries.
    c = np.float32(10.0 ** log_c)
    out = np.asarray(unit_vectors(jnp.asarray(x * c)))
    x64 = np.asarray(x, np.float64)
    norms = np.linalg.norm(x64, axis=-1, keepdims=True)
    expected = np.divide(x64, norms, out=np.zeros_like(x64), where=norms > 0)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    nonzero = norms[:, 0] > 0
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1)[nonzero], 1.0, rtol=1e-6)
    inverse = np.asarray(inverse_norms(jnp.asarray(x * c)), np.float64) * c
    np.testing.assert_allclose(inverse[nonzero], 1 / norms[nonzero, 0], rtol=1e-6)
    assert np.all(inverse[~nonzero] == 0)


def test_zero_and_negligible_vectors_give_zero_with_zero_gradient():
    x = jnp.array([[0.0, 0.0, 0.0], [NEGLIGIBLE / 2, -NEGLIGIBLE / 4, 0.0],
                   [NEGLIGIBLE * 10, 0.0, 0.0]])
    out = unit_vectors(x)
    np.testing.assert_array_equal(out[:2], 0.0)
    np.testing.assert_array_equal(inverse_norms(x)[:2], 0.0)
    np.testing.assert_allclose(out[2], [1.0, 0.0, 0.0])
    g = jax.grad(lambda v: jnp.sum(unit_vectors(v) * jnp.arange(1.0, 4.0)))(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[:2], 0.0)


def test_unit_vector_gradients_match_finite_differences():
    x = jax.random.normal(jax.random.key(3), (3, 5))
    check_grads(unit_vectors, (x,), order=1, modes=["fwd", "rev"], atol=1e-2, rtol=1e-2)
    check_grads(lambda v: unit_vectors(v, axis=0), (x,), order=1, modes=["rev"],
                atol=1e-2, rtol=1e-2)
    check_grads(inverse_norms, (x,), order=1, modes=["fwd", "rev"], atol=1e-2, rtol=1e-2)
    # the gradient scales as 1 / scale, as for x / |x| itself
    g = jax.grad(lambda v: unit_vectors(v)[0, 1])
    np.testing.assert_allclose(g(x * 1e-12) * 1e-12, g(x), rtol=1e-5, atol=1e-7)


def test_safe_norm_is_the_norm_with_an_absolute_floor():
    # the rows' guard (see content.cosine_similarity): |x| for rows well
    # above EPS, EPS for a zero row, finite gradient there
    from mannlab.memory.numerics import EPS, safe_norm

    x = jnp.array([[3.0, 4.0], [0.0, 0.0], [3e-6, 4e-6]])
    np.testing.assert_allclose(safe_norm(x), [5.0, EPS, np.sqrt(25e-12 + EPS**2)], rtol=1e-6)
    assert np.all(np.isfinite(jax.grad(lambda v: jnp.sum(safe_norm(v)))(x)))
