"""`mannlab bench babi`: a tiny bAbI bench (2 tasks x 2 models x 4 steps,
tiny models, 4 test stories a task) trains, scores and tabulates the test
word error with the mean-error and failed-tasks rows beside the published
references; bad options are one-line errors; the report renders; the
scoring (`error_summary`, `model_rows`, `babi_errors`) on hand-made cases."""

import json

import pytest
from rich.console import Console

from mannlab import bench, cli
from mannlab.bench.babi import FAILED_ROW, MEAN_ROW, error_summary, model_rows
from mannlab.config import ConfigError, find_config, load_config
from mannlab.training.evaluate import babi_errors
from mannlab.training.rundir import open_run
from mannlab.viz.bench_report import cell_text, reference_text
from mannlab.viz.report import build_report

SETS = ["model.hidden_size=8", "model.controller_size=8", "model.memory_size=8",
        "model.memory_width=4", "model.read_heads=1", "train.batch_size=4",
        "train.eval_size=8", "train.eval_every=4", "train.checkpoint_every=4",
        "train.log_every=4", "train.score_every=null", "task.length_buckets=1",
        "lstm:task.train_stories=20", "dnc:task.train_stories=20"]
TINY = ["--models", "lstm", "dnc", "--tasks", "1", "19", "--steps", "4", "--sequences", "4",
        *(x for s in SETS for x in ("--set", s))]


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    """A tiny bAbI bench run in this process without Ray (--runner local)."""
    path = tmp_path_factory.mktemp("bench") / "b"
    assert cli.main(["bench", "babi", *TINY, "--runner", "local", "--dir", str(path)]) == 0
    return path


def test_the_table_has_the_errors_the_rows_and_the_references(tiny_bench):
    data = json.loads((tiny_bench / "bench.json").read_text())
    assert data["suite"] == "babi" and data["tasks"] == ["1", "19"]
    assert data["models"] == ["lstm", "dnc"] and len(data["runs"]) == 4
    assert data["score"]["higher_is_better"] is False
    assert data["budget"]["steps"] == 4 and data["budget"]["batch_size"] == 4
    assert data["budget"]["training"] == "one task, 10k questions (at most 20 stories)"
    assert data["budget"]["evaluation"] == "test split, the first 4 stories of each task"
    for r in data["runs"]:
        _, config, _ = open_run(r["run"])
        assert config.task.tasks == [int(r["task"])]
        assert 0.0 <= r["score"] <= 1.0 and r["solved"] == (r["score"] <= 0.05)
        cell = data["table"][r["task"]][r["model"]]
        assert cell["mean"] == cell["best"] == r["score"] and cell["seeds"] == 1
        assert cell["failed_rate"] == float(r["score"] > 0.05)
    first = data["runs"][0]
    _, config, seed_dirs = open_run(first["run"])
    own = babi_errors(config, seed_dirs, stories=4)[first["seed_dir"]]
    assert own["mean_error"] == pytest.approx(first["score"])
    assert own[f"qa{first['task']}_error"] == pytest.approx(first["score"])
    rows = {row["name"]: row for row in data["rows"]}
    assert list(rows) == [MEAN_ROW, FAILED_ROW]
    assert rows == {row["name"]: row for row in model_rows(data["table"], ["1", "19"],
                                                           ["lstm", "dnc"])}
    for model in ("lstm", "dnc"):
        errors = [data["table"][t][model]["mean"] for t in ("1", "19")]
        assert rows[MEAN_ROW]["cells"][model]["mean"] == pytest.approx(sum(errors) / 2)
        assert rows[FAILED_ROW]["cells"][model]["best"] == sum(e > 0.05 for e in errors)
    reference = data["reference"]
    assert reference["scores"][MEAN_ROW]["DNC"] == 16.7
    assert reference["spread"][MEAN_ROW]["DNC"] == 7.6
    assert reference["scores"][MEAN_ROW]["DNC-MD (Csordás)"] == 9.5
    assert reference["scores"][MEAN_ROW]["DNC best"] == 3.8
    assert reference["scores"][FAILED_ROW]["DNC best"] == 2.0
    assert reference["scores"]["1"]["DNC"] == 9.0 and reference["scores"]["19"]["DNC"] == 64.6
    assert set(reference["sources"]) == {"csordas-table1", "franke-adnc", "issue-20"}


