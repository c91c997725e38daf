"""The trained models shipped in the package: present, small, usable from
any directory with no training, and still as good as when they were made."""

import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import mannlab
import mannlab.pretrained
from mannlab.config import ConfigError
from mannlab.tasks.base import Batch
from mannlab.training import rundir
from mannlab.training.evaluate import heldout_metrics

SHIPPED = ["dnc-copy", "dnc-repeat-copy", "lstm-copy", "ntm-associative-recall", "ntm-copy",
           "ntm-repeat-copy"]


def files_of(path):
    return sorted((p.relative_to(path), p.stat().st_mtime_ns) for p in path.rglob("*"))


def test_every_model_ships_small_with_its_record():
    assert mannlab.pretrained.names() == SHIPPED
    for name in SHIPPED:
        about = mannlab.pretrained.info(name)
        assert about["name"] == name and about["command"].startswith("mannlab train ")
        assert about["heldout_sequences"] == 1000
        (checkpoint,) = rundir.pretrained_dir(name).glob("seed-*/checkpoint.safetensors")
        if not name.startswith("lstm"):
            assert about["threshold"] == 0.01 and about["heldout_bits_wrong"] < 0.01
            assert checkpoint.stat().st_size < 1_000_000, name
        assert (checkpoint.parent / "eval.json").is_file()


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match=r"pretrained:ntm-cpy: no such pretrained model "
                                          r"\(shipped: dnc-copy, .*ntm-copy"):
        mannlab.pretrained.load("ntm-cpy")


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_each_model_still_meets_its_recorded_figure(name):
    """A code change that silently breaks a shipped model fails here."""
    about = mannlab.pretrained.info(name)
    _, config, seeds = rundir.open_run(rundir.PRETRAINED + name)
    (metrics,) = heldout_metrics(config, seeds, about["heldout_sequences"]).values()
    if about["threshold"] is not None:
        assert metrics["bits_wrong"] < about["threshold"]
    else:  # the LSTM ships at the figure it reached
        assert metrics["bits_wrong"] <= about["heldout_bits_wrong"] * 1.05 + 1e-3


def test_the_python_api_loads_a_model_that_copies():
    model = mannlab.pretrained.load("ntm-copy")
    _, config, _ = rundir.open_run("pretrained:ntm-copy")
    batch = config.task.build().sample(np.random.default_rng(5), 4, length=12)
    batch = Batch(*(jnp.asarray(a) for a in batch))
    ys, _ = model(batch.inputs, model.init_state(4), batch.step_mask)
    wrong = ((np.asarray(ys) > 0) != (np.asarray(batch.targets) > 0.5)) * np.asarray(
        batch.loss_mask)[..., None]
    assert wrong.sum() == 0


@pytest.mark.slow
def test_the_cli_uses_pretrained_models_from_any_directory_and_writes_nothing_there(tmp_path):
    package = rundir.pretrained_root()
    before = files_of(package)
    run = [sys.executable, "-m", "mannlab"]
    out = subprocess.run([*run, "eval", "pretrained:ntm-copy", "--lengths", "20", "50",
                          "--sequences", "50"], cwd=tmp_path, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "seed-0" in out.stdout and "50" in out.stdout
    out = subprocess.run([*run, "show", "pretrained:dnc-repeat-copy", "--length", "8", "-o",
                          "x.png"], cwd=tmp_path, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = subprocess.run([*run, "pretrained"], cwd=tmp_path, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0 and all(name in out.stdout for name in SHIPPED)
    assert files_of(package) == before


def test_evaluating_a_pretrained_model_returns_without_saving():
    package = rundir.pretrained_dir("ntm-repeat-copy")
    before = files_of(package)
    result = mannlab.evaluate("pretrained:ntm-repeat-copy", lengths=[2], sequences=20)
    assert result["seeds"]["seed-0"]["2"]["bits_wrong"] < 1
    assert files_of(package) == before
    assert json.loads((package / "seed-0/eval.json").read_text())["lengths"]
