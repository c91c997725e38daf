"""Trainer: vmapped seeds equal lone runs, checkpoints round-trip, resume is exact."""

import json

import equinox as eqx
import jax
import numpy as np
import pytest

from helpers import event_records, tiny_config
from mannlab.api import make_trainer
from mannlab.config import build_model, parse_config
from mannlab.tasks.base import pad_time
from mannlab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mannlab.training.rundir import create_run
from mannlab.training.step import sequence_loss, unstack_tree
from mannlab.training.trainer import Trainer


def train(tmp_path, name, seeds, **train_cfg):
    config = tiny_config(**train_cfg)
    run = tmp_path / name
    create_run(run, config, seeds)
    trainer = Trainer(run, config, seeds)
    trainer.train()
    return trainer


def assert_trees_close(a, b, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, atol=atol)


def test_vmapped_seeds_equal_separate_runs(tmp_path):
    together = train(tmp_path, "both", [3, 4])
    alone = train(tmp_path, "alone", [4])
    assert_trees_close(unstack_tree(together.learner.params(), 1), unstack_tree(alone.learner.params(), 0), 1e-5)
    a = json.loads((tmp_path / "both/seed-4/metrics.jsonl").read_text().splitlines()[0])
    b = json.loads((tmp_path / "alone/seed-4/metrics.jsonl").read_text().splitlines()[0])
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


@pytest.mark.parametrize("steps_per_call,first_stop", [(1, 20), (5, 20), (5, 23)])
def test_resume_continues_the_same_run_exactly(tmp_path, steps_per_call, first_stop):
    """Also when the first part stops inside a chunk of steps (23 with 5 per call)."""
    straight = train(tmp_path, "straight", [3], max_steps=40, steps_per_call=steps_per_call)
    run = tmp_path / "split"
    config = tiny_config(max_steps=first_stop, steps_per_call=steps_per_call)
    create_run(run, config, [3])
    Trainer(run, config, [3]).train()
    resumed = Trainer(run, tiny_config(max_steps=40, steps_per_call=steps_per_call), [3],
                      resume=True)
    assert resumed.seeds[0].step == first_stop
    resumed.train()
    assert resumed.seeds[0].step == 40
    np.testing.assert_array_equal(  # bitwise: same program, same data, same state
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(resumed.learner.params())]),
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(straight.learner.params())]))


def test_time_budget_stops_training(tmp_path):
    """On a clock that advances one second per reading, a 30 s budget stops
    training long before its step budget, whatever the machine's speed."""
    config = tiny_config(max_steps=10**7, max_seconds=30, log_every=1, eval_every=10**6,
                         checkpoint_every=10**6)
    create_run(tmp_path / "run", config, [3])
    trainer = Trainer(tmp_path / "run", config, [3])
    readings = iter(range(10**6))
    trainer.clock = lambda: float(next(readings))
    (result,) = trainer.train()
    assert 30 <= result.seconds < 40 and 5 <= result.steps < 40


def test_time_budget_counts_seeds_still_training(tmp_path):
    """A converged seed's clock stops; the budget is the others' time."""
    config = tiny_config(max_seconds=100)
    create_run(tmp_path / "run", config, [3, 4])
    trainer = Trainer(tmp_path / "run", config, [3, 4])
    first, second = trainer.seeds
    first.converged, first.seconds = {"step": 10, "seconds": 10.0, "sequences": 10}, 10.0
    second.seconds = 99.0
    assert not trainer._out_of_budget()
    second.seconds = 100.0
    assert trainer._out_of_budget()


def bucketed_config(**train):
    """Copy with lengths 1-6 in 3 buckets, so the batches of a call differ in length."""
    base = tiny_config(**train)
    return base.model_copy(update={"task": parse_config(
        {"task": {"name": "copy", "bits": 4, "min_length": 1, "max_length": 6,
                  "length_buckets": 3}, "model": {"name": "lstm"}}).task})


