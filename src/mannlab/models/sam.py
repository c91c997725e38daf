"""Sparse Access Memory (SAM: Rae, Hunt, Harley, Danihelka, Senior, Wayne,
Graves & Lillicrap 2016, "Scaling Memory-Augmented Neural Networks with
Sparse Reads and Writes", NeurIPS; arXiv:1610.09027).

An LSTM (or feed-forward) controller with R read heads and one write head
over an N x W memory, where every read and the write touch only K rows:

1. the controller sees x_t and the read vectors r_{t-1}; its output h_t
   gives the interface (`split_sam_interface`): read keys and strengths,
   the write vector a_t, the write gate alpha_t and the interpolation gate
   gamma_t;
2. the write (`memory/sparse_write.py`) goes to the rows read at t-1 and to
   the least recently used row (usage = time since last access,
   `memory/sparse_usage.py`), which is erased first:
   w_t^W = alpha (gamma w_{t-1}^R + (1 - gamma) I^U), M_t = (1 - R_t) o M_{t-1} + w_t^W a^T;
3. each read head finds its K most similar rows of M_t (exact search: the
   similarities to all N rows, then `jax.lax.top_k`; `memory/sparse_read.py`)
   and reads them with a softmax over those K;
4. y_t = W [h_t; r_t]; rows accessed with weight > delta get time stamp t.

Kernels (``kernels``): the step cell `step` is the plain composition in
both; ``"reference"`` runs the sequence as a `lax.scan` over it and leaves
the gradient to autodiff (as `step` gets in a user's own `lax.scan`: plain
autodiff, which stores per step whatever the step's operations need for
their backward pass). ``"fast"`` (the default) runs the sequence call
(`__call__`) through a custom VJP over the whole sequence (the paper's
efficient backward pass, section 3.5 as the issue cites it): the forward
pass keeps, per step, only the S = R K + 1 written row indices, the R K
read indices, the written rows' old contents and the small controller
state; the backward pass starts from the final memory and undoes the
writes step by step (`undo_write`), recomputing each step from its few
rows alone and scattering the gradient of those rows into one carried
[B, N, W] gradient buffer. Nothing of size N x T is stored
(tests/test_sam.py checks the jaxpr of a whole training step). Same values
and gradients as ``"reference"`` to float32 rounding (tests/test_sam.py).
``with_trace=True`` runs the reference scan (same values; figures do not
differentiate).

Autodiff of the reference composition stores no N x T array either: every
operation on the whole memory (gathers, scatter-adds, the erase of one
row) is linear in it, so its residuals are the gathered rows; the kernels
differ in how the backward pass handles the [B, N, W] gradient per step
(docs/benchmarks.md, "Sparse memory": time per step of both).

Memory starts at zero; the exact search ranks empty (all-zero) rows below
every row holding something (`sparse_read.exact_top_k`), so before K rows
are written reads fill up with the lowest empty rows, and after that read
only written rows; the first LRU row is row 0.
"""

from typing import ClassVar, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from mannlab.memory.lsh import (
    DEFAULT_PROBES,
    LSHIndex,
    default_bits,
    default_candidates,
    default_capacity,
    empty_index,
    hash_codes,
    lsh_top_k,
    random_centroids,
    update_index,
)
from mannlab.memory.sparse_read import (
    exact_top_k,
    gather_rows,
    sparse_content_weighting,
    sparse_read,
)
from mannlab.memory.sparse_usage import least_recently_used, record_access
from mannlab.memory.sparse_write import (
    first_occurrence,
    slot_of,
    sparse_write,
    sparse_write_rows,
    sparse_write_weighting,
    undo_write,
    write_indices,
)
from mannlab.models.base import KernelsName, SequenceModel, choose_kernels
from mannlab.models.controller import ControllerKind, make_controller

SearchName = Literal["exact", "lsh"]
"""How a read head finds its K rows: "exact" (similarities to all N rows, then
`jax.lax.top_k`) or "lsh" (`memory/lsh.py`: the rows in the cells of the
random centroids nearest the key, re-ranked exactly; approximate,
sublinear)."""

