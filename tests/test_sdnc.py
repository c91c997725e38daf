"""SDNC (models/sdnc.py): shapes, the sparse links it keeps, no N x T or
N x N array in the jaxpr of a whole training step, bad input, and the config."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mannlab.config import ConfigError, parse_config
from mannlab.memory.sparse_links import to_dense
from mannlab.models.sdnc import SDNC
from mannlab.tasks.copy import CopyTask
from test_sam import training_step_shapes

T, B, I, O = 8, 2, 5, 3
SMALL = {"controller_size": 12, "memory_size": 10, "memory_width": 4, "read_heads": 2,
         "top_k": 2, "link_k": 3}


def test_trace_and_links_without_cuts():
    """With K_L = N nothing is cut: both storages hold the same link matrix,
    zero on its diagonal, rows and columns summing to <= 1."""
    m = SDNC(I, O, key=jax.random.key(0), trace_memory=True, **{**SMALL, "link_k": 10})
    xs = jax.random.normal(jax.random.key(1), (T, B, I))
    ys, state, trace = eqx.filter_jit(lambda m: m(xs, m.init_state(B), with_trace=True))(m)
    assert ys.shape == (T, B, O) and trace.read_rows.shape == (T, B, 2, 2)
    assert trace.read_modes.shape == (T, B, 2, 3) and trace.memory.shape == (T, B, 10, 4)
    assert np.all(np.asarray(trace.read_row_weights).sum(-1) <= 1 + 1e-5)
    for b in range(B):
        link = np.asarray(to_dense(state.pred_ids[b], state.pred_vals[b], 10))
        assert link.max() > 0 and np.all(np.diag(link) == 0)
        assert np.all(link.sum(0) <= 1 + 1e-5) and np.all(link.sum(1) <= 1 + 1e-5)
        np.testing.assert_allclose(
            link.T, to_dense(state.succ_ids[b], state.succ_vals[b], 10), atol=1e-6)


@pytest.mark.slow  # one compile of the gradient: 10-25 s
def test_gradients_are_finite_and_links_are_cut_to_link_k():
    m = SDNC(I, O, key=jax.random.key(0), **SMALL)
    xs = jax.random.normal(jax.random.key(1), (T, B, I))

    def loss(model):
        ys, state = model(xs, model.init_state(B))
        return jnp.sum(ys ** 2), state

    (_, state), grads = eqx.filter_jit(jax.value_and_grad(loss, has_aux=True))(m)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    assert any(np.abs(g).max() > 0 for g in jax.tree.leaves(grads.interface))
    link = np.asarray(to_dense(state.pred_ids[0], state.pred_vals[0], 10))
    by_column = np.asarray(to_dense(state.succ_ids[0], state.succ_vals[0], 10)).T
    assert link.max() > 0
    assert (link > 0).sum(1).max() <= 3 and (by_column > 0).sum(0).max() <= 3


def test_no_n_by_t_or_n_by_n_array_in_the_training_step():
    N = 37
    task = CopyTask(bits=3, min_length=5, max_length=5)
    m = SDNC(task.input_size, task.output_size, key=jax.random.key(0), controller_size=7,
             memory_size=N, memory_width=5, read_heads=2, top_k=3, link_k=4)
    shapes, steps = training_step_shapes(m, task, 5, 2)
    assert any(N in s for s in shapes) and any(steps in s for s in shapes)
    bad = [s for s in shapes if (N in s and steps in s) or s.count(N) > 1]
    assert not bad, f"arrays with N and T or N twice: {sorted(set(bad))}"


@pytest.mark.parametrize("kw, message", [
    ({"link_k": 11}, "link_k: at most memory_size (10), got 11"),
    ({"top_k": 0}, "top_k: must be a positive integer, got 0"),
])
def test_bad_input_is_a_one_line_error(kw, message):
    with pytest.raises(ValueError) as err:
        SDNC(I, O, key=jax.random.key(0), **{**SMALL, **kw})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_config():
    cfg = parse_config({"task": {"name": "copy", "bits": 4},
                        "model": {"name": "sdnc", "memory_size": 64, "link_k": 4}})
    model = cfg.model.build(6, 4, jax.random.key(0))
    assert isinstance(model, SDNC) and (model.link_k, model.read_heads) == (4, 4)
    with pytest.raises(ConfigError, match="link_k") as err:
        parse_config({"task": {"name": "copy"}, "model": {"name": "sdnc", "memory_size": 4}})
    assert "\n" not in str(err.value)


def test_shipped_sdnc_config_builds():
    from pathlib import Path

    from mannlab.config import load_config

    cfg = load_config(Path(__file__).parent.parent / "configs" / "sdnc-copy.yaml")
    task = cfg.task.build()
    model = cfg.model.build(task.input_size, task.output_size, jax.random.key(0))
    assert (model.memory_size, model.read_heads, model.top_k, model.link_k) == (128, 4, 4, 8)
