"""The HTML report of a sweep directory (`mannlab report DIR`, DIR made by
`mannlab sweep`): success rate per configuration, time-to-converge
distributions, and the held-out learning curves of each configuration
overlaid (median and quartile band over its seeds), with the tables.

It reads ``DIR/sweep.json`` and the trials' run directories only: this
module sits in the viz layer, below `mannlab.sweep`, which writes them. Like
the run report, the page is one self-contained file (figures inlined as PNG
data URIs, no script).
"""

import datetime
import html
import json
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from mannlab.viz.curves import read_metrics
from mannlab.viz.page import figure_html as _figure
from mannlab.viz.page import table_html, write_page

SWEEP_FILE = "sweep.json"
TRIALS_DIR = "trials"
FORMAT = "mannlab-sweep-1"
DPI = 100

STATUS_COLOURS = {"converged": "#2a9d4b", "not_converged": "#b0b0b0", "diverged": "#d62728",
                  "stopped": "#ff9f1c", "error": "#7b2cbf", "pending": "#e7e7e7"}


def is_sweep_dir(path: str | Path) -> bool:
    """Whether `path` is a sweep directory (it has sweep.json)."""
    return (Path(path) / SWEEP_FILE).is_file()


def _colours(n: int) -> list:
    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def success_figure(data: dict):
    """Trials per configuration by status, as stacked horizontal bars."""
    summary = data["summary"]
    fig = Figure(figsize=(8, 0.5 * len(summary) + 1.6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(summary))
    left = np.zeros(len(summary))
    for status, colour in STATUS_COLOURS.items():
        counts = np.array([s.get(status, 0) for s in summary], dtype=float)
        if counts.any():
            ax.barh(y, counts, left=left, color=colour, label=status.replace("_", " "))
            left += counts
    for k, s in enumerate(summary):
        ax.text(left[k], k, f"  {s['converged']}/{s['trials']}", va="center", fontsize=9)
    ax.set_yticks(y, [f"{s['id']} {s['label']}" for s in summary], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("trials (seeds)")
    ax.set_xlim(0, max(left.max(), 1) * 1.15)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("seeds converged per configuration", loc="left", fontsize=11)
    return fig


def time_figure(data: dict):
    """Steps and seconds to converge per configuration: a box over the
    converged seeds, every seed a point."""
    summary = data["summary"]
    trials = data["trials"]
    fig = Figure(figsize=(12, 0.5 * len(summary) + 1.8), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    rng = np.random.default_rng(0)
    for ax, key, unit in zip(axes, ("step", "seconds"), ("steps", "seconds of training clock")):
        values = [[t["converged"][key] for t in trials
                   if t["configuration"] == s["id"] and t["status"] == "converged"]
                  for s in summary]
        shown = [(k, v) for k, v in enumerate(values) if v]
        if shown:
            ax.boxplot([v for _, v in shown], positions=[k for k, _ in shown],
                       orientation="horizontal", widths=0.5, showfliers=False)
        for k, v in enumerate(values):
            ax.scatter(v, k + rng.uniform(-0.15, 0.15, len(v)), s=14, color="#2a9d4b",
                       alpha=0.8, zorder=3)
        if not shown:
            ax.text(0.5, 0.5, "no seed converged", transform=ax.transAxes, ha="center",
                    color="#555")
            ax.set_xticks([])
        ax.set_xlabel(f"{unit} to converge")
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(range(len(summary)), [f"{s['id']} {s['label']}" for s in summary],
                       fontsize=8)
    axes[0].set_ylim(len(summary) - 0.5, -0.5)
    axes[0].set_title("time to converge (converged seeds)", loc="left", fontsize=11)
    return fig


def config_curves(sweep_dir: Path, data: dict, config: dict, metric: str):
    """(sequences, q1, median, q3) of the held-out `metric` of a
    configuration's trials: each trial's last evaluation carried forward (a
    converged seed stops training), NaN where a trial has no evaluation yet."""
    batch = config["config"]["train"]["batch_size"]
    series = []
    for t in data["trials"]:
        run = sweep_dir / TRIALS_DIR / t["id"]
        if t["configuration"] != config["id"] or not run.is_dir():
            continue
        held = [r for r in read_metrics(run / f"seed-{t['seed']}").heldout if metric in r]
        if held:
            series.append({r["step"]: r[metric] for r in held})
    if not series:
        return None
    steps = np.array(sorted({s for one in series for s in one}))
    grid = np.full((len(series), len(steps)), np.nan)
    for i, one in enumerate(series):
        known = np.array(sorted(one))
        values = np.array([one[k] for k in known], dtype=float)
        at = np.searchsorted(known, steps, side="right") - 1  # the last evaluation so far
        grid[i] = np.where(at >= 0, values[np.maximum(at, 0)], np.nan)
    q1, median, q3 = np.nanpercentile(grid, [25, 50, 75], axis=0)
    return steps * batch, q1, median, q3


def curves_figure(sweep_dir: Path, data: dict, metric: str):
    fig = Figure(figsize=(9, 4.8), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    colours = _colours(len(data["configurations"]))
    drawn = []
    for c, colour in zip(data["configurations"], colours):
        curve = config_curves(sweep_dir, data, c, metric)
        if curve is None:
            continue
        x, q1, median, q3 = curve
        ax.fill_between(x, q1, q3, color=colour, alpha=0.2, lw=0)
        ax.plot(x, median, color=colour, lw=2, label=f"{c['id']} {c['label']}")
        drawn += [q1, q3]
    low = np.nanmin(np.concatenate(drawn)) if drawn else 0
    if drawn and low > 0 and np.nanmax(np.concatenate(drawn)) / low > 30:
        ax.set_yscale("log")  # curves that fall by orders of magnitude
    ax.set_xlabel("sequences seen")
    ax.set_ylabel(f"held-out {metric.replace('_', ' ')} per sequence")
    ax.set_title("held-out learning curves: median over seeds, quartile band", loc="left",
                 fontsize=11)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


def _cell(value, digits: str = ".4g") -> str:
    if value is None:
        return "-"
    return f"{value:{digits}}" if isinstance(value, float) else html.escape(str(value))


def _spread(q: dict | None, digits: str) -> str:
    if q is None:
        return "-"
    return f"{q['median']:{digits}} [{q['q1']:{digits}}, {q['q3']:{digits}}]"


def summary_table(data: dict, table_id: str) -> str:
    lengths = [str(n) for n in data.get("lengths") or []]
    metric = next((s["metric"] for s in data["summary"] if s["metric"]), "metric")
    head = ["configuration", "converged", "diverged", "stopped", "error", "pending",
            "steps to converge", "seconds to converge", f"held-out {metric}",
            *(f"{metric} @ {n}" for n in lengths)]
    rows = []
    for s in data["summary"]:
        cells = [f"{s['converged']}/{s['trials']}", s["diverged"], s["stopped"], s["error"],
                 s["pending"], _spread(s["steps_to_converge"], ".0f"),
                 _spread(s["seconds_to_converge"], ".1f"), _cell(s["heldout"]),
                 *(_cell(s["eval"].get(n)) for n in lengths)]
        rows.append(f'<tr><td class="label">{html.escape(s["id"] + " " + s["label"])}</td>'
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f'<table id="{table_id}"><caption>per configuration: median [quartiles] over '
            "converged seeds; held-out and lengths: median over seeds that finished</caption>"
            "<tr>" + "".join(f'<th{" class=label" if k == 0 else ""}>{html.escape(h)}</th>'
                             for k, h in enumerate(head)) + "</tr>" + "".join(rows)
            + "</table>\n")


def trials_table(data: dict, table_id: str) -> str:
    head = ["trial", "seed", "status", "steps", "seconds", "converged at step", "held-out",
            "run directory"]
    rows = []
    for t in data["trials"]:
        held = ", ".join(f"{k} {v:.4g}" for k, v in (t.get("heldout") or {}).items())
        note = t.get("error") or ""
        cells = [t["seed"], html.escape(t["status"] + (f": {note}" if note else "")),
                 _cell(t.get("steps")), _cell(t.get("seconds"), ".1f"),
                 _cell((t.get("converged") or {}).get("step")), html.escape(held) or "-",
                 html.escape(t.get("run") or "-")]
        rows.append(f'<tr><td class="label">{html.escape(t["id"])}</td>'
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return table_html(table_id, "trials", head, rows)


def build_sweep_report(sweep_dir: str | Path, output: str | Path,
                       title: str | None = None) -> dict:
    """Write the report of the sweep in `sweep_dir` to `output`; returns
    {"output", "figures", "tables"} (the ids of the page's figures and tables)."""
    sweep_dir = Path(sweep_dir)
    data = json.loads((sweep_dir / SWEEP_FILE).read_text())
    metric = next((s["metric"] for s in data["summary"] if s["metric"]), None)
    title = title or f"mannlab sweep: {data['sweep']}"
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    figures, tables = [], []
    parts = [(f"<h1>{html.escape(title)}</h1>\n<p class=meta>generated {stamp}; "
              f"{html.escape(str(sweep_dir))}: {len(data['configurations'])} "
              f"configuration(s), {len(data['trials'])} trial(s)</p>\n<h2>Success rate</h2>\n")]
    tables.append("table-summary")
    parts.append(summary_table(data, "table-summary"))
    figures.append("fig-success")
    parts.append(_figure("fig-success", success_figure(data),
                         "Trials of each configuration by outcome: converged (below the "
                         "config's converge_at), not converged within its budget, diverged "
                         "(non-finite loss or parameters), stopped early by the scheduler."))
    parts.append("<h2>Time to converge</h2>\n")
    figures.append("fig-time")
    parts.append(_figure("fig-time", time_figure(data),
                         "Steps and training-clock seconds to converge, per configuration: "
                         "each converged seed a point, the box its quartiles."))
    if metric:
        parts.append("<h2>Learning curves</h2>\n")
        figures.append("fig-curves")
        parts.append(_figure("fig-curves", curves_figure(sweep_dir, data, metric),
                             f"Held-out {metric} against sequences seen: the median over a "
                             "configuration's seeds (a seed that stopped keeps its last "
                             "value) and the band between their quartiles."))
    parts.append("<h2>Trials</h2>\n")
    tables.append("table-trials")
    parts.append(trials_table(data, "table-trials"))
    write_page(output, title, parts)
    return {"output": str(output), "figures": figures, "tables": tables}
