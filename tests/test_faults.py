"""Faults the training loop owns: divergence, interrupts, concurrent trainers,
dead parents, lost TensorBoard events, stale evaluations, resuming what
cannot be resumed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
import yaml

from helpers import event_records, tiny_config
from mannlab.cli import main
from mannlab.config import ConfigError
from mannlab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mannlab.training.evaluate import checkpoint_stamp, load_models
from mannlab.training.lock import SeedLock
from mannlab.training.rundir import create_run
from mannlab.training.trainer import Trainer
from mannlab.viz.report import ensure_eval


def tiny_yaml(tmp_path, **train) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(**train).model_dump(mode="json")))
    return path


def records(seed_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (seed_dir / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------- divergence
def test_a_diverging_run_stops_says_where_and_keeps_its_last_finite_checkpoint(tmp_path,
                                                                                capsys):
    run = tmp_path / "run"
    config = tiny_yaml(tmp_path, learning_rate=1e9, max_steps=200, checkpoint_every=10,
                       log_every=10, eval_every=100)
    assert main(["train", str(config), "--run-dir", str(run), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "diverged at step" in captured.out and "every seed diverged" in captured.err
    summary = json.loads((run / "seed-3/summary.json").read_text())
    step = summary["diverged"]["step"]
    assert 1 <= step <= 20 and summary["steps"] < 200 and summary["converged"] is None
    assert next(r for r in records(run / "seed-3") if r["split"] == "diverged")["step"] == step
    checkpoint = run / "seed-3/checkpoint.safetensors"
    if checkpoint.exists():  # one written before the loss stopped being finite: kept, finite
        config = tiny_config(learning_rate=1e9)
        load_models(config, config.task.build(), [run / "seed-3"])
        assert checkpoint_stamp(run / "seed-3")["step"] < step


def test_eval_refuses_non_finite_parameters(tmp_path, capsys):
    run = tmp_path / "run"
    config = tiny_config(max_steps=10, checkpoint_every=10)
    create_run(run, config, [3])
    Trainer(run, config, [3]).train()
    path = run / "seed-3/checkpoint.safetensors"
    trainer = Trainer(run, config, [3], resume=True)
    params, arrays, _ = trainer.learner.seed_state(0)
    trainer._close()
    _, _, state = load_checkpoint(path, params, arrays)
    poisoned = jax.tree.map(lambda x: np.full_like(np.asarray(x), np.nan), params)
    save_checkpoint(path, poisoned, arrays, state, trainer.config_json)
    assert main(["eval", str(run), "--lengths", "3", "--sequences", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(path) in err and "not all finite" in err and len(err.splitlines()) == 1


# ---------------------------------------------------------------- one trainer per seed
def test_a_second_trainer_of_a_seed_is_refused_with_the_holders_pid(tmp_path):
    run = tmp_path / "run"
    config = tiny_config(max_steps=10)
    create_run(run, config, [3])
    first = Trainer(run, config, [3])
    with pytest.raises(ConfigError, match=rf"seed-3: being trained by process {os.getpid()}"):
        Trainer(run, config, [3])
    first.train()  # releases the lock
    Trainer(run, tiny_config(max_steps=20), [3], resume=True).train()


def test_the_lock_names_another_process_and_dies_with_it(tmp_path):
    seed = tmp_path / "seed-0"
    seed.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time; from mannlab.training.lock import SeedLock; "
         f"SeedLock({str(seed)!r}); print('held', flush=True); time.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"being trained by process {holder.pid}"):
            SeedLock(seed)
    finally:
        holder.kill()
        holder.wait()
    SeedLock(seed).release()  # the kernel released the dead holder's lock


# ---------------------------------------------------------------- resume
def test_resume_of_a_seed_without_checkpoint_is_refused_and_erases_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_yaml(tmp_path, max_steps=10, checkpoint_every=20)),
                 "--run-dir", str(run), "--no-progress"]) == 0
    (run / "seed-3/checkpoint.safetensors").unlink()
    history = (run / "seed-3/metrics.jsonl").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "seed-3" in err and "checkpoint.safetensors" in err and "--restart" in err
    assert (run / "seed-3/metrics.jsonl").read_text() == history
    assert main(["train", "--resume", str(run), "--restart", "--no-progress"]) == 0


def test_tensorboard_is_rebuilt_from_the_records_when_its_events_are_lost(tmp_path):
    run = tmp_path / "run"
    create_run(run, tiny_config(max_steps=20), [3])
    Trainer(run, tiny_config(max_steps=20), [3]).train()
    for events in (run / "seed-3").glob("events.out.tfevents.*"):
        events.write_bytes(b"")  # as a kill before TensorBoard's first flush leaves them
    Trainer(run, tiny_config(max_steps=30), [3], resume=True).train()
    steps = sorted({e.step for e in event_records(run / "seed-3")
                    for v in e.summary.value if v.tag == "train/loss"})
    assert steps == [10, 20, 30]


def test_an_evaluation_of_an_older_checkpoint_is_recomputed_by_the_report(tmp_path):
    run = tmp_path / "run"
    create_run(run, tiny_config(max_steps=20), [3])
    Trainer(run, tiny_config(max_steps=20), [3]).train()
    assert main(["eval", str(run), "--lengths", "3", "--sequences", "4"]) == 0
    saved = json.loads((run / "seed-3/eval.json").read_text())
    assert saved["checkpoint"]["step"] == 20 and len(saved["checkpoint"]["config_sha256"]) == 64
    Trainer(run, tiny_config(max_steps=40), [3], resume=True).train()
    ensure_eval(tiny_config(max_steps=40), [run / "seed-3"], [3], 4, log=lambda *_: None)
    assert json.loads((run / "seed-3/eval.json").read_text())["checkpoint"]["step"] == 40


# ---------------------------------------------------------------- signals and processes
def start(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mannlab", *argv], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def has_records(seed_dir: Path) -> bool:
    path = seed_dir / "metrics.jsonl"
    return path.exists() and path.stat().st_size > 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not yet reaped) has exited
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_every_seed_and_says_how_to_resume(tmp_path, signum, code):
    run = tmp_path / "run"
    config = tiny_yaml(tmp_path, max_steps=10**6, checkpoint_every=10**5, log_every=10,
                       eval_every=10**5)
    proc = start(["train", str(config), "--run-dir", str(run), "--no-progress"], tmp_path)
    wait_for(lambda: has_records(run / "seed-3"))
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert f"continue with mannlab train --resume {run}" in err
    assert "Traceback" not in err
    step = checkpoint_stamp(run / "seed-3")["step"]
    assert step >= 10
    assert main(["train", "--resume", str(run), f"train.max_steps={step + 10}",
                 "--no-progress"]) == 0
    assert json.loads((run / "seed-3/summary.json").read_text())["steps"] == step + 10


def start_two_seed_processes(tmp_path) -> tuple[subprocess.Popen, Path]:
    """A long two-seed run in worker processes, once both seeds are training."""
    run = tmp_path / "run"
    config = tiny_yaml(tmp_path, max_steps=10**6, checkpoint_every=10**5, log_every=10,
                       eval_every=10**5)
    proc = start(["train", str(config), "--seeds", "2", "--execution", "processes",
                  "--run-dir", str(run), "--no-progress"], tmp_path)
    wait_for(lambda: has_records(run / "seed-3") and has_records(run / "seed-4"))
    return proc, run


@pytest.mark.slow
def test_seed_processes_stop_and_save_on_sigterm_to_their_parent(tmp_path):
    proc, run = start_two_seed_processes(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    for seed in ("seed-3", "seed-4"):
        assert checkpoint_stamp(run / seed)["step"] >= 10


@pytest.mark.slow
def test_seed_processes_exit_when_their_parent_is_killed(tmp_path):
    proc, run = start_two_seed_processes(tmp_path)
    workers = [int((run / seed / ".lock").read_text()) for seed in ("seed-3", "seed-4")]
    assert proc.pid not in workers
    proc.kill()
    proc.wait()
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=60)


def test_a_model_too_large_for_memory_is_refused_before_anything_is_written(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_yaml(tmp_path)), "model.memory_size=10000000",
                 "model.memory_width=64", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "GiB" in err and "model.memory_size=10000000" in err and len(err.splitlines()) == 1
    assert not run.exists()


def test_temporaries_of_interrupted_checkpoint_writes_are_removed_on_resume(tmp_path):
    run = tmp_path / "run"
    create_run(run, tiny_config(max_steps=10), [3])
    Trainer(run, tiny_config(max_steps=10), [3]).train()
    stale = run / "seed-3" / ".ckpt-0123456789abcdef0123456789abcdef.tmp"
    stale.write_bytes(b"half a checkpoint")
    Trainer(run, tiny_config(max_steps=20), [3], resume=True).train()
    assert not stale.exists()


def test_a_step_budget_below_where_the_run_is_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_yaml(tmp_path, max_steps=20)), "--run-dir", str(run),
                 "--no-progress"]) == 0
    config_text = (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "train.max_steps=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "train.max_steps=5" in err and "step 20" in err and len(err.splitlines()) == 1
    assert (run / "config.yaml").read_text() == config_text


def test_the_final_evaluation_is_not_repeated_at_a_step_just_evaluated(tmp_path):
    """A budget that ends on an evaluation step gets one held-out record there,
    and one that ends between evaluations gets a final one on the whole set."""
    run = tmp_path / "run"
    create_run(run, tiny_config(max_steps=40, eval_every=20), [3])
    Trainer(run, tiny_config(max_steps=40, eval_every=20), [3]).train()
    steps = [r["step"] for r in records(run / "seed-3") if r["split"] == "heldout"]
    assert steps == [20, 40]
    Trainer(run, tiny_config(max_steps=50, eval_every=20), [3], resume=True).train()
    steps = [r["step"] for r in records(run / "seed-3") if r["split"] == "heldout"]
    assert steps == [20, 40, 50]


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    import errno
    import threading

    from mannlab.training import checkpoint

    run = tmp_path / "run"
    assert main(["train", str(tiny_yaml(tmp_path, max_steps=20)), "--run-dir", str(run),
                 "--no-progress"]) == 0
    before = (run / "seed-3/checkpoint.safetensors").read_bytes()

    real_fsync = checkpoint.os.fsync

    def full(fd):
        if threading.current_thread() is not threading.main_thread():
            return real_fsync(fd)  # TensorBoard's writer thread: the test is about our files
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", full)  # every fsync: os is one module
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "train.max_steps=40", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()  # the first file it writes is config.yaml
    assert "config.yaml: cannot write (No space left on device)" in err
    assert len(err.splitlines()) == 1
    with pytest.raises(CheckpointError, match=r"checkpoint.safetensors: cannot write \(No space"):
        Trainer(run, tiny_config(max_steps=40), [3], resume=True).train()
    assert (run / "seed-3/checkpoint.safetensors").read_bytes() == before
    assert not list((run / "seed-3").glob(".ckpt-*.tmp"))
    monkeypatch.undo()
    assert main(["show", str(run), "--length", "3", "-o", str(tmp_path / "no/such/dir.png")]) == 2
    assert "dir.png: cannot write" in capsys.readouterr().err