def test_steps_per_call_trains_as_one_step_per_call(tmp_path):
    """K steps per compiled call (a lax.scan over steps) sees the same data and
    reaches the same parameters and logged metrics as one step per call, with
    batches of different lengths in one call and a budget (37) that ends
    inside a call."""
    runs = {}
    for k in (1, 5):
        config = bucketed_config(max_steps=37, steps_per_call=k, batch_size=2)
        create_run(tmp_path / f"k{k}", config, [3, 4])
        trainer = Trainer(tmp_path / f"k{k}", config, [3, 4])
        results = trainer.train()
        assert [r.steps for r in results] == [37, 37]
        runs[k] = trainer
    assert_trees_close(runs[5].learner.params(), runs[1].learner.params(), 1e-5)
    for seed in (3, 4):
        logs = [[json.loads(line) for line in (tmp_path / f"k{k}/seed-{seed}/metrics.jsonl")
                 .read_text().splitlines()] for k in (1, 5)]
        assert [r["step"] for r in logs[0]] == [r["step"] for r in logs[1]]
        for a, b in zip(*logs):
            assert a.get("loss", a.get("bits_wrong")) == pytest.approx(
                b.get("loss", b.get("bits_wrong")), rel=1e-4, abs=1e-6)


def test_run_directory_contents(tmp_path):
    train(tmp_path, "run", [3])
    seed = tmp_path / "run/seed-3"
    assert (tmp_path / "run/config.yaml").exists()
    assert "total" in (tmp_path / "run/model.txt").read_text()
    records = [json.loads(line) for line in (seed / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in records} == {"train", "heldout"}
    assert {"bits_wrong_window", "cost_window", "grad_norm", "seq_per_s"} <= records[0].keys()
    assert list(seed.glob("events.out.tfevents.*"))
    summary = json.loads((seed / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["converged"] is None


def test_checkpoint_round_trip_and_atomic_write(tmp_path, monkeypatch):
    import os

    from mannlab.training import checkpoint

    trainer = train(tmp_path, "run", [3], max_steps=10)
    params, opt, _ = trainer.learner.seed_state(0)
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, params, opt, {"step": 7}, "{}")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ckpt-")] == []
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    p2, o2, state = load_checkpoint(path, params, opt)
    assert state == {"step": 7}
    assert_trees_close(p2, params, 0)
    assert_trees_close(o2, opt, 0)

    def fail(fd):  # a crash while the new file is being written
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.os, "fsync", fail)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, params, opt, {"step": 8}, "{}")
    assert load_checkpoint(path, params, opt)[2] == {"step": 7}  # the old one, intact
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ckpt-")] == []


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    """Same shapes, other maths (the learning rate; the memory's initialisation):
    resuming or evaluating it would silently mix two runs."""
    from mannlab.training.evaluate import load_models

    config = tiny_config(max_steps=10)
    create_run(tmp_path / "run", config, [3])
    Trainer(tmp_path / "run", config, [3]).train()
    with pytest.raises(CheckpointError, match="train.learning_rate=0.0001.*0.5"):
        Trainer(tmp_path / "run", tiny_config(max_steps=20, learning_rate=0.5), [3], resume=True)
    other = config.model_copy(update={"model": config.model.model_copy(
        update={"memory_init": "random"})})
    with pytest.raises(CheckpointError, match="model.memory_init='constant'"):
        load_models(other, other.task.build(), [tmp_path / "run/seed-3"])


def test_resume_drops_records_logged_after_the_checkpoint(tmp_path):
    """What a run logged after its last checkpoint is logged again on resume,
    so it is dropped first: each step appears once."""
    run = tmp_path / "run"
    config = tiny_config(max_steps=20)
    create_run(run, config, [3])
    Trainer(run, config, [3]).train()
    metrics = run / "seed-3/metrics.jsonl"
    with open(metrics, "a") as f:  # logged at step 30 by a run that then crashed
        f.write(json.dumps({"split": "train", "step": 30, "loss": -1.0}) + "\n")
    Trainer(run, tiny_config(max_steps=40), [3], resume=True).train()
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["split"] == "train"]
    assert train_steps == [10, 20, 30, 40]
    assert all(r["loss"] > 0 for r in records if r["split"] == "train")


def tensorboard_steps(seed_dir, tag: str) -> list[int]:
    """Steps of `tag` in a seed's event files as TensorBoard shows them: a
    session restart at step s (a writer's purge_step) hides earlier events at
    steps >= s."""
    steps = []
    for event in event_records(seed_dir):
        if event.HasField("session_log") and event.session_log.status == 1:  # START
            steps = [s for s in steps if s < event.step]
        steps += [event.step for v in event.summary.value if v.tag == tag]
    return steps


