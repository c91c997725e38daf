"""The plain-JAX baselines that `benchmarks/throughput.py` times mannlab
against compute what mannlab's NTM and DNC compute: the same loss, gradients
and optimiser updates for the same parameters (`throughput.py --check`, run
as a program: tests do not import benchmarks/)."""

import subprocess
import sys
from pathlib import Path

import pytest

THROUGHPUT = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"

pytestmark = pytest.mark.slow  # compiles two models and their baselines: about a minute


def test_the_baselines_compute_what_mannlab_computes():
    proc = subprocess.run([sys.executable, str(THROUGHPUT), "--check"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ntm: loss" in proc.stdout and "dnc: loss" in proc.stdout
