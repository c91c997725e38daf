"""Neural Turing Machine (Graves, Wayne & Danihelka 2014, arXiv:1410.5401).

Two head layouts:

* ``shared_head=True`` ("v1"): one head whose single weighting both writes and
  reads at every step.
* ``shared_head=False`` ("v2"): ``read_heads`` read heads and ``write_heads``
  write heads, each with its own weighting.

At each step the controller sees the input and the previous read vectors; all
weightings are computed from the previous memory, the write heads write, and
the read heads read the updated memory. The output is a linear map of the
controller output and the new read vectors.

``remat`` (default True) recomputes each step in the backward pass instead of
storing its intermediates (`jax.checkpoint`): values and gradients are the
same, and a training step runs about twice as fast at batch 16-64 on a CPU,
where storing per-step copies of the memory dominated (docs/performance-notes.md).

``kernels`` chooses the memory write (`NTM_KERNELS`): ``"fast"`` (default)
uses the hand-written VJP of `erase_and_add_one_head` when there is one write
head, ``"reference"`` the paper's `erase_and_add` (eqs. 3-4) under autodiff.
Same values and gradients up to rounding (tests/test_kernels.py).
"""

from collections.abc import Callable
from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from mannlab.memory.ntm_addressing import address
from mannlab.memory.read_write import erase_and_add, read
from mannlab.memory.write_vjp import erase_and_add_fast
from mannlab.models.base import KernelsName, SequenceModel, choose_kernels
from mannlab.models.controller import ControllerKind, make_controller

MemoryInit = Literal["constant", "learned", "random"]

CONSTANT_MEMORY_VALUE = 1e-6
"""Collier & Beel 2018 found a small constant memory initialisation fastest."""


class NTMKernels(NamedTuple):
    """The functions one NTM step composes, for one example.

    write: (M_{t-1} [N, M], weightings [H, N], erase [H, M], add [H, M])
      -> M_t [N, M].
    """

    write: Callable


NTM_KERNELS = {
    "reference": NTMKernels(erase_and_add),
    "fast": NTMKernels(erase_and_add_fast),
}
"""`NTM(kernels=...)`: the paper's functions under autodiff, or the fast path."""


class NTMState(NamedTuple):
    """Leaves have a leading batch axis B.

    controller: the controller's own state; memory: [B, N, M];
    weights: [B, H, N] previous weightings of the H addressing heads;
    reads: [B, R, M] previous read vectors.
    """

    controller: object
    memory: jnp.ndarray
    weights: jnp.ndarray
    reads: jnp.ndarray


class NTMTrace(NamedTuple):
    """What one step did, leaves [B, ...]: read_weights [B, R, N],
    write_weights [B, W, N], erase and add [B, W, M], memory [B, N, M] after
    the write."""

    read_weights: jnp.ndarray
    write_weights: jnp.ndarray
    erase: jnp.ndarray
    add: jnp.ndarray
    memory: jnp.ndarray


