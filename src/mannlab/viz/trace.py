"""Run trained parameters over one sequence with the model's trace (for figures).

`make_tracer(static)` compiles, once per sequence shape, a program that runs
every seed of stacked params [S, ...] over one batch of one sequence and
returns the outputs, the per-step trace and the memory before the first step.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

IMAGE_SEED = 1410_5401
"""Seed of the fixed sequence drawn in TensorBoard images and report figures."""


def sample_sequence(task, length: int | None = None, seed: int = IMAGE_SEED, **task_kwargs):
    """One fixed sequence (B = 1) of `length`, or the task's longest training
    length if it has `max_length`, else one of its training distribution."""
    if length is None:
        length = getattr(task, "max_length", None)
    return task.sample(np.random.default_rng(seed), 1, length=length, **task_kwargs)


def _memory_of(state):
    memory = getattr(state, "memory", None)
    return memory[0] if memory is not None else None


def make_tracer(static):
    """A jitted ``(params [S, ...], batch) -> (probs [S, T, O], trace [S, T, ...],
    memory_before [S, N, M] or None)`` for batches with B = 1."""

    def one(params, batch):
        model = eqx.combine(params, static)
        state = model.init_state(1)
        ys, _, trace = model(batch.inputs, state, batch.step_mask, with_trace=True)
        probs = jax.nn.sigmoid(ys) if batch.targets.ndim == 3 else jax.nn.softmax(ys, -1)
        return probs[:, 0], jax.tree.map(lambda x: x[:, 0], trace), _memory_of(state)

    run = jax.jit(jax.vmap(one, in_axes=(0, None)))

    def tracer(params, batch):
        probs, trace, before = jax.device_get(run(params, jax.tree.map(jnp.asarray, batch)))
        return np.asarray(probs), trace, before

    return tracer


def seed_slice(outputs, i: int):
    """Seed `i` of a tracer's outputs: (probs [T, O], trace, memory_before)."""
    probs, trace, before = outputs
    trace_i = trace if trace == () else type(trace)(
        *(None if x is None else np.asarray(x[i]) for x in trace))
    return probs[i], trace_i, None if before is None else np.asarray(before[i])


def memory_before(config, seed_dir):
    """[N, M] memory of a trained seed before the first step (None without memory)."""
    from mannlab.training.evaluate import load_models

    params, static = load_models(config, config.task.build(), [seed_dir])
    model = eqx.combine(jax.tree.map(lambda x: x[0], params), static)
    memory = _memory_of(model.init_state(1))
    return None if memory is None else np.asarray(memory)
