"""Sparse Differentiable Neural Computer (SDNC: Rae et al. 2016, "Scaling
Memory-Augmented Neural Networks with Sparse Reads and Writes", section 4
and supplementary): SAM's sparse reads and writes (models/sam.py) plus the
DNC's temporal links (Graves et al. 2016) kept sparse, so that no N x N
array exists.

At step t, with R read heads reading K rows each:

1. the controller sees x_t and r_{t-1}; its output gives read keys and
   strengths, the write vector, the write and interpolation gates (SAM's)
   and each head's read modes (the DNC's: backward, content, forward);
2. SAM's write: to the rows read at t-1 and to the least recently used row
   (erased first);
3. the link matrix L_t and the precedence p_t from the sparse write
   weighting (`memory/sparse_links.py`: K_L entries per row and per
   column, stored as indices and values);
4. each head's read weighting mixes, by its read modes, the backward
   weighting L_t^T w_{t-1}^r, the content weighting (softmax over its K
   most similar rows of M_t) and the forward weighting L_t w_{t-1}^r, all
   sparse; the K largest entries of the mix are read (their weights are
   not renormalised);
5. y_t = W [h_t; r_t]; accessed rows get time stamp t.

The backward pass is autodiff of this composition (no custom VJP): every
operation on the whole memory and on the link storages is linear in them
(gathers, scatter-adds, the one-row erase), so autodiff keeps only the
gathered rows per step and no array of size N x T (tests/test_sdnc.py checks
the jaxpr of a whole training step). `step` is usable in a user's own
`lax.scan` with the same autodiff.
"""

from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from mannlab.memory.sparse_links import (
    merge_top,
    sparse_directional_weightings,
    sparse_link_update,
    sparse_precedence_update,
)
from mannlab.memory.sparse_read import (
    exact_top_k,
    gather_rows,
    sparse_content_weighting,
    sparse_read,
)
from mannlab.memory.sparse_usage import least_recently_used, record_access
from mannlab.memory.sparse_write import sparse_write, sparse_write_weighting, write_indices
from mannlab.models.base import SequenceModel
from mannlab.models.controller import ControllerKind, make_controller
from mannlab.models.sam import oneplus


class SDNCInterface(NamedTuple):
    """One example's interface, squashed: read_keys [R, W]; read_strengths [R]
    (>= 1); write_vector [W]; alpha [], gamma [] in [0, 1]; read_modes [R, 3]
    (softmax over backward, content, forward)."""

    read_keys: jnp.ndarray
    read_strengths: jnp.ndarray
    write_vector: jnp.ndarray
    alpha: jnp.ndarray
    gamma: jnp.ndarray
    read_modes: jnp.ndarray


def sdnc_interface_size(read_heads: int, width: int) -> int:
    """R W + R + W + 2 + 3 R."""
    return read_heads * width + 4 * read_heads + width + 2


def split_sdnc_interface(p: jnp.ndarray, read_heads: int, width: int) -> SDNCInterface:
    """Split one example's interface vector p [sdnc_interface_size(R, W)]."""
    R, W = read_heads, width
    if p.shape[-1] != sdnc_interface_size(R, W):
        raise ValueError(f"interface vector has {p.shape[-1]} entries, expected "
                         f"{sdnc_interface_size(R, W)}")
    keys, strengths, add, gates, modes = jnp.split(
        p, [R * W, R * W + R, R * W + R + W, R * W + R + W + 2])
    return SDNCInterface(keys.reshape(R, W), oneplus(strengths), add, jax.nn.sigmoid(gates[0]),
                         jax.nn.sigmoid(gates[1]), jax.nn.softmax(modes.reshape(R, 3), axis=-1))


class SDNCState(NamedTuple):
    """Leaves have a leading batch axis B.

    controller; memory [B, N, W]; last_access [B, N] int32; time [B] int32;
    read_indices [B, R, K] int32, read_weights [B, R, K], reads [B, R, W]
    (the previous read); pred_ids / pred_vals [B, N, K_L] (row i of L:
    (j, L[i, j])) and succ_ids / succ_vals [B, N, K_L] (column j of L:
    (i, L[i, j])); precedence_ids / precedence_vals [B, K_L].
    """

    controller: object
    memory: jnp.ndarray
    last_access: jnp.ndarray
    time: jnp.ndarray
    read_indices: jnp.ndarray
    read_weights: jnp.ndarray
    reads: jnp.ndarray
    pred_ids: jnp.ndarray
    pred_vals: jnp.ndarray
    succ_ids: jnp.ndarray
    succ_vals: jnp.ndarray
    precedence_ids: jnp.ndarray
    precedence_vals: jnp.ndarray


class SDNCTrace(NamedTuple):
    """What one step did, leaves [B, ...]: read_rows / read_row_weights
    [B, R, K]; write_rows / write_row_weights [B, R K + 1]; read_modes
    [B, R, 3]; memory [B, N, W] (None unless ``trace_memory``)."""

    read_rows: jnp.ndarray
    read_row_weights: jnp.ndarray
    write_rows: jnp.ndarray
    write_row_weights: jnp.ndarray
    read_modes: jnp.ndarray
    memory: jnp.ndarray | None = None


