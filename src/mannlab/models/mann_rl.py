"""MANN-RL (Barrett 2025): a memory-net trained by reinforcement learning.

Two networks share a memory vector ``m_t`` of ``D`` values in [0, 1]:

* the **action network** sees ONLY the current input ``in_t`` and the memory
  ``m_t`` and produces the output logits (paper: ``Linear -> BatchNorm ->
  ReLU -> Linear -> softmax``; the softmax is applied by the task's loss);
* the **memory-net** produces the next memory
  ``m_{t+1} = f_mn(m_t, in_t, out_t)`` from the concatenation of the action
  network's input, its output and the current memory (paper: ``Linear ->
  BatchNorm -> Sigmoid``).

For character tasks (``embedding_size``) both networks embed the one-hot input
with ``Linear -> BatchNorm -> ReLU`` (96 in the paper) and the memory-net also
embeds the action output the same way.

Everything the action network knows about the past comes through the memory,
and the action loss never reaches the memory-net by gradient: the memory-net
is trained only by the Q-learning recipe of `mannlab.training.mann_rl`.

Layers are small Equinox modules with one calling convention,
``layer(x, mask, train) -> (y, layer')``, so any stack of them (or any module
with that convention) can serve as either network (`Stack`, `block`).

BatchNorm (`BatchNorm`): in training mode (``train=True``) a layer normalises
with the statistics of the rows given (``mask`` drops padding rows) and
returns itself with its running averages moved towards them (momentum 0.1,
unbiased variance, as PyTorch); in evaluation mode it uses the running
averages, so a sequence's outputs never depend on the other sequences of its
batch and a batch of one works. Our choice for sequences
(`MannRL.train_sequence`): the memory is rolled through time in evaluation
mode, and the action network is trained on the batch statistics pooled over
every valid (sequence, time step) position of the batch. Normalising each
time step by that step's 16 rows (what stepping PyTorch's ``BatchNorm1d``
through time would do) made the running averages track only the last few time
steps: a first version doing so scored 2% symbol errors in training mode but
38% in evaluation mode on the same sequences. Pooling over the batch's
positions keeps training and evaluation alike. The running averages are
arrays of the model (saved in checkpoints with the parameters) but are never
given to an optimiser (`param_labels`).

The shared interface (`SequenceModel`): ``init_state``, ``step`` (evaluation
mode) and ``__call__`` work as for every mannlab model, so ``mannlab eval`` and
``show`` work; the trace holds the memory vector read at each step.
Training-mode sequences are run by `MannRL.train_sequence`.
"""

from collections.abc import Sequence
from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from mannlab.models.base import SequenceModel

STAT_FIELDS = ("running_mean", "running_var")


# ---------------------------------------------------------------- layers
class Linear(eqx.Module):
    """``x @ weight + bias`` on [B, in]; PyTorch's uniform(+-1/sqrt(in)) init."""

    weight: jnp.ndarray
    bias: jnp.ndarray

    def __init__(self, in_size: int, out_size: int, *, key):
        kw, kb = jax.random.split(key)
        lim = 1.0 / jnp.sqrt(in_size)
        self.weight = jax.random.uniform(kw, (in_size, out_size), minval=-lim, maxval=lim)
        self.bias = jax.random.uniform(kb, (out_size,), minval=-lim, maxval=lim)

    def __call__(self, x, mask=None, train=False):
        return x @ self.weight + self.bias, self


def masked_moments(x: jnp.ndarray, mask: jnp.ndarray | None):
    """Mean and biased variance over the rows of x [B, N] where mask [B] is True,
    and the number of such rows."""
    if mask is None:
        mask = jnp.ones(x.shape[:1], bool)
    w = mask.astype(x.dtype)[:, None]
    n = w.sum()
    mean = (x * w).sum(0) / jnp.maximum(n, 1.0)
    var = (jnp.square(x - mean) * w).sum(0) / jnp.maximum(n, 1.0)
    return mean, var, n


