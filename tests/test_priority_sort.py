import numpy as np
import pytest

from helpers import check_bit_metrics
from mannlab.tasks.priority_sort import PrioritySortTask


def test_layout_of_one_example():
    task = PrioritySortTask(bits=2, min_length=5, max_length=5, sorted_fraction=0.6)
    vectors = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]])[:, None]
    priorities = np.array([0.1, 0.9, -0.5, 0.3, -0.2])[:, None]
    batch = task.make_batch(vectors, priorities, np.array([5]), task.steps_needed(5) + 1)
    x, y = batch.inputs[:, 0], batch.targets[:, 0]
    assert task.input_size == 4 and task.output_size == 2
    assert task.outputs(5) == 3 and task.steps_needed(5) == 9
    np.testing.assert_array_equal(x[:5, :2], vectors[:, 0])
    np.testing.assert_allclose(x[:5, 2], priorities[:, 0])
    np.testing.assert_array_equal(x[:, 3], np.eye(10)[5])  # the delimiter
    assert np.all(x[6:] == 0)
    # the three highest priorities, highest first: 0.9, 0.3, 0.1
    np.testing.assert_array_equal(y[6:9], vectors[[1, 3, 0], 0])
    np.testing.assert_array_equal(batch.loss_mask[:, 0], [0] * 6 + [1, 1, 1, 0])
    np.testing.assert_array_equal(batch.step_mask[:, 0], [True] * 9 + [False])


def test_sampling_matches_the_paper_and_sorts():
    task = PrioritySortTask()  # 20 vectors in, the 16 of highest priority out
    rng = np.random.default_rng(0)
    b = task.sample(rng, 8)
    assert b.inputs.shape[0] == 20 + 1 + 16
    assert np.all(b.loss_mask.sum(0) == 16)
    pri = b.inputs[:20, :, 8]
    assert np.all((pri >= -1) & (pri <= 1))
    for e in range(8):
        order = np.argsort(-pri[:, e])[:16]
        np.testing.assert_array_equal(b.targets[21:37, e], b.inputs[order, e, :8])
    # generalisation: another length keeps the proportion
    b = task.sample(rng, 2, length=40)
    assert b.inputs.shape[0] == 40 + 1 + 32


def test_variable_lengths_bucket_and_loss():
    task = PrioritySortTask(bits=3, min_length=2, max_length=10, length_buckets=3)
    rng = np.random.default_rng(2)
    for _ in range(10):
        b = task.sample(rng, 6)
        assert b.inputs.shape[0] in task.edges
    check_bit_metrics(task, b)


def test_validation():
    with pytest.raises(ValueError, match="sorted_fraction"):
        PrioritySortTask(sorted_fraction=0.0)
    with pytest.raises(ValueError, match="min_length"):
        PrioritySortTask(min_length=5, max_length=4)
    with pytest.raises(ValueError, match="length=0"):
        PrioritySortTask().sample(np.random.default_rng(0), 1, length=0)