class NTM(SequenceModel):
    controller: eqx.Module
    head_params: eqx.nn.Linear
    write_params: eqx.nn.Linear
    readout: eqx.nn.Linear
    initial_memory: jnp.ndarray
    memory_size: int = eqx.field(static=True)
    memory_width: int = eqx.field(static=True)
    read_heads: int = eqx.field(static=True)
    write_heads: int = eqx.field(static=True)
    shared_head: bool = eqx.field(static=True)
    shift_range: int = eqx.field(static=True)
    memory_init: str = eqx.field(static=True)
    remat: bool = eqx.field(static=True)
    kernels: str = eqx.field(static=True)

    def __init__(
        self,
        input_size: int,
        output_size: int,
        *,
        controller: ControllerKind = "lstm",
        controller_size: int = 100,
        controller_layers: int = 1,
        memory_size: int = 128,
        memory_width: int = 20,
        read_heads: int = 1,
        write_heads: int = 1,
        shared_head: bool = False,
        shift_range: int = 1,
        memory_init: MemoryInit = "constant",
        remat: bool = True,
        kernels: KernelsName = "fast",
        key: jax.Array,
    ):
        if shared_head and (read_heads, write_heads) != (1, 1):
            raise ValueError(
                "shared_head=True means one read-write head: read_heads and write_heads "
                f"must be 1, got {read_heads} and {write_heads}"
            )
        if memory_init not in ("constant", "learned", "random"):
            raise ValueError(f"memory_init: unknown value {memory_init!r} "
                             "(expected 'constant', 'learned' or 'random')")
        self.memory_size, self.memory_width = memory_size, memory_width
        self.read_heads, self.write_heads = read_heads, write_heads
        self.shared_head, self.shift_range = shared_head, shift_range
        choose_kernels(NTM_KERNELS, kernels)  # an unknown name fails here
        self.memory_init, self.remat, self.kernels = memory_init, remat, kernels
        k_ctrl, k_head, k_write, k_out, k_mem = jax.random.split(key, 5)
        self.controller = make_controller(
            controller, input_size + read_heads * memory_width, controller_size,
            controller_layers, key=k_ctrl)
        per_head = memory_width + 3 + (2 * shift_range + 1)
        self.head_params = eqx.nn.Linear(controller_size, self.num_heads * per_head, key=k_head)
        self.write_params = eqx.nn.Linear(controller_size, write_heads * 2 * memory_width,
                                          key=k_write)
        self.readout = eqx.nn.Linear(controller_size + read_heads * memory_width, output_size,
                                     key=k_out)
        if memory_init == "constant":
            # an explicit dtype: a weakly typed array would turn strongly typed after
            # the first optimiser update and recompile every training program
            self.initial_memory = jnp.full((memory_size, memory_width), CONSTANT_MEMORY_VALUE,
                                           dtype=jnp.float32)
        else:
            self.initial_memory = 0.5 * jax.random.normal(k_mem, (memory_size, memory_width))

    @property
    def num_heads(self) -> int:
        """Number of addressing heads (each with its own weighting)."""
        return 1 if self.shared_head else self.read_heads + self.write_heads

    def _read_ids(self) -> slice:
        return slice(0, 1) if self.shared_head else slice(0, self.read_heads)

    def _write_ids(self) -> slice:
        return slice(0, 1) if self.shared_head else slice(self.read_heads, self.num_heads)

    def memory_matrix(self, state: NTMState) -> jnp.ndarray:
        """[B, N, M] the memory."""
        return state.memory

    def init_state(self, batch: int) -> NTMState:
        """Memory from `memory_init`; every head focused on row 0.

        Focusing the heads on one row matters: with a constant memory and
        uniform weightings every row stays identical and attention can never
        break the symmetry.
        """
        memory = self.initial_memory
        if self.memory_init != "learned":
            memory = jax.lax.stop_gradient(memory)
        weights = jnp.zeros((self.num_heads, self.memory_size)).at[:, 0].set(1.0)
        reads = read(memory, weights[self._read_ids()])
        tile = lambda a: jnp.broadcast_to(a, (batch,) + a.shape)
        return NTMState(self.controller.init_state(batch), tile(memory), tile(weights),
                        tile(reads))

    def _step_one(self, state: NTMState, x: jnp.ndarray):
        """One step for one example: x [I] -> (state, y [O], trace)."""
        M, S = self.memory_width, self.shift_range
        ctrl_state, h = self.controller(state.controller,
                                        jnp.concatenate([x, state.reads.ravel()]))
        p = self.head_params(h).reshape(self.num_heads, -1)
        weights = address(
            state.memory,
            state.weights,
            keys=p[:, :M],
            strengths=jax.nn.softplus(p[:, M]),
            gates=jax.nn.sigmoid(p[:, M + 1]),
            shifts=jax.nn.softmax(p[:, M + 2:M + 3 + 2 * S], axis=-1),
            gammas=1.0 + jax.nn.softplus(p[:, -1]),
        )
        ev = self.write_params(h).reshape(self.write_heads, 2, M)
        erase, add = jax.nn.sigmoid(ev[:, 0]), jnp.tanh(ev[:, 1])
        write_w, read_w = weights[self._write_ids()], weights[self._read_ids()]
        memory = NTM_KERNELS[self.kernels].write(state.memory, write_w, erase, add)
        reads = read(memory, read_w)
        y = self.readout(jnp.concatenate([h, reads.ravel()]))
        trace = NTMTrace(read_w, write_w, erase, add, memory)
        return NTMState(ctrl_state, memory, weights, reads), y, trace

    def step(self, state: NTMState, x: jnp.ndarray):
        """x [B, I] -> (state, y [B, O], NTMTrace)."""
        return self._batched_step(state, x, self.remat)
