"""Heatmaps of one sequence: input, target, output and everything the trace holds.

Layout: time runs left to right in every time-series panel (one row per
panel, one panel per head), memory locations run top to bottom in every panel
that has them; the snapshots (memory before the first step and after the last,
the DNC link matrix) sit side by side in the bottom row. A memory of more
than `CROP_ABOVE` rows is drawn at the locations its heads touched only,
labelled with their indices.

Colour scales are shared within a figure: everything that lives in [0, 1]
(bits, probabilities, weightings, gates, usage, read modes) uses one scale,
memory before and after share one symmetric scale, and other signed values
(e.g. the add vectors) a symmetric scale of their own. All ticks are integers.

The trace fields drawn are the ones the models emit, declared here:
`TIME_FIELDS` ([T, X] and [T, H, X] heatmaps over time: the NTM's, the
DNC's and MANN-RL's per-step quantities), ``memory`` [T, N, M] (NTM and DNC)
as the memory after the last step, and the DNC's ``link`` [T, N, N] (with
``trace_links``) as the link matrix at the end of the input (the step
before the first scored one; the last step if every step is scored).

Figures are `matplotlib.figure.Figure` objects made without pyplot: they need
no backend, so importing mannlab leaves the user's backend alone, and they
are not kept in pyplot's list of open figures (nothing to close).
"""

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mannlab.training.files import RunFileError

READ_MODE_LABELS = ("backward", "content", "forward")
"""Rows of a [.., 3] ``read_modes`` trace (the DNC paper's order of pi)."""

UNIT_CMAP = "viridis"
SIGNED_CMAP = "RdBu_r"
DPI = 100

TIME_FIELDS = {
    # NTMTrace and DNCTrace
    "read_weights": "memory location", "write_weights": "memory location",
    # NTMTrace
    "erase": "word element", "add": "word element",
    # DNCTrace
    "usage": "memory location", "allocation": "memory location", "free_gates": "read head",
    "read_modes": "read mode",
    # MannRLTrace
    "memory_vector": "memory value", "next_memory": "memory value",
}
"""The per-step trace fields drawn over time, and the label of their rows."""


@dataclass
class Panel:
    """One heatmap: `image` [rows, columns] with its labels and colour scale.

    kind is "time" (columns are time steps) or "snapshot" (anything else).
    """

    key: str
    title: str
    image: np.ndarray
    kind: str
    ylabel: str
    xlabel: str = "time step"
    vmin: float = 0.0
    vmax: float = 1.0
    cmap: str = UNIT_CMAP
    yticklabels: tuple | None = None
    rows: np.ndarray | None = None  # the memory locations drawn, when not all


CROP_ABOVE = 128
"""Memories of more rows than this (the NTM paper's 128 are drawn whole) draw
only the locations some read or write weighting reaches (`touched_rows`), so
that a few dozen used rows of 512 stay visible."""

TOUCHED = 0.01
"""A location is touched when a read or write weighting gives it this much."""


def touched_rows(weightings: list[np.ndarray]) -> np.ndarray:
    """Sorted indices of the memory locations that some weighting ([N, T] each:
    a read or write head's over the drawn steps) gives at least `TOUCHED` at
    some step; empty without weightings."""
    if not weightings:
        return np.arange(0)
    return np.flatnonzero(np.max([w.max(axis=1) for w in weightings], axis=0) >= TOUCHED)


def _crop(p: Panel, rows: np.ndarray, memory_size: int, columns_too: bool = False) -> None:
    """Keep only `rows` (and, for the link matrix, the same columns) of `p`."""
    p.image = p.image[rows][:, rows] if columns_too else p.image[rows]
    p.rows = rows
    p.title += f" ({len(rows)} of {memory_size} locations)"


def _is_unit(v: np.ndarray) -> bool:
    return v.size == 0 or (float(v.min()) >= -1e-6 and float(v.max()) <= 1 + 1e-6)


def _symmetric(*arrays: np.ndarray) -> float:
    lim = max((float(np.abs(a).max()) for a in arrays if a.size), default=0.0)
    return lim or 1.0


def end_of_input(loss_mask: np.ndarray, steps: int) -> int:
    """The step before the first scored one of a sequence (loss_mask [T]), or
    the last of its `steps` if it is scored from the start."""
    scored = np.flatnonzero(np.asarray(loss_mask)[:steps])
    return int(scored[0]) - 1 if scored.size and scored[0] > 0 else steps - 1


SPARSE_FIELDS = {"read_weights": ("read_rows", "read_row_weights"),
                 "write_weights": ("write_rows", "write_row_weights")}
"""SAM's sparse trace fields (row indices and their weights) and the dense
weighting each becomes in a figure."""

