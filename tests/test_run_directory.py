"""Run directories and checkpoints under faults: full disks, stray entries,
damaged files. Each error is one line naming the file and the value."""

import errno
import os

import pytest

from mannlab.config import ConfigError
from mannlab.training import files
from mannlab.training.files import RunFileError, write_text_atomic


def test_write_text_atomic_writes_and_replaces(tmp_path):
    path = tmp_path / "a.txt"
    write_text_atomic(path, "one\n")
    write_text_atomic(path, "two\n")
    assert path.read_text() == "two\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_write_text_atomic_full_disk_keeps_the_old_file(tmp_path, monkeypatch, where):
    path = tmp_path / "seeds.json"
    path.write_text("[]\n")
    monkeypatch.setattr(files.os, where, _disk_full)
    with pytest.raises(RunFileError) as err:
        write_text_atomic(path, "[{\"seed\": 0}]\n")
    message = str(err.value)
    assert str(path) in message and "No space left on device" in message
    assert "\n" not in message and isinstance(err.value, ConfigError)
    assert path.read_text() == "[]\n"
    assert [p.name for p in tmp_path.iterdir()] == ["seeds.json"]


def test_write_text_atomic_into_a_missing_directory(tmp_path):
    path = tmp_path / "gone" / "config.yaml"
    with pytest.raises(RunFileError, match="gone/config.yaml: cannot write"):
        write_text_atomic(path, "x")
