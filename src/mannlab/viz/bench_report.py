"""The HTML report of a bench directory (`mannlab report DIR`, DIR made by
`mannlab bench`): the table of tasks x models beside the published numbers,
with the budget and the suite's summary rows (bAbI: mean error, failed
tasks), and, for suites that record one, per task the curve against test
length of every model (the paper's Figure 2 style: the best seed of each
model a line, its other seeds faint).

It reads ``DIR/bench.json`` only, plain data: this module sits in the viz
layer, below `mannlab.bench`, which writes it.
"""

import datetime
import html
import json
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from mannlab.viz.page import figure_html as _figure
from mannlab.viz.page import table_html, write_page

BENCH_FILE = "bench.json"
FORMAT = "mannlab-bench-1"
DPI = 100


def is_bench_dir(path: str | Path) -> bool:
    """Whether `path` is a bench directory (it has bench.json)."""
    return (Path(path) / BENCH_FILE).is_file()


def budget_line(budget: dict) -> str:
    """The budget in one line: steps, batch, optimizer, seeds, learning
    rates, then the suite's training data and evaluation (its own words, or
    the training and test lengths)."""
    def show(v):
        return ", ".join(f"{k} {x}" for k, x in v.items()) if isinstance(v, dict) else str(v)

    head = (f"{show(budget['steps'])} steps x batch {show(budget['batch_size'])} "
            f"({show(budget['optimizer'])}), {budget['seeds']} seed(s) x learning rates "
            f"{' '.join(f'{v:g}' for v in budget['learning_rates'])}")
    if "training" in budget:
        return f"{head}, training: {show(budget['training'])}; {budget['evaluation']}"
    cut = budget["max_length"] if budget["max_length"] is not None else "none"
    return (f"{head}, training lengths {show(budget['training_lengths'])}; test lengths "
            f"{' '.join(map(str, budget['test_lengths']))}, {budget['sequences']} sequences "
            f"each, --max-length {cut}")


def cell_text(cell: dict | None, key: str, kind: str) -> str:
    """One of our cells: a fraction in percent (``percent``), seeds n/S
    (``rate``, of ``cell["seeds"]``) or a number of tasks (``count``); '-'
    where the cell or its value is missing."""
    if cell is None or cell.get(key) is None:
        return "-"
    if kind == "rate":
        return f"{round(cell[key] * cell['seeds'])}/{cell['seeds']}"
    if kind == "count":
        return f"{round(cell[key], 1):g}"
    return f"{100 * cell[key]:.1f}"


def reference_text(reference: dict, row: str, model: str) -> str:
    """A published value of `row` (a task or a summary row) and `model`, in
    the paper's units, with its s.d. where the reference gives one ('-' if
    not published)."""
    value = reference["scores"].get(row, {}).get(model)
    if value is None:
        return "-"
    spread = reference.get("spread", {}).get(row, {}).get(model)
    return f"{value:.1f}" if spread is None else f"{value:.1f} ± {spread:.1f}"


def _cell(cell: dict | None, key: str, kind: str) -> str:
    mark = " *" if cell and key == "best" and cell.get("solved") else ""
    return cell_text(cell, key, kind) + mark


def bench_table(data: dict, table_id: str) -> str:
    """Tasks x (our models' columns, then the published models)."""
    columns = data["score"]["columns"]
    reference = data["reference"]
    head = ['<th class="label" rowspan="2">task</th>']
    sub = []
    for model in data["models"]:
        counts = sorted(set(data["parameters"].get(model, {}).values()))
        size = (f"{counts[0]:,}" if len(counts) == 1 else
                f"{counts[0]:,}-{counts[-1]:,}" if counts else "?")
        head.append(f'<th colspan="{len(columns)}">{html.escape(model)} (ours, {size} '
                    "parameters)</th>")
        sub += [f"<th>{html.escape(h)}</th>" for _, h, _ in columns]
    head.append(f'<th colspan="{len(reference["models"])}">published</th>')
    sub += [f"<th>{html.escape(m)}</th>" for m in reference["models"]]
    rows = []
    for task in data["tasks"]:
        cells = [f'<td class="label">{html.escape(task)}</td>']
        for model in data["models"]:
            cell = data["table"].get(task, {}).get(model)
            cells += [f"<td>{_cell(cell, key, kind)}</td>" for key, _, kind in columns]
        cells += [f"<td>{reference_text(reference, task, m)}</td>" for m in reference["models"]]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    for extra in data.get("rows", []):
        cells = [f'<td class="label"><b>{html.escape(extra["name"])}</b></td>']
        for model in data["models"]:
            cell = extra["cells"].get(model)
            cells += [f"<td><b>{cell_text(cell, key, kind if kind == 'rate' else extra['kind'])}"
                      "</b></td>" for key, _, kind in columns]
        cells += [f"<td><b>{reference_text(reference, extra['name'], m)}</b></td>"
                  for m in reference["models"]]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    caption = (f"{html.escape(data['score']['name'])} in percent over seeds and learning "
               f"rates; budget: {html.escape(budget_line(data['budget']))}")
    return (f'<table id="{table_id}"><caption>{caption}</caption><tr>{"".join(head)}</tr>'
            f'<tr>{"".join(sub)}</tr>{"".join(rows)}</table>\n')


