"""Class-id loss and the host-side P/R/F1 functions, against hand-computed values."""

import jax.numpy as jnp
import numpy as np
import pytest

from mannlab.tasks.base import Batch
from mannlab.tasks.classes import class_loss, last_step_error, precision_recall_f1, symbol_scores


def test_class_loss_by_hand():
    # T=2, B=2, C=2; logits are log-probabilities so the softmax is exact
    p = np.array([[[0.9, 0.1], [0.2, 0.8]],
                  [[0.3, 0.7], [0.6, 0.4]]])
    ys = jnp.log(jnp.asarray(p))
    targets = jnp.array([[0, 1], [0, 1]])
    mask = jnp.array([[1.0, 1.0], [1.0, 0.0]])  # last step of sequence 1 unscored
    loss, m = class_loss(ys, targets, mask)
    nll = [-np.log(0.9), -np.log(0.8), -np.log(0.3)]
    assert float(loss) == pytest.approx(sum(nll) / 3, rel=1e-5)
    # sequence 0: step 1 predicts class 1 but target 0 -> one error
    np.testing.assert_allclose(m["errors"], [1.0, 0.0])
    np.testing.assert_allclose(m["sequence_correct"], [0.0, 1.0])
    np.testing.assert_allclose(m["sequence_error"], [1.0, 0.0])
    np.testing.assert_allclose(m["symbol_error_rate"], [0.5, 0.0])
    np.testing.assert_allclose(m["scored"], [2.0, 1.0])
    np.testing.assert_allclose(m["cost"], [nll[0] + nll[2], nll[1]], rtol=1e-5)


def test_class_loss_empty_mask_is_finite():
    loss, m = class_loss(jnp.zeros((3, 2, 4)), jnp.zeros((3, 2), jnp.int32), jnp.zeros((3, 2)))
    assert float(loss) == 0.0
    np.testing.assert_allclose(m["sequence_correct"], [1.0, 1.0])


def test_last_step_error_uses_last_unpadded_step():
    targets = jnp.array([[0, 0], [1, 1], [0, 0]])
    step_mask = jnp.array([[True, True], [True, True], [False, True]])
    ys = jnp.eye(2)[jnp.array([[0, 0], [1, 0], [1, 0]])]  # predictions
    # seq 0: last step 1 predicts 1 == target 1; seq 1: last step 2 predicts 0 == 0
    np.testing.assert_allclose(last_step_error(ys, targets, step_mask), [0.0, 0.0])
    ys = jnp.eye(2)[jnp.array([[0, 0], [0, 0], [1, 1]])]
    np.testing.assert_allclose(last_step_error(ys, targets, step_mask), [1.0, 1.0])


def test_f1_equal_supports():
    t = np.array([0, 0, 1, 1, 2, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0, 0])
    mask = np.array([1, 1, 1, 1, 1, 1, 0])  # the last pair is not counted
    w = precision_recall_f1(p, t, mask, average="weighted")
    # class 0: p 1/2 r 1/2 f .5; class 1: p 2/3 r 1 f .8; class 2: p 1 r 1/2 f 2/3
    assert w["precision"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert w["recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert w["f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert w["support"] == 6
    mi = precision_recall_f1(p, t, mask, average="micro")
    assert mi["precision"] == mi["recall"] == mi["f1"] == pytest.approx(4 / 6)  # accuracy
    sub = precision_recall_f1(p, t, mask, average="micro", labels=[1, 2])
    assert sub["precision"] == pytest.approx(3 / 4) and sub["recall"] == pytest.approx(3 / 4)


def test_f1_unequal_supports_and_unpredicted_class():
    t = np.array([0, 0, 0, 1])
    p = np.array([0, 0, 1, 1])
    w = precision_recall_f1(p, t, average="weighted")
    assert w["f1"] == pytest.approx(0.75 * 0.8 + 0.25 * 2 / 3)
    assert w["precision"] == pytest.approx(0.75 * 1 + 0.25 * 0.5)
    assert w["recall"] == pytest.approx(0.75 * 2 / 3 + 0.25 * 1)
    # class 1 never predicted: precision 0 (zero_division=0)
    w = precision_recall_f1(np.array([0, 0, 0, 0]), t, average="weighted")
    assert w["precision"] == pytest.approx(0.75 * 0.75)
    assert w["f1"] == pytest.approx(0.75 * (2 * 0.75 / 1.75))
    # a predicted class with no support counts with weight 0
    w = precision_recall_f1(np.array([2, 0, 0, 1]), t, average="weighted")
    assert w["recall"] == pytest.approx(0.75 * 2 / 3 + 0.25)
    with pytest.raises(ValueError, match="average"):
        precision_recall_f1(p, t, average="macro")
    assert precision_recall_f1(p, t, np.zeros(4))["f1"] == 0.0


def test_symbol_scores_over_batches():
    targets = np.array([[0, 1], [2, 0]])
    mask = np.array([[1.0, 1.0], [1.0, 0.0]])
    ys = np.eye(3)[np.array([[0, 2], [2, 2]])]
    b = Batch(np.zeros((2, 2, 3), np.float32), targets, mask, mask > 0)
    s = symbol_scores([(ys, b)])
    assert s["symbols"] == 3 and s["accuracy"] == pytest.approx(2 / 3)
    assert s["micro_f1"] == pytest.approx(2 / 3)
    # class 0: p 1 r 1; class 1: p 0 r 0; class 2: p 1/2 r 1 f 2/3; supports 1, 1, 1
    assert s["weighted_f1"] == pytest.approx((1 + 0 + 2 / 3) / 3)
