"""Dynamic memory allocation, part 1: retention and usage (DNC, Graves et al.
2016, Methods, "Dynamic memory allocation").

Shapes: N memory rows, W row width, R read heads, H write heads.
Read weightings [R, N], write weightings [H, N], free gates [R],
retention and usage [N].
"""

import jax.numpy as jnp


def retention(free_gates: jnp.ndarray, read_weights: jnp.ndarray) -> jnp.ndarray:
    """DNC Methods, memory retention vector: psi_t = prod_i (1 - f_t^i w_{t-1}^{r,i}).

    How much of each location is *not* freed by the read heads.

    Args:
      free_gates: [R] free gates f_t^i in [0, 1].
      read_weights: [R, N] the previous step's read weightings w_{t-1}^{r,i}.
    Returns:
      [N] retention in [0, 1].
    """
    return jnp.prod(1.0 - free_gates[:, None] * read_weights, axis=0)


def usage_update(usage: jnp.ndarray, write_weights: jnp.ndarray,
                 retention_vector: jnp.ndarray) -> jnp.ndarray:
    """DNC Methods, usage vector: u_t = (u_{t-1} + w_{t-1}^w - u_{t-1} o w_{t-1}^w) o psi_t.

    With several write heads the written part generalises as
    1 - (1 - u_{t-1}) prod_h (1 - w_{t-1}^{w,h}), which equals the paper's
    expression for one head.

    Args:
      usage: [N] previous usage u_{t-1} in [0, 1].
      write_weights: [H, N] the previous step's write weightings w_{t-1}^w.
      retention_vector: [N] psi_t from `retention`.
    Returns:
      [N] usage u_t in [0, 1].
    """
    written = 1.0 - (1.0 - usage) * jnp.prod(1.0 - write_weights, axis=0)
    return written * retention_vector


def deallocate(memory: jnp.ndarray, retention_vector: jnp.ndarray) -> jnp.ndarray:
    """Csordas & Schmidhuber 2019, section 2.2 (de-allocation): M_{t-1} o (psi_t 1^T).

    Freed locations are erased in proportion to how much they were freed,
    applied before the usual erase-and-add write, so a freed cell can no
    longer be found by content.

    Args:
      memory: [N, W].
      retention_vector: [N] psi_t.
    Returns:
      [N, W] memory with freed rows scaled towards zero.
    """
    return memory * retention_vector[:, None]