class BatchNorm(eqx.Module):
    """Batch normalisation over the batch axis of [B, N] (see the module doc)."""

    scale: jnp.ndarray
    shift: jnp.ndarray
    running_mean: jnp.ndarray
    running_var: jnp.ndarray
    momentum: float = eqx.field(static=True, default=0.1)
    eps: float = eqx.field(static=True, default=1e-5)

    def __init__(self, size: int, momentum: float = 0.1, eps: float = 1e-5):
        self.scale = jnp.ones(size)
        self.shift = jnp.zeros(size)
        self.running_mean = jnp.zeros(size)
        self.running_var = jnp.ones(size)
        self.momentum, self.eps = momentum, eps

    def __call__(self, x, mask=None, train=False):
        if not train:
            y = (x - self.running_mean) * jax.lax.rsqrt(self.running_var + self.eps)
            return y * self.scale + self.shift, self
        mean, var, n = masked_moments(x, mask)
        y = (x - mean) * jax.lax.rsqrt(var + self.eps) * self.scale + self.shift
        # unbiased variance for the running average, as PyTorch; no rows -> no update
        unbiased = var * n / jnp.maximum(n - 1.0, 1.0)
        k = jnp.where(n > 0, self.momentum, 0.0)
        mean, unbiased = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(unbiased)
        new = eqx.tree_at(lambda b: (b.running_mean, b.running_var), self,
                          ((1 - k) * self.running_mean + k * mean,
                           (1 - k) * self.running_var + k * unbiased))
        return y, new


class Activation(eqx.Module):
    kind: Literal["relu", "sigmoid", "tanh", "identity"] = eqx.field(static=True)

    def __call__(self, x, mask=None, train=False):
        fn = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh,
              "identity": lambda v: v}[self.kind]
        return fn(x), self


class Stack(eqx.Module):
    """Layers applied in order; returns the output and the stack with updated layers."""

    layers: tuple

    def __call__(self, x, mask=None, train=False):
        new = []
        for layer in self.layers:
            x, layer = layer(x, mask, train)
            new.append(layer)
        return x, Stack(tuple(new))


def block(in_size: int, out_size: int, activation: str, *, key, batch_norm: bool = True):
    """``Linear -> BatchNorm -> activation`` (BatchNorm optional)."""
    layers = [Linear(in_size, out_size, key=key)]
    if batch_norm:
        layers.append(BatchNorm(out_size))
    layers.append(Activation(activation))
    return layers


def mlp(in_size: int, hidden: Sequence[int], out_size: int, out_activation: str, *, key,
        batch_norm: bool = True, out_batch_norm: bool = False) -> Stack:
    """Hidden ``Linear -> BatchNorm -> ReLU`` blocks, then ``Linear`` (+ BatchNorm)
    + `out_activation`."""
    keys = jax.random.split(key, len(hidden) + 1)
    layers, size = [], in_size
    for k, h in zip(keys, hidden):
        layers += block(size, h, "relu", key=k, batch_norm=batch_norm)
        size = h
    layers += block(size, out_size, out_activation, key=keys[-1], batch_norm=out_batch_norm)
    return Stack(tuple(layers))


# ---------------------------------------------------------------- the two networks
class ActionNet(eqx.Module):
    """Input (optionally embedded) and memory -> output logits."""

    embed: Stack | None
    body: Stack

    def __call__(self, x, memory, mask=None, train=False):
        embed = self.embed
        if embed is not None:
            x, embed = embed(x, mask, train)
        logits, body = self.body(jnp.concatenate([x, memory], -1), mask, train)
        return logits, ActionNet(embed, body)


