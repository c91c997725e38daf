import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jax.test_util import check_grads

from mannlab.memory.usage import deallocate, retention, usage_update

unit = st.floats(0, 1, width=32)


def test_retention_hand_values():
    f = jnp.array([0.5, 1.0])
    w = jnp.array([[1.0, 0.0, 0.5], [0.0, 0.5, 0.5]])
    np.testing.assert_allclose(retention(f, w), [0.5, 0.5, 0.75 * 0.5], rtol=1e-6)


def test_usage_update_matches_paper_for_one_head():
    u = jnp.array([0.1, 0.6, 0.0, 1.0])
    w = jnp.array([0.5, 0.2, 0.3, 0.0])
    psi = jnp.array([1.0, 0.5, 1.0, 0.0])
    paper = (u + w - u * w) * psi
    np.testing.assert_allclose(usage_update(u, w[None], psi), paper, rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(arrays(np.float32, 6, elements=unit), arrays(np.float32, (2, 6), elements=unit),
       arrays(np.float32, 2, elements=unit))
def test_usage_stays_in_unit_interval(u, w_read, f):
    w_write = jnp.asarray(w_read[:1] / max(1.0, float(w_read[:1].sum())))
    psi = retention(jnp.asarray(f), jnp.asarray(w_read))
    new = np.asarray(usage_update(jnp.asarray(u), w_write, psi))
    assert np.all(new >= 0) and np.all(new <= 1 + 1e-6)
    assert np.all(np.asarray(psi) >= 0) and np.all(np.asarray(psi) <= 1)


def test_deallocate_scales_rows():
    m = jnp.ones((3, 2))
    np.testing.assert_allclose(deallocate(m, jnp.array([1.0, 0.5, 0.0])),
                               [[1, 1], [0.5, 0.5], [0, 0]])


def test_gradients():
    f, w = jnp.array([0.3, 0.8]), jnp.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.1]])
    check_grads(retention, (f, w), order=1, modes=["rev"], eps=1e-3, atol=1e-2, rtol=1e-2)
    check_grads(usage_update, (jnp.array([0.1, 0.9, 0.5]), w[:1], jnp.array([0.5, 1.0, 0.2])),
                order=1, modes=["rev"], eps=1e-3, atol=1e-2, rtol=1e-2)
