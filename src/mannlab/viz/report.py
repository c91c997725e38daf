"""A self-contained HTML report of one or several runs (`mannlab report`).

    mannlab report RUN [RUN ...] -o report.html

For every run: its config and model summary, the status of each seed,
learning curves with sliding-window averages, the generalisation table and
error against sequence length (from each seed's ``eval.json``, computed and
saved first where missing), and memory figures of one sequence at the longest
training length and at a longer one. Several runs share the curve and length
plots and stand side by side in the tables.

The file needs no network: figures are PNGs inlined as base64 data URIs, the
style sheet is inline, and there is no script.
"""

import datetime
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mannlab.tasks.base import Task
from mannlab.training.evaluate import (
    checkpoint_stamp,
    generalisation,
    save_eval,
    trace_sequence,
)
from mannlab.training.rundir import CONFIG_FILE, open_run
from mannlab.viz import curves as curve_plots
from mannlab.viz.bench_report import build_bench_report, is_bench_dir
from mannlab.viz.figures import figure_title, sequence_figure
from mannlab.viz.page import figure_html as _figure
from mannlab.viz.page import write_page
from mannlab.viz.sweep_report import build_sweep_report, is_sweep_dir

DEFAULT_LENGTHS = (10, 20, 30, 50, 120)

@dataclass
class RunData:
    """Everything the report shows of one run."""

    label: str
    path: Path
    config: object
    seed_dirs: list[Path]
    config_text: str
    model_text: str
    summaries: dict = field(default_factory=dict)  # seed name -> summary.json
    curves: list = field(default_factory=list)  # SeedCurves per seed
    metrics: list[str] = field(default_factory=list)
    evals: dict = field(default_factory=dict)  # seed name -> {length: {metric: value}}
    task_kwargs: dict = field(default_factory=dict)
    task: Task | None = None

    @property
    def train_length(self) -> int:
        """The task's longest training length."""
        return self.task.max_length


# ---------------------------------------------------------------- data
def _labels(paths: list[Path]) -> list[str]:
    """Run directory names, with the parent's name where two would clash."""
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def ensure_eval(config, seed_dirs: list[Path], lengths, sequences: int, log=print) -> None:
    """Compute and save ``eval.json`` for the seeds that lack it, or whose
    eval.json was computed from another checkpoint (step or config) than the
    one there now (`checkpoint_stamp`)."""

    def current(d: Path) -> bool:
        path = d / "eval.json"
        if not path.exists():
            return False
        try:
            return json.loads(path.read_text()).get("checkpoint") == checkpoint_stamp(d)
        except json.JSONDecodeError:
            return False

    stale = [d for d in seed_dirs if not current(d)]
    if stale:
        log(f"  evaluating {', '.join(d.name for d in stale)} of {stale[0].parent.name} "
            f"at lengths {' '.join(map(str, lengths))} ({sequences} sequences each) ...")
        save_eval(stale, generalisation(config, stale, list(lengths), sequences))


def load_run(path: Path, label: str, lengths, sequences: int, log=print) -> RunData:
    run, config, seed_dirs = open_run(path)
    model_file = run / "model.txt"
    task = config.task.build()
    data = RunData(label, run, config, seed_dirs, (run / CONFIG_FILE).read_text(),
                   model_file.read_text() if model_file.exists() else "(no model.txt)",
                   task=task)
    ensure_eval(config, seed_dirs, lengths, sequences, log)
    for d in seed_dirs:
        if (d / "summary.json").exists():
            data.summaries[d.name] = json.loads((d / "summary.json").read_text())
        data.curves.append(curve_plots.read_metrics(d))
        result = json.loads((d / "eval.json").read_text())
        data.evals[d.name] = result["seeds"][d.name]
        data.metrics = data.metrics or list(result["metrics"])
        data.task_kwargs = data.task_kwargs or dict(result.get("task_kwargs") or {})
    if not data.metrics:
        data.metrics = list(task.metric_names)
    return data


def best_seed(run: RunData) -> Path:
    """The seed with the lowest held-out convergence metric (first if unknown)."""
    metric = run.metrics[0]

    def score(d: Path) -> float:
        held = (run.summaries.get(d.name) or {}).get("heldout") or {}
        return held.get(metric, np.inf)

    return min(run.seed_dirs, key=score)


# ---------------------------------------------------------------- html pieces
def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "&ndash;"
    return f"{v:.4g}" if isinstance(v, (int, float)) else html.escape(str(v))


