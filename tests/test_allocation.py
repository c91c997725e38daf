import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jax.test_util import check_grads

from mannlab.memory.allocation import (
    USAGE_EPS,
    allocation_weighting,
    allocation_weighting_by_sort,
    exclusive_cumprod,
    sum_over_predecessors,
    usage_order_keys,
    write_weighting,
)

usages = arrays(np.float32, st.integers(1, 12), elements=st.floats(0, 1, width=32))


def test_allocation_closed_form():
    # sorted order: 0.1 (idx 2), 0.2 (idx 0), 0.5 (idx 1), 0.9 (idx 3)
    u = jnp.array([0.2, 0.5, 0.1, 0.9])
    expected = np.array([(1 - 0.2) * 0.1, (1 - 0.5) * 0.1 * 0.2, 1 - 0.1,
                         (1 - 0.9) * 0.1 * 0.2 * 0.5])
    np.testing.assert_allclose(allocation_weighting(u), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(allocation_weighting(u, eps=0.0), expected, rtol=1e-5)


def test_allocation_ties_by_index():
    a = allocation_weighting(jnp.array([0.5, 0.5, 0.5]), eps=0.0)
    np.testing.assert_allclose(a, [0.5, 0.25, 0.125], rtol=1e-6)


def test_exclusive_cumprod():
    np.testing.assert_allclose(exclusive_cumprod(jnp.array([0.5, 0.2, 0.1, 1.0])),
                               [1.0, 0.5, 0.1, 0.01], rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(usages)
def test_allocation_invariants(u):
    a = np.asarray(allocation_weighting(jnp.asarray(u)))
    assert np.all(a >= 0) and np.all(a <= 1 + 1e-6)
    assert a.sum() <= 1 + 1e-5
    # the least used location (the first of equals; subnormal usage is 0)
    # gets the most allocation
    assert a[np.argmin(np.asarray(usage_order_keys(jnp.asarray(u))))] >= a.max() - 1e-6


def test_equal_usages_are_ordered_by_index():
    """11 equal usages: XLA's vectorised loop and its scalar remainder once
    rounded them differently, which put locations 8-10 first (hypothesis)."""
    u = jnp.full(11, 0.67127323, jnp.float32)
    a = np.asarray(allocation_weighting(u))
    assert np.all(np.diff(a) < 0), a
    np.testing.assert_allclose(a, allocation_weighting_by_sort(u), rtol=1e-5)
    subnormal = allocation_weighting(jnp.array([5.19404e-40, 0.0], jnp.float32))
    assert subnormal[0] > subnormal[1]  # a tie with 0: index order


def test_empty_memory_allocates_first_location():
    a = allocation_weighting(jnp.zeros(5))
    np.testing.assert_allclose(a, [1 - USAGE_EPS, 0, 0, 0, 0], atol=1e-5)


def test_gradients_finite_at_edges():
    f = lambda u: jnp.sum(allocation_weighting(u) * jnp.arange(1.0, u.shape[0] + 1))
    for u in (jnp.zeros(6), jnp.ones(6), jnp.full(6, 0.5), jnp.array([0.0, 1, 0, 1, 0.3, 0.3])):
        g = jax.grad(f)(u)
        assert np.all(np.isfinite(g)), (u, g)


def test_gradients_match_finite_differences():
    u = jnp.array([0.2, 0.5, 0.1, 0.9, 0.35])  # well separated: the sort is locally constant
    # the sort-free version has a hand-written VJP (reverse mode only)
    check_grads(allocation_weighting, (u,), order=1, modes=["rev"], eps=1e-3,
                atol=2e-2, rtol=2e-2)
    check_grads(allocation_weighting_by_sort, (u,), order=1, modes=["rev", "fwd"], eps=1e-3,
                atol=2e-2, rtol=2e-2)


@settings(max_examples=25, deadline=None)
@given(usages, st.integers(0, 2**31 - 1))
def test_sort_free_equals_sorted_values_and_gradients(u, seed):
    # ties (including the all-zero and all-one edges) keep the index order
    u = jnp.asarray(u)
    for x in (u, jnp.round(u * 4) / 4, jnp.zeros_like(u), jnp.ones_like(u)):
        np.testing.assert_allclose(allocation_weighting(x), allocation_weighting_by_sort(x),
                                   rtol=1e-5, atol=1e-7)
        probe = jax.random.normal(jax.random.key(seed), x.shape)
        g_fast = jax.grad(lambda v, q=probe: jnp.sum(allocation_weighting(v) * q))(x)
        g_ref = jax.grad(lambda v, q=probe: jnp.sum(allocation_weighting_by_sort(v) * q))(x)
        assert np.all(np.isfinite(g_fast))
        np.testing.assert_allclose(g_fast, g_ref, rtol=1e-4, atol=1e-5)
    batched = jax.vmap(allocation_weighting)(jnp.stack([u, u[::-1]]))
    np.testing.assert_allclose(batched[1], allocation_weighting_by_sort(u[::-1]), rtol=1e-5,
                               atol=1e-7)


def test_write_weighting():
    alloc = jnp.array([0.7, 0.2, 0.1])
    content = jnp.array([[0.0, 0.0, 1.0]])
    w = write_weighting(alloc, content, jnp.array([0.25]), jnp.array([0.8]))
    np.testing.assert_allclose(w, 0.8 * (0.25 * alloc[None] + 0.75 * content), rtol=1e-6)
    assert float(w.sum()) <= 1.0
    zero = write_weighting(alloc, content, jnp.array([1.0]), jnp.array([0.0]))
    np.testing.assert_allclose(zero, 0.0)
    check_grads(write_weighting, (alloc, content, jnp.array([0.25]), jnp.array([0.8])), order=1,
                modes=["rev"], eps=1e-3, atol=1e-2, rtol=1e-2)


def test_sum_over_predecessors_hand_computed_and_its_gradient():
    # order by keys, ties by index: 1 (0.1), 0 (0.3), 3 (0.3), 2 (0.7)
    keys = jnp.array([0.3, 0.1, 0.7, 0.3])
    values = jnp.array([1.0, 10.0, 100.0, 1000.0])
    np.testing.assert_allclose(sum_over_predecessors(keys, values), [10.0, 0.0, 1011.0, 11.0])
    check_grads(lambda v: sum_over_predecessors(keys, v), (values / 1000,), order=1,
                modes=["rev"], eps=1e-2)
    assert not jnp.any(jax.grad(lambda k: jnp.sum(sum_over_predecessors(k, values)))(keys))
