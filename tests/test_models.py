"""The shared model interface: scan equals hand stepping, padding is inert."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mannlab.models.lstm import LSTM
from mannlab.models.ntm import NTM

I, O, B, T = 5, 3, 2, 6


def make(kind):
    key = jax.random.PRNGKey(0)
    small = {"controller_size": 8, "memory_size": 7, "memory_width": 4, "key": key}
    return {
        "lstm": lambda: LSTM(I, O, hidden_size=8, layers=2, key=key),
        "ntm-shared": lambda: NTM(I, O, shared_head=True, **small),
        "ntm-separate": lambda: NTM(I, O, read_heads=2, write_heads=2, **small),
        "ntm-feedforward": lambda: NTM(I, O, controller="feedforward", **small),
        "ntm-learned": lambda: NTM(I, O, memory_init="learned", **small),
        "ntm-random": lambda: NTM(I, O, memory_init="random", shift_range=2, **small),
    }[kind]()


KINDS = ["lstm", "ntm-shared", "ntm-separate", "ntm-feedforward", "ntm-learned", "ntm-random"]
xs = jax.random.normal(jax.random.PRNGKey(1), (T, B, I))


@pytest.mark.parametrize("kind", KINDS)
def test_scan_equals_stepping_by_hand(kind):
    model = make(kind)
    ys, final = model(xs, model.init_state(B))
    state = model.init_state(B)
    step = eqx.filter_jit(lambda m, s, x: m.step(s, x))
    for t in range(T):
        state, y, _ = step(model, state, xs[t])
        np.testing.assert_allclose(ys[t], y, atol=1e-5)
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(state)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert ys.shape == (T, B, O)


@pytest.mark.parametrize("kind", ["lstm", "ntm-separate"])
def test_padded_steps_leave_state_untouched(kind):
    model = make(kind)
    mask = jnp.array([[True, True]] * 3 + [[True, False]] * 3)
    _, padded = model(xs, model.init_state(B), mask)
    _, short = model(xs[:3, 1:], model.init_state(1))
    for a, b in zip(jax.tree.leaves(padded), jax.tree.leaves(short)):
        np.testing.assert_allclose(a[1:], b, atol=1e-6)


def test_ntm_trace_shapes_and_weightings():
    model = make("ntm-separate")
    _, _, trace = model(xs, model.init_state(B), with_trace=True)
    assert trace.read_weights.shape == (T, B, 2, 7)
    assert trace.write_weights.shape == (T, B, 2, 7)
    assert trace.memory.shape == (T, B, 7, 4)
    np.testing.assert_allclose(trace.read_weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(trace.write_weights >= 0)


def test_shared_head_reads_with_its_write_weighting():
    model = make("ntm-shared")
    _, _, trace = model(xs, model.init_state(B), with_trace=True)
    np.testing.assert_array_equal(trace.read_weights, trace.write_weights)


def test_initial_heads_are_focused_on_one_row():
    state = make("ntm-separate").init_state(3)
    np.testing.assert_array_equal(state.weights[:, :, 0], 1.0)


def test_only_learned_memory_gets_gradients():
    for kind, trained in [("ntm-learned", True), ("ntm-random", False)]:
        model = make(kind)
        grads = jax.grad(lambda m: m(xs, m.init_state(B))[0].sum())(model)
        assert bool(jnp.any(grads.initial_memory != 0)) == trained


def test_bad_shapes_and_options_raise_clear_errors():
    model = make("lstm")
    with pytest.raises(ValueError, match=r"xs must be \[T, B, I\]"):
        model(xs[0], model.init_state(B))
    with pytest.raises(ValueError, match="shared_head"):
        NTM(I, O, shared_head=True, read_heads=2, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="memory_init"):
        NTM(I, O, memory_init="zeros", key=jax.random.PRNGKey(0))


def test_ntm_remat_changes_nothing():
    key = jax.random.PRNGKey(0)
    small = {"controller_size": 8, "memory_size": 7, "memory_width": 4, "read_heads": 2, "key": key}
    plain, remat = NTM(I, O, remat=False, **small), NTM(I, O, remat=True, **small)

    def loss(model):
        ys, _ = model(xs, model.init_state(B))
        return jnp.sum(jnp.sin(ys))

    np.testing.assert_allclose(loss(plain), loss(remat), rtol=1e-6)
    g1, g2 = eqx.filter_grad(loss)(plain), eqx.filter_grad(loss)(remat)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_parameters_are_not_weakly_typed(kind):
    """A weakly typed parameter turns strongly typed after the first optimiser
    update, so every jitted training program would compile twice."""
    params = jax.tree.leaves(eqx.filter(make(kind), eqx.is_array))
    assert not [p.shape for p in params if p.weak_type]