def curves_figure(data: dict, task: str):
    """`task`'s curve against test length per model: its best seed a line
    with points, the other seeds faint lines."""
    fig = Figure(figsize=(6.4, 3.6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    cmap = matplotlib.colormaps["tab10"]
    higher = data["score"]["higher_is_better"]
    for k, model in enumerate(data["models"]):
        runs = [r for r in data["runs"] if r["task"] == task and r["model"] == model]
        if not runs:
            continue
        best = max(runs, key=lambda r: r["score"] if higher else -r["score"])
        for r in runs:
            xs = sorted(int(n) for n in r["curve"])
            ys = [r["curve"][str(n)] for n in xs]
            if r is best:
                ax.plot(xs, ys, "o-", color=cmap(k % 10), lw=1.8, ms=4,
                        label=f"{model} (best: {100 * r['score']:.1f})")
            else:
                ax.plot(xs, ys, "-", color=cmap(k % 10), lw=0.8, alpha=0.35)
    ax.set_xlabel("test length")
    ax.set_ylabel(data["score"]["curve"])
    if higher:
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(task, loc="left", fontsize=11)
    if ax.lines:
        ax.legend(fontsize=8)
    return fig


def runs_table(data: dict, table_id: str) -> str:
    head = ["task", "model", "learning rate", "seed", data["score"]["name"], "run directory"]
    rows = []
    for r in sorted(data["runs"], key=lambda r: (r["task"], r["model"], r["learning_rate"],
                                                 r["seed"])):
        cells = [html.escape(r["task"]), html.escape(r["model"]), f"{r['learning_rate']:g}",
                 str(r["seed"]), f"{100 * r['score']:.1f}", html.escape(r["run"])]
        rows.append("<tr>" + "".join(f'<td class="label">{c}</td>' if i in (0, 1, 5)
                                     else f"<td>{c}</td>" for i, c in enumerate(cells))
                    + "</tr>")
    return table_html(table_id, "every seed", head, rows)


def build_bench_report(bench_dir: str | Path, output: str | Path,
                       title: str | None = None) -> dict:
    """Write the report of the bench in `bench_dir` to `output`; returns
    {"output", "figures", "tables"} (the ids of the page's figures and tables)."""
    bench_dir = Path(bench_dir)
    data = json.loads((bench_dir / BENCH_FILE).read_text())
    title = title or f"mannlab bench {data['suite']}: {data['title']}"
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    reference = data["reference"]
    figures, tables = [], []
    parts = [(f"<h1>{html.escape(title)}</h1>\n<p class=meta>generated {stamp}; "
             f"{html.escape(str(bench_dir))}: {len(data['tasks'])} task(s) x "
             f"{len(data['models'])} model(s); command: <code>{html.escape(data['command'])}"
              f"</code></p>\n<h2>Table</h2>\n")]
    tables.append("table-bench")
    parts.append(bench_table(data, "table-bench"))
    sources = "; ".join(f"{k}: {v}" for k, v in reference["sources"].items())
    headers = ", ".join(h for _, h, _ in data["score"]["columns"])
    parts.append(f"<p class=meta>{html.escape(data['score']['solved_note'])}. Ours, over seeds "
                 f"and learning rates: {html.escape(headers)}. Published: "
                 f"{html.escape(reference['title'])} "
                 f"({html.escape(reference['statistic'])}). Sources: {html.escape(sources)}. "
                 f"{html.escape(reference['missing'])}</p>\n")
    if data.get("missing"):
        parts.append(f"<p class=note>not trained (yet): "
                     f"{html.escape(', '.join(data['missing']))}</p>\n")
    if any(r["curve"] for r in data["runs"]):
        parts.append(f"<h2>{html.escape(data['score']['curve'].capitalize())} against test "
                     "length</h2>\n")
        for task in data["tasks"]:
            fig_id = f"fig-{task}"
            figures.append(fig_id)
            parts.append(_figure(fig_id, curves_figure(data, task),
                                 f"{task}: {data['score']['curve']} at each test length, one "
                                 "line per model (its best seed; other seeds faint)."))
    parts.append("<h2>Seeds</h2>\n")
    tables.append("table-runs")
    parts.append(runs_table(data, "table-runs"))
    write_page(output, title, parts)
    return {"output": str(output), "figures": figures, "tables": tables}
