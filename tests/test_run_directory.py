"""Run directories and checkpoints under faults: full disks, stray entries,
damaged files. Each error is one line naming the file and the value."""

import errno
import json
import os
import shutil

import numpy as np
import pytest
import yaml
from safetensors import safe_open
from safetensors.numpy import load_file, save

from helpers import tiny_config
from mannlab.cli import main
from mannlab.config import ConfigError, parse_config
from mannlab.training import files, rundir
from mannlab.training.checkpoint import (
    CheckpointError,
    check_config,
    check_state,
    load_checkpoint,
    remove_stale_temporaries,
)
from mannlab.training.files import RunFileError, write_text_atomic
from mannlab.training.rundir import (
    CHECKPOINT_FILE,
    create_run,
    extend_budget,
    open_run,
    write_seed_results,
)

TINY = ["train.max_steps=20", "train.eval_every=10", "train.log_every=10",
        "train.checkpoint_every=10", "train.log_images=false"]


def _one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# ---------------------------------------------------------------- atomic writes
def test_write_text_atomic_writes_and_replaces(tmp_path):
    path = tmp_path / "a.txt"
    write_text_atomic(path, "one\n")
    write_text_atomic(path, "two\n")
    assert path.read_text() == "two\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_write_text_atomic_full_disk_keeps_the_old_file(tmp_path, monkeypatch, where):
    path = tmp_path / "seeds.json"
    path.write_text("[]\n")
    monkeypatch.setattr(files.os, where, _disk_full)
    with pytest.raises(RunFileError) as err:
        write_text_atomic(path, "[{\"seed\": 0}]\n")
    message = _one_line(err)
    assert message == f"{path}: cannot write (No space left on device)"
    assert isinstance(err.value, ConfigError)
    assert path.read_text() == "[]\n"
    assert [p.name for p in tmp_path.iterdir()] == ["seeds.json"]


def test_write_text_atomic_temporaries_are_recognised_as_stale(tmp_path, monkeypatch):
    names = []
    real = os.replace
    monkeypatch.setattr(files.os, "replace", lambda a, b: (names.append(a.name), real(a, b)))
    write_text_atomic(tmp_path / "config.yaml", "x")
    assert len(names) == 1 and files.TEMPORARY.fullmatch(names[0])


def test_write_text_atomic_into_a_missing_directory(tmp_path):
    path = tmp_path / "gone" / "config.yaml"
    with pytest.raises(RunFileError) as err:
        write_text_atomic(path, "x")
    assert _one_line(err) == f"{path}: cannot write (No such file or directory)"


def test_a_full_disk_never_leaves_an_empty_run_file(tmp_path, monkeypatch):
    run = tmp_path / "run"
    create_run(run, tiny_config(), [3])
    write_seed_results(run, [{"seed": 3, "steps": 10}])
    config, seeds = (run / "config.yaml").read_text(), (run / "seeds.json").read_text()
    monkeypatch.setattr(files.os, "replace", _disk_full)
    with pytest.raises(RunFileError, match=rf"^{run / 'seeds.json'}: cannot write \(No space"):
        write_seed_results(run, [{"seed": 3, "steps": 20}])
    with pytest.raises(RunFileError, match=rf"^{run / 'config.yaml'}: cannot write \(No space"):
        extend_budget(run, ["train.max_steps=80"])
    assert (run / "config.yaml").read_text() == config
    assert (run / "seeds.json").read_text() == seeds
    with pytest.raises(RunFileError, match=rf"^{tmp_path / 'new' / 'config.yaml'}: cannot"):
        create_run(tmp_path / "new", tiny_config(), [3, 4])
    assert not (tmp_path / "new").exists()  # no half-made run directory


def test_a_run_directory_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError) as err:
        create_run(tmp_path / "file" / "run", tiny_config(), [0])
    assert _one_line(err) == f"--run-dir: cannot create {tmp_path / 'file' / 'run'} (Not a directory)"


