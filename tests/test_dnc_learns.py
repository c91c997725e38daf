"""A small DNC learns a short copy task with a plain jitted optax loop."""

import time

import equinox as eqx
import jax
import numpy as np
import optax
import pytest

from mannlab.models.dnc import DNC
from mannlab.tasks.copy import CopyTask

pytestmark = pytest.mark.slow  # trains a DNC to convergence: about 17 s


def test_small_dnc_learns_short_copy():
    task = CopyTask(bits=4, min_length=1, max_length=3, length_buckets=1)
    model = DNC(task.input_size, task.output_size, controller_size=32, memory_size=8,
                memory_width=8, read_heads=1, key=jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_array)
    optimizer = optax.chain(optax.clip_by_global_norm(5.0), optax.adam(1e-2))
    opt_state = optimizer.init(params)

    def loss_fn(p, batch):
        m = eqx.combine(p, static)
        ys, _ = m(batch.inputs, m.init_state(batch.inputs.shape[1]), batch.step_mask)
        return task.loss(ys, batch)

    @jax.jit
    def step(p, s, batch):
        (_loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, batch)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s, metrics["bits_wrong"].mean()

    rng = np.random.default_rng(0)
    heldout = task.sample(np.random.default_rng(1), 256)
    evaluate = jax.jit(lambda p, b: loss_fn(p, b)[1]["bits_wrong"].mean())
    start, error = time.perf_counter(), None
    for i in range(3000):
        params, opt_state, _ = step(params, opt_state, task.sample(rng, 32))
        if i % 100 == 99:
            error = float(evaluate(params, heldout))
            if error < 0.05:
                break
    print(f"steps {i + 1}, {time.perf_counter() - start:.1f} s, bits wrong {error:.3f}")
    assert error < 0.05, f"bits wrong per sequence {error} after {i + 1} steps"
