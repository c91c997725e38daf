import numpy as np
import pytest

from helpers import check_bit_metrics
from mannlab.tasks.repeat_copy import RepeatCopyTask, steps_needed


def test_layout_of_one_example():
    task = RepeatCopyTask(bits=3, min_length=1, max_length=4, min_repeats=1, max_repeats=3,
                          repeat_normaliser=5.0)
    seq = np.array([[[1, 0, 1]], [[0, 1, 1]]])
    batch = task.make_batch(seq, np.array([2]), np.array([3]), steps_needed(2, 3) + 1)
    assert task.input_size == 4 and task.output_size == 4
    x, y = batch.inputs[:, 0], batch.targets[:, 0]
    np.testing.assert_array_equal(x[:2, :3], seq[:, 0])
    assert x[2, 3] == pytest.approx(3 / 5.0)  # repeats / fixed normaliser
    assert np.count_nonzero(x[:, 3]) == 1 and np.all(x[3:] == 0)
    np.testing.assert_array_equal(y[3:9, :3], np.tile(seq[:, 0], (3, 1)))
    np.testing.assert_array_equal(y[:, 3], np.eye(11)[9])  # end marker after the repeats
    np.testing.assert_array_equal(batch.loss_mask[:, 0], [0, 0, 0] + [1] * 7 + [0])
    np.testing.assert_array_equal(batch.step_mask[:, 0], [True] * 10 + [False])


def test_sampling_ranges_buckets_and_fixed_encoding():
    task = RepeatCopyTask(bits=4, min_length=1, max_length=5, min_repeats=1, max_repeats=4,
                          repeat_normaliser=4.0, length_buckets=3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        b = task.sample(rng, 8)
        assert b.inputs.shape[0] in task.edges
        assert b.step_mask.sum(0).max() <= b.inputs.shape[0]
        reps = b.inputs[..., 4].max(0) * 4.0
        assert np.all((reps >= 1 - 1e-6) & (reps <= 4 + 1e-6))
    # beyond the training range: the same encoding, an exact length
    b = task.sample(rng, 2, length=7, repeats=8)
    assert b.inputs.shape[0] == steps_needed(7, 8)
    np.testing.assert_allclose(b.inputs[7, :, 4], 2.0)


def test_loss_and_metrics():
    task = RepeatCopyTask(bits=2, max_length=3, max_repeats=2)
    b = task.sample(np.random.default_rng(1), 4)
    check_bit_metrics(task, b)


def test_validation():
    with pytest.raises(ValueError, match="min_repeats"):
        RepeatCopyTask(min_repeats=3, max_repeats=2)
    with pytest.raises(ValueError, match="min_length"):
        RepeatCopyTask(min_length=0)