DENSE_LIMIT = 4096
"""Sparse weightings are drawn as dense [N] columns up to this many memory rows."""


def densify_sparse_fields(fields: dict, memory_size: int) -> dict:
    """`fields` with SAM's sparse (rows, weights) pairs ([T, H, K] or [T, S])
    replaced by dense weightings [T, H, N] / [T, N] (repeated rows add up),
    for memories of at most `DENSE_LIMIT` rows."""
    if memory_size > DENSE_LIMIT:
        return fields
    out = dict(fields)
    for dense, (rows_name, weights_name) in SPARSE_FIELDS.items():
        rows, weights = out.pop(rows_name, None), out.pop(weights_name, None)
        if rows is None or weights is None:
            continue
        rows, weights = np.asarray(rows), np.asarray(weights)
        grid = np.zeros(rows.shape[:-1] + (memory_size,), dtype=np.float32)
        lead = np.indices(rows.shape[:-1])
        for k in range(rows.shape[-1]):
            np.add.at(grid, tuple(lead) + (rows[..., k],), weights[..., k])
        out[dense] = grid
    return out


def sequence_panels(batch, probs, trace, memory_before=None) -> list[Panel]:
    """Every panel of one traced sequence (batch of one), scales already shared.

    Args:
      batch: a `Batch` with B = 1.
      probs: [T, O] output probabilities.
      trace: the model's trace NamedTuple with leaves [T, ...], or () (LSTM).
      memory_before: [N, M] memory before the first step, if the model has one.
    """
    T = int(np.asarray(batch.step_mask)[:, 0].sum())
    inputs = np.asarray(batch.inputs)[:, 0]
    if inputs.ndim == 1:  # token ids
        inputs = np.eye(int(inputs.max()) + 1)[inputs]
    targets = np.asarray(batch.targets)[:, 0]
    loss_mask = np.asarray(batch.loss_mask)[:, 0, None]
    if targets.ndim == 1:
        targets = np.eye(probs.shape[-1])[targets]
    in_label = "input channel"
    out_label = "output bit" if np.asarray(batch.targets).ndim == 3 else "class"
    panels = [Panel("input", "input", inputs[:T].T, "time", in_label),
              Panel("target", "target", (targets * loss_mask)[:T].T, "time", out_label),
              Panel("output", "output (scored steps)", (np.asarray(probs) * loss_mask)[:T].T,
                    "time", out_label)]
    signed, snapshots = [], []
    fields = {} if trace == () else trace._asdict()
    if memory_before is not None:
        fields = densify_sparse_fields(fields, np.asarray(memory_before).shape[0])
    for name, value in fields.items():
        if name not in TIME_FIELDS or value is None:
            continue
        value = np.asarray(value)[:T]
        heads = [value] if value.ndim == 2 else [value[:, h] for h in range(value.shape[1])]
        for h, v in enumerate(heads):
            label = name.replace("_", " ") + (f" (head {h})" if len(heads) > 1 else "")
            key = name + (f"_{h}" if len(heads) > 1 else "")
            ticks = READ_MODE_LABELS if name == "read_modes" else None
            p = Panel(key, label, v.T, "time", TIME_FIELDS[name], yticklabels=ticks)
            if not _is_unit(v):
                p.cmap = SIGNED_CMAP
                signed.append(p)
            panels.append(p)
    lim = _symmetric(*(p.image for p in signed))
    for p in signed:
        p.vmin, p.vmax = -lim, lim

    memories = []
    if memory_before is not None:
        memories.append(Panel("memory_before", "memory before the first step",
                              np.asarray(memory_before), "snapshot", "memory location",
                              xlabel="word element", cmap=SIGNED_CMAP))
    if fields.get("memory") is not None:
        memories.append(Panel("memory_after", f"memory after the last step ({T - 1})",
                              np.asarray(trace.memory)[T - 1], "snapshot", "memory location",
                              xlabel="word element", cmap=SIGNED_CMAP))
    lim = _symmetric(*(p.image for p in memories))
    for p in memories:
        p.vmin, p.vmax = -lim, lim
    snapshots += memories
    if fields.get("link") is not None:
        step = end_of_input(np.asarray(batch.loss_mask)[:, 0], T)
        snapshots.append(Panel("links", f"link matrix at step {step}, the end of the input",
                               np.asarray(trace.link)[step], "snapshot", "to location",
                               xlabel="from location"))
    memory_size = next((p.image.shape[0] for p in panels + snapshots
                        if p.ylabel == "memory location"), 0)
    rows = touched_rows([p.image for p in panels
                         if p.key.startswith(("read_weights", "write_weights"))])
    if memory_size > CROP_ABOVE and 0 < len(rows) < memory_size:
        for p in panels + snapshots:
            if p.ylabel in ("memory location", "to location"):
                _crop(p, rows, memory_size, columns_too=p.key == "links")
    return panels + snapshots


