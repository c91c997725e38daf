"""Stacked LSTM baseline (NTM paper, Table 3: 3 layers of 256 on copy)."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from mannlab.models.base import SequenceModel


class LSTMState(NamedTuple):
    """Hidden and cell states per layer, each [B, hidden_size]."""

    hidden: tuple[jnp.ndarray, ...]
    cell: tuple[jnp.ndarray, ...]


def stacked_lstm_step(cells, state: LSTMState, x: jnp.ndarray) -> tuple[LSTMState, jnp.ndarray]:
    """One step of a stack of LSTM cells for ONE example.

    Args:
      cells: sequence of `eqx.nn.LSTMCell`, layer l feeding layer l+1.
      state: per-layer hidden and cell vectors, each [hidden_size].
      x: [input_size].
    Returns:
      (new state, top layer's hidden vector [hidden_size]).
    """
    hidden, cell = [], []
    inp = x
    for lstm, h, c in zip(cells, state.hidden, state.cell):
        h, c = lstm(inp, (h, c))
        hidden.append(h)
        cell.append(c)
        inp = h
    return LSTMState(tuple(hidden), tuple(cell)), inp


def zero_lstm_state(cells, batch: int) -> LSTMState:
    """All-zero state for a stack of cells: leaves [B, hidden_size]."""
    zeros = tuple(jnp.zeros((batch, c.hidden_size)) for c in cells)
    return LSTMState(zeros, zeros)


class LSTM(SequenceModel):
    """Stacked LSTM with a linear read-out from the top layer."""

    cells: tuple[eqx.nn.LSTMCell, ...]
    readout: eqx.nn.Linear

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 256,
                 layers: int = 3, *, key: jax.Array):
        keys = jax.random.split(key, layers + 1)
        sizes = [input_size] + [hidden_size] * layers
        self.cells = tuple(
            eqx.nn.LSTMCell(sizes[i], hidden_size, key=keys[i]) for i in range(layers)
        )
        self.readout = eqx.nn.Linear(hidden_size, output_size, key=keys[-1])

    def init_state(self, batch: int) -> LSTMState:
        return zero_lstm_state(self.cells, batch)

    def step(self, state: LSTMState, x: jnp.ndarray):
        """x [B, I] -> (state, y [B, O], ())."""

        def one(s, xi):
            s, h = stacked_lstm_step(self.cells, s, xi)
            return s, self.readout(h)

        state, y = jax.vmap(one)(state, x)
        return state, y, ()
