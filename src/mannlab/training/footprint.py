"""How much memory a training step needs, estimated before anything runs.

The estimate counts what a step keeps alive, from shapes alone
(`eqx.filter_eval_shape`, which allocates nothing): the parameters with
their gradients and two optimiser moments, and the model's state for every
time step of the longest training batch (the scan's carries, which the
backward pass keeps; remat recomputes the rest; a model whose
`keeps_state_per_step` is False, SAM and the SDNC, counts its state twice,
for the state and its gradient), three times over for the
step's working copies. It is a lower bound of the right order, enough to
refuse a config that cannot fit before a run directory is made.
"""

import math
import re
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from mannlab.config import RunConfig
from mannlab.tasks.base import Task


def _bytes(tree) -> int:
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def training_bytes(config: RunConfig, task: Task, seeds: int = 1) -> int:
    """Estimated bytes of one training step of `seeds` seeds of `config`."""
    inputs = task.input_size if task.embedding is None else task.embedding.size
    batch = config.train.batch_size

    def shapes(key):
        model = config.model.build(inputs, task.output_size, key)
        return eqx.filter(model, eqx.is_array), model.init_state(batch)

    params, state = eqx.filter_eval_shape(shapes, jax.random.key(0))
    steps = task.sample(np.random.default_rng(0), 1, length=task.max_length).inputs.shape[0]
    if not getattr(config.model.target, "keeps_state_per_step", True):
        steps = 1  # the state and its gradient, not one state per step (SAM, SDNC)
    return seeds * (4 * _bytes(params) + 3 * (steps + 1) * _bytes(state))


def available_bytes() -> int | None:
    """Memory the OS can give this process now (Linux: MemAvailable), or None."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    found = re.search(r"^MemAvailable:\s+(\d+) kB", text, flags=re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None
