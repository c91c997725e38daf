"""TensorBoard logging during training and the HTML report of trained runs."""

import json
import re

import pytest

from helpers import event_records
from mannlab.cli import main
from tiny_runs import EVAL_LENGTHS, tiny_report, tiny_runs


@pytest.fixture(scope="session")
def root(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "tiny-runs"


@pytest.fixture(scope="session")
def runs(root):
    root.mkdir(exist_ok=True)
    return tiny_runs(root)


@pytest.fixture(scope="session")
def report(runs, root):
    return tiny_report(root)


def read_events(seed_dir) -> dict[str, list[tuple[int, str]]]:
    """tag -> [(step, kind)] from a seed's tfevents files."""
    tags = {}
    for event in event_records(seed_dir):
        for v in event.summary.value:
            tags.setdefault(v.tag, []).append((event.step, v.WhichOneof("value")))
    return tags


def test_tensorboard_scalars_and_images_per_seed(runs):
    for seed in ("seed-0", "seed-1"):
        tags = read_events(runs["ntm"] / seed)
        for scalar in ("train/loss", "train/cost", "train/bits_wrong", "train/bits_wrong_window",
                       "train/cost_window", "train/grad_norm", "train/learning_rate",
                       "train/seq_per_s", "heldout/bits_wrong"):
            assert scalar in tags, (seed, scalar, sorted(tags))
        for image in ("input", "target", "output", "read_weights", "write_weights", "erase",
                      "add", "memory_before", "memory_after"):
            entries = tags.get(f"sequence/{image}")
            assert entries, (seed, image, sorted(tags))
            assert {s for s, _ in entries} >= {100, 200}
            assert {k for _, k in entries} == {"image"}
    lstm = read_events(runs["lstm"] / "seed-0")
    assert "sequence/input" in lstm and "sequence/output" in lstm
    assert not any("memory" in t for t in lstm)


def test_log_images_off_and_tensorboard_command(tmp_path, capsys):
    from tiny_runs import COMMON, NTM, ROOT

    run = tmp_path / "quiet"
    assert main(["train", str(ROOT / "configs/ntm-copy.yaml"), *COMMON, *NTM,
                 "train.max_steps=50", "train.eval_every=50", "train.log_images=false",
                 "--seeds", "2", "--execution", "vmap", "--no-progress",
                 "--run-dir", str(run)]) == 0
    assert f"tensorboard --logdir {run}\n" in capsys.readouterr().out
    for seed in ("seed-0", "seed-1"):  # each seed its own TensorBoard run
        tags = read_events(run / seed)
        assert "heldout/bits_wrong" in tags
        assert not any(t.startswith("sequence/") for t in tags)


def test_report_is_self_contained_and_complete(report, runs):
    page = (runs["ntm"].parent / "report.html").read_text()
    assert report["figures"] == ["fig-curves", "fig-length", "fig-curves-0", "fig-memory-0-0",
                                 "fig-memory-0-1", "fig-memory-1-0", "fig-memory-1-1"]
    assert report["tables"] == ["table-gen-0", "table-gen-1", "table-status"]
    for fid in report["figures"]:
        assert re.search(rf'<figure [^>]*id="{fid}"[^>]*>.*?<img [^>]*src="data:image/png;'
                         r'base64,[A-Za-z0-9+/=]{1000,}"', page, re.DOTALL), fid
    for tid in report["tables"]:
        assert f'id="{tid}"' in page
    # nothing to fetch: no scripts, no external stylesheets or images
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)
    # config, model summary, run labels
    assert page.count("<h3>config</h3>") == 2 and page.count("<h3>model summary</h3>") == 2
    assert "memory_size: 16" in page and "hidden_size: 16" in page
    assert "ntm-copy, seed-0: one sequence of length 4 (training length)" in page
    assert 'class="note"' not in page  # no figure failed


def test_report_computes_missing_evaluations(report, runs):
    for seed in ("seed-0", "seed-1"):
        result = json.loads((runs["ntm"] / seed / "eval.json").read_text())
        assert result["lengths"] == EVAL_LENGTHS and list(result["seeds"]) == [seed]
    page = (runs["ntm"].parent / "report.html").read_text()
    table = re.search(r'<table class="generalisation" id="table-gen-0".*?</table>', page, re.DOTALL)
    rows = re.findall(r'<td class="label">(\d+)( \*)?</td>', table.group(0))
    assert [(int(L), bool(star)) for L, star in rows] == [(4, True), (8, False)]
    assert "seed-1" in table.group(0)  # one column per seed


def test_report_cli_uses_existing_eval(report, runs, tmp_path, capsys):
    lstm = runs["lstm"]
    assert main(["eval", str(lstm), "--lengths", "4", "8", "--sequences", "10"]) == 0
    out = tmp_path / "lstm.html"
    assert main(["report", str(lstm), "-o", str(out), "--show-lengths", "4"]) == 0
    assert "wrote" in capsys.readouterr().out
    page = out.read_text()
    table = re.search(r'id="table-gen-0".*?</table>', page, re.DOTALL).group(0)
    assert re.findall(r'<td class="label">(\d+)', table) == ["4", "8"]
    assert json.loads((lstm / "seed-0" / "eval.json").read_text())["sequences"] == 10
    assert 'id="fig-memory-0-0"' in page and 'id="fig-memory-0-1"' not in page
