import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from mannlab.memory.read_write import erase_and_add, read


def test_read_is_weighted_sum_of_rows():
    memory = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    w = jnp.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(read(memory, w), [[2.0, 3.0], [5.0, 6.0]])


def test_erase_and_add_hand_values():
    memory = jnp.array([[1.0, 1.0], [2.0, 2.0]])
    w = jnp.array([[1.0, 0.5]])
    erase = jnp.array([[1.0, 0.0]])
    add = jnp.array([[0.0, 3.0]])
    # row 0: erase all of column 0, add 3 to column 1; row 1: half of each.
    expected = [[0.0, 4.0], [1.0, 3.5]]
    np.testing.assert_allclose(erase_and_add(memory, w, erase, add), expected)


def test_two_write_heads_commute():
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    memory = jax.random.normal(k[0], (5, 3))
    w = jax.nn.softmax(jax.random.normal(k[1], (2, 5)))
    e = jax.nn.sigmoid(jax.random.normal(k[2], (2, 3)))
    a = jax.random.normal(k[3], (2, 3))
    once = erase_and_add(memory, w, e, a)
    swapped = erase_and_add(memory, w[::-1], e[::-1], a[::-1])
    np.testing.assert_allclose(once, swapped, atol=1e-6)


def test_write_gradients_match_finite_differences():
    k = jax.random.split(jax.random.PRNGKey(2), 4)
    args = (jax.random.normal(k[0], (4, 3)), jax.nn.softmax(jax.random.normal(k[1], (1, 4))),
            jax.nn.sigmoid(jax.random.normal(k[2], (1, 3))), jax.random.normal(k[3], (1, 3)))
    check_grads(erase_and_add, args, order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