def test_resume_after_a_crash_logs_each_step_once(tmp_path):
    """A run that logged step 30 and stopped before checkpointing it resumes
    from step 20: metrics.jsonl and TensorBoard show steps 10-40 once each, and
    a line the crash left half-written is dropped."""
    run, ckpt = tmp_path / "run", tmp_path / "run/seed-3/checkpoint.safetensors"
    create_run(run, tiny_config(max_steps=20), [3])
    Trainer(run, tiny_config(max_steps=20), [3]).train()
    at_20 = ckpt.read_bytes()
    Trainer(run, tiny_config(max_steps=30), [3], resume=True).train()  # logs step 30 ...
    ckpt.write_bytes(at_20)  # ... but its checkpoint never reached the disk
    with open(run / "seed-3/metrics.jsonl", "a") as f:
        f.write('{"split": "train", "st')
    Trainer(run, tiny_config(max_steps=40), [3], resume=True).train()
    records = [json.loads(line) for line in (run / "seed-3/metrics.jsonl").read_text()
               .splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [10, 20, 30, 40]
    assert tensorboard_steps(run / "seed-3", "train/loss") == [10, 20, 30, 40]


def test_a_seed_restarted_without_checkpoint_drops_what_it_logged(tmp_path):
    """A seed stopped before its first checkpoint is not resumed (nor its
    records erased) unless asked to restart; then it starts again from step 0
    and its old records go."""
    run = tmp_path / "run"
    create_run(run, tiny_config(max_steps=20), [3])
    Trainer(run, tiny_config(max_steps=20), [3]).train()
    (run / "seed-3/checkpoint.safetensors").unlink()
    history = (run / "seed-3/metrics.jsonl").read_text()
    with pytest.raises(CheckpointError, match=r"seed-3: no checkpoint.safetensors.*--restart"):
        Trainer(run, tiny_config(max_steps=20), [3], resume=True)
    assert (run / "seed-3/metrics.jsonl").read_text() == history  # nothing erased
    Trainer(run, tiny_config(max_steps=20), [3], resume=True, restart=True).train()
    records = [json.loads(line) for line in (run / "seed-3/metrics.jsonl").read_text()
               .splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [10, 20]
    assert tensorboard_steps(run / "seed-3", "train/loss") == [10, 20]


def test_a_seed_without_checkpoint_among_seeds_with_one_is_a_clear_error(tmp_path):
    config = tiny_config(max_steps=10)
    create_run(tmp_path / "run", config, [3, 4])
    Trainer(tmp_path / "run", config, [3, 4]).train()
    (tmp_path / "run/seed-4/checkpoint.safetensors").unlink()
    with pytest.raises(CheckpointError, match="seed-4 have no checkpoint"):
        Trainer(tmp_path / "run", config, [3, 4], resume=True, restart=True)


def test_corrupt_foreign_and_mismatched_checkpoints_fail_clearly(tmp_path):
    from safetensors.numpy import load_file, save_file

    from mannlab.training.checkpoint import read_metadata

    trainer = train(tmp_path, "run", [3], max_steps=10)
    params, opt, _ = trainer.learner.seed_state(0)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(corrupt, params, opt)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(foreign), metadata={"format": "other"})
    with pytest.raises(CheckpointError, match="not a mannlab checkpoint"):
        load_checkpoint(foreign, params, opt)
    ours = load_file(str(tmp_path / "run/seed-3/checkpoint.safetensors"))
    meta = read_metadata(tmp_path / "run/seed-3/checkpoint.safetensors")
    for version, message in ((2, ("version 2 is newer than this mannlab reads \\(1\\): "
                                  "upgrade mannlab")),
                             (0, "version 0 is older than this mannlab reads \\(1\\)")):
        versioned = tmp_path / f"v{version}.safetensors"
        save_file(ours, str(versioned), metadata={**meta,
                                                  "format": f"mannlab-checkpoint/{version}"})
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(versioned, params, opt)
    other = tiny_config().model_copy(update={"model": tiny_config().model.model_copy(
        update={"memory_size": 9})})
    create_run(tmp_path / "other", other, [3])
    Trainer(tmp_path / "other", other, [3]).save()
    with pytest.raises(CheckpointError, match=r"params/\d+ is float32\[9, 4\].*needs"):
        load_checkpoint(tmp_path / "other/seed-3/checkpoint.safetensors", params, opt)
    renamed = tmp_path / "renamed.safetensors"
    tensors = {k.replace("params/0000", "params/x"): v for k, v in
               load_file(str(tmp_path / "run/seed-3/checkpoint.safetensors")).items()}
    save_file(tensors, str(renamed), metadata=read_metadata(
        tmp_path / "run/seed-3/checkpoint.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected tensor name 'params/x'"):
        load_checkpoint(renamed, params, opt)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes((tmp_path / "run/seed-3/checkpoint.safetensors").read_bytes()[:-100])
    with pytest.raises(CheckpointError):
        load_checkpoint(truncated, params, opt)


def parse_model(model: dict):
    return parse_config({"task": {"name": "copy"}, "model": model}).model


def test_dnc_trains_with_tensorboard_images(tmp_path):
    """Regression: the DNC's optional link trace (None) must not break image logging."""
    config = tiny_config().model_copy(update={"model": parse_model(
        {"name": "dnc", "controller_size": 16, "memory_size": 8, "memory_width": 4,
         "read_heads": 2})})
    create_run(tmp_path / "run", config, [3])
    (result,) = make_trainer(tmp_path / "run", config, [3]).train()  # with the image hook
    assert result.steps == 40
    events = list((tmp_path / "run/seed-3").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 10_000  # scalars and images


def test_loss_ignores_trailing_padding():
    """The training loss runs without the padding mask: padding follows a
    sequence's end, so it must not change the loss, metrics or gradients."""
    config = tiny_config()
    task = config.task.build()
    params, static = eqx.partition(build_model(config, task, 0), eqx.is_array)
    batch = task.sample(np.random.default_rng(0), 3)
    padded = pad_time(batch, batch.inputs.shape[0] + 7)

    def loss(p, b):
        return sequence_loss(p, static, task, jax.tree.map(jax.numpy.asarray, b))

    (l1, m1), g1 = jax.value_and_grad(loss, has_aux=True)(params, batch)
    (l2, m2), g2 = jax.value_and_grad(loss, has_aux=True)(params, padded)
    np.testing.assert_allclose(l1, l2, rtol=1e-6)
    assert_trees_close(m1, m2, atol=1e-5)
    assert_trees_close(g1, g2, atol=1e-5)


@pytest.mark.parametrize("converge_at,expected", [(0.001, 100), (1e6, 300), (None, 300)])
def test_evaluation_stops_once_no_seed_can_converge(tmp_path, converge_at, expected):
    """An untrained model gets bits wrong on every sequence: with a tight
    threshold the first 100 of 300 held-out sequences already rule
    convergence out, so the rest is skipped; the decision matches the full
    set's. With a threshold every seed could meet, or none, all are used."""
    config = tiny_config(eval_size=300, converge_at=converge_at)
    create_run(tmp_path / "run", config, [3, 4])
    trainer = Trainer(tmp_path / "run", config, [3, 4])
    means, sequences = trainer.evaluate()
    full, all_sequences = trainer.evaluate(complete=True)
    assert (sequences, all_sequences) == (expected, 300)
    if converge_at is not None:
        assert np.all(full[:, 0] >= converge_at) == np.all(means[:, 0] >= converge_at)
    if expected == 300:
        np.testing.assert_allclose(means, full)


def test_heldout_calls_cover_the_tasks_fixed_set(tmp_path):
    """Cutting the held-out set into calls changes neither its sequences nor their order."""
    config = tiny_config(eval_size=250)
    create_run(tmp_path / "run", config, [3])
    trainer = Trainer(tmp_path / "run", config, [3])
    expected = trainer.task.heldout(250)
    got = trainer.heldout()
    assert [b.inputs.shape[1] for b in got] == [100, 100, 50]
    for field in range(4):
        np.testing.assert_array_equal(np.concatenate([np.asarray(b[field]) for b in got], 1),
                                      np.concatenate([b[field] for b in expected], 1))
