import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from mannlab.memory.allocation import LOG_PRODUCTS_NAME, allocation_weighting
from mannlab.memory.read_write import erase_and_add, read
from mannlab.memory.usage import deallocate, retention
from mannlab.models.base import SequenceModel
from mannlab.models.dnc import (
    DNC,
    REMAT_POLICY,
    DNCState,
    DNCTrace,
    interface_size,
    split_interface,
)

I, O, N, W, R, H, B, T = 5, 4, 8, 6, 2, 16, 3, 7


def make(key=0, **kw):
    return DNC(I, O, controller_size=H, memory_size=N, memory_width=W, read_heads=R,
               key=jax.random.key(key), **kw)


def inputs(t=T, b=B, seed=1):
    return jax.random.normal(jax.random.key(seed), (t, b, I))


def warm_state(model, t=5):
    """A state with non-trivial memory, usage and links."""
    _, state = model(inputs(t), model.init_state(B))
    return state


def test_interface_and_shapes():
    model = make()
    assert isinstance(model, SequenceModel)
    assert model.interface.out_features == (W + 5) * R + 3 * W + 3
    xi = split_interface(jnp.zeros(interface_size(R, W)), R, W)
    assert xi.read_keys.shape == (R, W) and xi.read_modes.shape == (R, 3)
    assert float(xi.read_strengths.min()) >= 1.0
    np.testing.assert_allclose(xi.read_modes.sum(-1), 1.0, rtol=1e-6)
    state = model.init_state(B)
    assert isinstance(state, DNCState) and state.link.shape == (B, N, N)
    ys, final, traces = model(inputs(), state, with_trace=True)
    assert ys.shape == (T, B, O)
    assert isinstance(traces, DNCTrace) and traces.link is None
    assert traces.read_weights.shape == (T, B, R, N)
    assert traces.write_weights.shape == (T, B, 1, N)
    assert traces.read_modes.shape == (T, B, R, 3) and traces.memory.shape == (T, B, N, W)
    # invariants of the weightings along the way
    assert np.all(np.asarray(traces.read_weights.sum(-1)) <= 1 + 1e-5)
    assert np.all(np.asarray(traces.write_weights.sum(-1)) <= 1 + 1e-5)
    usage = np.asarray(traces.usage)
    assert np.all((usage >= 0) & (usage <= 1 + 1e-6))
    link = np.asarray(final.link)
    assert np.all(np.diagonal(link, axis1=1, axis2=2) == 0)
    assert np.all(link.sum(-1) <= 1 + 1e-5) and np.all(link.sum(-2) <= 1 + 1e-5)


def test_trace_links_option():
    model = make(trace_links=True)
    _, state, traces = model(inputs(), model.init_state(B), with_trace=True)
    assert traces.link.shape == (T, B, N, N)
    np.testing.assert_allclose(traces.link[-1], state.link)


def test_scan_equals_hand_stepping():
    model = make()
    xs = inputs()
    ys, final = model(xs, model.init_state(B))
    state = model.init_state(B)
    step = eqx.filter_jit(lambda m, s, x: m.step(s, x))
    for t in range(T):
        state, y, _ = step(model, state, xs[t])
        np.testing.assert_allclose(y, ys[t], atol=1e-5)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(final)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_read_vectors_feed_output_now_and_controller_next_step():
    model = make()
    state = warm_state(model)
    x = inputs(1)[0]
    new, y, trace = model.step(state, x)
    # r_t = M_t^T w_t^r, and y_t = W [h_t; r_t]
    reads = jax.vmap(read)(trace.memory, trace.read_weights)
    np.testing.assert_allclose(new.reads, reads, atol=1e-6)
    h = new.controller.hidden[-1]
    expected_y = jax.vmap(lambda hh, rr: model.readout(jnp.concatenate([hh, rr.ravel()])))(h, reads)
    np.testing.assert_allclose(y, expected_y, atol=1e-5)
    # the controller at t+1 sees [x_{t+1}; r_t]
    x2 = inputs(1, seed=7)[0]
    after, _, _ = model.step(new, x2)
    ctrl = jax.vmap(lambda s, xx, rr: model.controller(s, jnp.concatenate([xx, rr.ravel()]))[0])(
        new.controller, x2, new.reads)
    for a, b in zip(jax.tree.leaves(after.controller), jax.tree.leaves(ctrl)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # perturbing the reads (and nothing else) changes the controller's next state
    perturbed = new._replace(reads=new.reads + 1.0)
    changed, _, _ = model.step(perturbed, x2)
    assert not np.allclose(changed.controller.hidden[-1], after.controller.hidden[-1])


def test_padding_is_inert():
    model = make()
    xs = inputs()
    mask = jnp.ones((T, B), bool).at[4:, 1].set(False)
    _, final = model(xs, model.init_state(B), mask)
    _, prefix = model(xs[:4, 1:2], model.init_state(1))
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(prefix)):
        np.testing.assert_allclose(a[1:2], b, atol=1e-5)

    def loss(xs):  # the final state too: padded inputs could reach it, not earlier outputs
        ys, final = model(xs, model.init_state(B), mask)
        return jnp.sum(ys * mask[..., None]) + sum(jnp.sum(x) for x in jax.tree.leaves(final))

    g = jax.grad(loss)(xs)
    assert np.abs(g[:4, 1]).max() > 0
    np.testing.assert_allclose(g[4:, 1], 0.0)


def test_remat_changes_nothing():
    plain, remat = make(remat=False), make(remat=True)
    xs = inputs()

    def loss(model):
        ys, _ = model(xs, model.init_state(B))
        return jnp.sum(jnp.sin(ys))

    g1 = eqx.filter_grad(loss)(plain)
    g2 = eqx.filter_grad(loss)(remat)
    np.testing.assert_allclose(loss(plain), loss(remat), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(g1))


