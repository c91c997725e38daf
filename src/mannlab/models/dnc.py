"""Differentiable Neural Computer (Graves et al. 2016, Nature, Methods), with
the optional improvements of Csordas & Schmidhuber 2019 (ICLR).

One write head and R read heads over an N x W memory. At step t the
controller sees the input x_t and the read vectors r_{t-1}; its output h_t
gives the interface vector xi_t (split by `split_interface`). Then:

1. usage u_t from the free gates and the previous weightings;
2. write weighting from the allocation weighting (by usage) and the write
   key's content weighting, gated; memory erased and written;
3. precedence and link matrix L_t updated with the new write weighting;
4. read weightings mix backward (L_t^T w_{t-1}^r), content (on the new
   memory) and forward (L_t w_{t-1}^r) weightings by the read modes;
5. read vectors r_t = M_t^T w_t^r, and the output y_t = W [h_t; r_t].

Options (all off by default, Csordas & Schmidhuber 2019):

* ``content_masking``: every content lookup gets a sigmoid mask over the
  row's W components (key-value separation, section 2.1).
* ``deallocation_erase``: memory rows are scaled by the retention vector
  before the write, so freed rows are erased (section 2.2).
* ``link_sharpness``: forward and backward weightings are sharpened with
  per-head exponents s >= 1 (section 2.3).

``trace_links`` (default False) adds the N x N link matrix to the trace;
``remat`` (default True) recomputes each step in the backward pass instead of
storing its intermediates (same values and gradients, less memory traffic).

``kernels`` chooses the functions the step composes (`DNCKernels`):
``"fast"`` (default) the fused link step and the erase-and-add with
hand-written VJPs, the sort-free allocation, and a remat policy that keeps
their named results; ``"reference"`` the paper's plain functions
(`link_step_reference`, `allocation_weighting_by_sort`, `erase_and_add`)
differentiated by autodiff, rematerialised (with ``remat``) keeping only
each step's inputs. Same values and gradients up to rounding
(tests/test_kernels.py).
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from mannlab.memory.allocation import (
    LOG_PRODUCTS_NAME,
    allocation_weighting,
    allocation_weighting_by_sort,
    write_weighting,
)
from mannlab.memory.content import content_weighting
from mannlab.memory.dnc_read import masked_content_weighting, read_weighting
from mannlab.memory.read_write import erase_and_add, read
from mannlab.memory.temporal_links import (
    link_step,
    link_step_reference,
    precedence_update,
    sharpen_distribution,
)
from mannlab.memory.usage import deallocate, retention, usage_update
from mannlab.memory.write_vjp import erase_and_add_one_head
from mannlab.models.base import KernelsName, SequenceModel, choose_kernels
from mannlab.models.controller import ControllerKind, make_controller

REMAT_POLICY = jax.checkpoint_policies.save_only_these_names(
    "dnc_forward_weighting", "dnc_backward_weighting", LOG_PRODUCTS_NAME)
"""What a rematerialised step keeps: the forward and backward weightings
([B, R, N] each), so that recomputing the step skips the N x N link update
(the link step's own backward needs only its inputs), and the allocation's
log-products ([B, N]), so that it skips the allocation's N x N comparison
(whose backward needs only the usage order)."""


def link_step_named(link: jnp.ndarray, precedence: jnp.ndarray, write_weights: jnp.ndarray,
                    read_weights: jnp.ndarray):
    """`link_step` with the forward and backward weightings named for
    `REMAT_POLICY`, so the backward pass never recomputes the link update.
    Shapes as `link_step`: -> (L_t [N, N], forward [R, N], backward [R, N])."""
    link, fwd, bwd = link_step(link, precedence, write_weights, read_weights)
    return (link, checkpoint_name(fwd, "dnc_forward_weighting"),
            checkpoint_name(bwd, "dnc_backward_weighting"))


class DNCKernels(NamedTuple):
    """The functions one DNC step composes, for one example.

    link: (L_{t-1} [N, N], p_{t-1} [N], w_t^w [N], w_{t-1}^r [R, N])
      -> (L_t [N, N], forward [R, N], backward [R, N]);
    allocation: usage u_t [N] -> allocation weighting a_t [N];
    write: (M_{t-1} [N, W], w_t^w [1, N], e [1, W], v [1, W]) -> M_t [N, W];
    remat_policy: the `jax.checkpoint` policy of a rematerialised step.
    """

    link: Callable
    allocation: Callable
    write: Callable
    remat_policy: Callable | None


DNC_KERNELS = {
    "reference": DNCKernels(link_step_reference, allocation_weighting_by_sort, erase_and_add,
                            None),
    "fast": DNCKernels(link_step_named, allocation_weighting, erase_and_add_one_head,
                       REMAT_POLICY),
}
"""`DNC(kernels=...)`: the paper's functions under autodiff, or the fast path."""


def oneplus(x: jnp.ndarray) -> jnp.ndarray:
    """DNC Methods: oneplus(x) = 1 + log(1 + e^x), in [1, inf)."""
    return 1.0 + jax.nn.softplus(x)


class DNCInterface(NamedTuple):
    """The interface vector xi_t split into its named parts, already squashed.

    read_keys [R, W]; read_strengths [R] (>= 1); write_key [1, W];
    write_strength [1] (>= 1); erase [1, W] (in [0, 1]); write_vector [1, W];
    free_gates [R]; allocation_gate [1]; write_gate [1] (all in [0, 1]);
    read_modes [R, 3] (softmax over backward, content, forward).
    Optional: read_masks [R, W], write_mask [1, W] (content_masking);
    forward_sharpness [R], backward_sharpness [R] (link_sharpness, >= 1).
    """

    read_keys: jnp.ndarray
    read_strengths: jnp.ndarray
    write_key: jnp.ndarray
    write_strength: jnp.ndarray
    erase: jnp.ndarray
    write_vector: jnp.ndarray
    free_gates: jnp.ndarray
    allocation_gate: jnp.ndarray
    write_gate: jnp.ndarray
    read_modes: jnp.ndarray
    read_masks: jnp.ndarray | None = None
    write_mask: jnp.ndarray | None = None
    forward_sharpness: jnp.ndarray | None = None
    backward_sharpness: jnp.ndarray | None = None


def interface_size(read_heads: int, width: int, content_masking: bool = False,
                   link_sharpness: bool = False) -> int:
    """Length of the interface vector: (W + 5) R + 3 W + 3 (DNC Methods), plus
    (R + 1) W for masks and 2 R for sharpness when enabled."""
    size = (width + 5) * read_heads + 3 * width + 3
    if content_masking:
        size += (read_heads + 1) * width
    if link_sharpness:
        size += 2 * read_heads
    return size


def split_interface(xi: jnp.ndarray, read_heads: int, width: int, content_masking: bool = False,
                    link_sharpness: bool = False) -> DNCInterface:
    """Split and squash one example's interface vector xi [interface_size]."""
    R, W = read_heads, width
    sizes = [R * W, R, W, 1, W, W, R, 1, 1, 3 * R]
    if content_masking:
        sizes += [R * W, W]
    if link_sharpness:
        sizes += [R, R]
    if xi.shape[-1] != sum(sizes):
        raise ValueError(f"interface vector has {xi.shape[-1]} entries, expected {sum(sizes)}")
    cuts, total = [], 0
    for s in sizes[:-1]:
        total += s
        cuts.append(total)
    p = jnp.split(xi, cuts)
    parts = {
        "read_keys": p[0].reshape(R, W),
        "read_strengths": oneplus(p[1]),
        "write_key": p[2].reshape(1, W),
        "write_strength": oneplus(p[3]),
        "erase": jax.nn.sigmoid(p[4]).reshape(1, W),
        "write_vector": p[5].reshape(1, W),
        "free_gates": jax.nn.sigmoid(p[6]),
        "allocation_gate": jax.nn.sigmoid(p[7]),
        "write_gate": jax.nn.sigmoid(p[8]),
        "read_modes": jax.nn.softmax(p[9].reshape(R, 3), axis=-1),
    }
    k = 10
    if content_masking:
        parts["read_masks"] = jax.nn.sigmoid(p[k]).reshape(R, W)
        parts["write_mask"] = jax.nn.sigmoid(p[k + 1]).reshape(1, W)
        k += 2
    if link_sharpness:
        parts["forward_sharpness"] = oneplus(p[k])
        parts["backward_sharpness"] = oneplus(p[k + 1])
    return DNCInterface(**parts)


class DNCState(NamedTuple):
    """Leaves have a leading batch axis B.

    controller: the controller's own state; memory [B, N, W]; usage [B, N];
    link [B, N, N]; precedence [B, N]; read_weights [B, R, N];
    write_weights [B, 1, N]; reads [B, R, W] (the read vectors r_{t-1}).
    """

    controller: object
    memory: jnp.ndarray
    usage: jnp.ndarray
    link: jnp.ndarray
    precedence: jnp.ndarray
    read_weights: jnp.ndarray
    write_weights: jnp.ndarray
    reads: jnp.ndarray


class DNCTrace(NamedTuple):
    """What one step did, leaves [B, ...]: read_weights [B, R, N],
    write_weights [B, 1, N], usage [B, N], allocation [B, N], free_gates
    [B, R], read_modes [B, R, 3], memory [B, N, W] after the write, and link
    [B, N, N] (None unless the model was built with ``trace_links=True``)."""

    read_weights: jnp.ndarray
    write_weights: jnp.ndarray
    usage: jnp.ndarray
    allocation: jnp.ndarray
    free_gates: jnp.ndarray
    read_modes: jnp.ndarray
    memory: jnp.ndarray
    link: jnp.ndarray | None = None


class DNC(SequenceModel):
    controller: eqx.Module
    interface: eqx.nn.Linear
    readout: eqx.nn.Linear
    memory_size: int = eqx.field(static=True)
    memory_width: int = eqx.field(static=True)
    read_heads: int = eqx.field(static=True)
    content_masking: bool = eqx.field(static=True)
    deallocation_erase: bool = eqx.field(static=True)
    link_sharpness: bool = eqx.field(static=True)
    trace_links: bool = eqx.field(static=True)
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
        read_heads: int = 4,
        content_masking: bool = False,
        deallocation_erase: bool = False,
        link_sharpness: bool = False,
        trace_links: bool = False,
        remat: bool = True,
        kernels: KernelsName = "fast",
        key: jax.Array,
    ):
        choose_kernels(DNC_KERNELS, kernels)  # an unknown name fails here, not at the first step
        self.memory_size, self.memory_width, self.read_heads = memory_size, memory_width, read_heads
        self.content_masking, self.deallocation_erase = content_masking, deallocation_erase
        self.link_sharpness, self.trace_links = link_sharpness, trace_links
        self.remat, self.kernels = remat, kernels
        k_ctrl, k_if, k_out = jax.random.split(key, 3)
        self.controller = make_controller(controller, input_size + read_heads * memory_width,
                                          controller_size, controller_layers, key=k_ctrl)
        self.interface = eqx.nn.Linear(
            controller_size,
            interface_size(read_heads, memory_width, content_masking, link_sharpness),
            key=k_if)
        self.readout = eqx.nn.Linear(controller_size + read_heads * memory_width, output_size,
                                     key=k_out)

    def memory_matrix(self, state: DNCState) -> jnp.ndarray:
        """[B, N, M] the memory."""
        return state.memory

    def init_state(self, batch: int) -> DNCState:
        """Everything zero (DNC Methods): empty memory, no usage, no links,
        zero weightings and read vectors."""
        N, W, R = self.memory_size, self.memory_width, self.read_heads
        z = lambda *shape: jnp.zeros((batch,) + shape)
        return DNCState(self.controller.init_state(batch), z(N, W), z(N), z(N, N), z(N),
                        z(R, N), z(1, N), z(R, W))

    def split(self, h: jnp.ndarray) -> DNCInterface:
        """The interface of one example from the controller output h [H]."""
        return split_interface(self.interface(h), self.read_heads, self.memory_width,
                               self.content_masking, self.link_sharpness)

    def _content(self, memory, keys, strengths, masks):
        if self.content_masking:
            return masked_content_weighting(memory, keys, strengths, masks)
        return content_weighting(memory, keys, strengths)

    def _step_one(self, state: DNCState, x: jnp.ndarray):
        """One step for one example: x [I] -> (state, y [O], trace)."""
        ctrl_state, h = self.controller(state.controller,
                                        jnp.concatenate([x, state.reads.ravel()]))
        xi = self.split(h)
        kernels = DNC_KERNELS[self.kernels]

        psi = retention(xi.free_gates, state.read_weights)
        usage = usage_update(state.usage, state.write_weights, psi)
        alloc = kernels.allocation(usage)
        write_content = self._content(state.memory, xi.write_key, xi.write_strength,
                                      xi.write_mask)
        write_w = write_weighting(alloc, write_content, xi.allocation_gate, xi.write_gate)

        memory = deallocate(state.memory, psi) if self.deallocation_erase else state.memory
        memory = kernels.write(memory, write_w, xi.erase, xi.write_vector)

        link, fwd, bwd = kernels.link(state.link, state.precedence, write_w[0],
                                      state.read_weights)
        precedence = precedence_update(state.precedence, write_w[0])
        if self.link_sharpness:
            fwd = sharpen_distribution(fwd, xi.forward_sharpness)
            bwd = sharpen_distribution(bwd, xi.backward_sharpness)
        read_content = self._content(memory, xi.read_keys, xi.read_strengths, xi.read_masks)
        read_w = read_weighting(bwd, read_content, fwd, xi.read_modes)
        reads = read(memory, read_w)

        y = self.readout(jnp.concatenate([h, reads.ravel()]))
        trace = DNCTrace(read_w, write_w, usage, alloc, xi.free_gates, xi.read_modes, memory,
                         link if self.trace_links else None)
        new_state = DNCState(ctrl_state, memory, usage, link, precedence, read_w, write_w, reads)
        return new_state, y, trace

    def step(self, state: DNCState, x: jnp.ndarray):
        """x [B, I] -> (state, y [B, O], DNCTrace).

        With `remat` (the default) the step is rematerialised in the backward
        pass (`jax.checkpoint`): only its inputs are kept per time step instead
        of every intermediate, which halves the memory a training step touches
        and makes it faster on CPU. Values and gradients are unchanged. The
        policy (what a recomputed step keeps) comes with the kernels.
        """
        return self._batched_step(state, x, self.remat,
                                  DNC_KERNELS[self.kernels].remat_policy)
