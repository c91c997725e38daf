"""Tiny trained runs shared by the report tests (trained once per test session)."""

import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["task.max_length=4", "task.length_buckets=1", "train.max_steps=200",
          "train.eval_every=100", "train.eval_size=20", "train.log_every=50",
          "train.learning_rate=0.001", "train.converge_at=null", "train.max_seconds=null"]
NTM = ["model.controller_size=16", "model.memory_size=16", "model.memory_width=8"]
LSTM = ["model.hidden_size=16", "model.layers=1"]
EVAL_LENGTHS = [4, 8]


@functools.cache
def tiny_runs(root: Path) -> dict[str, Path]:
    """An NTM run with two seeds and an LSTM run with one, on copy up to length 4."""
    from mannlab.cli import main

    runs = {"ntm": root / "ntm-copy", "lstm": root / "lstm-copy"}
    assert main(["train", str(ROOT / "configs/ntm-copy.yaml"), *COMMON, *NTM, "--seeds", "2",
                 "--execution", "vmap", "--no-progress", "--run-dir", str(runs["ntm"])]) == 0
    assert main(["train", str(ROOT / "configs/lstm-copy.yaml"), *COMMON, *LSTM,
                 "--no-progress", "--run-dir", str(runs["lstm"])]) == 0
    return runs


@functools.cache
def tiny_report(root: Path) -> dict:
    """The report of both tiny runs (evaluations computed by the report itself)."""
    from mannlab.viz.report import build_report

    runs = tiny_runs(root)
    return build_report([runs["ntm"], runs["lstm"]], root / "report.html",
                        lengths=EVAL_LENGTHS, sequences=20, log=lambda *_: None)