def test_fast_paths_equal_reference_formulation():
    """The hand-written VJPs and sort-free allocation (with remat and its
    policy) against plain autodiff of the paper's formulation
    (`kernels="reference"`, without remat): values and gradients over a whole
    sequence, long enough for the link matrix and usage to fill."""
    t = 12
    xs = inputs(t)

    def loss(model):
        ys, final = model(xs, model.init_state(B))
        return jnp.sum(jnp.sin(ys)) + jnp.sum(final.link * final.usage[:, :, None])

    value_fast, g_fast = eqx.filter_value_and_grad(loss)(make(remat=True))
    value_ref, g_ref = eqx.filter_value_and_grad(loss)(make(remat=False, kernels="reference"))
    np.testing.assert_allclose(value_fast, value_ref, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref)):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.abs(b).max()))


def extended(base: DNC, bias, **options) -> DNC:
    """A model with `options` whose shared parameters are `base`'s; the extra
    interface outputs (masks / sharpness) get zero weights and bias `bias`."""
    model = make(**options)
    extra = model.interface.out_features - base.interface.out_features
    weight = jnp.concatenate([base.interface.weight, jnp.zeros((extra, H))])
    b = jnp.concatenate([base.interface.bias, jnp.broadcast_to(jnp.asarray(bias), (extra,))])
    return eqx.tree_at(lambda m: (m.controller, m.readout, m.interface.weight, m.interface.bias),
                       model, (base.controller, base.readout, weight, b))


def step_both(base, other):
    state = warm_state(base)
    x = inputs(1, seed=3)[0]
    return state, base.step(state, x), other.step(state, x)


def test_content_masking_option():
    base = make()
    assert make(content_masking=True).interface.out_features == base.interface.out_features + (R + 1) * W
    # masks of ones (sigmoid of a large bias): exactly the plain DNC
    ones = extended(base, 40.0, content_masking=True)
    _, (_, y1, _), (_, y2, _) = step_both(base, ones)
    np.testing.assert_allclose(y1, y2, atol=1e-5)
    # real masks change the content lookups (write and read weightings) but
    # not what does not use content: usage and allocation of this step
    masked = extended(base, jnp.linspace(-3, 3, (R + 1) * W), content_masking=True)
    _, (_s1, y1, t1), (_s2, y2, t2) = step_both(base, masked)
    np.testing.assert_allclose(t1.usage, t2.usage, atol=1e-6)
    np.testing.assert_allclose(t1.allocation, t2.allocation, atol=1e-6)
    np.testing.assert_allclose(t1.free_gates, t2.free_gates, atol=1e-6)
    assert not np.allclose(t1.write_weights, t2.write_weights, atol=1e-4)
    assert not np.allclose(t1.read_weights, t2.read_weights, atol=1e-4)


def test_deallocation_erase_option():
    base = make()
    erase = make(deallocation_erase=True)  # same key and sizes: the same parameters
    for a, b in zip(jax.tree.leaves(base), jax.tree.leaves(erase)):
        np.testing.assert_array_equal(a, b)
    state, (s1, _y1, t1), (s2, _y2, t2) = step_both(base, erase)
    for name in ("usage", "allocation", "write_weights", "free_gates", "read_modes"):
        np.testing.assert_allclose(getattr(t1, name), getattr(t2, name), atol=1e-6)
    np.testing.assert_allclose(s1.link, s2.link, atol=1e-6)
    # memory: freed rows scaled by the retention vector before the write
    psi = jax.vmap(retention)(t1.free_gates, state.read_weights)
    xi = jax.vmap(base.split)(s1.controller.hidden[-1])
    expected = jax.vmap(lambda m, p, w, e, v: erase_and_add(deallocate(m, p), w, e, v))(
        state.memory, psi, t1.write_weights, xi.erase, xi.write_vector)
    np.testing.assert_allclose(s2.memory, expected, atol=1e-5)
    assert not np.allclose(s1.memory, s2.memory, atol=1e-4)


def test_link_sharpness_option():
    base = make()
    assert make(link_sharpness=True).interface.out_features == base.interface.out_features + 2 * R
    sharp = extended(base, 3.0, link_sharpness=True)  # sharpness 1 + softplus(3) ~ 4
    _, (s1, _y1, t1), (s2, _y2, t2) = step_both(base, sharp)
    for name in ("usage", "allocation", "write_weights", "memory", "read_modes"):
        np.testing.assert_allclose(getattr(t1, name), getattr(t2, name), atol=1e-6)
    np.testing.assert_allclose(s1.link, s2.link, atol=1e-6)
    assert not np.allclose(t1.read_weights, t2.read_weights, atol=1e-4)


def test_feedforward_controller():
    model = make(controller="feedforward")
    ys, _ = model(inputs(), model.init_state(B))
    assert ys.shape == (T, B, O) and np.all(np.isfinite(ys))


def test_dnc_remat_policy_keeps_allocation_log_products(capsys):
    """A rematerialised DNC step saves the allocation's log-products [N], so
    recomputing the step skips the N x N comparison; nothing N x N is saved."""
    n = 6
    f = jax.checkpoint(lambda u: jnp.sum(allocation_weighting(u) ** 2), policy=REMAT_POLICY)
    jax.ad_checkpoint.print_saved_residuals(f, jnp.linspace(0.1, 0.9, n))
    saved = capsys.readouterr().out.splitlines()
    assert any(f"named '{LOG_PRODUCTS_NAME}'" in line for line in saved)
    assert all(line.startswith(f"f32[{n}]") for line in saved), saved
