import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jax.test_util import check_grads

from mannlab.memory.temporal_links import (
    directional_weightings,
    directional_weightings_from_previous,
    link_step,
    link_update,
    precedence_update,
    sharpen_distribution,
)


def random_weightings(key, n, total=0.9):
    return jax.nn.softmax(3 * jax.random.normal(key, (n,))) * total


def test_hand_sequence_of_one_hot_writes():
    n = 4
    link, p = jnp.zeros((n, n)), jnp.zeros(n)
    for i in (0, 2, 1):  # write 0, then 2, then 1
        w = jnp.zeros(n).at[i].set(1.0)
        link = link_update(link, p, w)
        p = precedence_update(p, w)
    expected = np.zeros((n, n))
    expected[2, 0] = 1.0  # 2 written after 0
    expected[1, 2] = 1.0  # 1 written after 2
    np.testing.assert_allclose(link, expected, atol=1e-6)
    np.testing.assert_allclose(p, [0, 1, 0, 0], atol=1e-6)
    fwd, bwd = directional_weightings(link, jnp.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0]]))
    np.testing.assert_allclose(fwd, [[0, 0, 1, 0], [0, 1, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(bwd, [[0, 0, 0, 0], [1, 0, 0, 0]], atol=1e-6)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 10), st.floats(0.0, 1.0))
def test_link_invariants(seed, n, total):
    keys = jax.random.split(jax.random.key(seed), 5)
    link, p = jnp.zeros((n, n)), jnp.zeros(n)
    for k in keys:
        w = random_weightings(k, n, total)
        link = link_update(link, p, w)
        p = precedence_update(p, w)
        L = np.asarray(link)
        assert np.all(np.diag(L) == 0)
        assert np.all(L >= -1e-6) and np.all(L <= 1 + 1e-6)
        assert np.all(L.sum(0) <= 1 + 1e-5) and np.all(L.sum(1) <= 1 + 1e-5)
        assert float(p.sum()) <= 1 + 1e-5


def fused_inputs(n=6, r=2, seed=0):
    k = jax.random.split(jax.random.key(seed), 4)
    link = jax.random.uniform(k[0], (n, n)) / n * (1 - jnp.eye(n))
    p = random_weightings(k[1], n, 0.6)
    w = random_weightings(k[2], n, 0.8)
    reads = jax.vmap(lambda kk: random_weightings(kk, n, 1.0))(jax.random.split(k[3], r))
    return link, p, w, reads


def plain_step(link, p, w, reads):
    new = link_update(link, p, w)
    return (new,) + directional_weightings(new, reads)


def test_fused_link_step_equals_plain_values_and_gradients():
    args = fused_inputs()
    for a, b in zip(link_step(*args), plain_step(*args)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    probe = [jax.random.normal(jax.random.key(i), o.shape) for i, o in enumerate(link_step(*args))]
    loss = lambda fn: lambda *a: sum(jnp.sum(o * q) for o, q in zip(fn(*a), probe))
    g_fused = jax.grad(loss(link_step), argnums=(0, 1, 2, 3))(*args)
    g_plain = jax.grad(loss(plain_step), argnums=(0, 1, 2, 3))(*args)
    for a, b in zip(g_fused, g_plain):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # link_step requires a zero diagonal of L_{t-1} (every link_update output
    # has one): finite differences must stay in that subspace
    n = args[0].shape[0]
    on_links = lambda link, *rest: link_step(link * (1 - jnp.eye(n)), *rest)
    check_grads(on_links, args, order=1, modes=["rev"], eps=1e-3, atol=1e-2, rtol=1e-2)


def test_weightings_from_previous_link_equal_plain():
    for seed in range(4):
        link, p, w, reads = fused_inputs(n=9, r=4, seed=seed)
        fwd, bwd = directional_weightings_from_previous(link, p, w, reads)
        ref_fwd, ref_bwd = directional_weightings(link_update(link, p, w), reads)
        np.testing.assert_allclose(fwd, ref_fwd, atol=1e-6)
        np.testing.assert_allclose(bwd, ref_bwd, atol=1e-6)


def test_fused_link_step_at_the_edges():
    # one-hot writes (1 - w_i - w_j = 0 on a whole row and column), nothing
    # written, the empty start, and ties: same values and gradients, finite
    n, r = 6, 3
    one_hot = jnp.zeros(n).at[2].set(1.0)
    uniform = jnp.full(n, 1.0 / n)
    link = jax.random.uniform(jax.random.key(3), (n, n)) / n * (1 - jnp.eye(n))
    reads = jnp.stack([one_hot, uniform, jnp.zeros(n)])
    cases = [(link, uniform, one_hot, reads), (link, one_hot, jnp.zeros(n), reads),
             (jnp.zeros((n, n)), jnp.zeros(n), one_hot, jnp.zeros((r, n))),
             (link, uniform, uniform, reads)]
    def loss(fn, probe):
        return lambda *a: sum(jnp.sum(o * q) for o, q in zip(fn(*a), probe))

    for args in cases:
        for a, b in zip(link_step(*args), plain_step(*args)):
            np.testing.assert_allclose(a, b, atol=1e-6)
        probe = [jnp.ones_like(o) + o for o in plain_step(*args)]
        g_fused = jax.grad(loss(link_step, probe), argnums=(0, 1, 2, 3))(*args)
        g_plain = jax.grad(loss(plain_step, probe), argnums=(0, 1, 2, 3))(*args)
        for a, b in zip(g_fused, g_plain):
            assert np.all(np.isfinite(a))
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_fused_link_step_under_vmap():
    args = [jnp.stack([a, a * 0.5]) for a in fused_inputs()]
    out = jax.vmap(link_step)(*args)
    ref = jax.vmap(plain_step)(*args)
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a, b, atol=1e-6)
    probe = [jax.random.normal(jax.random.key(i), o.shape) for i, o in enumerate(ref)]
    loss = lambda fn: lambda *a: sum(jnp.sum(o * q) for o, q in zip(jax.vmap(fn)(*a), probe))
    g_fused = jax.grad(loss(link_step), argnums=(0, 1, 2, 3))(*args)
    g_plain = jax.grad(loss(plain_step), argnums=(0, 1, 2, 3))(*args)
    for a, b in zip(g_fused, g_plain):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_sharpen_distribution():
    d = jnp.array([[0.1, 0.3, 0.0, 0.6], [0.0, 0.0, 0.0, 0.0]])
    s = sharpen_distribution(d, jnp.array([2.0, 3.0]))
    np.testing.assert_allclose(s[0], np.array([0.01, 0.09, 0, 0.36]) / 0.46, rtol=1e-4)
    np.testing.assert_allclose(s[1], 0.0)  # nothing linked stays nothing
    assert float(s[0].max()) > 0.6  # sharper: the largest entry grows
    g = jax.grad(lambda x, e: sharpen_distribution(x, e).sum() + sharpen_distribution(x, e)[0, 3],
                 argnums=(0, 1))(d, jnp.array([2.0, 3.0]))
    assert all(np.all(np.isfinite(x)) for x in g)


def sharpen_reference(d, s):
    """S(d, s) of Csordas & Schmidhuber 2019 in float64, from its definition
    (written with d / max d so that float64 does not underflow either)."""
    d = np.asarray(d, np.float64)
    top = d.max(-1, keepdims=True)
    r = np.divide(d, top, out=np.zeros_like(d), where=top > 0)
    p = r ** np.asarray(s, np.float64)[:, None]
    total = p.sum(-1, keepdims=True)
    return np.divide(p, total, out=np.zeros_like(p), where=total > 0)


def test_sharpen_distribution_the_issues_cases():
    # d = 0.01 e_3, s = 3: all of the mass on index 3 (with EPS in the
    # denominator this was 0.5)
    d = jnp.zeros((1, 8)).at[0, 3].set(0.01)
    np.testing.assert_allclose(sharpen_distribution(d, jnp.array([3.0])),
                               np.eye(8)[3:4], atol=1e-7)
    # uniform 1/128, s = 5: still uniform (was summing to 0.0037)
    d = jnp.full((1, 128), 1 / 128)
    np.testing.assert_allclose(sharpen_distribution(d, jnp.array([5.0])), d, rtol=1e-6)
    # a forward weighting of total mass 0.03, s = 3.4: a distribution (was
    # summing to 0.18)
    d = 0.03 * jax.nn.softmax(3 * jax.random.normal(jax.random.key(7), (2, 128)))
    s = jnp.array([3.4, 3.4])
    out = sharpen_distribution(d, s)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out, sharpen_reference(d, s), rtol=1e-5, atol=1e-10)