SAM_KERNELS = {"reference": "reference", "fast": "fast"}
"""`SAM(kernels=...)`: a scan over `step` under autodiff, or the custom VJP
over the whole sequence."""


def oneplus(x: jnp.ndarray) -> jnp.ndarray:
    """1 + log(1 + e^x), in [1, inf) (DNC Methods)."""
    return 1.0 + jax.nn.softplus(x)


class SAMInterface(NamedTuple):
    """One example's interface, squashed: read_keys [R, W]; read_strengths [R]
    (>= 1); write_vector [W]; alpha [] and gamma [] in [0, 1]."""

    read_keys: jnp.ndarray
    read_strengths: jnp.ndarray
    write_vector: jnp.ndarray
    alpha: jnp.ndarray
    gamma: jnp.ndarray


def sam_interface_size(read_heads: int, width: int) -> int:
    """R W + R + W + 2."""
    return read_heads * width + read_heads + width + 2


def split_sam_interface(p: jnp.ndarray, read_heads: int, width: int) -> SAMInterface:
    """Split one example's interface vector p [sam_interface_size(R, W)]."""
    R, W = read_heads, width
    if p.shape[-1] != sam_interface_size(R, W):
        raise ValueError(f"interface vector has {p.shape[-1]} entries, expected "
                         f"{sam_interface_size(R, W)}")
    keys, strengths, add, gates = jnp.split(p, [R * W, R * W + R, R * W + R + W])
    return SAMInterface(keys.reshape(R, W), oneplus(strengths), add,
                        jax.nn.sigmoid(gates[0]), jax.nn.sigmoid(gates[1]))


class SAMState(NamedTuple):
    """Leaves have a leading batch axis B.

    controller: the controller's state; memory [B, N, W]; last_access [B, N]
    int32 (each row's last access time; usage is time - last_access);
    time [B] int32 (steps taken); read_indices [B, R, K] int32 and
    read_weights [B, R, K] (the previous read, w_{t-1}^R); reads [B, R, W];
    index: the LSH index of the written rows (leaves [B, ...]) with
    ``search="lsh"``, else None.
    """

    controller: object
    memory: jnp.ndarray
    last_access: jnp.ndarray
    time: jnp.ndarray
    read_indices: jnp.ndarray
    read_weights: jnp.ndarray
    reads: jnp.ndarray
    index: LSHIndex | None = None


class SAMTrace(NamedTuple):
    """What one step did, leaves [B, ...]: read_rows [B, R, K] int32 and
    read_row_weights [B, R, K]; write_rows [B, S] int32 (the previously read
    rows, then the LRU row, which is erased) and write_row_weights [B, S];
    memory [B, N, W] after the step (None unless ``trace_memory``)."""

    read_rows: jnp.ndarray
    read_row_weights: jnp.ndarray
    write_rows: jnp.ndarray
    write_row_weights: jnp.ndarray
    memory: jnp.ndarray | None = None


class SAMSmall(NamedTuple):
    """The differentiable part of the state the fast backward pass keeps per
    step (everything but the memory): controller, read_weights, reads."""

    controller: object
    read_weights: jnp.ndarray
    reads: jnp.ndarray


