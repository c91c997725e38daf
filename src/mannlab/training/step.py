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
from typing import Any, NamedTuple, Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mannlab.tasks.base import Batch, Task, stack_chunk


class StepOutput(NamedTuple):
    """Per seed: loss [S] and per-sequence metrics averaged over the batch
    [S, K] (K = len(task.metric_names)), gradient global norm [S]."""

    loss: jnp.ndarray
    metrics: jnp.ndarray
    grad_norm: jnp.ndarray


def stack_trees(trees: list) -> Any:
    """Stack pytrees of equal structure along a new leading (seed) axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack_tree(tree: Any, i: int) -> Any:
    """Entry `i` of every leaf's leading (seed) axis."""
    return jax.tree.map(lambda x: x[i], tree)


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


Rows = list[list[Batch | None]]
"""The batches of one training call: K rows (steps) of S entries (seeds),
None where a seed does not train at that step."""


class Learner(Protocol):
    """What a model family plugs into the training loop: its update step and
    the state it keeps, for the S seeds of a run (`mannlab.training.trainer`).

    `GradientLearner` (below) trains every model by gradient descent on the
    task loss; MANN-RL's two learners (`mannlab.training.mann_rl`) are the
    other implementation.
    """

    static: Any
    """The models' static (non-array) part, shared by every seed."""

    def params(self) -> Any:
        """The models' arrays, stacked [S, ...] (what evaluation runs)."""

    def update(self, rows: Rows) -> "StepOutput":
        """Train on `rows`; returns StepOutput leaves [K, S] (entries of seeds
        that did not train at a step are ignored)."""

    def record(self, i: int) -> dict:
        """Extra numbers for seed `i`'s training records (may be empty)."""

    def seed_state(self, i: int) -> tuple[Any, Any, dict]:
        """Seed `i`'s (params, other arrays, JSON-able extras): what its
        checkpoint holds besides the loop's `SeedProgress`."""

    def restore_seed(self, i: int, params: Any, arrays: Any, extras: dict) -> None:
        """Set seed `i` from its checkpoint's `seed_state` parts."""


class GradientLearner:
    """Gradient descent on the task loss with the ``train`` section's
    optimiser: all seeds in one compiled program (`make_train_step`), K steps
    per call.

    Args:
      models: one initialised model per seed (same structure).
      task: the task.
      optimizer: the optax optimiser.
    """

    def __init__(self, models: list, task: Task, optimizer: optax.GradientTransformation):
        self.static = eqx.partition(models[0], eqx.is_array)[1]
        self._params = stack_trees([eqx.filter(m, eqx.is_array) for m in models])
        self._opt_state = jax.vmap(optimizer.init)(self._params)
        self._step = make_train_step(self.static, task, optimizer)

    def params(self):
        return self._params

    def update(self, rows: Rows) -> StepOutput:
        active = np.array([[b is not None for b in row] for row in rows])
        # seeds that do not train get a copy of a live batch (the mask keeps them still)
        filler = next(b for row in rows for b in row if b is not None)
        batches = stack_chunk([[b if b is not None else filler for b in row] for row in rows])
        self._params, self._opt_state, out = self._step(
            self._params, self._opt_state, jax.tree.map(jnp.asarray, batches),
            jnp.asarray(active))
        return out

    def record(self, i: int) -> dict:
        return {}

    def seed_state(self, i: int):
        return unstack_tree(self._params, i), unstack_tree(self._opt_state, i), {}

    def restore_seed(self, i: int, params, arrays, extras: dict) -> None:
        put = lambda stacked, one: jax.tree.map(lambda s, x: s.at[i].set(x), stacked, one)
        self._params = put(self._params, params)
        self._opt_state = put(self._opt_state, arrays)