class MemoryNet(eqx.Module):
    """f_mn(m_t, in_t, out_t) -> m_{t+1} in [0, 1] (inputs optionally embedded)."""

    embed_in: Stack | None
    embed_out: Stack | None
    body: Stack

    def __call__(self, x, out, memory, mask=None, train=False):
        embed_in, embed_out = self.embed_in, self.embed_out
        if embed_in is not None:
            x, embed_in = embed_in(x, mask, train)
        if embed_out is not None:
            out, embed_out = embed_out(out, mask, train)
        m, body = self.body(jnp.concatenate([x, out, memory], -1), mask, train)
        return m, MemoryNet(embed_in, embed_out, body)


# ---------------------------------------------------------------- the model
class MannRLState(NamedTuple):
    """vector: [B, D] the memory (named so it is not drawn as an N x M matrix)."""

    vector: jnp.ndarray


class MannRLTrace(NamedTuple):
    """Per step: the memory the action network read ([B, D]) and the next one."""

    memory_vector: jnp.ndarray
    next_memory: jnp.ndarray


class StepRecord(NamedTuple):
    """What a training-mode sequence records per step (leaves [T, B, ...]):
    the memory read, the input the memory-net saw and the output it was fed."""

    memory: jnp.ndarray
    inputs: jnp.ndarray
    outputs: jnp.ndarray


