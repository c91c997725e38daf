"""`mannlab bench`: a tiny Chomsky bench (2 tasks x 2 models x 10 steps, tiny
models) trains, scores and tabulates; its table is the seeds' own scores; a
re-run skips training and scoring; bad options are one-line errors; `mannlab
report` of a bench directory has the table and the curves."""

import json

import pytest

from mannlab import bench, cli
from mannlab.training.evaluate import protocol_score
from mannlab.training.rundir import open_run
from mannlab.viz.report import build_report

TINY = ["--models", "lstm", "ntm", "--tasks", "parity_check", "reverse_string",
        "--steps", "10", "--max-length", "41", "--sequences", "4",
        "--set", "model.hidden_size=8", "--set", "model.controller_size=8",
        "--set", "model.memory_size=8", "--set", "model.memory_width=4",
        "--set", "train.batch_size=4", "--set", "train.eval_size=8",
        "--set", "train.eval_every=10", "--set", "train.checkpoint_every=10",
        "--set", "train.log_every=10", "--set", "task.max_length=5",
        "--set", "task.length_buckets=1"]


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    """A tiny bench run in this process without Ray (--runner local)."""
    path = tmp_path_factory.mktemp("bench") / "b"
    assert cli.main(["bench", "chomsky", *TINY, "--runner", "local", "--dir", str(path)]) == 0
    return path


def test_the_table_is_the_seeds_own_scores(tiny_bench):
    data = json.loads((tiny_bench / "bench.json").read_text())
    assert data["tasks"] == ["parity_check", "reverse_string"]
    assert data["models"] == ["lstm", "ntm"]
    assert len(data["runs"]) == 4
    assert data["budget"]["steps"] == 10 and data["budget"]["batch_size"] == 4
    assert data["budget"]["test_lengths"] == [41] and data["budget"]["sequences"] == 4
    assert data["budget"]["training_lengths"] == "1..5"
    for r in data["runs"]:
        _, config, seed_dirs = open_run(r["run"])
        own = protocol_score(config, seed_dirs, max_length=41, sequences=4)
        assert own["seeds"][r["seed_dir"]]["score"] == pytest.approx(r["score"], abs=1e-6)
        assert r["curve"] == {"41": pytest.approx(r["score"])}
        cell = data["table"][r["task"]][r["model"]]
        assert cell["best"] == r["score"] and cell["median"] == r["score"]
        assert cell["solved_rate"] == float(r["score"] >= 0.9) and cell["seeds"] == 1
    assert set(data["parameters"]) == {"lstm", "ntm"}
    assert all(n > 0 for by_task in data["parameters"].values() for n in by_task.values())
    assert data["reference"]["scores"]["reverse_string"]["LSTM"] == 60.9


def test_a_rerun_skips_training_and_scoring(tiny_bench, capsys):
    before = (tiny_bench / "bench.json").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in tiny_bench.rglob("checkpoint.safetensors")}
    messages = []
    options = bench.BenchOptions(
        models=("lstm", "ntm"), tasks=("parity_check", "reverse_string"), steps=10,
        max_length=41, sequences=4, sets=tuple(TINY[TINY.index("--set") + 1::2]),
        runner="local")
    done = bench.run_bench("chomsky", options, tiny_bench, log=messages.append)
    assert done.scored == 0 and messages == []
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    after = json.loads((tiny_bench / "bench.json").read_text())
    assert after["table"] == json.loads(before)["table"]


