"""Baseline for `throughput.py`: an NTM copy-task training step written
directly in JAX, without mannlab.

It stands in for the issue's "throwaway JAX prototype" (whole step under
`jax.jit`, `lax.scan` over time, one thread), so that mannlab's throughput can
be compared with it on the same machine in the same run, as a ratio. Same
sizes as `configs/ntm-copy.yaml`: LSTM-100 controller, memory 128 x 20, one
read and one write head, shifts -1..1, RMSprop (lr 3e-4, decay 0.95,
momentum 0.9), gradients clipped to [-10, 10]; the initial memory is constant
(the config's is learned: one more [128, 20] parameter and its gradient), the
heads start on row 0 and the first read vector is that row. Sharpening adds
1e-6 to the weighting before the power, as mannlab does, so that
`throughput.py --check` finds the two equal. Arrays are batched by hand
(no vmap), and each time step is rematerialised in the backward pass (faster
than storing its intermediates at batch 16 here, and no slower at batch 1).

It is a benchmark baseline only: no masks, no length buckets, no checks.
"""

import jax
import jax.numpy as jnp
import numpy as np
from plain_jax_training import copy_cost, make_train_step, rmsprop

__all__ = ["OPTIMISER", "init_params", "loss", "train_step"]  # what throughput.py uses

N, M, HIDDEN, BITS = 128, 20, 100, 8
HEAD = M + 6  # key, strength, gate, 3 shift logits, sharpening


def init_params(key: jax.Array) -> dict:
    """Weights of the controller, the two heads' projections and the readout."""
    k_lstm, k_head, k_out = jax.random.split(key, 3)
    fan_in = BITS + 1 + M + HIDDEN

    def uniform(k, shape, fan):
        return jax.random.uniform(k, shape, minval=-1, maxval=1) / np.sqrt(fan)

    return {
        "lstm": uniform(k_lstm, (fan_in, 4 * HIDDEN), fan_in),
        "lstm_bias": jnp.zeros(4 * HIDDEN),
        "heads": uniform(k_head, (HIDDEN, 2 * HEAD + 2 * M), HIDDEN),
        "heads_bias": jnp.zeros(2 * HEAD + 2 * M),
        "out": uniform(k_out, (HIDDEN + M, BITS), HIDDEN + M),
        "out_bias": jnp.zeros(BITS),
    }


def _address(memory, previous, p):
    """NTM addressing (eqs. 5-9) for one head: memory [B, N, M],
    previous [B, N], p [B, HEAD] -> [B, N]."""
    key, strength = p[:, :M], jax.nn.softplus(p[:, M])
    gate, shift = jax.nn.sigmoid(p[:, M + 1]), jax.nn.softmax(p[:, M + 2:M + 5], -1)
    gamma = 1.0 + jax.nn.softplus(p[:, M + 5])
    dots = jnp.einsum("bnm,bm->bn", memory, key)
    norms = jnp.linalg.norm(memory, axis=-1) * jnp.linalg.norm(key, axis=-1)[:, None]
    content = jax.nn.softmax(strength[:, None] * dots / (norms + 1e-8), -1)
    gated = gate[:, None] * content + (1.0 - gate[:, None]) * previous
    shifted = (shift[:, :1] * jnp.roll(gated, -1, -1) + shift[:, 1:2] * gated
               + shift[:, 2:] * jnp.roll(gated, 1, -1))
    sharp = (shifted + 1e-6) ** gamma[:, None]
    return sharp / jnp.sum(sharp, -1, keepdims=True)


def _time_step(params, carry, x):
    h, c, memory, w_read, w_write, read = carry
    z = jnp.concatenate([x, read, h], -1) @ params["lstm"] + params["lstm_bias"]
    i, f, g, o = jnp.split(z, 4, -1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    p = h @ params["heads"] + params["heads_bias"]
    w_read = _address(memory, w_read, p[:, :HEAD])
    w_write = _address(memory, w_write, p[:, HEAD:2 * HEAD])
    erase, add = jax.nn.sigmoid(p[:, 2 * HEAD:2 * HEAD + M]), jnp.tanh(p[:, 2 * HEAD + M:])
    memory = (memory * (1.0 - w_write[:, :, None] * erase[:, None, :])
              + w_write[:, :, None] * add[:, None, :])
    read = jnp.einsum("bn,bnm->bm", w_read, memory)
    y = jnp.concatenate([h, read], -1) @ params["out"] + params["out_bias"]
    return (h, c, memory, w_read, w_write, read), y


def loss(params, inputs, targets, mask):
    """Bits of cost per sequence; inputs [T, B, 9], targets [T, B, 8], mask [T, B]."""
    batch = inputs.shape[1]
    focused = jnp.zeros((batch, N)).at[:, 0].set(1.0)
    carry = (jnp.zeros((batch, HIDDEN)), jnp.zeros((batch, HIDDEN)),
             jnp.full((batch, N, M), 1e-6), focused, focused, jnp.full((batch, M), 1e-6))
    body = jax.checkpoint(lambda carry, x: _time_step(params, carry, x))
    _, logits = jax.lax.scan(body, carry, inputs)
    return copy_cost(logits, targets, mask)


OPTIMISER = rmsprop(3e-4)  # configs/ntm-copy.yaml's learning rate
train_step = make_train_step(loss, OPTIMISER)
