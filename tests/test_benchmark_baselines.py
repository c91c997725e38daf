"""The plain-JAX baselines that `benchmarks/throughput.py` times mannlab against
still run on mannlab's tasks, and their memory equations agree with mannlab's."""

import importlib
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mannlab.memory.allocation import allocation_weighting
from mannlab.tasks.copy import CopyTask

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


@pytest.mark.parametrize("name", ["plain_jax_ntm", "plain_jax_dnc"])
def test_baseline_trains_on_copy(name):
    plain = importlib.import_module(name)
    batch = CopyTask(bits=8, min_length=1, max_length=3).sample(np.random.default_rng(0), 2)
    params = plain.init_params(jax.random.key(0))
    opt_state = plain.OPTIMISER.init(params)
    arrays = [jnp.asarray(a) for a in (batch.inputs, batch.targets,
                                       batch.loss_mask.astype(np.float32))]
    new, _, loss = plain.train_step(params, opt_state, *arrays)
    assert np.isfinite(float(loss)) and float(loss) > 0
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), params, new)
    assert all(jax.tree.leaves(moved))


def test_dnc_baseline_allocation_equals_mannlab():
    plain = importlib.import_module("plain_jax_dnc")
    usage = jax.random.uniform(jax.random.key(1), (3, 128))
    usage = usage.at[0, :4].set(jnp.array([0.0, 1.0, 0.5, 0.5]))  # edges and a tie
    np.testing.assert_allclose(plain._allocation(usage), jax.vmap(allocation_weighting)(usage),
                               atol=1e-6)
