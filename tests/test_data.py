"""The data sets ship inside the package, and are found in a fixed order:
a path in the config, then $MANNLAB_DATA_DIR, then the packaged copy."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mannlab.config import parse_config
from mannlab.tasks.logic import DEFAULT_DATA, LogicTask
from mannlab.tasks.pos import DEFAULT_HELDOUT, DEFAULT_TRAIN
from mannlab.tasks.seqdata import PACKAGED_DATA, data_file

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = [DEFAULT_DATA, DEFAULT_TRAIN, DEFAULT_HELDOUT,
            "ud-english-ewt/en_ewt-ud-test.conllu.xz", "chomsky-fixtures/reverse_string.npz",
            "babi/qa1_train.txt.xz", "babi/qa20_test.txt.xz", "babi/vocabulary.txt"]
LICENCES = ["ud-english-ewt/LICENSE.txt", "ud-english-ewt/README.md",
            "mann-rl-logic/LICENSE.txt", "chomsky-fixtures/LICENSE.txt",
            "chomsky-fixtures/README.md", "babi/LICENSE.txt", "babi/PATENTS.txt",
            "babi/README.md", "babi/PROVENANCE.md"]


def test_the_data_and_their_licences_are_in_the_package():
    for name in PACKAGED + LICENCES:
        assert (PACKAGED_DATA / name).is_file(), name
    assert PACKAGED_DATA == Path(__import__("mannlab").__file__).parent / "data"


def test_the_search_order_is_config_path_then_environment_then_package(tmp_path, monkeypatch):
    monkeypatch.delenv("MANNLAB_DATA_DIR", raising=False)
    assert data_file(None, DEFAULT_DATA) == PACKAGED_DATA / DEFAULT_DATA
    monkeypatch.setenv("MANNLAB_DATA_DIR", str(tmp_path))
    assert data_file(None, DEFAULT_DATA) == tmp_path / DEFAULT_DATA
    assert data_file("mine.json", DEFAULT_DATA) == Path("mine.json")


def test_a_data_directory_from_the_environment_is_read(tmp_path, monkeypatch, capsys):
    """A copy under $MANNLAB_DATA_DIR is what the task reads; a missing one is
    a one-line error naming its path (no fallback to another copy)."""
    monkeypatch.setenv("MANNLAB_DATA_DIR", str(tmp_path))
    from mannlab.cli import main

    config = tmp_path / "logic.yaml"
    config.write_text("task: {name: logic, source: file}\nmodel: {name: lstm}\n")
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / DEFAULT_DATA) in err and len(err.strip().splitlines()) == 1
    (tmp_path / DEFAULT_DATA).parent.mkdir(parents=True)
    shutil.copy(PACKAGED_DATA / DEFAULT_DATA, tmp_path / DEFAULT_DATA)
    task = LogicTask(source="file")
    assert task.data_path == tmp_path / DEFAULT_DATA and len(task.train_examples) == 9500


def test_shipped_language_configs_build_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MANNLAB_DATA_DIR", raising=False)
    task = parse_config({"task": {"name": "pos"}, "model": {"name": "lstm"}}).task.build()
    assert task.train_path == PACKAGED_DATA / DEFAULT_TRAIN and task.embedding is not None


@pytest.mark.slow
def test_the_wheel_holds_the_configs_and_the_data(tmp_path):
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("mannlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in PACKAGED + LICENCES:
        assert f"mannlab/data/{name}" in names, name
    assert "mannlab/configs/ntm-copy.yaml" in names and "mannlab/configs/mann-rl-pos.yaml" in names
    for name in ("ntm-copy", "dnc-repeat-copy", "lstm-copy"):
        for part in ("config.yaml", "pretrained.json", "seed-0/checkpoint.safetensors",
                     "seed-0/eval.json"):
            assert f"mannlab/pretrained/{name}/{part}" in names, (name, part)
    assert wheel.stat().st_size < 10_000_000  # the whole wheel, without extras
