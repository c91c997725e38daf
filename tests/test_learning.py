"""Learning for real: small models on short copy sequences (and on associative
recall) reach low held-out error.

Each case trains with the project's Trainer on copy of 4-bit vectors, length
1-5, and must reach < 0.1 bits wrong per sequence (0.5 for the
shared read-write head) on 200 held-out sequences.
Every memory initialisation must learn (a constant memory with unfocused heads
never would: see NTM.init_state).
"""

import pytest

from mannlab.config import parse_config
from mannlab.training.rundir import create_run
from mannlab.training.trainer import Trainer

pytestmark = pytest.mark.slow  # each trains a model to convergence: 7-25 s


def copy_config(model: dict, bound: float, max_steps: int = 6000):
    return parse_config({
        "task": {"name": "copy", "bits": 4, "min_length": 1, "max_length": 5,
                 "length_buckets": 1},
        "model": model,
        "train": {"optimizer": "adam", "learning_rate": 3e-3, "batch_size": 8,
                  "max_steps": max_steps, "eval_every": 250, "eval_size": 200,
                  "log_every": 250, "converge_at": bound},
    })


NTM = {"name": "ntm", "controller_size": 32, "memory_size": 16, "memory_width": 8}


@pytest.mark.parametrize("model, bound", [
    (NTM, 0.1),
    ({**NTM, "memory_init": "learned"}, 0.1),
    ({**NTM, "memory_init": "random"}, 0.1),
    ({**NTM, "shared_head": True}, 0.5),  # one head must write and read: slower to learn
], ids=["constant", "learned", "random", "shared-head"])
def test_small_ntm_learns_short_copy(tmp_path, model, bound):
    config = copy_config(model, bound)
    create_run(tmp_path / "run", config, [0])
    (result,) = Trainer(tmp_path / "run", config, [0]).train()
    assert result.converged is not None, f"held-out after {result.steps} steps: {result.heldout}"
    assert result.heldout["bits_wrong"] < bound


def test_small_ntm_learns_associative_recall(tmp_path):
    """Three items of one 4-bit vector: the query is the first or the second,
    so every example needs a lookup; the NTM must answer with the query's
    successor (< 0.1 bits wrong per sequence on 200 held-out examples)."""
    config = parse_config({
        "task": {"name": "associative_recall", "bits": 4, "item_length": 1, "min_items": 3,
                 "max_items": 3, "length_buckets": 1},
        "model": {**NTM, "memory_init": "learned"},
        "train": {"optimizer": "adam", "learning_rate": 3e-3, "batch_size": 8,
                  "max_steps": 6000, "eval_every": 250, "eval_size": 200, "log_every": 250,
                  "converge_at": 0.1},
    })
    create_run(tmp_path / "run", config, [0])
    (result,) = Trainer(tmp_path / "run", config, [0]).train()
    assert result.converged is not None, f"held-out after {result.steps} steps: {result.heldout}"
    assert result.heldout["bits_wrong"] < 0.1
