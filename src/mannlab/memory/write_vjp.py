"""`read_write.erase_and_add` for one write head with a hand-written VJP.

Same values as `erase_and_add` (NTM eqs. 3-4, DNC Methods "memory writing":
M_t = M_{t-1} o (E - w e^T) + w v^T); only the backward pass differs: every
gradient is a matrix-vector product instead of the reductions over one axis
that autodiff produces, which are slow on CPU. Used by the DNC and by the NTM
whenever it has one write head (NTM batch 16: about 9% off the training step),
with `kernels="fast"` (the default); `kernels="reference"` uses
`erase_and_add` itself.

Shapes: memory [N, W], weights [1, N], erase and add [1, W].
"""

import jax

from mannlab.memory.read_write import erase_and_add


@jax.custom_vjp
def erase_and_add_one_head(memory, weights, erase, add):
    """`erase_and_add` with one write head (weights [1, N]); see the module."""
    return erase_and_add(memory, weights, erase, add)


def _fwd(memory, weights, erase, add):
    return erase_and_add(memory, weights, erase, add), (memory, weights, erase, add)


def _bwd(residuals, d_new):
    memory, w, e, v = residuals
    d_memory = d_new * (1.0 - w.T * e)  # dM' o (E - w e^T)
    dm = d_new * memory
    d_w = (d_new @ v.T - dm @ e.T).T  # [1, N]: sum_k dM'_ik (v_k - M_ik e_k)
    d_e = -(w @ dm)  # [1, W]
    d_v = w @ d_new  # [1, W]
    return d_memory, d_w, d_e, d_v


erase_and_add_one_head.defvjp(_fwd, _bwd)


def erase_and_add_fast(memory, weights, erase, add):
    """The fast kernel for any number of write heads: `erase_and_add_one_head`
    when weights is [1, N], else `erase_and_add` (the head count is static).

    Args:
      memory: [N, W]; weights: [H, N]; erase, add: [H, W].
    Returns:
      [N, W] the new memory.
    """
    write = erase_and_add_one_head if weights.shape[0] == 1 else erase_and_add
    return write(memory, weights, erase, add)
