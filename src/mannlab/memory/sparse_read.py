"""Sparse content reads (SAM: Rae et al. 2016, "Scaling Memory-Augmented
Neural Networks with Sparse Reads and Writes", section 3.1).

A read head attends to only K rows: the K rows most similar to its key
(found over all N rows, with no gradient: which rows is a discrete choice),
with a softmax of beta times the cosine similarity over those K rows alone.
The gradient of a read touches only the K gathered rows.

Shapes: memory [N, W]; keys [H, W]; strengths [H]; indices [H, K];
gathered rows [H, K, W]; weights [H, K].
"""

import jax
import jax.numpy as jnp

from mannlab.memory.content import cosine_similarity
from mannlab.memory.numerics import safe_norm, unit_vectors

EMPTY_RANK = -2.0
"""The score `exact_top_k` gives an empty (all-zero) row: below every cosine
similarity (>= -1), so empty rows come after all rows holding something."""


def exact_top_k(memory: jnp.ndarray, keys: jnp.ndarray, k: int) -> jnp.ndarray:
    """SAM section 3.1, the exact search: the K rows with the largest cosine
    similarity (NTM eq. 6) to each key, by `jax.lax.top_k` over all N rows.

    O(N W) forward; no gradient (the choice of rows is discrete: the values
    read are differentiated through `sparse_content_weighting` of the
    gathered rows). Ties go to the lower row index.

    Empty rows (all zero: never written, or erased) rank below every
    non-empty row, whatever its similarity: they are chosen only when fewer
    than K rows hold anything (then the lowest-indexed empty rows). As in
    the approximate search (`lsh.lsh_top_k`, which finds only written rows)
    and the paper's index of written words. Ranked by cosine similarity 0,
    empty rows would beat every row of negative similarity, and a head whose
    key pointed away from all written rows would read only empty rows: a
    zero read vector, a zero gradient for its key (the cosine to a zero row
    is constant 0), so nothing pulls it back, and every empty row it reads
    counts as accessed (`sparse_usage.record_access`), so the LRU row runs
    through memory K + 1 rows per step and overwrites rows still to be read
    (seen in training on copy 1-20 before this rule: tests/test_sam.py).

    Args:
      memory: [N, W].
      keys: [H, W].
      k: K <= N rows per head.
    Returns:
      [H, K] int32 row indices, most similar first.
    """
    if not 1 <= k <= memory.shape[0]:
        raise ValueError(f"k: must be between 1 and the {memory.shape[0]} memory rows, got {k}")
    memory = jax.lax.stop_gradient(memory)
    sims = cosine_similarity(jax.lax.stop_gradient(keys), memory)
    empty = jnp.all(memory == 0, axis=-1)
    sims = jnp.where(empty[None, :], EMPTY_RANK, sims)
    return jax.lax.top_k(sims, k)[1].astype(jnp.int32)


def gather_rows(memory: jnp.ndarray, indices: jnp.ndarray) -> jnp.ndarray:
    """The rows M(i) for i in `indices`: memory [N, W], indices [...] -> [..., W]."""
    return memory[indices]


def sparse_cosine_similarity(keys: jnp.ndarray, rows: jnp.ndarray) -> jnp.ndarray:
    """NTM eq. 6 between each head's key and its own K gathered rows, with the
    guards of `content.cosine_similarity` (scale-free keys, rows with the
    absolute EPS guard), so a zero key or row gives 0 without NaN.

    Args:
      keys: [H, W].
      rows: [H, K, W].
    Returns:
      [H, K] similarities in [-1, 1].
    """
    return jnp.einsum("hw,hkw->hk", unit_vectors(keys), rows) / safe_norm(rows)


def sparse_content_weighting(rows: jnp.ndarray, keys: jnp.ndarray,
                             strengths: jnp.ndarray) -> jnp.ndarray:
    """SAM eq. for the sparse read weights: w_t^R(s_k) = softmax_k(beta d(q, M(s_k)))
    over the K selected rows s_1..s_K, zero elsewhere (NTM eq. 5 restricted
    to the top K). The softmax subtracts its maximum: huge strengths stay
    finite.

    Args:
      rows: [H, K, W] the rows chosen by the search.
      keys: [H, W].
      strengths: [H] beta >= 0.
    Returns:
      [H, K] weights; each row non-negative, summing to 1.
    """
    return jax.nn.softmax(strengths[:, None] * sparse_cosine_similarity(keys, rows), axis=-1)


def sparse_read(rows: jnp.ndarray, weights: jnp.ndarray) -> jnp.ndarray:
    """SAM section 3.1: r_t = sum_k w_t^R(s_k) M_t(s_k) (NTM eq. 2 over K rows).

    Args:
      rows: [H, K, W].
      weights: [H, K].
    Returns:
      [H, W] read vectors.
    """
    return jnp.einsum("hk,hkw->hw", weights, rows)
