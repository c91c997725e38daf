"""The house rules that code review alone would not keep: layers import
downwards only (an import-linter contract in pyproject.toml), and imports sit
at module tops."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mannlab"


def test_layers_import_downwards_only():
    """memory -> models -> tasks -> config -> training -> viz -> api -> pretrained ->
    sweep -> bench -> cli
    (runtime at the bottom), with no ignored imports."""
    lint_imports = Path(sys.executable).parent / "lint-imports"  # the test extra installs it
    proc = subprocess.run([str(lint_imports), "--config", str(ROOT / "pyproject.toml")],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout
    assert "ignore_imports" not in (ROOT / "pyproject.toml").read_text()


def function_level_imports(source: str) -> list[int]:
    """Line numbers of imports inside functions not explained by a comment on
    the line before or on the same line."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Import, ast.ImportFrom)):
                here, before = lines[inner.lineno - 1], lines[inner.lineno - 2]
                if "#" not in here and not before.strip().startswith("#"):
                    found.append(inner.lineno)
    return sorted(set(found))


def test_imports_sit_at_module_tops():
    offenders = {str(path.relative_to(ROOT)): lines for path in sorted(SRC.rglob("*.py"))
                 if (lines := function_level_imports(path.read_text()))}
    assert offenders == {}


def test_the_import_check_finds_an_unexplained_import():
    source = "def f():\n    import os\n    return os\n\ndef g():\n    # lazy: heavy\n    import os\n"
    assert function_level_imports(source) == [2]
