"""`kernels="reference"` (the paper's functions under autodiff) and
`kernels="fast"` (hand-written VJPs, sort-free allocation, fused link step)
train the same: a few optimiser steps over whole copy sequences, both ways.

Tolerance: 1e-5 relative in float32. Losses are compared elementwise; outputs,
gradients and parameters relative to the largest entry of their leaf, since
an entry near zero (a gradient that nearly cancels) has no meaningful
elementwise relative error. Measured: losses, outputs and gradients within
3e-7, parameters after three steps within 1.2e-6 (RMSprop divides each update
by its gradient's running scale, so rounding in small gradients grows); the
NTM's two writes happen to round identically.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mannlab.config import ConfigError, parse_config
from mannlab.models.dnc import DNC
from mannlab.models.ntm import NTM
from mannlab.tasks.copy import CopyTask

RTOL = 1e-5
BATCH, LENGTH, STEPS = 3, 8, 3
TASK = CopyTask(bits=4, min_length=LENGTH, max_length=LENGTH)
SMALL = {"controller_size": 16, "memory_size": 8, "memory_width": 6}
CSORDAS = {"content_masking": True, "deallocation_erase": True, "link_sharpness": True}

MODELS = {
    "dnc": lambda kernels: DNC(TASK.input_size, TASK.output_size, read_heads=2,
                               kernels=kernels, key=jax.random.key(0), **SMALL),
    "dnc-csordas": lambda kernels: DNC(TASK.input_size, TASK.output_size, read_heads=2,
                                       kernels=kernels, key=jax.random.key(0), **SMALL,
                                       **CSORDAS),
    "ntm": lambda kernels: NTM(TASK.input_size, TASK.output_size, memory_init="random",
                               kernels=kernels, key=jax.random.key(0), **SMALL),
}


def train(model, batches):
    """STEPS steps of the NTM paper's RMSprop; per step (loss, ys [T, B, O],
    gradients), then the final parameters."""
    params, static = eqx.partition(model, eqx.is_array)
    opt = optax.chain(optax.clip(10.0),
                      optax.rmsprop(1e-3, decay=0.95, momentum=0.9, eps=1e-8))
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, batch):
        def loss(p):
            m = eqx.combine(p, static)
            ys, _ = m(batch.inputs, m.init_state(BATCH))
            return TASK.loss(ys, batch)[0], ys

        (value, ys), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, (value, ys, grads)

    history = []
    for batch in batches:
        params, opt_state, out = step(params, opt_state, batch)
        history.append(out)
    return history, params


def assert_close_to_scale(a, b, what):
    """|a - b| <= RTOL * max |b|, leaf by leaf."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.all(np.isfinite(x)), what
        np.testing.assert_allclose(x, y, rtol=0, atol=RTOL * float(np.abs(y).max()),
                                   err_msg=what)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_reference_and_fast_kernels_train_alike(name):
    rng = np.random.default_rng(0)
    batches = [TASK.sample(rng, BATCH, LENGTH) for _ in range(STEPS)]
    fast, reference = MODELS[name]("fast"), MODELS[name]("reference")
    fast_history, fast_params = train(fast, batches)
    ref_history, ref_params = train(reference, batches)
    for t, ((lf, yf, gf), (lr, yr, gr)) in enumerate(zip(fast_history, ref_history)):
        np.testing.assert_allclose(lf, lr, rtol=RTOL, err_msg=f"loss, step {t}")
        assert_close_to_scale(yf, yr, f"outputs, step {t}")
        assert_close_to_scale(gf, gr, f"gradients, step {t}")
    assert_close_to_scale(fast_params, ref_params, "parameters after training")


def program(model):
    xs = jnp.zeros((2, 1, TASK.input_size))
    loss = lambda m: jnp.sum(m(xs, m.init_state(1))[0])
    return str(jax.make_jaxpr(loss)(model))


def test_the_two_kernels_are_different_programs():
    """Guards the comparison above against comparing a path with itself."""
    fast, reference = program(MODELS["dnc"]("fast")), program(MODELS["dnc"]("reference"))
    assert "custom_vjp_call" in fast and "optimization_barrier" in fast
    assert "custom_vjp_call" not in reference and "optimization_barrier" not in reference
    assert "sort" in reference and "sort" not in fast
    assert "custom_vjp_call" in program(MODELS["ntm"]("fast"))
    assert "custom_vjp_call" not in program(MODELS["ntm"]("reference"))


@pytest.mark.parametrize("model", [DNC, NTM])
def test_unknown_kernels_is_a_one_line_error(model):
    with pytest.raises(ValueError, match="kernels: unknown value 'slow'") as err:
        model(3, 2, kernels="slow", key=jax.random.key(0))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["ntm", "dnc"])
def test_config_passes_kernels_through(name):
    def build(**model):
        cfg = parse_config({"task": {"name": "copy", "bits": 4},
                            "model": {"name": name, "memory_size": 4, **model}})
        task = cfg.task.build()
        return cfg.model.build(task.input_size, task.output_size, jax.random.key(0))

    assert build().kernels == "fast"
    assert build(kernels="reference").kernels == "reference"
    with pytest.raises(ConfigError, match="kernels"):
        build(kernels="slow")
