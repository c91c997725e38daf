"""The CLI end to end on a tiny config, in process and once as a real command."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import tiny_config
from mannlab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def tiny_yaml(tmp_path, **train):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(**train).model_dump(mode="json")))
    return path


def test_train_resume_eval_show(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_yaml(tmp_path)), "train.max_steps=20", "--run-dir", str(run),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"tensorboard --logdir {run}" in out
    assert main(["train", "--resume", str(run), "train.max_steps=30", "--no-progress"]) == 0
    assert json.loads((run / "seed-3/summary.json").read_text())["steps"] == 30
    assert main(["eval", str(run), "--lengths", "2", "5", "--sequences", "8"]) == 0
    table = json.loads((run / "seed-3/eval.json").read_text())
    assert set(table["seeds"]["seed-3"]) == {"2", "5"}
    assert "bits_wrong" in table["seeds"]["seed-3"]["5"]
    png = tmp_path / "show.png"
    assert main(["show", str(run / "seed-3"), "--length", "5", "-o", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: {name: copy}\nmodel: {name: transformer}\n")
    proc = subprocess.run([sys.executable, "-m", "mannlab", "train", str(bad)],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "'transformer'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    run = tmp_path / "run"
    (run / "seed-0").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(tiny_config().model_dump(mode="json")))
    (run / "seed-0/checkpoint.safetensors").write_bytes(b"not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "mannlab", "eval", str(run)],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "checkpoint" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_field_combinations_and_existing_run_dirs_fail_before_anything_is_written(
        tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_yaml(tmp_path)), "task.min_length=5", "--run-dir",
                 str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "min_length" in err and "5" in err and len(err.splitlines()) == 1
    assert not run.exists()
    assert main(["train", str(tiny_yaml(tmp_path)), "model.shared_head=true",
                 "model.read_heads=2", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "shared_head" in err and len(err.splitlines()) == 1 and not run.exists()
    run.mkdir()
    assert main(["train", str(tiny_yaml(tmp_path)), "--run-dir", str(run)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert list(run.iterdir()) == []


def test_eval_and_show_on_a_data_set_task_skip_lengths_it_lacks(tmp_path, capsys):
    """A sentences run (lengths 6 and 8 only): eval skips the lengths the data
    lack, and asking only for those, or for --repeats, is a one-line error."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("ab\nba\nxyz\n")
    config = tmp_path / "s.yaml"
    config.write_text(yaml.safe_dump({
        "task": {"name": "sentences", "path": str(corpus), "count": 3, "heldout_every": 0},
        "model": {"name": "lstm", "hidden_size": 4, "layers": 1},
        "train": {"max_steps": 2, "eval_every": 2, "eval_size": 4, "log_every": 1,
                  "converge_at": None}}))
    run = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--lengths", "6", "10", "--sequences", "4"]) == 0
    assert "skipped lengths 10" in capsys.readouterr().out
    saved = json.loads((run / "seed-0/eval.json").read_text())
    assert set(saved["seeds"]["seed-0"]) == {"6"}
    # the task's own scores on its splits
    train_scores = saved["splits"]["seeds"]["seed-0"]["train"]
    assert 0 <= train_scores["micro_f1"] <= 1 and train_scores["sequences"] == 3
    assert main(["eval", str(run), "--lengths", "10"]) == 0  # no length, but the splits
    assert "scores on the task's splits" in capsys.readouterr().out
    for argv in (["eval", str(run), "--repeats", "2"],
                 ["show", str(run), "--length", "7", "-o", str(tmp_path / "x.png")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and ("length" in err or "repeats" in err)


@pytest.mark.slow  # starts seed processes that train: 117 s on a loaded 2-core machine
def test_seeds_in_processes_match_one_vmapped_program(tmp_path, monkeypatch):
    """`--execution processes` (one pinned worker per core) and `vmap` give each
    seed the same initialisation and data, so the same results; the workers
    keep their compiled programs in the parent's compilation cache."""
    import jax

    config = tiny_yaml(tmp_path, max_steps=20)
    cache, before = tmp_path / "cache", jax.config.jax_compilation_cache_dir
    monkeypatch.setenv("MANNLAB_JAX_CACHE", str(cache))  # what `main` configures
    try:
        assert main(["train", str(config), "--seeds", "2", "--execution", "processes",
                     "--no-progress", "--run-dir", str(tmp_path / "processes")]) == 0
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
    assert cache.is_dir() and any(cache.iterdir()), "seed workers wrote nothing to the cache"
    assert main(["train", str(config), "--seeds", "2", "--execution", "vmap",
                 "--no-progress", "--run-dir", str(tmp_path / "vmap")]) == 0
    for seed in ("seed-3", "seed-4"):  # the config's seed and the next
        a, b = (json.loads((tmp_path / e / seed / "summary.json").read_text())
                for e in ("processes", "vmap"))
        assert a["steps"] == b["steps"] == 20
        for name, value in b["heldout"].items():
            assert abs(a["heldout"][name] - value) <= 1e-4 * max(1.0, abs(value)), name


def test_seed_results_of_a_resumed_seed_replace_only_its_own(tmp_path):
    from mannlab.training.rundir import write_seed_results

    write_seed_results(tmp_path, [{"seed": 3, "steps": 10}, {"seed": 4, "steps": 10}])
    write_seed_results(tmp_path, [{"seed": 4, "steps": 30}])
    assert json.loads((tmp_path / "seeds.json").read_text()) == [{"seed": 3, "steps": 10}, {"seed": 4, "steps": 30}]


def test_eval_table_of_several_seeds_ends_with_their_median(capsys):
    from mannlab.cli import _print_table

    result = {"metrics": ["bits_wrong"], "sequences": 10, "seeds": {
        f"seed-{k}": {"20": {"bits_wrong": v}} for k, v in enumerate([1.0, 30.0, 2.0])}}
    _print_table(result)
    median_row = [line for line in capsys.readouterr().out.splitlines() if "median" in line]
    assert len(median_row) == 1 and "median of 3" in median_row[0]
    assert median_row[0].split("│")[-2].strip() == "2"
    result["seeds"]["seed-0"]["20"]["bits_wrong"] = float("nan")  # a diverged seed
    _print_table(result)
    median_row = [line for line in capsys.readouterr().out.splitlines() if "median" in line]
    assert median_row[0].split("│")[-2].strip() == "nan"


TINY_NTM = ["model.controller_size=16", "model.memory_size=16", "model.memory_width=8",
            "train.max_steps=20", "train.batch_size=2", "train.steps_per_call=1",
            "train.eval_every=10", "train.eval_size=8", "train.log_every=10",
            "train.checkpoint_every=10", "train.max_seconds=null", "train.converge_at=null"]


@pytest.mark.slow
@pytest.mark.parametrize("config, overrides, lengths", [
    ("ntm-associative-recall", ["task.bits=3", "task.item_length=2", "task.max_items=3"],
     ["3", "5"]),
    ("ntm-priority-sort", ["task.min_length=4", "task.max_length=4", "model.read_heads=2",
                           "model.write_heads=1", "model.controller_layers=1"], ["4", "6"]),
    ("ntm-ngrams", ["task.min_length=12", "task.max_length=12"], ["12", "30"]),
])
def test_the_paper_tasks_train_eval_and_show(tmp_path, config, overrides, lengths):
    run = tmp_path / "run"
    assert main(["train", str(ROOT / f"configs/{config}.yaml"), *TINY_NTM, *overrides,
                 "--run-dir", str(run), "--no-progress"]) == 0
    assert main(["eval", str(run), "--lengths", *lengths, "--sequences", "8"]) == 0
    table = json.loads((run / "seed-0/eval.json").read_text())["seeds"]["seed-0"]
    assert set(table) == set(lengths)
    assert all(np.isfinite(v) for row in table.values() for v in row.values())
    png = tmp_path / "show.png"
    assert main(["show", str(run), "--length", lengths[1], "-o", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("ordered, mixed", [
    (["train", "ntm-copy", "train.max_steps=10", "model.memory_size=8", "--seeds", "2"],
     ["train", "--seeds", "2", "ntm-copy", "train.max_steps=10", "model.memory_size=8"]),
    (["train", "ntm-copy", "train.max_steps=10", "--seeds", "2"],
     ["train", "ntm-copy", "--seeds", "2", "train.max_steps=10"]),
    (["train", "--resume", "RUN", "train.max_steps=10"],
     ["train", "train.max_steps=10", "--resume", "RUN"]),
    (["eval", "RUN", "--lengths", "10", "20"], ["eval", "--lengths", "10", "20", "--", "RUN"]),
    (["eval", "RUN", "--sequences", "5"], ["eval", "--sequences", "5", "RUN"]),
    (["show", "RUN", "--length", "7", "-o", "x.png"], ["show", "-o", "x.png", "RUN", "--length", "7"]),
    (["report", "A", "B", "-o", "r.html"], ["report", "A", "-o", "r.html", "B"]),
    (["--threads", "multi", "configs"], ["--threads", "multi", "configs"]),
])
def test_options_and_overrides_in_any_order(ordered, mixed):
    from mannlab.cli import parse_args

    assert vars(parse_args(ordered)) == vars(parse_args(mixed))


def test_overrides_after_options_reach_the_config(tmp_path):
    """The notes' own command shape: options first, then an override."""
    run = tmp_path / "run"
    assert main(["train", str(tiny_yaml(tmp_path)), "--seeds", "1", "train.max_steps=6",
                 "--run-dir", str(run), "--no-progress"]) == 0
    assert json.loads((run / "seed-3/summary.json").read_text())["steps"] == 6


def test_configs_lists_the_shipped_configs_and_trains_one_by_name(capsys):
    from mannlab.config import find_config

    assert main(["configs"]) == 0
    out = capsys.readouterr().out
    assert "ntm-copy " in out and "dnc-copy " in out and "mann-rl-pos " in out
    assert find_config("ntm-copy").name == "ntm-copy.yaml"
    assert main(["train", "no-such-config"]) == 2
    assert "no-such-config" in capsys.readouterr().err
