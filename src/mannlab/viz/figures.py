"""Heatmaps of one sequence: input, target, output and everything the trace holds.

Time runs left to right in every time-series panel; each head gets its own
panel. Trace fields are drawn by shape: [T, X] and [T, H, X] as heatmaps over
time, ``memory`` [T, N, M] as the memory after the last step, ``links``
[T, N, N] as the link matrix at ``snapshot_step``.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SNAPSHOT_FIELDS = ("memory", "links")


def _time_panels(batch, probs, trace) -> list[tuple[str, np.ndarray, tuple]]:
    """(title, image [rows, T], colour range) for every time-series panel."""
    inputs = batch.inputs[:, 0]
    T = int(batch.step_mask[:, 0].sum())
    if inputs.ndim == 1:  # token ids
        inputs = np.eye(int(inputs.max()) + 1)[inputs]
    targets = batch.targets[:, 0]
    if targets.ndim == 1:
        targets = np.eye(probs.shape[-1])[targets]
    targets = targets * batch.loss_mask[:, 0, None]
    panels = [("input", inputs[:T].T, (0, 1)), ("target", targets[:T].T, (0, 1)),
              ("output", (probs[:T] * batch.loss_mask[:T, 0, None]).T, (0, 1))]
    if trace == ():
        return panels
    for name in trace._fields:
        if name in SNAPSHOT_FIELDS:
            continue
        value = np.asarray(getattr(trace, name))[:T]
        heads = [value] if value.ndim == 2 else [value[:, h] for h in range(value.shape[1])]
        for h, v in enumerate(heads):
            label = name.replace("_", " ") + (f" (head {h})" if len(heads) > 1 else "")
            lo, hi = (0, 1) if v.min() >= 0 and v.max() <= 1 else (v.min(), v.max())
            panels.append((label, v.T, (lo, hi)))
    return panels


def sequence_figure(batch, probs, trace, title: str, snapshot_step: int | None = None):
    """A matplotlib Figure of one traced sequence (batch of one).

    Args:
      batch: a `Batch` with B = 1.
      probs: [T, O] output probabilities.
      trace: the model's trace NamedTuple with leaves [T, ...], or ().
      title: names the model, task and length.
      snapshot_step: time step for the link-matrix snapshot (default: last).
    """
    panels = _time_panels(batch, probs, trace)
    T = panels[0][1].shape[1]
    snapshots = []
    if trace != ():
        if "memory" in trace._fields:
            snapshots.append(("memory after the last step", np.asarray(trace.memory)[T - 1]))
        if "links" in trace._fields and np.asarray(trace.links).ndim == 3:
            step = T - 1 if snapshot_step is None else snapshot_step
            snapshots.append((f"link matrix at step {step}", np.asarray(trace.links)[step]))
    heights = [max(1.0, min(3.0, p[1].shape[0] / 24)) for p in panels]
    heights += [3.0] * len(snapshots)
    width = max(8.0, min(24.0, 4 + T / 10))
    fig, axes = plt.subplots(len(heights), 1, figsize=(width, sum(heights) + 1.2),
                             height_ratios=heights, squeeze=False, layout="constrained")
    for ax, (label, image, (lo, hi)) in zip(axes[:, 0], panels):
        im = ax.imshow(image, aspect="auto", interpolation="nearest", cmap="viridis",
                       vmin=lo, vmax=hi)
        ax.set_title(label, fontsize=9, loc="left")
        ax.set_ylabel("row" if image.shape[0] > 16 else "channel", fontsize=8)
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.02)
    for ax, (label, image) in zip(axes[len(panels):, 0], snapshots):
        lim = float(np.abs(image).max()) or 1.0
        im = ax.imshow(image.T, aspect="auto", interpolation="nearest", cmap="RdBu_r",
                       vmin=-lim, vmax=lim)
        ax.set_title(label + " (columns: memory locations)", fontsize=9, loc="left")
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.02)
    for ax in axes[: len(panels), 0]:
        ax.set_xlim(-0.5, T - 0.5)
    axes[len(panels) - 1, 0].set_xlabel("time step")
    fig.suptitle(title)
    return fig


def save_figure(fig, path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)