def test_seeds_past_the_limit(tmp_path):
    with pytest.raises(ConfigError) as err:
        create_run(tmp_path / "run", tiny_config(), [2**31 - 1, 2**31])
    assert _one_line(err).startswith("seeds: seed 2147483648 is outside 0 to 2147483647")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- damaged run directories
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run of seed 3, trained once; tests damage copies of it."""
    root = tmp_path_factory.mktemp("trained")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config().model_dump(mode="json")))
    assert main(["train", str(config), *TINY, "--run-dir", str(root / "run"),
                 "--no-progress"]) == 0
    return root / "run"


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def test_stray_seed_entries_are_not_seeds(run, capsys):
    (run / "seed-old").mkdir()
    (run / "seed-07").mkdir()
    (run / "seed-0.bak").write_text("")
    (run / "seed-5").write_text("a file, not a directory")
    assert open_run(run)[2] == [run / "seed-3"]
    assert main(["eval", str(run), "--lengths", "2", "--sequences", "4"]) == 0
    assert main(["train", "--resume", str(run), "train.max_steps=30", "--no-progress"]) == 0
    assert json.loads((run / "seeds.json").read_text())[0]["steps"] == 30
    with pytest.raises(ConfigError) as err:
        open_run(run / "seed-old")
    assert _one_line(err) == (f"{run / 'seed-old'}: not a seed directory of {run} (a seed's "
                              "directory is seed-<number>)")
    with pytest.raises(ConfigError, match="seed-0.bak: not a mannlab run directory"):
        open_run(run / "seed-0.bak")


@pytest.mark.parametrize("content, problem", [
    ("", "not JSON (Expecting value: line 1 column 1 (char 0))"),
    ("[{\"seed\": 3,", ("not JSON (Expecting property name enclosed in double quotes: line 1 "
                       "column 13 (char 12))")),
    ("{\"seed\": 3}", "expected a list of seed results, got dict"),
    ("[3]", "result 0 has no integer seed (got 3)"),
    ("[{\"seed\": 3}, {\"seed\": \"4\"}]", "result 1 has no integer seed (got {\"seed\": \"4\"})"),
    ("[{\"seed\": true}]", "result 0 has no integer seed (got {\"seed\": true})"),
    (b"[\xff]", "not UTF-8 text (byte 0xff at offset 1)"),
    (b"\xef\xbb\xbf[]", ("not JSON (Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 "
                        "(char 0))")),
])
def test_a_damaged_seeds_json_is_refused_when_the_run_is_opened(run, capsys, content, problem):
    path = run / "seeds.json"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    metrics = (run / "seed-3" / "metrics.jsonl").read_text()
    for target in (run, run / "seed-3"):
        with pytest.raises(ConfigError) as err:
            open_run(target)
        assert _one_line(err) == f"{path}: {problem}"
    assert main(["train", "--resume", str(run), "train.max_steps=30", "--no-progress"]) == 2
    assert capsys.readouterr().err == f"mannlab: error: {path}: {problem}\n"
    assert (run / "seed-3" / "metrics.jsonl").read_text() == metrics  # nothing trained


@pytest.mark.parametrize("damage, problem", [
    (lambda run: (run / "config.yaml").write_text(""), "empty config"),
    (lambda run: (run / "config.yaml").write_bytes(b"\xfe"), "not UTF-8 text (byte 0xfe on line 1)"),
    (lambda run: ((run / "config.yaml").unlink(), (run / "config.yaml").mkdir()),
     "is a directory, not a config file"),
])
def test_a_damaged_config_yaml(run, damage, problem):
    damage(run)
    with pytest.raises(ConfigError) as err:
        open_run(run)
    assert _one_line(err).startswith(f"{run / 'config.yaml'}: {problem}")


def test_a_run_directory_that_is_a_file_or_has_no_seeds(tmp_path):
    (tmp_path / "run.txt").write_text("")
    with pytest.raises(ConfigError) as err:
        open_run(tmp_path / "run.txt")
    assert _one_line(err) == f"{tmp_path / 'run.txt'}: not a mannlab run directory (a file, " \
        "not a directory)"
    create_run(tmp_path / "run", tiny_config(), [])
    (tmp_path / "run" / "seed-x").mkdir()
    with pytest.raises(ConfigError) as err:
        open_run(tmp_path / "run")
    assert _one_line(err) == f"{tmp_path / 'run'}: run directory has no seed-<number> " \
        "subdirectories"


def test_seed_of_refuses_what_is_not_a_seed_directory(tmp_path):
    assert rundir.seed_of(tmp_path / "seed-12") == 12
    with pytest.raises(ConfigError, match=r"seed-old: not a seed directory"):
        rundir.seed_of(tmp_path / "seed-old")


# ---------------------------------------------------------------- checkpoints
def _rewrite_metadata(path, **changes):
    """Rewrite a checkpoint with some metadata entries changed (None: removed)."""
    with safe_open(str(path), framework="np") as f:
        meta = dict(f.metadata())
    meta.update(changes)
    tensors = load_file(str(path))
    path.write_bytes(save(tensors, metadata={k: v for k, v in meta.items() if v is not None}))


def _state(path) -> dict:
    with safe_open(str(path), framework="np") as f:
        return json.loads(f.metadata()["state"])


MT19937 = np.random.Generator(np.random.MT19937(0)).bit_generator.state
MT19937["state"]["key"] = MT19937["state"]["key"].tolist()


@pytest.mark.parametrize("change, problem", [
    ("{}", "its training state has no 'step': not a checkpoint this version of mannlab wrote"),
    ("[]", "its training state is a list, expected an object"),
    ("{\"step\":", ("corrupt checkpoint (its training state is not JSON: Expecting value: "
                   "line 1 column 9 (char 8))")),
    (None, "corrupt checkpoint (no training state in its metadata)"),
    (lambda s: {**s, "rng": MT19937},
     "its training state's rng is {\"bit_generator\": \"MT19937\", \"state\": {\"key\": ["),
    (lambda s: {**s, "rng": {}}, ("its training state's rng is {}, expected numpy's PCG64 "
                                 "generator state")),
    (lambda s: {**s, "step": "10"}, ("its training state's step is \"10\", expected a whole "
                                    "number >= 0")),
    (lambda s: {**s, "step": -1}, ("its training state's step is -1, expected a whole number "
                                  ">= 0")),
    (lambda s: {**s, "seconds": None}, ("its training state's seconds is null, expected a "
                                       "finite number >= 0")),
    (lambda s: {**s, "windows": {"loss": ["x"]}}, ("its training state's windows is {\"loss\": "
                                                  "[\"x\"]}, expected an object of lists of "
                                                  "numbers")),
    (lambda s: {**s, "converged": 1}, ("its training state's converged is 1, expected an "
                                      "object or null")),
    (lambda s: {k: v for k, v in s.items() if k != "last_eval"},
     "its training state has no 'last_eval'"),
    (lambda s: {**s, "mann_rl": {"cycle": 1}}, ("its training state has no "
                                               "'mann_rl.memory_updates'")),
])
def test_a_damaged_training_state_is_one_line_naming_the_checkpoint(run, capsys, change,
                                                                       problem):
    path = run / "seed-3" / CHECKPOINT_FILE
    if callable(change):
        change = json.dumps(change(_state(path)))
    _rewrite_metadata(path, state=change)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, None, None, open_run(run)[1])
    assert _one_line(err).startswith(f"{path}: {problem}")
    assert main(["train", "--resume", str(run), "train.max_steps=30", "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith(f"mannlab: error: {path}: {problem}")


def test_the_training_state_as_saved_passes(run):
    path = run / "seed-3" / CHECKPOINT_FILE
    check_state(path, _state(path))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, None, None, seed=4)
    assert _one_line(err) == f"{path}: the checkpoint is seed 3's, not seed 4's"


def test_a_checkpoint_of_another_kind_of_model_names_the_kinds(run, capsys):
    """Not model.controller='lstm' ... model.controller=None."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"] = {"name": "lstm", "hidden_size": 8, "layers": 1}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    path = run / "seed-3" / CHECKPOINT_FILE
    message = f"{path}: the checkpoint is of a ntm model, this run's model is lstm"
    assert main(["eval", str(run), "--lengths", "2", "--sequences", "4"]) == 2
    assert capsys.readouterr().err == f"mannlab: error: {message}\n"
    assert main(["train", "--resume", str(run), "train.max_steps=30", "--no-progress"]) == 2
    assert capsys.readouterr().err == f"mannlab: error: {message}\n"
    config["task"]["name"] = "repeat_copy"
    with pytest.raises(CheckpointError) as err:
        check_config(path, {"config": json.dumps(dict(tiny_config().model_dump(mode="json")))},
                     parse_config({**config, "model": tiny_config().model.model_dump()}))
    assert _one_line(err) == f"{path}: the checkpoint is of a copy task, this run's task is " \
        "repeat_copy"


