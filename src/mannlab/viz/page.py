"""A self-contained HTML page: the style and the pieces both reports use
(`viz/report.py` for runs, `viz/sweep_report.py` for sweeps). Figures are
PNGs inlined as base64 data URIs, so the file needs no network."""

import base64
import html
import io
from pathlib import Path

from mannlab.training.files import write_text_atomic

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 1.5em;
       color: #1b1b1b; background: #fff; max-width: 1600px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
h3 { margin: 0.8em 0 0.3em; }
.meta { color: #555; }
figure { margin: 0.8em 0; }
figure img { display: block; border: 1px solid #ddd; }
figure.plot img { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; max-width: 100%; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
.side { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td.label, th.label { text-align: left; }
tr.trained td { background: #f4f8ff; }
caption { font-weight: 600; text-align: left; padding-bottom: 0.2em; }
pre { white-space: pre-wrap; max-width: 60em; background: #f7f7f7; border: 1px solid #e2e2e2; padding: 0.6em; font-size: 0.85em;
      overflow-x: auto; }
.note { color: #8a4b00; }
"""


def png(fig, dpi: int = 100) -> str:
    """A Figure (made without pyplot: nothing to close) as base64 PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def figure_html(fig_id: str, fig, caption: str, wide: bool = False) -> str:
    """A <figure> with the PNG of `fig`; `wide` ones scroll sideways."""
    img = (f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{png(fig)}">')
    cls = "sequence" if wide else "plot"
    body = f'<div class="scroll">{img}</div>' if wide else img
    return (f'<figure class="{cls}" id="{fig_id}" data-figure="{fig_id}">{body}'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>\n")


def table_html(table_id: str, caption: str, head: list[str], rows: list[str]) -> str:
    """A page table: `caption` (HTML), one header row of the `head` texts
    (escaped), then `rows` (each a finished ``<tr>...</tr>``)."""
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return (f'<table id="{table_id}"><caption>{caption}</caption><tr>{header}</tr>'
            + "".join(rows) + "</table>\n")


def write_page(output: str | Path, title: str, parts: list[str]) -> None:
    """Write the page of body `parts` to `output` (atomically, making its directory)."""
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "".join(parts) + "</body></html>\n")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output, page)
