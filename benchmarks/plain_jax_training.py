"""What the plain-JAX baselines (`plain_jax_ntm.py`, `plain_jax_dnc.py`) share:
the copy task's cost and one RMSprop training step, as in the configs
(decay 0.95, momentum 0.9, gradients clipped to [-10, 10]; each baseline
passes its config's learning rate)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax


def rmsprop(learning_rate: float) -> optax.GradientTransformation:
    """The configs' optimiser: clip to [-10, 10], then RMSprop."""
    return optax.chain(optax.clip(10.0), optax.rmsprop(learning_rate, decay=0.95, momentum=0.9))


def copy_cost(logits, targets, mask):
    """Bits of cost per sequence: logits and targets [T, B, 8], mask [T, B]."""
    cost = optax.sigmoid_binary_cross_entropy(logits, targets).sum(-1)
    return jnp.sum(cost * mask) / logits.shape[1] / np.log(2.0)


def make_train_step(loss, optimiser: optax.GradientTransformation):
    """The jitted step (params, opt_state, inputs, targets, mask) -> (params,
    opt_state, loss) of `loss(params, inputs, targets, mask)`."""

    @jax.jit
    def train_step(params, opt_state, inputs, targets, mask):
        value, grads = jax.value_and_grad(loss)(params, inputs, targets, mask)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return train_step
