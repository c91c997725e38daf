import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from mannlab.memory.content import content_weighting
from mannlab.memory.dnc_read import masked_content_weighting, read_weighting


def test_read_weighting_mixes_three_modes():
    b = jnp.array([[1.0, 0, 0]])
    c = jnp.array([[0, 1.0, 0]])
    f = jnp.array([[0, 0, 1.0]])
    modes = jnp.array([[0.2, 0.3, 0.5]])
    np.testing.assert_allclose(read_weighting(b, c, f, modes), [[0.2, 0.3, 0.5]], rtol=1e-6)
    check_grads(read_weighting, (b, c, f, modes), order=1, modes=["rev"])


def test_mask_of_ones_is_plain_content_lookup():
    k = jax.random.split(jax.random.key(0), 2)
    memory = jax.random.normal(k[0], (5, 4))
    keys = jax.random.normal(k[1], (2, 4))
    strengths = jnp.array([2.0, 5.0])
    np.testing.assert_allclose(masked_content_weighting(memory, keys, strengths, jnp.ones((2, 4))),
                               content_weighting(memory, keys, strengths), atol=1e-6)


def test_mask_ignores_the_value_part():
    # rows 0 and 1 share the key half [1, 0] but differ in the value half; the
    # query equals row 0. Masking the value part makes rows 0-1 tie.
    memory = jnp.array([[1.0, 0, 5, 5], [1.0, 0, -5, 5], [0.0, 1, 0, 0]])
    key = jnp.array([[1.0, 0, 5, 5]])
    mask = jnp.array([[1.0, 1, 0, 0]])
    plain = masked_content_weighting(memory, key, jnp.array([10.0]), jnp.ones((1, 4)))
    masked = masked_content_weighting(memory, key, jnp.array([10.0]), mask)
    assert float(plain[0, 0]) > 0.99
    np.testing.assert_allclose(masked[0, 0], masked[0, 1], rtol=1e-6)
    assert float(masked[0, 2]) < 1e-3


def test_masked_lookup_depends_on_the_mask_shape_not_its_scale():
    # Csordas & Schmidhuber's D(k o s, M o s) is a cosine: scaling the mask
    # changes nothing while the masked rows stay far above the rows' guard
    # EPS = 1e-6 (below it a row counts as empty: content.cosine_similarity)
    k = jax.random.split(jax.random.key(1), 3)
    memory = jax.random.normal(k[0], (6, 4))
    keys = jax.random.normal(k[1], (2, 4))
    masks = jax.nn.sigmoid(jax.random.normal(k[2], (2, 4)))
    strengths = jnp.array([3.0, 30.0])
    base = masked_content_weighting(memory, keys, strengths, masks)
    for c in (1e-2, 0.5, 4.0):
        np.testing.assert_allclose(masked_content_weighting(memory, keys, strengths, masks * c),
                                   base, rtol=1e-5, atol=1e-7)
