"""Learning curves and error-against-length plots of one or several runs.

Curves come from each seed's ``metrics.jsonl`` (written by the trainer), the
error-against-length points from each seed's ``eval.json`` (``mannlab eval``).
Several runs share one set of axes: one colour per run (per seed when there is
a single run), so 'NTM vs LSTM' or '5 seeds' reads off one figure.
Figures are made without pyplot (`matplotlib.figure.Figure`): no backend is
chosen or needed.
"""

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mannlab.training.records import read_records

DPI = 100


@dataclass
class SeedCurves:
    """One seed's logged records, split by kind: training, and evaluation (held
    out, or "train_eval" for a task that holds nothing out). Other records
    (a divergence) are not curves."""

    name: str
    train: list[dict] = field(default_factory=list)
    heldout: list[dict] = field(default_factory=list)


def read_metrics(seed_dir: Path) -> SeedCurves:
    """The records of ``seed_dir/metrics.jsonl`` (empty lists if missing;
    lines a killed process left half-written are skipped)."""
    curves = SeedCurves(Path(seed_dir).name)
    for record in read_records(Path(seed_dir)):
        split = record.get("split")
        if split == "train":
            curves.train.append(record)
        elif split in ("heldout", "train_eval"):
            curves.heldout.append(record)
    return curves


def _colours(n: int) -> list:
    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _x(records: list[dict]) -> np.ndarray:
    """Sequences seen (steps when a record lacks it)."""
    return np.array([r.get("sequences", r["step"]) for r in records], dtype=float)


def _log_scale_if_wide(ax, values: list[np.ndarray]) -> None:
    allv = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.array([])
    if allv.size and allv.min() > 0 and allv.max() / allv.min() > 30:
        ax.set_yscale("log")


def learning_curves(runs: list[tuple[str, list[SeedCurves]]], metrics: list[str],
                    title: str = "learning curves"):
    """Figure with one axes per metric: training values (thin), their
    sliding-window average (thick) and held-out evaluations (markers),
    against sequences seen.

    Args:
      runs: (label, seeds' curves) per run.
      metrics: metric names, e.g. ("bits_wrong", "cost").
    """
    per_seed = len(runs) == 1
    n_colours = len(runs[0][1]) if per_seed else len(runs)
    colours = _colours(max(n_colours, 1))
    fig = Figure(figsize=(6.5 * len(metrics), 4.2), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        seen = []
        for r, (label, seeds) in enumerate(runs):
            for s, curves in enumerate(seeds):
                colour = colours[s if per_seed else r]
                name = f"{label} {curves.name}" if len(seeds) > 1 else label
                train = [t for t in curves.train if metric in t]
                if train:
                    x, y = _x(train), np.array([t[metric] for t in train], dtype=float)
                    ax.plot(x, y, color=colour, alpha=0.25, lw=0.8)
                    seen.append(y)
                    key = f"{metric}_window"
                    if all(key in t for t in train):
                        w = np.array([t[key] for t in train], dtype=float)
                        show = not per_seed and s > 0
                        ax.plot(x, w, color=colour, lw=2.0,
                                label=None if show else f"{name} (window average)")
                        seen.append(w)
                held = [h for h in curves.heldout if metric in h]
                if held:
                    y = np.array([h[metric] for h in held], dtype=float)
                    ax.plot(_x_heldout(held, curves.train), y, color=colour, ls="--",
                            marker="o", ms=4, lw=1.0,
                            label=f"{name} (held-out)" if per_seed or s == 0 else None)
                    seen.append(y)
        _log_scale_if_wide(ax, seen)
        ax.set_xlabel("sequences seen")
        ax.set_ylabel(f"{metric.replace('_', ' ')} per sequence")
        ax.set_title(metric.replace("_", " "), loc="left", fontsize=11)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(title, fontsize=12)
    return fig


def _x_heldout(held: list[dict], train: list[dict]) -> np.ndarray:
    """Held-out records carry steps only: convert with the train records' batch size."""
    batch = 1.0
    for t in train:
        if "sequences" in t and t.get("step"):
            batch = t["sequences"] / t["step"]
            break
    return np.array([h.get("sequences", h["step"] * batch) for h in held], dtype=float)


def error_vs_length(runs: list[tuple[str, dict[str, dict]]], metric: str,
                    train_lengths: list[int | None] | None = None,
                    title: str = "generalisation"):
    """Figure of `metric` against sequence length, one line per run (mean over
    seeds, every seed as faint points), the longest training length marked.

    Args:
      runs: (label, {seed name: {length (str): {metric: value}}}) per run.
      train_lengths: longest training length of each run (or None).
    """
    fig = Figure(figsize=(7.5, 4.2), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    colours = _colours(len(runs))
    seen = []
    for r, (label, seeds) in enumerate(runs):
        lengths = sorted({int(k) for table in seeds.values() for k in table})
        if not lengths:
            continue
        rows = [[table.get(str(L), {}).get(metric, np.nan) for L in lengths]
                for table in seeds.values()]
        values = np.array(rows, dtype=float)
        for row in values:
            ax.plot(lengths, row, ls="none", marker=".", color=colours[r], alpha=0.35)
        mean = np.nanmean(values, axis=0)
        n = len(seeds)
        ax.plot(lengths, mean, marker="o", color=colours[r], lw=2,
                label=f"{label} (mean of {n} seeds)" if n > 1 else label)
        seen.append(values.ravel())
    for r, L in enumerate(train_lengths or []):
        if L:
            ax.axvline(L, color=colours[r], ls=":", lw=1.2,
                       label="longest training length" if r == 0 else None)
    _log_scale_if_wide(ax, seen)
    tested = sorted({int(k) for _, seeds in runs for t in seeds.values() for k in t})
    if 0 < len(tested) <= 12:
        ax.set_xticks(tested)
    ax.set_xlabel("sequence length")
    ax.set_ylabel(f"{metric.replace('_', ' ')} per sequence")
    ax.grid(alpha=0.3)
    ax.set_title(title, loc="left", fontsize=11)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig
