import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from mannlab.memory.read_write import erase_and_add
from mannlab.memory.write_vjp import erase_and_add_one_head


def test_same_values_and_gradients_as_erase_and_add():
    k = jax.random.split(jax.random.key(0), 4)
    memory = jax.random.normal(k[0], (6, 4))
    w = jax.nn.softmax(jax.random.normal(k[1], (1, 6)))
    e = jax.nn.sigmoid(jax.random.normal(k[2], (1, 4)))
    v = jax.random.normal(k[3], (1, 4))
    args = (memory, w, e, v)
    np.testing.assert_allclose(erase_and_add_one_head(*args), erase_and_add(*args), atol=1e-6)
    probe = jax.random.normal(jax.random.key(9), memory.shape)

    def grad_of(f):
        return jax.grad(lambda *a: jnp.sum(f(*a) * probe), argnums=(0, 1, 2, 3))(*args)

    grads = [grad_of(erase_and_add_one_head), grad_of(erase_and_add)]
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, atol=1e-5)
    check_grads(erase_and_add_one_head, args, order=1, modes=["rev"], eps=1e-3, atol=1e-2,
                rtol=1e-2)
    batched = jax.vmap(erase_and_add_one_head)(*(jnp.stack([a, 2 * a]) for a in args))
    np.testing.assert_allclose(batched[1], erase_and_add(*(2 * a for a in args)), atol=1e-5)