weighting_rows = st.integers(1, 12).flatmap(
    lambda n: arrays(np.float32, (3, n),
                     elements=st.one_of(st.just(0.0), st.floats(-4.0, 0.0).map(
                         lambda e: float(np.float32(10.0 ** e))))))


@settings(max_examples=60, deadline=None)
@given(weighting_rows, st.lists(st.floats(1.0, 20.0), min_size=3, max_size=3),
       st.floats(-6.0, 4.0))
def test_sharpen_distribution_is_scale_invariant(d, s, log_c):
    # S(c d, s) = S(d, s), c log-uniform in [1e-6, 1e4]. Tolerance: scaling
    # rounds c d (0.5 ulp) and r = d / max d again; S_i = r_i^s multiplies
    # a relative error of r by s, so s <= 20 stays within ~20 * 2 ulp
    # ~ 2.4e-6 (measured worst 3.9e-6 over 300 draws): rtol 1e-5, and atol
    # 1e-10 for entries so small that their relative error is larger.
    s = jnp.asarray(s, jnp.float32)
    c = np.float32(10.0 ** log_c)
    base = np.asarray(sharpen_distribution(jnp.asarray(d), s))
    scaled = np.asarray(sharpen_distribution(jnp.asarray(d * c), s))
    np.testing.assert_allclose(scaled, base, rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(base, sharpen_reference(d, s), rtol=1e-5, atol=1e-10)
    # sums to 1 whenever d has mass; an all-zero row stays zero
    has_mass = d.max(-1) > 0
    np.testing.assert_allclose(scaled.sum(-1)[has_mass], 1.0, atol=1e-6)
    assert np.all(scaled[~has_mass] == 0) and np.all(scaled >= 0)


def test_sharpen_distribution_tiny_weights_and_huge_sharpness():
    # entries of 1e-30 (squares and powers would underflow float32), s up
    # to 50, an all-zero row: exact values, no NaN, finite gradients
    # (a row whose largest entry is below NEGLIGIBLE = 1e-30 counts as zero)
    d = jnp.array([[1e-30, 2e-30, 0.0, 1e-30], [3e-30, 3e-30, 3e-30, 3e-30],
                   [0.0, 0.0, 0.0, 0.0], [5e-31, 1e-31, 0.0, 0.0]])
    for s in (1.0, 7.0, 50.0):
        sharp = jnp.full(4, s)
        out = sharpen_distribution(d, sharp)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out[:2], sharpen_reference(d[:2], sharp[:2]),
                                   rtol=1e-5, atol=1e-30)
        np.testing.assert_allclose(out.sum(-1), [1.0, 1.0, 0.0, 0.0], atol=1e-6)
        g = jax.grad(lambda x, e: jnp.sum(sharpen_distribution(x, e) * jnp.arange(4.0)),
                     argnums=(0, 1))(d, sharp)
        assert all(np.all(np.isfinite(x)) for x in g)
        np.testing.assert_array_equal(g[0][2:], 0.0)  # all-zero rows: no gradient


def test_sharpen_distribution_gradients_match_finite_differences():
    k = jax.random.split(jax.random.key(11), 2)
    d = 0.05 + jax.nn.softmax(jax.random.normal(k[0], (3, 6)))  # away from 0
    s = jnp.array([1.0, 2.5, 6.0])
    check_grads(sharpen_distribution, (d, s), order=1, modes=["fwd", "rev"],
                atol=1e-2, rtol=1e-2)
    # the same at a small scale: relative steps (finite differences need eps
    # below the entries)
    check_grads(lambda x, e: sharpen_distribution(x * 1e-4, e), (d, s), order=1,
                modes=["fwd", "rev"], atol=1e-2, rtol=1e-2)