def generalisation_table(run: RunData, table_id: str) -> str:
    """Rows: lengths; columns: the first metric per seed, then every metric's mean."""
    metric = run.metrics[0]
    seeds = list(run.evals)
    lengths = sorted({int(k) for t in run.evals.values() for k in t})
    head = ['<th class="label">length</th>']
    head += [f"<th>{html.escape(s)}<br>{html.escape(metric)}</th>" for s in seeds]
    if len(seeds) > 1:
        head += [f"<th>mean<br>{html.escape(m)}</th>" for m in run.metrics]
    else:
        head += [f"<th>{html.escape(m)}</th>" for m in run.metrics[1:]]
    rows = []
    for L in lengths:
        values = {m: [run.evals[s].get(str(L), {}).get(m) for s in seeds] for m in run.metrics}
        cells = [_fmt(v) for v in values[metric]]
        if len(seeds) > 1:
            cells += [_fmt(float(np.mean([v for v in values[m] if v is not None])))
                      if any(v is not None for v in values[m]) else _fmt(None)
                      for m in run.metrics]
        else:
            cells += [_fmt(values[m][0]) for m in run.metrics[1:]]
        trained = run.train_length is not None and L <= run.train_length
        rows.append(f'<tr class="{"trained" if trained else "longer"}">'
                    f'<td class="label">{L}{" *" if trained else ""}</td>'
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    caption = html.escape(run.label)
    return (f'<table class="generalisation" id="{table_id}" data-table="{table_id}">'
            f"<caption>{caption}</caption><thead><tr>{''.join(head)}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def status_table(runs: list[RunData], table_id: str) -> str:
    metrics = list(dict.fromkeys(m for r in runs for m in r.metrics))
    head = ["run", "seed", "steps", "seconds", "converged at step"] + [
        f"held-out {m}" for m in metrics]
    rows = []
    for run in runs:
        for d in run.seed_dirs:
            s = run.summaries.get(d.name) or {}
            held = s.get("heldout") or {}
            conv = (s.get("converged") or {}).get("step", "no") if s else None
            cells = [html.escape(run.label), d.name, _fmt(s.get("steps")),
                     _fmt(s.get("seconds")), _fmt(conv)] + [_fmt(held.get(m)) for m in metrics]
            rows.append("<tr>" + "".join(
                f'<td class="label">{c}</td>' if i < 2 else f"<td>{c}</td>"
                for i, c in enumerate(cells)) + "</tr>")
    head_html = "".join(f'<th class="label">{h}</th>' if i < 2 else f"<th>{html.escape(h)}</th>"
                        for i, h in enumerate(head))
    return (f'<table class="status" id="{table_id}" data-table="{table_id}">'
            f"<caption>training status of every seed (summary.json)</caption>"
            f"<thead><tr>{head_html}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def memory_figure(run: RunData, seed_dir: Path, length: int | None):
    """The sequence figure of `seed_dir` on the fixed test sequence of `length`."""
    batch, traced = trace_sequence(run.config, seed_dir, length, **run.task_kwargs)
    step = (run.summaries.get(seed_dir.name) or {}).get("steps")
    title = f"{figure_title(run.config, length, seed_dir.name, step)} - {run.label}"
    return sequence_figure(batch, traced.probs, traced.trace, title,
                           memory_before=traced.memory_before)


def show_lengths(run: RunData, requested: list[int] | None) -> list[int]:
    """Lengths of the memory figures: the longest training length and a longer
    one (the longest evaluated length, else twice the training length), of
    those the task has."""
    if requested:
        return list(requested)
    train = run.train_length
    longer = max((int(k) for t in run.evals.values() for k in t), default=0)
    wanted = [train, longer if longer > train else 2 * train]
    return [n for n in wanted if run.task.has_length(n)] or [train]


# ---------------------------------------------------------------- the report
def build_report(paths: list[str | Path], output: str | Path, lengths=DEFAULT_LENGTHS,
                 sequences: int = 1000, lengths_shown: list[int] | None = None,
                 title: str | None = None, log=print) -> dict:
    """Write the report of the runs at `paths` to `output`.

    Args:
      lengths, sequences: the generalisation test for seeds without eval.json.
      lengths_shown: lengths of the memory figures (default: see `show_lengths`).
    Returns:
      {"output": path, "figures": [figure ids], "tables": [table ids]}, the
      ids being those of the <figure> and <table> elements in the file.
    """
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and is_sweep_dir(paths[0]):  # a `mannlab sweep` directory
        return build_sweep_report(paths[0], output, title)
    if len(paths) == 1 and is_bench_dir(paths[0]):  # a `mannlab bench` directory
        return build_bench_report(paths[0], output, title)
    runs = [load_run(p, label, lengths, sequences, log)
            for p, label in zip(paths, _labels(paths))]
    figures, tables, parts = [], [], []

    def add_figure(fig_id, fig, caption, wide=False):
        figures.append(fig_id)
        parts.append(_figure(fig_id, fig, caption, wide))

    def add_table(table_id, markup):
        tables.append(table_id)
        parts.append(markup)

    names = " vs ".join(r.label for r in runs)
    title = title or f"mannlab report: {names}"
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts.append(f"<h1>{html.escape(title)}</h1>\n<p class=meta>generated {stamp}; "
                 f"{len(runs)} run(s): " + ", ".join(
                     f'<a href="#run-{i}">{html.escape(r.label)}</a> '
                     f"({html.escape(r.config.model.name.upper())} on "
                     f"{html.escape(r.config.task.label)}, {len(r.seed_dirs)} seed(s))"
                     for i, r in enumerate(runs)) + "</p>\n")

    parts.append('<section id="overview"><h2>Learning and generalisation</h2>\n')
    metrics = list(dict.fromkeys(m for r in runs for m in r.metrics))
    add_figure("fig-curves", curve_plots.learning_curves(
        [(r.label, r.curves) for r in runs], metrics, f"learning curves: {names}"),
        "Training values per log interval (thin), their sliding-window average (thick) and "
        "held-out evaluations (dashed, markers) against sequences seen.")
    add_figure("fig-length", curve_plots.error_vs_length(
        [(r.label, r.evals) for r in runs], metrics[0], [r.train_length for r in runs],
        f"{metrics[0].replace('_', ' ')} against sequence length: {names}"),
        f"Mean {metrics[0]} per sequence at each tested length (faint dots: single seeds); "
        "dotted lines: the longest training length.")
    parts.append('<div class="side">')
    for i, r in enumerate(runs):
        parts.append('<div>')
        add_table(f"table-gen-{i}", generalisation_table(r, f"table-gen-{i}"))
        parts.append("</div>")
    parts.append("</div>\n<p class=meta>Generalisation: per sequence, mean over the evaluated "
                 "sequences (from each seed's eval.json); * marks lengths within the "
                 "training range.</p>\n<h3>Seeds</h3>")
    add_table("table-status", status_table(runs, "table-status"))
    parts.append("</section>\n")

    for i, r in enumerate(runs):
        parts.append(f'<section class="run" id="run-{i}"><h2>{html.escape(r.label)}</h2>'
                     f"<p class=meta>{html.escape(str(r.path))}</p>")
        parts.append('<div class="side"><div><h3>config</h3>'
                     f"<pre>{html.escape(r.config_text)}</pre></div>"
                     f"<div><h3>model summary</h3><pre>{html.escape(r.model_text)}</pre>"
                     "</div></div>")
        if len(runs) > 1 and len(r.seed_dirs) > 1:
            add_figure(f"fig-curves-{i}", curve_plots.learning_curves(
                [(r.label, r.curves)], r.metrics, f"learning curves: {r.label}"),
                f"{r.label}: every seed.")
        seed = best_seed(r)
        parts.append(f"<h3>memory at work ({html.escape(seed.name)}"
                     f"{', the best seed' if len(r.seed_dirs) > 1 else ''})</h3>")
        for k, length in enumerate(show_lengths(r, lengths_shown)):
            kind = ("training length" if length == r.train_length else
                    "longer than training" if length and r.train_length
                    and length > r.train_length else "test sequence")
            try:
                fig = memory_figure(r, seed, length)
            except (ValueError, TypeError, KeyError, AttributeError, IndexError) as err:
                parts.append(f'<p class="note">no figure at length {length}: '
                             f"{html.escape(type(err).__name__)}: {html.escape(str(err))}</p>")
                continue
            add_figure(f"fig-memory-{i}-{k}", fig,
                       f"{r.label}, {seed.name}: one sequence of length {length} ({kind}). "
                       "Weightings over time (memory locations top to bottom), memory "
                       "before the first step and after the last on one colour scale.",
                       wide=True)
        parts.append("</section>\n")

    write_page(output, title, parts)
    return {"output": str(output), "figures": figures, "tables": tables}
