"""The jitted training and evaluation steps, vectorised over independent seeds.

A model is split once into its arrays (``params``) and the static rest; the
steps below work on ``params`` stacked along a leading seed axis S, so
several seeds train as one compiled program (``jax.vmap``; ``--seeds 8``
runs this way on a GPU, and one process per core on a CPU: `seeds.py`).
Every seed has its own
data, so batches also carry the seed axis: inputs [S, T, B, I] for one step,
[K, S, T, B, I] for the K steps of one training call.
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from mannlab.tasks.base import Batch


class StepOutput(NamedTuple):
    """Per seed: loss [S] and per-sequence metrics averaged over the batch
    [S, K] (K = len(task.metric_names)), gradient global norm [S]."""

    loss: jnp.ndarray
    metrics: jnp.ndarray
    grad_norm: jnp.ndarray


def over_seeds(fn: Callable, in_axes: tuple) -> Callable:
    """``jax.vmap(fn, in_axes)`` over the seed axis, except that a single seed
    (S = 1) runs unbatched: XLA's CPU code runs the batched matrix products
    that vmap makes of every weight product about half as fast as plain ones
    (NTM, batch 16: 290 vs 510 seq/s). Results are the same either way.
    The first argument (the parameters) must carry the seed axis.
    """
    batched = jax.vmap(fn, in_axes=in_axes)

    def call(*args):
        if jax.tree.leaves(args[0])[0].shape[0] != 1:
            return batched(*args)
        args = [jax.tree.map(lambda x: x[0], a) if axis == 0 else a
                for a, axis in zip(args, in_axes)]
        return jax.tree.map(lambda x: x[None], fn(*args))

    return call


def sequence_loss(params, static, task, batch: Batch):
    """Run the model over a batch and score it: (loss, per-sequence metrics).

    The padding mask is not applied: padding only ever follows a sequence's
    end (`Batch.step_mask`), so padded steps cannot reach a scored output and
    the final state is discarded. Masking every state leaf at every step
    cost about a fifth of the training step.
    """
    model = eqx.combine(params, static)
    B = batch.inputs.shape[1]
    ys, _ = model(batch.inputs, model.init_state(B))
    return task.loss(ys, batch)


def make_train_step(static, task, optimizer: optax.GradientTransformation) -> Callable:
    """A jitted ``(params, opt_state, batches, active) -> (params, opt_state, StepOutput)``
    that runs K training steps in one call.

    ``batches`` carry leading axes [K, S] (step, seed), ``active`` is [K, S]
    bool and the StepOutput leaves are [K, S, ...]. The K steps are a
    ``lax.scan`` inside one compiled program, so the host pays its per-call
    costs (dispatch, transfers) once per K steps: at batch 1 these were a
    third of the trainer's time per step. A False in ``active`` leaves that
    seed's parameters and optimiser state exactly as they were (a converged
    seed stays where a lone run would stop; steps past a budget do nothing).
    """

    def one(params, opt_state, batch, active):
        def loss_fn(p):
            return sequence_loss(p, static, task, batch)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, new_opt = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        keep = lambda n, o: jnp.where(active, n, o)
        new_params = jax.tree.map(keep, new_params, params)
        new_opt = jax.tree.map(keep, new_opt, opt_state)
        means = jnp.stack([metrics[k].mean() for k in task.metric_names])
        return new_params, new_opt, StepOutput(loss, means, optax.tree.norm(grads))

    step = over_seeds(one, (0, 0, 0, 0))

    def steps(params, opt_state, batches, active):
        def body(carry, inputs):
            params, opt_state, out = step(*carry, *inputs)
            return (params, opt_state), out

        (params, opt_state), outs = jax.lax.scan(body, (params, opt_state), (batches, active))
        return params, opt_state, outs

    return jax.jit(steps, donate_argnums=(0, 1))


def make_eval_step(static, task) -> Callable:
    """A jitted ``(params, batch) -> metrics [S, K, B]`` on one batch shared by all seeds."""

    def one(params, batch):
        _, metrics = sequence_loss(params, static, task, batch)
        return jnp.stack([metrics[k] for k in task.metric_names])

    return jax.jit(over_seeds(one, (0, None)))
