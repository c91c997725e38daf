import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jax.test_util import check_grads

from mannlab.memory.location import circular_shift, interpolate, sharpen
from mannlab.memory.ntm_addressing import address


def test_interpolate_hand_values():
    wc = jnp.array([[1.0, 0.0, 0.0]])
    wp = jnp.array([[0.0, 0.0, 1.0]])
    np.testing.assert_allclose(interpolate(wc, wp, jnp.array([0.25])), [[0.25, 0.0, 0.75]])


def test_circular_shift_moves_and_wraps():
    w = jnp.array([[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    forward = jnp.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    backward = jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(circular_shift(w, forward), [[1, 0, 0, 0], [0, 1, 0, 0]])
    np.testing.assert_allclose(circular_shift(w, backward), [[0, 0, 1, 0], [0, 0, 0, 1]])


def test_circular_shift_mixes_offsets_by_their_probabilities():
    w = jnp.array([[0.0, 1.0, 0.0, 0.0, 0.0]])
    s = jnp.array([[0.1, 0.2, 0.7]])  # offsets -1, 0, +1
    np.testing.assert_allclose(circular_shift(w, s), [[0.1, 0.2, 0.7, 0.0, 0.0]], atol=1e-7)
    s2 = jnp.array([[0.0, 0.0, 0.0, 0.0, 1.0]])  # S = 2, offset +2
    np.testing.assert_allclose(circular_shift(w, s2), [[0, 0, 0, 1, 0]])


def test_sharpen_hand_values():
    w = jnp.array([[0.5, 0.25, 0.25]])
    np.testing.assert_allclose(sharpen(w, jnp.array([2.0])), [[2 / 3, 1 / 6, 1 / 6]], atol=1e-5)
    np.testing.assert_allclose(sharpen(w, jnp.array([1.0])), w, atol=1e-5)


def test_sharpen_edges_are_finite():
    w = jnp.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    for gamma in (1.0, 1.0 + 1e-7, 1e6):
        out = sharpen(w, jnp.array([gamma, gamma]))
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
        g = jax.grad(lambda ww, gg: sharpen(ww, gg)[:, 0].sum(), argnums=(0, 1))(
            w, jnp.array([gamma, gamma]))
        assert all(np.isfinite(x).all() for x in g)


def test_location_gradients_match_finite_differences():
    k = jax.random.split(jax.random.PRNGKey(1), 3)
    w = jax.nn.softmax(jax.random.normal(k[0], (2, 6)))
    s = jax.nn.softmax(jax.random.normal(k[1], (2, 3)))
    check_grads(circular_shift, (w, s), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
    check_grads(sharpen, (w, jnp.array([1.5, 3.0])), order=1, modes=["rev"], atol=1e-2,
                rtol=1e-2)


dist = st.integers(1, 12).flatmap(
    lambda n: arrays(np.float32, (2, n), elements=st.floats(0, 1, width=32)))


@settings(max_examples=40, deadline=None)
@given(dist, st.floats(0, 1), st.floats(1, 50), st.data())
def test_addressing_pipeline_yields_distributions(raw, gate, gamma, data):
    n = raw.shape[1]
    prev = raw / np.maximum(raw.sum(-1, keepdims=True), 1e-6)
    prev[prev.sum(-1) == 0, 0] = 1.0
    memory = data.draw(arrays(np.float32, (n, 3), elements=st.floats(-5, 5, width=32)))
    shifts = jax.nn.softmax(jnp.asarray(data.draw(
        arrays(np.float32, (2, 3), elements=st.floats(-5, 5, width=32)))))
    w = np.asarray(address(jnp.asarray(memory), jnp.asarray(prev), jnp.ones((2, 3)),
                           jnp.array([1.0, 10.0]), jnp.full(2, gate), shifts,
                           jnp.full(2, gamma)))
    assert np.all(w >= 0) and np.all(np.isfinite(w))
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-4)


def sharpen_reference(w, gamma):
    """NTM eq. 9 in float64, without EPS."""
    w = np.asarray(w, np.float64)
    p = (w / w.max(-1, keepdims=True)) ** np.asarray(gamma, np.float64)[:, None]
    return p / p.sum(-1, keepdims=True)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([2, 5, 16, 128]), st.floats(-2.0, 1.5), st.booleans(),
       st.lists(st.floats(1.0, 50.0), min_size=2, max_size=2), st.integers(0, 2**31 - 1))
def test_sharpen_stays_within_its_eps_bound_on_distributions(n, log_temp, half_zero, gamma,
                                                           seed):
    # sharpen keeps an absolute EPS because eq. 9 only sees distributions
    # (a fixed scale: the largest entry is >= 1 / N). On those it is eq. 9
    # up to (gamma + 1) N EPS, flat or peaked, with or without zero entries.
    logits = np.random.default_rng(seed).normal(size=(2, n)) * 10.0 ** log_temp
    w = np.exp(logits - logits.max(-1, keepdims=True))
    if half_zero and n > 2:
        w[:, : n // 2] = 0.0
    w = (w / w.sum(-1, keepdims=True)).astype(np.float32)
    gamma = np.asarray(gamma, np.float32)
    out = np.asarray(sharpen(jnp.asarray(w), jnp.asarray(gamma)))
    bound = (gamma[:, None] + 1) * n * 1e-6
    assert np.all(np.abs(out - sharpen_reference(w, gamma)) <= bound)
