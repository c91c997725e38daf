"""Run directories and checkpoints under faults: full disks, stray entries,
damaged files. Each error is one line naming the file and the value."""

import errno
import json
import os
import shutil

import pytest
import yaml

from helpers import tiny_config
from mannlab.cli import main
from mannlab.config import ConfigError
from mannlab.training import files, rundir
from mannlab.training.files import RunFileError, write_text_atomic
from mannlab.training.rundir import create_run, extend_budget, open_run, write_seed_results

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
