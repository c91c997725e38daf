import numpy as np
import pytest

from helpers import check_bit_metrics
from mannlab.config import ConfigError, parse_config
from mannlab.tasks.associative_recall import AssociativeRecallTask, steps_needed


def test_layout_of_one_example():
    task = AssociativeRecallTask(bits=2, item_length=2, min_items=2, max_items=3)
    items = np.array([[[1, 0], [0, 1]], [[1, 1], [0, 0]], [[0, 1], [1, 1]]])
    batch = task.make_batch([items], np.array([1]), steps_needed(3, 2) + 1)
    x, y = batch.inputs[:, 0], batch.targets[:, 0]
    assert task.input_size == 4 and task.output_size == 2
    # three items, each after a step on the item-delimiter channel (2)
    np.testing.assert_array_equal(np.flatnonzero(x[:, 2]), [0, 3, 6])
    np.testing.assert_array_equal(x[1:3, :2], items[0])
    np.testing.assert_array_equal(x[4:6, :2], items[1])
    np.testing.assert_array_equal(x[7:9, :2], items[2])
    # the query (item 1) between two steps on the query-delimiter channel (3)
    np.testing.assert_array_equal(np.flatnonzero(x[:, 3]), [9, 12])
    np.testing.assert_array_equal(x[10:12, :2], items[1])
    assert np.all(x[13:] == 0)  # silence while answering
    # the answer is the item that followed the query: item 2
    np.testing.assert_array_equal(y[13:15], items[2])
    np.testing.assert_array_equal(batch.loss_mask[:, 0], [0] * 13 + [1, 1, 0])
    np.testing.assert_array_equal(batch.step_mask[:, 0], [True] * 15 + [False])
    assert steps_needed(3, 2) == 15


def test_sampling_ranges_buckets_and_fixed_counts():
    task = AssociativeRecallTask(min_items=2, max_items=6, length_buckets=2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        b = task.sample(rng, 8)
        assert b.inputs.shape[0] in task.edges
        counts = b.inputs[..., 6].sum(0)  # item delimiters per example
        assert np.all((counts >= 2) & (counts <= 6))
        assert np.all(b.loss_mask.sum(0) == 3)  # one answer item per example
    b = task.sample(rng, 4, length=12)  # beyond the training range
    assert b.inputs.shape[0] == steps_needed(12, 3)
    np.testing.assert_array_equal(b.inputs[..., 6].sum(0), 12)


def test_answer_is_the_successor_of_the_query_and_items_are_distinct():
    task = AssociativeRecallTask(bits=1, item_length=3, min_items=8, max_items=8)
    rng = np.random.default_rng(3)
    b = task.sample(rng, 16)
    for e in range(16):
        x = b.inputs[:, e]
        starts = np.flatnonzero(x[:, 1])
        items = [x[s + 1:s + 4, 0] for s in starts]
        assert len({tuple(i) for i in items}) == 8  # all 2^3 items, each once
        q = np.flatnonzero(x[:, 2])[0]
        query = x[q + 1:q + 4, 0]
        k = [tuple(i) for i in items].index(tuple(query))
        answer = b.targets[b.loss_mask[:, e] > 0, e, 0]
        np.testing.assert_array_equal(answer, items[k + 1])


def test_as_many_items_as_exist_are_drawn_without_repeats():
    task = AssociativeRecallTask(bits=2, item_length=2, min_items=2, max_items=4)
    b = task.sample(np.random.default_rng(5), 3, length=16)  # all 16 items, quickly
    for e in range(3):
        x = b.inputs[:, e]
        items = {tuple(x[s + 1:s + 3, :2].ravel()) for s in np.flatnonzero(x[:, 2])}
        assert len(items) == 16
    assert task.max_length == 4  # the training length, in items
    with pytest.raises(ValueError, match="length=17 items"):
        task.sample(np.random.default_rng(5), 1, length=17)


def test_loss_metrics_and_validation():
    task = AssociativeRecallTask(bits=3, item_length=2, max_items=4)
    b = task.sample(np.random.default_rng(1), 5)
    check_bit_metrics(task, b)
    assert task.has_length(2) and not task.has_length(1) and not task.has_length(65)
    with pytest.raises(ValueError, match="min_items"):
        AssociativeRecallTask(min_items=1)
    with pytest.raises(ValueError, match="distinct items"):
        AssociativeRecallTask(bits=1, item_length=2, max_items=5)
    with pytest.raises(ConfigError, match="task.min_items"):
        parse_config({"task": {"name": "associative_recall", "min_items": 1},
                      "model": {"name": "lstm"}, "train": {}})
