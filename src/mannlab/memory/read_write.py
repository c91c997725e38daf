"""Reading from and writing to memory (Graves et al. 2014, NTM, section 3.1-3.2).

Shapes: memory [N, M], weightings [H, N], vectors [H, M].
"""

import jax.numpy as jnp


def read(memory: jnp.ndarray, weights: jnp.ndarray) -> jnp.ndarray:
    """NTM eq. 2: r_t = sum_i w_t(i) M_t(i).

    Args:
      memory: [N, M].
      weights: [H, N] read weightings, one row per read head.
    Returns:
      [H, M] read vectors.
    """
    return weights @ memory


def erase_and_add(
    memory: jnp.ndarray, weights: jnp.ndarray, erase: jnp.ndarray, add: jnp.ndarray
) -> jnp.ndarray:
    """NTM eqs. 3-4: erase then add, for any number of write heads.

    M~(i) = M(i) * prod_h (1 - w_h(i) e_h)      (eq. 3)
    M(i)  = M~(i) + sum_h w_h(i) a_h             (eq. 4)

    As the paper notes, the order of the heads does not matter: erasures
    multiply and additions sum.

    Args:
      memory: [N, M] previous memory.
      weights: [H, N] write weightings.
      erase: [H, M] erase vectors, each element in [0, 1].
      add: [H, M] add vectors.
    Returns:
      [N, M] new memory.
    """
    # An explicit product over the (few, static) heads: the gradient of
    # jnp.prod is far costlier on the CPU than these multiplies.
    for h in range(weights.shape[0]):
        memory = memory * (1.0 - jnp.outer(weights[h], erase[h]))
    return memory + weights.T @ add
