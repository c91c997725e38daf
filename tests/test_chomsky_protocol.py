"""The Chomsky suite's score: mean accuracy over a stated sample of test
lengths, and its computation for a trained run."""

import numpy as np
import pytest

from mannlab.cli import main
from mannlab.config import ConfigError, parse_config
from mannlab.tasks.chomsky.protocol import (
    SEQUENCES,
    TEST_LENGTHS,
    protocol_lengths,
    score,
    summary,
)
from mannlab.training.evaluate import generalisation, protocol_score
from mannlab.training.rundir import open_run


def test_the_stated_lengths_and_max_length():
    assert TEST_LENGTHS == (41, 50, 75, 100, 150, 200, 300, 500) and SEQUENCES == 64
    assert protocol_lengths() == list(TEST_LENGTHS)
    assert protocol_lengths(100) == [41, 50, 75, 100]
    with pytest.raises(ValueError, match="max_length: 40 keeps none of the test lengths"):
        protocol_lengths(40)


def test_score_and_summary():
    assert score({"41": 1.0, "50": 0.5}) == 0.75
    assert summary([0.95, 0.5, 0.9, 0.6]) == {"best": 0.95, "median": 0.75,
                                               "solved_rate": 0.5, "seeds": 4}
    with pytest.raises(ValueError, match="no lengths"):
        score({})


def test_protocol_score_of_a_trained_run(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "lstm-chomsky-reverse-string", "model.hidden_size=8",
                 "task.max_length=4", "task.length_buckets=1", "train.max_steps=2",
                 "train.eval_every=2", "train.eval_size=8", "train.log_every=1",
                 "train.checkpoint_every=2", "train.log_images=false", "--no-progress",
                 "--run-dir", str(run)]) == 0
    _, config, seed_dirs = open_run(run)
    result = protocol_score(config, seed_dirs, max_length=50, sequences=8)
    assert result["lengths"] == [41, 50] and result["sequences"] == 8
    (seed,) = result["seeds"].values()
    table = generalisation(config, seed_dirs, [41, 50], 8)["seeds"]["seed-0"]
    assert seed["accuracy"] == {n: table[n]["accuracy"] for n in ("41", "50")}
    assert seed["score"] == pytest.approx(np.mean(list(seed["accuracy"].values())))
    assert 0.2 < seed["score"] < 0.8 and seed["solved"] is False  # chance is 0.5
    assert result["summary"]["best"] == seed["score"] and result["summary"]["solved_rate"] == 0
    with pytest.raises(ConfigError, match="keeps none of the test lengths"):
        protocol_score(config, seed_dirs, max_length=30)


def test_protocol_score_is_for_the_chomsky_tasks():
    config = parse_config({"task": {"name": "copy"}, "model": {"name": "lstm"}})
    with pytest.raises(ConfigError, match="for the chomsky tasks, not copy"):
        protocol_score(config, [])