class SDNC(SequenceModel):
    keeps_state_per_step: ClassVar[bool] = False
    controller: eqx.Module
    interface: eqx.nn.Linear
    readout: eqx.nn.Linear
    memory_size: int = eqx.field(static=True)
    memory_width: int = eqx.field(static=True)
    read_heads: int = eqx.field(static=True)
    top_k: int = eqx.field(static=True)
    link_k: int = eqx.field(static=True)
    trace_memory: bool = eqx.field(static=True)

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
        read_heads: int = 4,
        top_k: int = 4,
        link_k: int = 8,
        trace_memory: bool = False,
        key: jax.Array,
    ):
        for name, value in (("memory_size", memory_size), ("memory_width", memory_width),
                            ("read_heads", read_heads), ("top_k", top_k), ("link_k", link_k)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        if top_k > memory_size:
            raise ValueError(f"top_k: at most memory_size ({memory_size}) rows, got {top_k}")
        if link_k > memory_size:
            raise ValueError(f"link_k: at most memory_size ({memory_size}), got {link_k}")
        self.memory_size, self.memory_width = memory_size, memory_width
        self.read_heads, self.top_k, self.link_k = read_heads, top_k, link_k
        self.trace_memory = trace_memory
        k_ctrl, k_if, k_out = jax.random.split(key, 3)
        self.controller = make_controller(controller, input_size + read_heads * memory_width,
                                          controller_size, controller_layers, key=k_ctrl)
        self.interface = eqx.nn.Linear(controller_size,
                                       sdnc_interface_size(read_heads, memory_width), key=k_if)
        self.readout = eqx.nn.Linear(controller_size + read_heads * memory_width, output_size,
                                     key=k_out)

    def memory_matrix(self, state: SDNCState) -> jnp.ndarray:
        """[B, N, W] the memory."""
        return state.memory

    def init_state(self, batch: int) -> SDNCState:
        """Zero memory and links (every slot value 0), every row last accessed
        at 0, the previous read on rows 0..K-1 with zero weight."""
        N, W, R, K, KL = (self.memory_size, self.memory_width, self.read_heads, self.top_k,
                          self.link_k)
        zeros = lambda *shape, dtype=jnp.float32: jnp.zeros((batch,) + shape, dtype)
        first_rows = jnp.broadcast_to(jnp.arange(K, dtype=jnp.int32), (batch, R, K))
        return SDNCState(self.controller.init_state(batch), zeros(N, W),
                         zeros(N, dtype=jnp.int32), zeros(dtype=jnp.int32), first_rows,
                         zeros(R, K), zeros(R, W),
                         zeros(N, KL, dtype=jnp.int32), zeros(N, KL),
                         zeros(N, KL, dtype=jnp.int32), zeros(N, KL),
                         zeros(KL, dtype=jnp.int32), zeros(KL))

    def search(self, memory: jnp.ndarray, keys: jnp.ndarray) -> jnp.ndarray:
        """The K rows most similar to each key: memory [N, W], keys [R, W] -> [R, K]."""
        return exact_top_k(memory, keys, self.top_k)

    def _step_one(self, state: SDNCState, x: jnp.ndarray):
        """One step for one example: x [I] -> (state, y [O], trace)."""
        ctrl, h = self.controller(state.controller, jnp.concatenate([x, state.reads.ravel()]))
        f = split_sdnc_interface(self.interface(h), self.read_heads, self.memory_width)
        lru = least_recently_used(state.last_access)
        w_idx = write_indices(state.read_indices, lru)
        w_w = sparse_write_weighting(state.read_weights, f.alpha, f.gamma)
        memory = sparse_write(state.memory, w_idx, w_w, f.write_vector, lru)

        precedence = (state.precedence_ids, state.precedence_vals)
        pred, succ = sparse_link_update((state.pred_ids, state.pred_vals),
                                        (state.succ_ids, state.succ_vals), precedence,
                                        (w_idx, w_w))
        precedence = sparse_precedence_update(*precedence, w_idx, w_w, self.memory_size)

        c_idx = self.search(memory, f.read_keys)
        c_w = sparse_content_weighting(gather_rows(memory, c_idx), f.read_keys,
                                       f.read_strengths)
        (f_idx, f_val), (b_idx, b_val) = sparse_directional_weightings(
            pred, succ, state.read_indices, state.read_weights)
        modes = f.read_modes
        cand_idx = jnp.concatenate([b_idx, c_idx, f_idx], axis=1)
        cand_val = jnp.concatenate([modes[:, :1] * b_val, modes[:, 1:2] * c_w,
                                    modes[:, 2:] * f_val], axis=1)
        r_idx, r_w = jax.vmap(lambda i, v: merge_top(i, v, self.top_k, self.memory_size))(
            cand_idx, cand_val)
        reads = sparse_read(gather_rows(memory, r_idx), r_w)

        time = state.time + 1
        last = record_access(state.last_access, jnp.concatenate([w_idx, r_idx.ravel()]),
                             jnp.concatenate([w_w, r_w.ravel()]), time)
        y = self.readout(jnp.concatenate([h, reads.ravel()]))
        trace = SDNCTrace(r_idx, r_w, w_idx, w_w, modes, memory if self.trace_memory else None)
        new = SDNCState(ctrl, memory, last, time, r_idx, r_w, reads, *pred, *succ, *precedence)
        return new, y, trace

    def step(self, state: SDNCState, x: jnp.ndarray):
        """x [B, I] -> (state, y [B, O], SDNCTrace)."""
        return self._batched_step(state, x, remat=False)
