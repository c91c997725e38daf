"""Loss and metrics for tasks whose targets are class ids (logic, POS, sentences).

Outputs are logits over ``C`` classes; each scored step is one softmax
classification. Two kinds of functions live here:

* `class_loss`: pure JAX, used inside the jitted training step. Returns the
  scalar to minimise and per-sequence [B] metrics.
* `precision_recall_f1`, `symbol_scores`: host-side numpy, for reporting the
  paper's metric (F1 over output symbols) on an evaluation set. ``micro``
  averaging pools every scored symbol (for single-label classification with
  every class counted it equals accuracy); ``weighted`` averages per-class
  scores weighted by each class's support (number of true occurrences), like
  scikit-learn's ``average='weighted'`` with ``zero_division=0``.
"""

from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def class_loss(ys: jnp.ndarray, targets: jnp.ndarray, loss_mask: jnp.ndarray):
    """Softmax cross-entropy over scored steps, and per-sequence metrics.

    Args:
      ys: [T, B, C] logits.
      targets: [T, B] int32 class ids (any value where unscored).
      loss_mask: [T, B] 1 where scored, 0 elsewhere.
    Returns:
      (loss, metrics): ``loss`` is the mean cross-entropy (nats) per scored
      symbol over the whole batch, so long and short sequences weigh each of
      their symbols equally. ``metrics`` are per-sequence [B] arrays:

      * ``errors``: scored symbols whose argmax is not the target;
      * ``sequence_correct``: 1.0 if every scored symbol is right;
      * ``sequence_error``: 1 - sequence_correct;
      * ``symbol_error_rate``: errors / scored symbols (0 if none scored);
      * ``cost``: summed cross-entropy in nats;
      * ``scored``: number of scored symbols.
    """
    ys = jnp.asarray(ys)
    mask = jnp.asarray(loss_mask).astype(ys.dtype)
    logp = jax.nn.log_softmax(ys, axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
    nll = nll * mask
    cost = nll.sum(0)
    scored = mask.sum(0)
    loss = cost.sum() / jnp.maximum(scored.sum(), 1.0)
    wrong = (jnp.argmax(ys, -1) != targets).astype(ys.dtype) * mask
    errors = wrong.sum(0)
    correct = (errors == 0).astype(ys.dtype)
    return loss, {
        "errors": errors,
        "sequence_correct": correct,
        "sequence_error": 1.0 - correct,
        "symbol_error_rate": errors / jnp.maximum(scored, 1.0),
        "cost": cost,
        "scored": scored,
    }


def last_step_error(ys: jnp.ndarray, targets: jnp.ndarray, step_mask: jnp.ndarray) -> jnp.ndarray:
    """Per sequence [B]: 1.0 if the prediction at the last unpadded step is wrong."""
    last = jnp.maximum(step_mask.sum(0).astype(jnp.int32) - 1, 0)
    cols = jnp.arange(ys.shape[1])
    pred = jnp.argmax(ys[last, cols], -1)
    return (pred != targets[last, cols]).astype(ys.dtype)


# ---------------------------------------------------------------- host-side scores
def precision_recall_f1(predictions, targets, mask=None, average: str = "weighted",
                        labels: Sequence[int] | None = None) -> dict[str, float]:
    """Precision, recall and F1 over output symbols (numpy, any array shape).

    Args:
      predictions, targets: integer class ids of the same shape.
      mask: optional, same shape; only entries where it is nonzero count.
      average: ``"micro"`` (pool all symbols) or ``"weighted"`` (per-class
        scores averaged with weights = class support).
      labels: the classes that count; default every class occurring in the
        (masked) targets or predictions. With ``micro`` and a subset of labels,
        precision and recall can differ (symbols of other classes drop out).
    Returns:
      dict with ``precision``, ``recall``, ``f1`` and ``support`` (number of
      counted true symbols). A class never predicted has precision 0, one
      never true has recall 0 (scikit-learn's zero_division=0); with nothing
      to count every score is 0.
    """
    predictions = np.asarray(predictions).ravel()
    targets = np.asarray(targets).ravel()
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions and targets differ in size: {predictions.shape} vs "
                         f"{targets.shape}")
    if mask is not None:
        keep = np.asarray(mask).ravel() != 0
        predictions, targets = predictions[keep], targets[keep]
    if labels is None:
        labels = np.union1d(np.unique(targets), np.unique(predictions))
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # per-class true positives, predicted counts and true counts
    pred_in = predictions[:, None] == labels[None, :]
    true_in = targets[:, None] == labels[None, :]
    tp = (pred_in & true_in).sum(0).astype(np.float64)
    npred = pred_in.sum(0).astype(np.float64)
    ntrue = true_in.sum(0).astype(np.float64)
    support = int(ntrue.sum())

    def ratio(a, b):
        return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)

    def f1(p, r):
        return ratio(2 * p * r, p + r)

    if average == "micro":
        p = float(ratio(np.array(tp.sum()), np.array(npred.sum())))
        r = float(ratio(np.array(tp.sum()), np.array(ntrue.sum())))
        return {"precision": p, "recall": r, "f1": float(f1(np.array(p), np.array(r))),
                "support": support}
    if average == "weighted":
        p, r = ratio(tp, npred), ratio(tp, ntrue)
        if support == 0:
            return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        w = ntrue / ntrue.sum()
        return {"precision": float((w * p).sum()), "recall": float((w * r).sum()),
                "f1": float((w * f1(p, r)).sum()), "support": support}
    raise ValueError(f"average must be 'micro' or 'weighted', got {average!r}")


def symbol_scores(outputs: Iterable[tuple[np.ndarray, object]],
                  labels: Sequence[int] | None = None) -> dict[str, float]:
    """Micro and weighted P/R/F1 and accuracy of a model over evaluation batches.

    Args:
      outputs: pairs ``(ys, batch)`` with ``ys`` [T, B, C] logits (JAX or
        numpy) and ``batch`` a `Batch` with class-id targets; the batch's
        ``loss_mask`` picks the scored symbols.
      labels: classes that count (see `precision_recall_f1`).
    Returns:
      ``{"micro_precision", "micro_recall", "micro_f1", "weighted_precision",
      "weighted_recall", "weighted_f1", "accuracy", "symbols"}``.
    """
    preds, targs = [], []
    for ys, batch in outputs:
        keep = np.asarray(batch.loss_mask) != 0
        preds.append(np.asarray(ys).argmax(-1)[keep])
        targs.append(np.asarray(batch.targets)[keep])
    pred = np.concatenate(preds) if preds else np.zeros(0, np.int64)
    targ = np.concatenate(targs) if targs else np.zeros(0, np.int64)
    out = {}
    for avg in ("micro", "weighted"):
        s = precision_recall_f1(pred, targ, average=avg, labels=labels)
        out.update({f"{avg}_precision": s["precision"], f"{avg}_recall": s["recall"],
                    f"{avg}_f1": s["f1"]})
    out["accuracy"] = float((pred == targ).mean()) if pred.size else 0.0
    out["symbols"] = int(pred.size)
    return out