class MannRL(SequenceModel):
    action: ActionNet
    memory: MemoryNet
    memory_size: int = eqx.field(static=True)
    memory_init: float = eqx.field(static=True)
    output_feed: str = eqx.field(static=True)
    no_memory: bool = eqx.field(static=True)

    def __init__(self, input_size: int, output_size: int, memory_size: int = 48,
                 action_hidden: Sequence[int] = (256,), memory_hidden: Sequence[int] = (),
                 embedding_size: int | None = None, memory_init: float = 0.0,
                 output_feed: Literal["probs", "onehot"] = "probs", no_memory: bool = False,
                 *, key, action: ActionNet | None = None, memory: MemoryNet | None = None):
        """Build the paper's networks, or use the given `action` / `memory` modules
        (any modules with the same call signatures). With `no_memory` (the
        control that shows what the memory adds) the memory stays at
        `memory_init` at every step: the action network alone, trained by the
        same recipe."""
        ks = jax.random.split(key, 5)
        E = embedding_size
        if action is None:
            embed = Stack(tuple(block(input_size, E, "relu", key=ks[0]))) if E else None
            action = ActionNet(embed, mlp((E or input_size) + memory_size, action_hidden,
                                          output_size, "identity", key=ks[1]))
        if memory is None:
            e_in = Stack(tuple(block(input_size, E, "relu", key=ks[2]))) if E else None
            e_out = Stack(tuple(block(output_size, E, "relu", key=ks[3]))) if E else None
            size = (E or input_size) + (E or output_size) + memory_size
            memory = MemoryNet(e_in, e_out, mlp(size, memory_hidden, memory_size, "sigmoid",
                                                key=ks[4], out_batch_norm=True))
        self.action, self.memory = action, memory
        self.memory_size, self.memory_init = memory_size, float(memory_init)
        if output_feed not in ("probs", "onehot"):
            raise ValueError(f"output_feed must be 'probs' or 'onehot', got {output_feed!r}")
        self.output_feed = output_feed
        self.no_memory = no_memory

    def init_state(self, batch: int) -> MannRLState:
        return MannRLState(jnp.full((batch, self.memory_size), self.memory_init))

    def feed(self, logits: jnp.ndarray) -> jnp.ndarray:
        """The action output as the memory-net sees it (no gradient flows back)."""
        logits = jax.lax.stop_gradient(logits)
        if self.output_feed == "onehot":
            return jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1])
        return jax.nn.softmax(logits, -1)

    def step(self, state: MannRLState, x: jnp.ndarray):
        """Evaluation mode (BatchNorm running averages): x [B, I] -> (state, y, trace)."""
        m = state.vector
        logits, _ = self.action(x, m)
        m_next, _ = self.memory(x, self.feed(logits), m)
        if self.no_memory:
            m_next = m
        return MannRLState(m_next), logits, MannRLTrace(m, m_next)

    def train_sequence(self, xs: jnp.ndarray, state: MannRLState, mask: jnp.ndarray):
        """Training mode over a batch of sequences (see "BatchNorm" above).

        1. Roll the memory through the sequence exactly as in evaluation
           (running averages), recording ``(m_t, in_t, out_t)``; no gradient
           flows along the memory.
        2. Action network in training mode on every valid (t, b) position at
           once: BatchNorm on the pooled batch statistics, the logits for the
           loss, and running averages moved towards those statistics.
        3. Memory-net likewise on the recorded positions, only to move its
           running averages (its parameters learn by RL, not here).

        Args:
          xs: [T, B, I]; mask: [T, B] bool (False on padding: memory kept).
        Returns:
          (logits [T, B, O], `StepRecord` [T, B, ...], model with the updated
          running averages). Gradients reach only the action network.
        """

        def body(m, inp):
            x, valid = inp
            logits, _ = self.action(x, m)
            out = self.feed(logits)
            m_next, _ = self.memory(x, out, m)
            m_next = jnp.where(valid[:, None] & (not self.no_memory), m_next, m)
            return m_next, StepRecord(m, x, out)

        _, record = jax.lax.scan(body, state.vector, (xs, mask))
        record = jax.lax.stop_gradient(record)
        T, B = mask.shape
        flat = jax.tree.map(lambda a: a.reshape((T * B,) + a.shape[2:]), record)
        valid = mask.reshape(T * B)
        logits, action = self.action(flat.inputs, flat.memory, valid, True)
        _, memory = self.memory(flat.inputs, flat.outputs, flat.memory, valid, True)
        memory = jax.lax.stop_gradient(memory)
        new = eqx.tree_at(lambda mm: (mm.action, mm.memory), self, (action, memory))
        return logits.reshape(T, B, -1), record, new


    def train_time_step(self, x: jnp.ndarray, m: jnp.ndarray, valid: jnp.ndarray):
        """Training mode for one time step of a batch (the ``time_steps``
        schedule of `mannlab.training.mann_rl`): the action network on the
        batch statistics of the valid rows, the memory rolled on as in
        evaluation, the memory-net's running averages moved towards its
        statistics on those rows.

        Args:
          x: [B, I]; m: [B, D] the memory read; valid: [B] bool (False on
            padding: memory kept, no statistics).
        Returns:
          (logits [B, O], next memory [B, D], what the memory-net saw of the
          output [B, O], model with the updated running averages). Gradients
          reach only the action network.
        """
        logits, action = self.action(x, m, valid, True)
        out = self.feed(logits)
        m_next, _ = self.memory(x, out, m)
        _, memory = self.memory(x, out, m, valid, True)
        keep = jnp.logical_or(~valid, self.no_memory)[:, None]
        m_next = jax.lax.stop_gradient(jnp.where(keep, m, m_next))
        new = eqx.tree_at(lambda mm: (mm.action, mm.memory), self,
                          (action, jax.lax.stop_gradient(memory)))
        return logits, m_next, out, new


# ---------------------------------------------------------------- parameter groups
def _label(path) -> str:
    names = [getattr(k, "name", str(k)) for k in path]
    if names and names[-1] in STAT_FIELDS:
        return "stat"
    return "memory" if "memory" in names else "action"


def param_labels(model) -> object:
    """A pytree like ``eqx.filter(model, eqx.is_array)`` labelling every array
    ``"action"`` (action network, and a word embedding in front of it),
    ``"memory"`` (memory-net) or ``"stat"`` (BatchNorm running averages)."""
    return jax.tree_util.tree_map_with_path(lambda p, _: _label(p),
                                            eqx.filter(model, eqx.is_array))


def group_filter(model, *groups: str):
    """Filter spec over `model`: True on the arrays of the given groups."""
    return jax.tree_util.tree_map_with_path(
        lambda p, leaf: eqx.is_array(leaf) and _label(p) in groups, model)


