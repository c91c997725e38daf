"""SAM's usage: time since last access (Rae et al. 2016, section 3.2, the
least-recently-accessed word; the paper's U^(1)).

A row counts as accessed at step t when a read or the write gives it a
weight above `ACCESS_THRESHOLD` (delta). The state is each row's last
access time, int32; usage U_t(i) = t - last_access(i), and the row with the
largest usage is the least recently used one, where the next new write goes.

Shapes: last_access [N] int32; indices and weights [S].
"""

import jax.numpy as jnp

ACCESS_THRESHOLD = 0.005
"""delta: a weight above this is an access (the paper's threshold)."""


def time_since_access(last_access: jnp.ndarray, time: jnp.ndarray) -> jnp.ndarray:
    """SAM section 3.2, usage U_t(i) = t - max{tau <= t : w_tau(i) > delta}
    (rows never accessed: t - 0, the initial time stamp).

    Args:
      last_access: [N] int32 time of each row's last access.
      time: [] int32 the current step t.
    Returns:
      [N] int32 steps since each row was last accessed.
    """
    return time - last_access


def least_recently_used(last_access: jnp.ndarray) -> jnp.ndarray:
    """SAM section 3.2, I^U_t: the row with the largest usage (time since
    access), i.e. the smallest last-access time; ties go to the lowest index.

    O(N) (the paper keeps a heap; an argmin over N int32 costs less than the
    read's similarities over N rows).

    Args:
      last_access: [N] int32.
    Returns:
      [] int32 row index.
    """
    return jnp.argmin(last_access).astype(jnp.int32)


def record_access(last_access: jnp.ndarray, indices: jnp.ndarray, weights: jnp.ndarray,
                  time: jnp.ndarray, threshold: float = ACCESS_THRESHOLD) -> jnp.ndarray:
    """SAM section 3.2, the usage update as a K-row scatter: rows given a
    weight > delta at step t get last_access = t; the rest keep theirs.
    Indices may repeat (a row read by two heads and written): any of its
    accesses counts.

    Args:
      last_access: [N] int32.
      indices: [S] int32 rows touched at step t (reads and the write).
      weights: [S] their weights.
      time: [] int32 t (>= 1; time stamps only grow).
    Returns:
      [N] int32 the new last-access times.
    """
    stamp = jnp.where(weights > threshold, time, 0).astype(last_access.dtype)
    return last_access.at[indices].max(stamp)