def test_a_rerun_skips_training_and_scoring(tiny_bench):
    before = json.loads((tiny_bench / "bench.json").read_text())
    options = bench.BenchOptions(models=("lstm", "dnc"), tasks=("1", "19"), steps=4,
                                 sequences=4, sets=tuple(SETS), runner="local")
    messages = []
    done = bench.run_bench("babi", options, tiny_bench, log=messages.append)
    assert done.scored == 0 and messages == []
    assert done.data["table"] == before["table"] and done.data["rows"] == before["rows"]


def test_the_printed_table_has_the_rows_references_and_budget(tiny_bench, capsys):
    data = json.loads((tiny_bench / "bench.json").read_text())
    Console(width=400).print(bench.summary_table(data))
    shown = capsys.readouterr().out
    assert "4 steps x batch 4" in shown and "first 4 stories of each task" in shown
    assert MEAN_ROW in shown and FAILED_ROW in shown
    assert "16.7 ± 7.6" in shown and "9.5 ± 1.6" in shown and "paper DNC best" in shown


def test_the_report_shows_the_error_table(tiny_bench, tmp_path):
    out = build_report([tiny_bench], tmp_path / "report.html")
    assert out["tables"] == ["table-bench", "table-runs"] and out["figures"] == []
    page = (tmp_path / "report.html").read_text()
    assert 'id="table-bench"' in page and MEAN_ROW in page and FAILED_ROW in page
    assert "64.6 ± 37.4" in page and "4 steps x batch 4" in page


@pytest.mark.parametrize("change, named", [
    (["--tasks", "1", "21"], "--tasks: unknown task '21'"),
    (["--tasks", "qa1"], "--tasks: unknown task 'qa1'"),
    (["--tasks", "1", "1"], "--tasks: 1 is listed twice"),
    (["--models", "gru"], "--models: unknown model 'gru' (one of dnc, dnc-md, lstm, ntm)"),
    (["--max-length", "30"], "--max-length 30: the babi suite evaluates whole test stories"),
    (["--sequences", "0"], "--sequences: must be a whole number >= 1, got 0"),
])
def test_malformed_options_are_one_line_errors(change, named, tmp_path, capsys):
    argv = ["bench", "babi", "--models", "lstm", "--runner", "local", "--dir",
            str(tmp_path / "b"), *change]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("mannlab: error: ") and named in err, err
    assert not (tmp_path / "b").exists()


def test_error_summary_over_seeds():
    cell = error_summary([0.02, 0.30, 0.10, 0.04])
    assert cell["mean"] == pytest.approx(0.115) and cell["best"] == 0.02
    assert cell["median"] == pytest.approx(0.07) and cell["failed_rate"] == 0.5
    assert cell["seeds"] == 4
    assert error_summary([0.05])["failed_rate"] == 0.0  # 5% itself passes
    with pytest.raises(ValueError):
        error_summary([])


def test_model_rows_mean_error_and_failed_tasks():
    table = {"1": {"a": error_summary([0.0, 0.1]), "b": error_summary([0.5])},
             "2": {"a": error_summary([0.2, 0.4]), "b": None}}
    mean, failed = model_rows(table, ["1", "2"], ["a", "b"])
    assert (mean["name"], mean["kind"], failed["name"], failed["kind"]) == (
        MEAN_ROW, "percent", FAILED_ROW, "count")
    assert mean["cells"]["a"] == {"mean": pytest.approx(0.175), "best": pytest.approx(0.1)}
    # seeds failing: task 1 half of them, task 2 all; best seeds: only task 2 fails
    assert failed["cells"]["a"] == {"mean": 1.5, "best": 1.0}
    assert mean["cells"]["b"] is None and failed["cells"]["b"] is None  # task 2 missing
    assert cell_text(failed["cells"]["a"], "mean", "count") == "1.5"
    assert cell_text(failed["cells"]["a"], "best", "count") == "1"
    assert cell_text(mean["cells"]["a"], "mean", "percent") == "17.5"
    assert cell_text(mean["cells"]["a"], "failed_rate", "rate") == "-"
    reference = {"scores": {MEAN_ROW: {"X": 16.7, "Y": 3.8}}, "spread": {MEAN_ROW: {"X": 7.6}}}
    assert [reference_text(reference, MEAN_ROW, m) for m in ("X", "Y", "Z")] == [
        "16.7 ± 7.6", "3.8", "-"]


def test_babi_errors_is_for_the_babi_task(tmp_path):
    with pytest.raises(ConfigError, match="bAbI errors are for the babi task, not copy"):
        babi_errors(load_config(find_config("dnc-copy")), [tmp_path])