def test_other_options_in_the_same_directory_are_refused(tiny_bench, capsys):
    argv = ["bench", "chomsky", *TINY, "--seeds", "2", "--runner", "local",
            "--dir", str(tiny_bench)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "seeds: 1 there, 2 now" in err and "--dir" in err


def test_the_report_shows_the_table_and_curves(tiny_bench, tmp_path):
    out = build_report([tiny_bench], tmp_path / "report.html")
    assert out["tables"][0] == "table-bench"
    assert out["figures"] == ["fig-parity_check", "fig-reverse_string"]
    page = (tmp_path / "report.html").read_text()
    assert 'id="table-bench"' in page and "data:image/png;base64," in page
    assert "60.9" in page and "20 steps" not in page and "10 steps x batch 4" in page


def test_the_printed_table_states_the_budget(tiny_bench, capsys):
    data = json.loads((tiny_bench / "bench.json").read_text())
    cli._console().print(bench.summary_table(data))
    shown = capsys.readouterr().out
    assert "10 steps x batch 4" in shown and "test lengths 41" in shown
    assert "--max-length 41" in shown and "paper LSTM" in shown


@pytest.mark.parametrize("change, named", [
    (["--models", "lstm", "foo"], "--models: unknown model 'foo'"),
    (["--models"], "--models: give at least one model"),
    (["--models", "lstm", "lstm"], "--models: lstm is listed twice"),
    (["--tasks", "parity_check", "nope"], "--tasks: unknown task 'nope'"),
    (["--steps", "0"], "--steps: must be a whole number >= 1, got 0"),
    (["--steps", "abc"], "--steps: expected a whole number, got 'abc'"),
    (["--seeds", "-1"], "--seeds: must be a whole number >= 1, got -1"),
    (["--learning-rates", "0"], "--learning-rates: must be numbers > 0, got 0.0"),
    (["--learning-rates", "x"], "--learning-rates: expected a number, got 'x'"),
    (["--learning-rates", "nan"], "--learning-rates: must be numbers > 0, got nan"),
    (["--max-length", "30"], "--max-length 30: keeps none of the test lengths"),
    (["--sequences", "0"], "--sequences: must be a whole number >= 1, got 0"),
    (["--set", "bogus"], "--set bogus: expected [MODEL:]section.field=value"),
    (["--set", "model.nope=1"], "--set model.nope=1: none of the models (lstm) has the field"),
    (["--set", "dnc:model.memory_size=8"], "--set dnc:model.memory_size=8: 'dnc' is not one"),
    (["--set", "model.hidden_size=-3"], "model.hidden_size"),
    (["--runner", "bogus"], "--runner: one of auto, sweep, local, got 'bogus'"),
])
def test_malformed_options_are_one_line_errors(change, named, tmp_path, capsys):
    argv = ["bench", "chomsky", "--models", "lstm", "--dir", str(tmp_path / "b")]
    argv += change
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("mannlab: error: ") and named in err, err
    assert not (tmp_path / "b").exists()


def test_set_reaches_fields_the_base_config_leaves_at_their_defaults():
    """--set train.clip_norm=5: a field the YAML does not write (default None)."""
    options = bench.BenchOptions(models=("lstm",), tasks=("parity_check",),
                                 sets=("train.clip_norm=5",))
    units, _, _ = bench.plan_units(bench.SUITES["chomsky"], options)
    assert [u.config.train.clip_norm for u in units] == [5.0]


def test_an_unknown_suite_is_one_line(tmp_path, capsys):
    assert cli.main(["bench", "babel", "--models", "lstm", "--dir", str(tmp_path / "b")]) == 2
    assert "unknown suite 'babel' (one of chomsky, babi)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_tiny_bench_as_one_sweep_on_ray(tmp_path):
    """The Ray path: one sweep over tasks x models x learning rates x seeds,
    scored like the local path; a re-run scores nothing again."""
    path = tmp_path / "b"
    argv = ["bench", "chomsky", *TINY, "--learning-rates", "3e-4", "1e-3", "--runner", "sweep",
            "--dir", str(path)]
    argv[argv.index("reverse_string")] = "odds_first"
    assert cli.main(argv) == 0
    data = json.loads((path / "bench.json").read_text())
    assert len(data["runs"]) == 8 and data["missing"] == []
    sweep = json.loads((path / "sweep" / "sweep.json").read_text())
    assert len(sweep["trials"]) == 8
    for r in data["runs"]:
        _, config, seed_dirs = open_run(r["run"])
        assert config.train.learning_rate == r["learning_rate"]
        own = protocol_score(config, seed_dirs, max_length=41, sequences=4)
        assert own["seeds"][r["seed_dir"]]["score"] == pytest.approx(r["score"], abs=1e-6)
    for task in ("parity_check", "odds_first"):
        for model in ("lstm", "ntm"):
            scores = [r["score"] for r in data["runs"] if (r["task"], r["model"]) == (task, model)]
            assert data["table"][task][model]["best"] == max(scores)
    done = bench.run_bench("chomsky", bench.BenchOptions(
        models=("lstm", "ntm"), tasks=("parity_check", "odds_first"), steps=10, max_length=41,
        sequences=4, sets=tuple(TINY[TINY.index("--set") + 1::2]),
        learning_rates=(3e-4, 1e-3), runner="sweep"), path, log=lambda m: None)
    assert done.scored == 0
