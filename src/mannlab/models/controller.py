"""Controllers for memory-augmented models: an LSTM stack or a feed-forward net.

Both work on ONE example: ``controller(state, x) -> (state, h)`` with ``x``
[input_size] and ``h`` [hidden_size]; ``init_state(batch)`` gives leaves with a
leading batch axis.
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp

from mannlab.models.lstm import LSTMState, stacked_lstm_step, zero_lstm_state


class LSTMController(eqx.Module):
    """A stack of LSTM cells; its output is the top layer's hidden vector."""

    cells: tuple[eqx.nn.LSTMCell, ...]
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, layers: int, *, key: jax.Array):
        keys = jax.random.split(key, layers)
        sizes = [input_size] + [hidden_size] * layers
        self.cells = tuple(
            eqx.nn.LSTMCell(sizes[i], hidden_size, key=keys[i]) for i in range(layers)
        )
        self.hidden_size = hidden_size

    def init_state(self, batch: int) -> LSTMState:
        return zero_lstm_state(self.cells, batch)

    def __call__(self, state: LSTMState, x: jnp.ndarray):
        return stacked_lstm_step(self.cells, state, x)


class FeedForwardController(eqx.Module):
    """Tanh MLP with no state of its own: all memory is in the external memory."""

    layers: tuple[eqx.nn.Linear, ...]
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, layers: int, *, key: jax.Array):
        keys = jax.random.split(key, layers)
        sizes = [input_size] + [hidden_size] * layers
        self.layers = tuple(
            eqx.nn.Linear(sizes[i], hidden_size, key=keys[i]) for i in range(layers)
        )
        self.hidden_size = hidden_size

    def init_state(self, batch: int) -> tuple:
        return ()

    def __call__(self, state: tuple, x: jnp.ndarray):
        h = x
        for layer in self.layers:
            h = jnp.tanh(layer(h))
        return state, h


ControllerKind = Literal["lstm", "feedforward"]


def make_controller(kind: ControllerKind, input_size: int, hidden_size: int, layers: int,
                    *, key: jax.Array):
    """The controller named by a config's `controller` field."""
    if kind == "lstm":
        return LSTMController(input_size, hidden_size, layers, key=key)
    if kind == "feedforward":
        return FeedForwardController(input_size, hidden_size, layers, key=key)
    raise ValueError(f"controller: unknown kind {kind!r} (expected 'lstm' or 'feedforward')")
