"""train.curriculum: uniform (the task's own lengths) and grow (a growing
maximum length, kept exactly across resume)."""

import json

import jax
import numpy as np
import pytest

from helpers import tiny_config
from mannlab.config import ConfigError, parse_config
from mannlab.tasks.copy import CopyTask as Copy
from mannlab.training.checkpoint import CheckpointError, check_state
from mannlab.training.curriculum import GrowingLength, make_curriculum
from mannlab.training.rundir import create_run
from mannlab.training.trainer import Trainer


def grow_config(**train):
    train = {"curriculum": "grow", "curriculum_start": 1, "curriculum_step": 1,
             "curriculum_threshold": 1e9, **train}
    raw = tiny_config(**train).model_dump(mode="json")
    raw["task"]["max_length"] = 5
    return parse_config(raw)


def records(run, seed=3):
    lines = (run / f"seed-{seed}" / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == "train"]


def test_growing_length_grows_at_its_interval_below_the_threshold_up_to_the_longest():
    g = GrowingLength(shortest=1, longest=4, maximum=2, step=1, threshold=0.5, every=3)
    for step, value in [(1, 0.0), (2, 0.0)]:
        g.observe(step, value)
    assert g.maximum == 2 and g.values == [0.0, 0.0]  # no decision before step 3
    g.observe(3, 1.4)  # mean 0.467 < 0.5
    assert g.maximum == 3 and g.values == []
    for step in (4, 5, 6):
        g.observe(step, 0.6)  # mean 0.6: stays
    assert g.maximum == 3
    for step in range(7, 13):
        g.observe(step, 0.0)
    assert g.maximum == 4  # capped at the longest


def test_growing_length_draws_lengths_up_to_its_maximum():
    task, rng = Copy(bits=4, max_length=10), np.random.default_rng(0)
    g = GrowingLength(shortest=1, longest=10, maximum=3, step=1, threshold=0.5, every=3)
    batches = [g.sample(task, rng, 2) for _ in range(60)]
    assert {int(b.loss_mask.sum(axis=0)[0]) for b in batches} == {1, 2, 3}  # one per vector
    assert {b.inputs.shape[0] for b in batches} == {16}  # padded: one program, not three
    assert all(b.step_mask.sum(axis=0)[0] == 2 * b.loss_mask.sum(axis=0)[0] + 1
               for b in batches)  # padding is inert


def test_uniform_is_the_tasks_own_sampling_and_grow_starts_at_the_shortest_length():
    assert make_curriculum(tiny_config().train, Copy()) is None
    g = make_curriculum(grow_config(curriculum_start=30).train, Copy(max_length=20))
    assert (g.shortest, g.maximum, g.longest) == (1, 20, 20)


def test_grow_on_a_task_without_lengths_is_a_one_line_error():
    class NoLengths:
        max_length = 3

        def has_length(self, length):
            return False

    with pytest.raises(ValueError, match="train.curriculum: grow needs a task"):
        make_curriculum(grow_config().train, NoLengths())


def test_grow_needs_a_threshold():
    with pytest.raises(ConfigError, match="curriculum: grow needs curriculum_threshold"):
        grow_config(converge_at=None, curriculum_threshold=None)
    assert make_curriculum(grow_config(converge_at=0.25, curriculum_threshold=None).train,
                           Copy()).threshold == 0.25


@pytest.mark.parametrize("threshold,expected", [(1e9, [2, 3, 4, 5, 5]), (0.0, [1] * 5)])
def test_the_maximum_is_logged_and_grows_only_when_the_metric_passes(tmp_path, threshold,
                                                                      expected):
    config = grow_config(max_steps=50, curriculum_threshold=threshold)
    run = tmp_path / "run"
    create_run(run, config, [3])
    Trainer(run, config, [3]).train()
    # each record: the longest length its steps could draw (it grows after them)
    assert [r["curriculum_max"] for r in records(run)] == [1] + expected[:-1]
    state = json.loads(json.dumps(Trainer(run, config, [3], resume=True).seeds[0].to_json()))
    assert state["curriculum"] == {"maximum": expected[-1], "values": []}


@pytest.mark.parametrize("steps_per_call,first_stop", [(1, 20), (5, 23)])
def test_grow_resumes_the_same_run_exactly(tmp_path, steps_per_call, first_stop):
    """The maximum and the values since the last decision are in the
    checkpoint: a run stopped (also between decisions) and resumed ends
    bit for bit where an uninterrupted one does."""
    kw = {"steps_per_call": steps_per_call, "curriculum_threshold": 3.0, "log_every": 10}
    straight_run = tmp_path / "straight"
    config = grow_config(max_steps=60, **kw)
    create_run(straight_run, config, [3])
    straight = Trainer(straight_run, config, [3])
    straight.train()
    run = tmp_path / "split"
    create_run(run, grow_config(max_steps=first_stop, **kw), [3])
    first = Trainer(run, grow_config(max_steps=first_stop, **kw), [3])
    first.train()
    assert len(first.seeds[0].curriculum.values) == first_stop % 10
    resumed = Trainer(run, grow_config(max_steps=60, **kw), [3], resume=True)
    assert resumed.seeds[0].curriculum == first.seeds[0].curriculum  # maximum and values
    resumed.train()
    assert resumed.seeds[0].curriculum == straight.seeds[0].curriculum
    expected = {r["step"]: r["curriculum_max"] for r in records(straight_run)}
    assert {r["step"]: r["curriculum_max"] for r in records(run)
            if r["step"] in expected} == expected
    np.testing.assert_array_equal(
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(resumed.learner.params())]),
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(straight.learner.params())]))


def test_a_damaged_curriculum_state_is_a_one_line_error():
    state = {"step": 3, "seconds": 1.0, "rng": np.random.default_rng(0).bit_generator.state,
             "windows": {}, "converged": None, "last_eval": None,
             "curriculum": {"maximum": 0, "values": []}}
    with pytest.raises(CheckpointError, match=r"x.safetensors: its training state's "
                                              r"curriculum is .*maximum length >= 1"):
        check_state("x.safetensors", state)