class SAM(SequenceModel):
    keeps_state_per_step: ClassVar[bool] = False
    controller: eqx.Module
    interface: eqx.nn.Linear
    readout: eqx.nn.Linear
    centroids: jnp.ndarray | None
    memory_size: int = eqx.field(static=True)
    memory_width: int = eqx.field(static=True)
    read_heads: int = eqx.field(static=True)
    top_k: int = eqx.field(static=True)
    trace_memory: bool = eqx.field(static=True)
    kernels: str = eqx.field(static=True)
    search_kind: str = eqx.field(static=True)
    lsh_capacity: int = eqx.field(static=True)
    lsh_probes: int = eqx.field(static=True)
    lsh_candidates: int = eqx.field(static=True)

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
        top_k: int = 4,
        trace_memory: bool = False,
        kernels: KernelsName = "fast",
        search: SearchName = "exact",
        lsh_bits: int | None = None,
        lsh_capacity: int | None = None,
        lsh_probes: int = DEFAULT_PROBES,
        lsh_candidates: int | None = None,
        key: jax.Array,
    ):
        """``search="lsh"``: 2^``lsh_bits`` random centroids (None:
        `lsh.default_bits`, 4 sqrt(N) cells), ``lsh_capacity`` rows per cell
        (None: `lsh.default_capacity`, twice the mean), the ``lsh_probes``
        cells nearest a key probed (default 128), the first ``lsh_candidates``
        rows found there re-ranked (None: `lsh.default_candidates`, the rows
        that many cells hold on average). The centroids are fixed (a model
        array that never gets a gradient)."""
        choose_kernels(SAM_KERNELS, kernels)
        if search not in ("exact", "lsh"):
            raise ValueError(f"search: unknown value {search!r} (expected 'exact' or 'lsh')")
        for name, value in (("memory_size", memory_size), ("memory_width", memory_width),
                            ("read_heads", read_heads), ("top_k", top_k)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        if top_k > memory_size:
            raise ValueError(f"top_k: at most memory_size ({memory_size}) rows, got {top_k}")
        if lsh_bits is None:
            lsh_bits = default_bits(memory_size)
        if not isinstance(lsh_bits, int) or not 0 <= lsh_bits <= 20:
            raise ValueError(f"lsh_bits: between 0 and 20, got {lsh_bits!r}")
        if lsh_capacity is None:
            lsh_capacity = default_capacity(memory_size, lsh_bits)
        if lsh_candidates is None and isinstance(lsh_probes, int):
            lsh_candidates = default_candidates(memory_size, lsh_bits,
                                                min(lsh_probes, 2 ** lsh_bits))
        for name, value in (("lsh_capacity", lsh_capacity), ("lsh_probes", lsh_probes),
                            ("lsh_candidates", lsh_candidates)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        self.memory_size, self.memory_width = memory_size, memory_width
        self.read_heads, self.top_k = read_heads, top_k
        self.trace_memory, self.kernels = trace_memory, kernels
        self.search_kind, self.lsh_capacity, self.lsh_probes = search, lsh_capacity, lsh_probes
        self.lsh_candidates = lsh_candidates
        k_ctrl, k_if, k_out, k_centroids = jax.random.split(key, 4)
        self.centroids = (random_centroids(k_centroids, lsh_bits, memory_width) if search == "lsh"
                          else None)
        self.controller = make_controller(controller, input_size + read_heads * memory_width,
                                          controller_size, controller_layers, key=k_ctrl)
        self.interface = eqx.nn.Linear(controller_size,
                                       sam_interface_size(read_heads, memory_width), key=k_if)
        self.readout = eqx.nn.Linear(controller_size + read_heads * memory_width, output_size,
                                     key=k_out)

    def memory_matrix(self, state: SAMState) -> jnp.ndarray:
        """[B, N, W] the memory."""
        return state.memory

    def init_state(self, batch: int) -> SAMState:
        """Zero memory, every row last accessed at time 0, the previous read on
        rows 0..K-1 with zero weight, zero read vectors."""
        N, W, R, K = self.memory_size, self.memory_width, self.read_heads, self.top_k
        tile = lambda a: jnp.broadcast_to(a, (batch,) + a.shape)
        index = None
        if self.centroids is not None:
            bits = self.centroids.shape[0].bit_length() - 1
            index = jax.tree.map(tile, empty_index(N, bits, self.lsh_capacity))
        return SAMState(self.controller.init_state(batch),
                        jnp.zeros((batch, N, W)),
                        jnp.zeros((batch, N), jnp.int32),
                        jnp.zeros((batch,), jnp.int32),
                        tile(jnp.broadcast_to(jnp.arange(K, dtype=jnp.int32), (R, K))),
                        jnp.zeros((batch, R, K)),
                        jnp.zeros((batch, R, W)), index)

    # ------------------------------------------------------------ one example
    def _interface(self, ctrl, reads, x):
        ctrl, h = self.controller(ctrl, jnp.concatenate([x, reads.ravel()]))
        return ctrl, h, split_sam_interface(self.interface(h), self.read_heads,
                                            self.memory_width)

    def index_written(self, index: LSHIndex | None, rows: jnp.ndarray,
                      new_rows: jnp.ndarray) -> LSHIndex | None:
        """The LSH index after a write of `new_rows` [S, W] at `rows` [S] (None
        with the exact search)."""
        if index is None or self.centroids is None:
            return index
        centroids = jax.lax.stop_gradient(self.centroids)
        return update_index(index, rows, hash_codes(jax.lax.stop_gradient(new_rows), centroids))

    def search(self, memory: jnp.ndarray, keys: jnp.ndarray,
               index: LSHIndex | None = None) -> jnp.ndarray:
        """The K rows each read head reads: memory [N, W], keys [R, W] -> [R, K]."""
        if self.search_kind == "exact":
            return exact_top_k(memory, keys, self.top_k)
        if index is None:
            raise ValueError("search: 'lsh' needs the state's index (init_state makes one)")
        return lsh_top_k(memory, keys, jax.lax.stop_gradient(self.centroids), index, self.top_k,
                         self.lsh_probes, self.lsh_candidates)

    def _read(self, rows, f: SAMInterface):
        weights = sparse_content_weighting(rows, f.read_keys, f.read_strengths)
        return weights, sparse_read(rows, weights)

    def _step_one(self, state: SAMState, x: jnp.ndarray):
        """One step for one example, the plain composition: x [I] -> (state, y [O], trace)."""
        ctrl, h, f = self._interface(state.controller, state.reads, x)
        lru = least_recently_used(state.last_access)
        w_idx = write_indices(state.read_indices, lru)
        w_w = sparse_write_weighting(state.read_weights, f.alpha, f.gamma)
        memory = sparse_write(state.memory, w_idx, w_w, f.write_vector, lru)
        index = self.index_written(state.index, w_idx, gather_rows(memory, w_idx))
        r_idx = self.search(memory, f.read_keys, index)
        r_w, reads = self._read(gather_rows(memory, r_idx), f)
        time = state.time + 1
        last = record_access(state.last_access, jnp.concatenate([w_idx, r_idx.ravel()]),
                             jnp.concatenate([w_w, r_w.ravel()]), time)
        y = self.readout(jnp.concatenate([h, reads.ravel()]))
        trace = SAMTrace(r_idx, r_w, w_idx, w_w, memory if self.trace_memory else None)
        return SAMState(ctrl, memory, last, time, r_idx, r_w, reads, index), y, trace

    def step(self, state: SAMState, x: jnp.ndarray):
        """x [B, I] -> (state, y [B, O], SAMTrace). In a user's own `lax.scan`
        this is differentiated by plain autodiff (the reference kernel's
        backward pass); the sequence call `model(xs, state)` with
        ``kernels="fast"`` uses the custom VJP that undoes writes instead."""
        return self._batched_step(state, x, remat=False)

    # --------------------------------------------- the fast path, one example
    def _write_part(self, small: SAMSmall, x, old_rows, w_idx):
        """Controller, interface and the write on the S touched rows alone:
        -> ((ctrl, h, f, write weights), new rows [S, W])."""
        ctrl, h, f = self._interface(small.controller, small.reads, x)
        w_w = sparse_write_weighting(small.read_weights, f.alpha, f.gamma)
        new_rows = sparse_write_rows(old_rows, first_occurrence(w_idx), w_w, f.write_vector)
        return (ctrl, h, f, w_w), new_rows

    def _read_part(self, written, small: SAMSmall, m, new_rows, old_rows, given, w_idx, r_idx):
        """The read of rows `r_idx` [R, K] after the write: rows the step wrote
        come from `new_rows`, the others from `given` [R K, W] (M_t there, which
        is M_{t-1}). With mask m False the state is left as it was.
        -> (small, y, rows to store at w_idx, (read weights, write weights))."""
        R, K, W = self.read_heads, self.top_k, self.memory_width
        ctrl, h, f, w_w = written
        slots = slot_of(r_idx.ravel(), w_idx)
        rows = jnp.where((slots >= 0)[:, None], new_rows[jnp.maximum(slots, 0)], given)
        r_w, reads = self._read(rows.reshape(R, K, W), f)
        y = self.readout(jnp.concatenate([h, reads.ravel()]))
        new_small = SAMSmall(ctrl, r_w, reads)
        if m is None:
            return new_small, y, new_rows, (r_w, w_w)
        keep = jax.tree.map(lambda n, o: jnp.where(m, n, o), new_small, small)
        return keep, y, jnp.where(m, new_rows, old_rows), (r_w, w_w)

    def __call__(self, xs: jnp.ndarray, state: SAMState, mask: jnp.ndarray | None = None,
                 with_trace: bool = False):
        """The whole sequence (see `SequenceModel.__call__`); with
        ``kernels="fast"`` and no trace, through the memory-free custom VJP."""
        if self.kernels == "reference" or with_trace:
            return super().__call__(xs, state, mask, with_trace)
        if xs.ndim != 3:
            raise ValueError(f"xs must be [T, B, I], got shape {xs.shape}")
        params, static = eqx.partition(self, eqx.is_array)
        small = SAMSmall(state.controller, state.read_weights, state.reads)
        ints = (state.last_access, state.time, state.read_indices, state.index)
        ys, small, memory, ints = _sequence(static)(params, xs, small, state.memory, ints, mask)
        last, time, r_idx, index = ints
        return ys, SAMState(small.controller, memory, last, time, r_idx, small.read_weights,
                            small.reads, index)


# ------------------------------------------------ the custom VJP over a sequence
def _scatter_set(memory, idx, rows):
    return memory.at[idx].set(rows)


def _scatter_add(memory, idx, rows):
    return memory.at[idx].add(rows)


def _forward(model: SAM, xs, small, memory, ints, mask):
    """The fast forward pass, batched. Returns (ys, small, memory, ints) and
    the per-step residuals (small before the step, x, write and read indices,
    the written rows' old contents): no array with both T and N."""
    B = xs.shape[1]
    batched = jax.vmap

    def body(carry, inputs):
        small, memory, (last, time, r_prev, index) = carry
        x, m = inputs
        lru = batched(least_recently_used)(last)
        w_idx = batched(write_indices)(r_prev, lru)
        old = batched(gather_rows)(memory, w_idx)
        written, new_rows = batched(model._write_part)(small, x, old, w_idx)
        memory_w = batched(_scatter_set)(memory, w_idx, new_rows)
        index_w = batched(model.index_written)(index, w_idx, new_rows)
        r_idx = batched(model.search)(memory_w, written[2].read_keys, index_w)
        given = batched(gather_rows)(memory_w, r_idx.reshape(B, -1))
        new_small, y, rows_out, (r_w, w_w) = batched(
            model._read_part, in_axes=(0, 0, None if m is None else 0, 0, 0, 0, 0, 0))(
            written, small, m, new_rows, old, given, w_idx, r_idx)
        time_new = time + 1
        last_new = batched(record_access)(
            last, jnp.concatenate([w_idx, r_idx.reshape(B, -1)], axis=1),
            jnp.concatenate([w_w, r_w.reshape(B, -1)], axis=1), time_new)
        r_state = r_idx
        if m is not None:
            memory_w = batched(_scatter_set)(memory_w, w_idx, rows_out)
            last_new = jnp.where(m[:, None], last_new, last)
            time_new = jnp.where(m, time_new, time)
            r_state = jnp.where(m[:, None, None], r_idx, r_prev)
            if index is not None:
                index_w = jax.tree.map(
                    lambda n, o: jnp.where(m.reshape((-1,) + (1,) * (n.ndim - 1)), n, o),
                    index_w, index)
        residual = (small, x, w_idx, r_idx, old)
        return (new_small, memory_w, (last_new, time_new, r_state, index_w)), (y, residual)

    (small, memory, ints), (ys, residuals) = jax.lax.scan(body, (small, memory, ints),
                                                          (xs, mask))
    return (ys, small, memory, ints), residuals


def _sequence(static):
    """The custom-VJP sequence function for the model's static part:
    (params, xs [T, B, I], small, memory [B, N, W], ints, mask [T, B] | None)
    -> (ys [T, B, O], small, memory, ints)."""

    @jax.custom_vjp
    def run(params, xs, small, memory, ints, mask):
        return _forward(eqx.combine(params, static), xs, small, memory, ints, mask)[0]

    def fwd(params, xs, small, memory, ints, mask):
        out, residuals = _forward(eqx.combine(params, static), xs, small, memory, ints, mask)
        return out, (params, residuals, out[2], mask)

    def bwd(saved, cotangents):
        params, residuals, memory, mask = saved
        d_ys, d_small, d_memory, _ = cotangents
        S = residuals[2].shape[-1]

        def core(p, small, x, old, given, m, w_idx, r_idx):
            model = eqx.combine(p, static)
            written, new_rows = jax.vmap(model._write_part)(small, x, old, w_idx)
            new_small, y, rows_out, _ = jax.vmap(
                model._read_part, in_axes=(0, 0, None if m is None else 0, 0, 0, 0, 0, 0))(
                written, small, m, new_rows, old, given, w_idx, r_idx)
            return new_small, y, rows_out

        def body(carry, inputs):
            memory, d_memory, d_small, d_params = carry
            (small, x, w_idx, r_idx, old), m, dy = inputs
            B = x.shape[0]
            flat_r = r_idx.reshape(B, -1)
            # M_{t-1} first: the rows read but not written are the same in M_t
            # and M_{t-1}, and the read of written rows ignores `given`. Each
            # scatter follows the gathers of its buffer by data dependence, so
            # XLA updates both buffers in place (a gather that may run after a
            # scatter of its buffer makes XLA copy [B, N, W] per step)
            memory = jax.vmap(undo_write)(memory, w_idx, old)
            given = jax.vmap(gather_rows)(memory, flat_r)
            first = jax.vmap(first_occurrence)(w_idx)
            d_rows = jax.vmap(gather_rows)(d_memory, w_idx) * (first == jnp.arange(S))[..., None]
            _, pullback = jax.vjp(
                lambda p, s, x_, o, g: core(p, s, x_, o, g, m, w_idx, r_idx),
                params, small, x, old, given)
            dp, d_small_prev, dx, d_old, d_given = pullback((d_small, dy, d_rows))
            # rows the step wrote: their gradient is what reaches their old
            # contents (d_old sits on each row's first position; every repeat
            # of a row gets the same value, so the scatter is deterministic)
            d_old = jnp.take_along_axis(d_old, first[..., None], axis=1)
            d_memory = jax.vmap(_scatter_set)(d_memory, w_idx, d_old)
            d_memory = jax.vmap(_scatter_add)(d_memory, flat_r, d_given)
            d_params = jax.tree.map(jnp.add, d_params, dp)
            return (memory, d_memory, d_small_prev, d_params), dx

        zeros = jax.tree.map(jnp.zeros_like, params)
        (_, d_memory0, d_small0, d_params), dxs = jax.lax.scan(
            body, (memory, d_memory, d_small, zeros), (residuals, mask, d_ys), reverse=True)
        return d_params, dxs, d_small0, d_memory0, None, None

    run.defvjp(fwd, bwd)
    return run
