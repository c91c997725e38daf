"""Embedded: token ids -> embedding -> any model."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mannlab.models.embedded import Embedded, wrap_for_task
from mannlab.models.lstm import LSTM
from mannlab.tasks.pos import POSTask
from test_pos import DEV, TRAIN


def lstm_builder(i, o, key):
    return LSTM(i, o, 16, 1, key=key)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "train.conllu").write_text(TRAIN)
    (tmp_path / "dev.conllu").write_text(DEV)
    return str(tmp_path / "train.conllu"), str(tmp_path / "dev.conllu")


def test_wrap_for_task_embeds_ids(files):
    task = POSTask(*files, embedding_size=5)
    model = wrap_for_task(lstm_builder, task, jax.random.PRNGKey(0))
    assert isinstance(model, Embedded) and model.weight.shape == (task.vocab_size, 5)
    (b,) = task.eval_batches(4)
    xs, mask = jnp.asarray(b.inputs), jnp.asarray(b.step_mask)

    @eqx.filter_jit
    def loss_and_grad(m):
        def f(m):
            ys, _ = m(xs, m.init_state(2), mask)
            return task.loss(ys, b)[0], ys
        return eqx.filter_value_and_grad(f, has_aux=True)(m)

    (_, ys), grads = loss_and_grad(model)
    assert ys.shape == (3, 2, 17)
    assert float(jnp.abs(grads.weight).sum()) > 0
    # one step at a time agrees with the scan
    _, y0, _ = model.step(model.init_state(2), jnp.asarray(b.inputs[0]))
    np.testing.assert_allclose(y0, ys[0], rtol=1e-5, atol=1e-6)


def test_plain_tasks_are_not_wrapped():
    from mannlab.tasks.copy import CopyTask

    model = wrap_for_task(lstm_builder, CopyTask(), jax.random.PRNGKey(0))
    assert isinstance(model, LSTM)
