"""DNC read weightings from the three read modes (Graves et al. 2016, Methods,
"Read weighting"), and the masked content lookup of Csordas & Schmidhuber 2019.

Shapes: N memory rows, W row width, R read heads; weightings [R, N], read
modes [R, 3] ordered (backward, content, forward).
"""

import jax
import jax.numpy as jnp

from mannlab.memory.content import content_weighting


def read_weighting(backward: jnp.ndarray, content: jnp.ndarray, forward: jnp.ndarray,
                   modes: jnp.ndarray) -> jnp.ndarray:
    """DNC Methods: w_t^{r,i} = pi_t^i[1] b_t^i + pi_t^i[2] c_t^{r,i} + pi_t^i[3] f_t^i.

    Args:
      backward: [R, N] backward weightings b_t^i.
      content: [R, N] content weightings c_t^{r,i}.
      forward: [R, N] forward weightings f_t^i.
      modes: [R, 3] read modes pi_t^i, each a distribution (softmax) over
        (backward, content, forward).
    Returns:
      [R, N] read weightings.
    """
    return (modes[:, 0:1] * backward + modes[:, 1:2] * content
            + modes[:, 2:3] * forward)


def masked_content_weighting(memory: jnp.ndarray, keys: jnp.ndarray, strengths: jnp.ndarray,
                             masks: jnp.ndarray) -> jnp.ndarray:
    """Csordas & Schmidhuber 2019, section 2.1, masked content-based addressing:
    C(M, k, beta, s)[i] = softmax_i(beta D(k o s, M[i] o s)).

    The mask s in [0, 1]^W selects which part of a row is the key, so the
    rest (the value) does not disturb the lookup. With s = 1 this is the plain
    DNC content lookup (`content_weighting`).

    Args:
      memory: [N, W].
      keys: [H, W].
      strengths: [H] beta >= 1.
      masks: [H, W] masks s in [0, 1].
    Returns:
      [H, N] weightings; each row sums to 1.
    """

    def one(key, strength, mask):
        return content_weighting(memory * mask, (key * mask)[None], strength[None])[0]

    return jax.vmap(one)(keys, strengths, masks)
