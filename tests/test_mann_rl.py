"""MANN-RL model: interface, BatchNorm modes, parameter groups, gradient isolation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mannlab.config import parse_config
from mannlab.models.mann_rl import BatchNorm, MannRL, group_filter, param_labels


def _model(**kw):
    return MannRL(5, 4, memory_size=6, action_hidden=(8,), key=jax.random.PRNGKey(0), **kw)


def test_interface_and_trace():
    m = _model()
    xs = jax.nn.one_hot(jnp.array([[0, 1], [2, 3], [4, 0]]), 5)
    state = m.init_state(2)
    assert state.vector.shape == (2, 6)
    ys, final, trace = m(xs, state, with_trace=True)
    assert ys.shape == (3, 2, 4)
    assert trace.memory_vector.shape == (3, 2, 6)
    assert np.all((trace.next_memory >= 0) & (trace.next_memory <= 1))
    # the trace is the memory read at each step: step t+1 reads step t's next memory
    np.testing.assert_allclose(trace.memory_vector[1:], trace.next_memory[:-1])
    np.testing.assert_allclose(final.vector, trace.next_memory[-1])


def test_the_no_memory_control_holds_the_memory_at_its_initial_value():
    m = _model(memory_init=0.25, no_memory=True)
    xs = jax.nn.one_hot(jnp.array([[0, 1], [2, 3], [4, 0]]), 5)
    _, final, trace = m(xs, m.init_state(2), with_trace=True)
    np.testing.assert_array_equal(trace.memory_vector, 0.25)
    np.testing.assert_array_equal(final.vector, 0.25)
    _, record, _ = m.train_sequence(xs, m.init_state(2), jnp.ones((3, 2), bool))
    np.testing.assert_array_equal(record.memory, 0.25)
    # each output depends only on the current input: reordering time changes nothing
    ys, _ = m(xs, m.init_state(2))
    ys_reversed, _ = m(xs[::-1], m.init_state(2))
    np.testing.assert_allclose(ys, ys_reversed[::-1], rtol=1e-6)
    assert not _model(memory_init=0.25).no_memory


def test_evaluation_is_per_sequence():
    """Eval mode uses running averages: a sequence's output ignores its batch-mates."""
    m = _model(embedding_size=7)
    xs = jax.nn.one_hot(jnp.array([[0, 1, 2], [3, 4, 0]]), 5)
    ys, _ = m(xs, m.init_state(3))
    ys1, _ = m(xs[:, :1], m.init_state(1))
    np.testing.assert_allclose(ys[:, :1], ys1, rtol=1e-5, atol=1e-6)


def test_train_sequence_updates_stats_and_masks_padding():
    m = _model()
    xs = jax.nn.one_hot(jnp.array([[0, 1], [2, 3], [4, 0]]), 5)
    mask = jnp.array([[True, True], [True, True], [True, False]])
    ys, record, new = m.train_sequence(xs, m.init_state(2), mask)
    assert ys.shape == (3, 2, 4) and record.memory.shape == (3, 2, 6)
    bn_old, bn_new = m.memory.body.layers[1], new.memory.body.layers[1]
    assert not np.allclose(bn_old.running_mean, bn_new.running_mean)
    # padding rows do not enter the statistics: same stats as without that row
    _, _, new2 = m.train_sequence(xs.at[2, 1].set(xs[2, 1] * 100.0), m.init_state(2), mask)
    np.testing.assert_allclose(new.action.body.layers[1].running_mean,
                               new2.action.body.layers[1].running_mean, rtol=1e-6)


def test_batchnorm_modes():
    bn = BatchNorm(3)
    x = jnp.array([[1.0, 2.0, 3.0], [3.0, 6.0, 3.0]])
    y, new = bn(x, None, True)
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(new.running_mean, 0.1 * x.mean(0), rtol=1e-6)
    y_eval, same = bn(x)
    assert same is bn
    np.testing.assert_allclose(y_eval, x / np.sqrt(1 + 1e-5), rtol=1e-6)


def test_groups_and_gradient_isolation():
    m = _model()
    labels = jax.tree.leaves(param_labels(m))
    assert set(labels) == {"action", "memory", "stat"}
    params, static = eqx.partition(m, eqx.is_array)
    action_p, rest = eqx.partition(params, group_filter(params, "action"))
    xs = jax.nn.one_hot(jnp.array([[0, 1], [2, 3], [4, 0]]), 5)

    def loss(ap, rp):
        model = eqx.combine(ap, rp, static)
        ys, _, _ = model.train_sequence(xs, model.init_state(2), jnp.ones((3, 2), bool))
        return jnp.sum(ys ** 2)

    g_rest = jax.grad(loss, argnums=1)(action_p, rest)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(g_rest))
    g_action = jax.grad(loss)(action_p, rest)
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(g_action))


def test_config_builds_and_rejects_unknown_fields():
    raw = {"task": {"name": "logic", "source": "generator"},
           "model": {"name": "mann_rl", "memory_size": 12},
           "train": {"mann_rl": {"history": 4}}}
    cfg = parse_config(raw)
    model = cfg.model.build(11, 11, jax.random.PRNGKey(0))
    assert model.memory_size == 12 and cfg.train.mann_rl.history == 4
    assert parse_config({**raw, "train": {}}).train.mann_rl.settle == 8  # the paper's recipe
    with pytest.raises(ValueError, match="model.history"):  # the recipe is training's
        parse_config({**raw, "model": {"name": "mann_rl", "history": 4}})
    with pytest.raises(ValueError, match="train.mann_rl: only for model mann_rl"):
        parse_config({**raw, "model": {"name": "lstm"}})
    raw["model"]["memorysize"] = 3
    try:
        parse_config(raw)
    except ValueError as err:
        assert "memorysize" in str(err)
    else:
        raise AssertionError("unknown field accepted")
