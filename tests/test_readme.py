"""The README's Python tutorial runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_its_tutorial():
    blocks = python_blocks()
    assert any("mannlab.train(" in b for b in blocks)  # the tutorial
    assert any("mannlab.pretrained.load(" in b for b in blocks)


@pytest.mark.slow
def test_the_python_tutorial_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), {})  # noqa: S102 (the README, run as written)
    assert (tmp_path / "runs/tutorial/copy-10.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "runs/tutorial/seed-0/eval.json").exists()
    assert "(" in capsys.readouterr().out
