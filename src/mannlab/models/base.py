"""The interface every mannlab model meets.

A model is an Equinox module with

* ``init_state(batch) -> State``: the state before the first step; every leaf
  has a leading batch axis B.
* ``step(state, x) -> (state, y, trace)``: one time step. ``x`` is [B, I],
  ``y`` is [B, O] (logits: the task applies sigmoid or softmax), ``trace`` is a
  NamedTuple of what a person may want to see at this step (an empty tuple if
  nothing). ``step`` is a pure function: put it in your own ``lax.scan``.
* ``__call__(xs, state, mask=None, with_trace=False) -> (ys, state[, traces])``:
  the whole sequence, time-major: ``xs`` [T, B, I], ``ys`` [T, B, O].

`SequenceModel` supplies ``__call__`` (a ``lax.scan`` over ``step`` with
padding masks) so a subclass writes only ``init_state`` and ``step``.
"""

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp

KernelsName = Literal["reference", "fast"]
"""Which functions a memory model composes. ``"reference"``: the plain paper
functions (one per equation), differentiated by autodiff; the one to edit
when changing an equation. ``"fast"`` (the default): the same values through
hand-written VJPs and sort-free / fused forms (docs/architecture.md,
"Kernels")."""

K = TypeVar("K")


def choose_kernels(table: Mapping[str, K], kernels: str) -> K:
    """``table[kernels]``, or a one-line ValueError naming the field and value."""
    if not isinstance(kernels, str) or kernels not in table:
        expected = " or ".join(repr(k) for k in table)
        raise ValueError(f"kernels: unknown value {kernels!r} (expected {expected})")
    return table[kernels]


def keep_where(mask: jnp.ndarray, new: Any, old: Any) -> Any:
    """Per batch element, take `new` where mask is True and `old` elsewhere.

    Args:
      mask: [B] booleans.
      new, old: pytrees whose leaves all have leading axis B.
    """

    def pick(n, o):
        m = mask.reshape(mask.shape + (1,) * (n.ndim - 1))
        return jnp.where(m, n, o)

    return jax.tree.map(pick, new, old)


class SequenceModel(eqx.Module):
    """Base class: subclasses implement `init_state` and `step`."""

    keeps_state_per_step: ClassVar[bool] = True
    """Whether a training step's backward pass keeps the state of every time
    step (the scan's carries: the dense models' memories). False for the
    sparse memories, whose backward pass keeps only a few rows per step
    (`training/footprint.py` counts their state twice, not once per step)."""

    def init_state(self, batch: int) -> Any:
        raise NotImplementedError

    def step(self, state: Any, x: jnp.ndarray) -> tuple[Any, jnp.ndarray, Any]:
        raise NotImplementedError

    def memory_matrix(self, state: Any) -> jnp.ndarray | None:
        """The memory matrix [B, N, M] held in `state` (what figures draw), or
        None for models without one."""
        return None

    def _batched_step(self, state: Any, x: jnp.ndarray, remat: bool, policy=None):
        """`self._step_one` (one example) vmapped over the batch; with `remat`,
        wrapped in `jax.checkpoint(policy=policy)` so that the backward pass
        recomputes the step instead of storing its intermediates per time step
        (same values and gradients)."""
        step = jax.vmap(self._step_one)
        if remat:
            step = jax.checkpoint(step, policy=policy)
        return step(state, x)

    def __call__(self, xs: jnp.ndarray, state: Any, mask: jnp.ndarray | None = None,
                 with_trace: bool = False):
        """Run the whole sequence.

        Args:
          xs: [T, B, I] inputs, time-major.
          state: from `init_state(B)` or a previous call.
          mask: optional [T, B] booleans; at a False step the state is left
            exactly as it was (padding is inert).
          with_trace: also return the stacked per-step traces.
        Returns:
          (ys [T, B, O], final state) or, with `with_trace`, (ys, state, traces)
          where each trace leaf has leading axes [T, B].
        """
        if xs.ndim != 3:
            raise ValueError(f"xs must be [T, B, I], got shape {xs.shape}")

        def body(carry, inputs):
            x, m = inputs  # m is None without a mask: no per-step select
            new_state, y, trace = self.step(carry, x)
            if m is not None:
                new_state = keep_where(m, new_state, carry)
            return new_state, ((y, trace) if with_trace else y)

        state, out = jax.lax.scan(body, state, (xs, mask))
        if with_trace:
            ys, traces = out
            return ys, state, traces
        return out, state