def _draw(fig, ax, p: Panel, xlabel: bool = True) -> None:
    im = ax.imshow(p.image, aspect="auto", interpolation="nearest", cmap=p.cmap,
                   vmin=p.vmin, vmax=p.vmax)
    ax.set_title(p.title, fontsize=10, loc="left")
    ax.set_ylabel(p.ylabel, fontsize=9)
    if xlabel:
        ax.set_xlabel(p.xlabel, fontsize=9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins="auto", min_n_ticks=2))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6, min_n_ticks=2))
    if p.yticklabels is not None:
        ax.set_yticks(range(len(p.yticklabels)), p.yticklabels)
    if p.rows is not None:  # cropped: label the drawn rows with their locations
        ticks = np.unique(np.linspace(0, len(p.rows) - 1, min(len(p.rows), 8)).round()
                          .astype(int))
        ax.set_yticks(ticks, [str(r) for r in p.rows[ticks]])
        if p.key == "links":
            ax.set_xticks(ticks, [str(r) for r in p.rows[ticks]])
    ax.tick_params(labelsize=8)
    fig.colorbar(im, ax=ax, pad=0.01, fraction=0.025, aspect=12)


def _panel_height(p: Panel) -> float:
    """Inches: one cell row stays visible, 128 memory locations get 2.6 in."""
    return float(np.clip(0.55 + p.image.shape[0] * 0.06, 1.1, 2.6))


def figure_width(steps: int) -> float:
    """Inches: about 0.1 in per time step (length 120 copy: 241 steps), 9 to 26 in."""
    return float(np.clip(3.0 + steps * 0.095, 9.0, 26.0))


def sequence_figure(batch, probs, trace, title: str, memory_before=None,
                    step_labels: list[str] | None = None):
    """A matplotlib Figure of one traced sequence (batch of one).

    Args:
      batch: a `Batch` with B = 1.
      probs: [T, O] output probabilities.
      trace: the model's trace NamedTuple with leaves [T, ...], or ().
      title: names the model, task and length (see `figure_title`).
      memory_before: [N, M] memory before the first step (drawn next to the
        memory after the last step, on the same colour scale).
      step_labels: [T] what each step's input is (bAbI: the story's words),
        written along the bottom time axis instead of step numbers.
    """
    panels = sequence_panels(batch, probs, trace, memory_before)
    rows = [p for p in panels if p.kind == "time"]
    snaps = [p for p in panels if p.kind == "snapshot"]
    T = rows[0].image.shape[1]
    heights = [_panel_height(p) for p in rows] + ([3.2] if snaps else [])
    width = figure_width(T)
    fig = Figure(figsize=(width, sum(heights) + 0.8), layout="constrained", dpi=DPI)
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights)
    first = None
    for i, p in enumerate(rows):
        ax = fig.add_subplot(grid[i, 0], sharex=first)
        first = first or ax
        _draw(fig, ax, p, xlabel=(i == len(rows) - 1))
        ax.set_xlim(-0.5, T - 0.5)
        # with step labels (words), only the bottom panel writes them
        ax.tick_params(labelbottom=step_labels is None or i == len(rows) - 1)
    if step_labels is not None:
        ax.set_xticks(range(len(step_labels[:T])), step_labels[:T], rotation=90, fontsize=6)
        ax.set_xlabel("input word", fontsize=9)
    if snaps:
        sub = grid[len(rows), 0].subgridspec(1, max(3, len(snaps)))
        for j, p in enumerate(snaps):
            _draw(fig, fig.add_subplot(sub[0, j]), p)
    fig.suptitle(title, fontsize=12)
    return fig


def figure_title(config, length: int, seed_name: str | None = None, step=None) -> str:
    """'NTM on copy, length 20 (seed-0, step 3000)': model, task and length."""
    extra = ", ".join(str(x) for x in (seed_name, None if step is None else f"step {step}")
                      if x)
    return (f"{config.model.name.upper()} on {config.task.label}, length {length}"
            + (f" ({extra})" if extra else ""))


def save_figure(fig, path) -> None:
    """Write `fig` to `path` (format from the suffix, e.g. .png or .pdf); a
    file that cannot be written is one line naming it (`RunFileError`)."""
    try:
        fig.savefig(path, dpi=DPI)
    except OSError as err:
        raise RunFileError(f"{path}: cannot write ({err.strerror or type(err).__name__})") from None
