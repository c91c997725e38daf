"""Baseline for `throughput.py`: a DNC copy-task training step written
directly in JAX, without mannlab.

It is written as the issue describes its "throwaway JAX DNC": whole step
under `jax.jit`, `lax.scan` over time, plain autodiff, so the backward pass
keeps the N x N link matrix of every time step (41 x 64 x 128 x 128 floats,
about 170 MB at batch 64). It is not that code: on this machine it ran
65 / 128 / 86 seq/s at batch 1 / 16 / 64 where the issue measured its
throwaway at 68 / 70 / 59, so the ratio to it understates mannlab's gain over
the issue's starting point. Same sizes as `configs/dnc-copy.yaml`:
LSTM-100 controller, memory 128 x 20, 4 read heads, one write head, RMSprop
(lr 1e-3, decay 0.95, momentum 0.9), gradients clipped to [-10, 10]. The
memory equations are those of Graves et al. 2016 (Methods), batched by hand;
the allocation sorts usage with `argsort` (the order held constant for
gradients).

It is a benchmark baseline only: no masks, no length buckets, no checks.
"""

import jax
import jax.numpy as jnp
import numpy as np
from plain_jax_training import copy_cost, make_train_step, rmsprop

__all__ = ["OPTIMISER", "init_params", "loss", "train_step"]  # what throughput.py uses

N, W, R, HIDDEN, BITS = 128, 20, 4, 100, 8
# read keys, read strengths, write key, write strength, erase, write vector,
# free gates, allocation gate, write gate, read modes
SIZES = [R * W, R, W, 1, W, W, R, 1, 1, 3 * R]
INTERFACE = sum(SIZES)


def init_params(key: jax.Array) -> dict:
    """Weights of the controller, the interface and the readout."""
    k_lstm, k_if, k_out = jax.random.split(key, 3)
    fan_in = BITS + 1 + R * W + HIDDEN

    def uniform(k, shape, fan):
        return jax.random.uniform(k, shape, minval=-1, maxval=1) / np.sqrt(fan)

    return {
        "lstm": uniform(k_lstm, (fan_in, 4 * HIDDEN), fan_in),
        "lstm_bias": jnp.zeros(4 * HIDDEN),
        "interface": uniform(k_if, (HIDDEN, INTERFACE), HIDDEN),
        "interface_bias": jnp.zeros(INTERFACE),
        "out": uniform(k_out, (HIDDEN + R * W, BITS), HIDDEN + R * W),
        "out_bias": jnp.zeros(BITS),
    }


def _content(memory, keys, strengths):
    """Content weightings: memory [B, N, W], keys [B, K, W], strengths [B, K] -> [B, K, N]."""
    dots = jnp.einsum("bnw,bkw->bkn", memory, keys)
    norms = jnp.linalg.norm(memory, axis=-1)[:, None, :] * jnp.linalg.norm(keys, axis=-1)[..., None]
    return jax.nn.softmax(strengths[..., None] * dots / (norms + 1e-6), -1)


def _allocation(usage):
    """Allocation weighting by sorting usage [B, N] ascending -> [B, N]."""
    usage = 1e-6 + (1 - 1e-6) * usage
    order = jax.lax.stop_gradient(jnp.argsort(usage, -1))
    sorted_usage = jnp.take_along_axis(usage, order, -1)
    before = jnp.cumprod(sorted_usage, -1) / sorted_usage  # exclusive product
    sorted_alloc = (1 - sorted_usage) * before
    return jnp.zeros_like(usage).at[jnp.arange(usage.shape[0])[:, None], order].set(sorted_alloc)


def _time_step(params, carry, x):
    h, c, memory, usage, link, precedence, w_read, w_write, reads = carry
    batch = x.shape[0]
    z = jnp.concatenate([x, reads.reshape(batch, -1), h], -1) @ params["lstm"] + params["lstm_bias"]
    i, f, g, o = jnp.split(z, 4, -1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    xi = h @ params["interface"] + params["interface_bias"]
    parts = jnp.split(xi, np.cumsum(SIZES)[:-1], -1)
    read_keys, read_strengths = parts[0].reshape(batch, R, W), 1 + jax.nn.softplus(parts[1])
    write_key, write_strength = parts[2][:, None], 1 + jax.nn.softplus(parts[3])
    erase, write_vector = jax.nn.sigmoid(parts[4]), parts[5]
    free, alloc_gate, write_gate = (jax.nn.sigmoid(p) for p in parts[6:9])
    modes = jax.nn.softmax(parts[9].reshape(batch, R, 3), -1)

    retention = jnp.prod(1 - free[..., None] * w_read, 1)
    usage = (usage + w_write - usage * w_write) * retention
    content_w = _content(memory, write_key, write_strength)[:, 0]
    w_write = write_gate * (alloc_gate * _allocation(usage) + (1 - alloc_gate) * content_w)
    memory = (memory * (1 - w_write[:, :, None] * erase[:, None, :])
              + w_write[:, :, None] * write_vector[:, None, :])
    link = ((1 - w_write[:, :, None] - w_write[:, None, :]) * link
            + w_write[:, :, None] * precedence[:, None, :]) * (1 - jnp.eye(N))
    precedence = (1 - jnp.sum(w_write, -1, keepdims=True)) * precedence + w_write
    forward = jnp.einsum("bij,brj->bri", link, w_read)
    backward = jnp.einsum("bij,bri->brj", link, w_read)
    w_read = (modes[..., :1] * backward + modes[..., 1:2] * _content(memory, read_keys,
                                                                      read_strengths)
              + modes[..., 2:] * forward)
    reads = jnp.einsum("brn,bnw->brw", w_read, memory)
    y = jnp.concatenate([h, reads.reshape(batch, -1)], -1) @ params["out"] + params["out_bias"]
    return (h, c, memory, usage, link, precedence, w_read, w_write, reads), y


def loss(params, inputs, targets, mask):
    """Bits of cost per sequence; inputs [T, B, 9], targets [T, B, 8], mask [T, B]."""
    b = inputs.shape[1]
    z = lambda *shape: jnp.zeros((b,) + shape)
    carry = (z(HIDDEN), z(HIDDEN), z(N, W), z(N), z(N, N), z(N), z(R, N), z(N), z(R, W))
    _, logits = jax.lax.scan(lambda carry, x: _time_step(params, carry, x), carry, inputs)
    return copy_cost(logits, targets, mask)


OPTIMISER = rmsprop(1e-3)  # configs/dnc-copy.yaml's learning rate
train_step = make_train_step(loss, OPTIMISER)