def test_a_checkpoint_that_is_a_directory(run, capsys):
    path = run / "seed-3" / CHECKPOINT_FILE
    path.unlink()
    path.mkdir()
    assert main(["eval", str(run), "--lengths", "2", "--sequences", "4"]) == 2
    assert capsys.readouterr().err == f"mannlab: error: {path}: is a directory, not a checkpoint\n"


def test_stale_checkpoint_temporaries_are_removed(tmp_path):
    stale = [tmp_path / f".ckpt-{'a' * 32}.tmp", tmp_path / f".ckpt-{'0' * 32}.tmp",
             tmp_path / f".seeds.json.{'c' * 32}.tmp"]
    keep = [tmp_path / "checkpoint.safetensors", tmp_path / ".ckpt-notours.tmp",
            tmp_path / "metrics.jsonl", tmp_path / ".notes.tmp"]
    for p in stale + keep:
        p.write_text("x")
    (tmp_path / f".ckpt-{'b' * 32}.tmp").mkdir()  # not a file: not ours
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_a_checkpoint_without_its_config(run, capsys):
    path = run / "seed-3" / CHECKPOINT_FILE
    _rewrite_metadata(path, config=None)
    assert main(["eval", str(run), "--lengths", "2", "--sequences", "4"]) == 2
    assert capsys.readouterr().err == (f"mannlab: error: {path}: corrupt checkpoint (no config "
                                       "in its metadata)\n")
