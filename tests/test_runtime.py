"""Process set-up: the `mannlab` program restarts itself once with huge pages
(unless MANNLAB_NO_RESTART=1), and tests keep compiled programs out of ~/.cache."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from mannlab.runtime import NO_RESTART_VARIABLE, tunables_with_huge_pages

GLIBC_LINUX = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"


def test_huge_pages_are_added_to_other_tunables():
    assert tunables_with_huge_pages("") == "glibc.malloc.hugetlb=1"
    assert (tunables_with_huge_pages("glibc.malloc.check=0")
            == "glibc.malloc.check=0:glibc.malloc.hugetlb=1")


@pytest.mark.parametrize("tunables", ["glibc.malloc.hugetlb=1", "glibc.malloc.hugetlb=0",
                                      "glibc.malloc.check=0:glibc.malloc.hugetlb=0"])
def test_a_set_huge_page_tunable_is_left_alone(tunables):
    assert tunables_with_huge_pages(tunables) is None


def _environment_after_restart(tunables: str | None, no_restart: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GLIBC_TUNABLES", NO_RESTART_VARIABLE)}
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    if no_restart is not None:
        env[NO_RESTART_VARIABLE] = no_restart
    code = ("import os, sys; from mannlab.runtime import restart_with_huge_pages; "
            "print('start', flush=True); restart_with_huge_pages(); "
            "print(os.environ.get('GLIBC_TUNABLES'), sys.argv[1:])")
    out = subprocess.run([sys.executable, "-c", code, "an-argument"], env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout


@pytest.mark.skipif(not GLIBC_LINUX, reason="glibc tunables exist on Linux with glibc only")
def test_restart_runs_the_same_command_once_with_huge_pages():
    out = _environment_after_restart("glibc.malloc.check=0")
    # started twice (the restart), the second time with the tunable and the same arguments
    assert out.count("start") == 2
    assert out.splitlines()[-1] == "glibc.malloc.check=0:glibc.malloc.hugetlb=1 ['an-argument']"


@pytest.mark.skipif(not GLIBC_LINUX, reason="glibc tunables exist on Linux with glibc only")
def test_a_user_who_turns_huge_pages_off_gets_no_restart():
    out = _environment_after_restart("glibc.malloc.hugetlb=0")
    assert out.count("start") == 1
    assert out.splitlines()[-1] == "glibc.malloc.hugetlb=0 ['an-argument']"


def test_mannlab_no_restart_turns_the_restart_off():
    out = _environment_after_restart("glibc.malloc.check=0", no_restart="1")
    assert out.count("start") == 1
    assert out.splitlines()[-1] == "glibc.malloc.check=0 ['an-argument']"


@pytest.mark.skipif(not GLIBC_LINUX, reason="glibc tunables exist on Linux with glibc only")
def test_mannlab_no_restart_other_than_1_restarts():
    out = _environment_after_restart("", no_restart="0")
    assert out.count("start") == 2


def test_the_program_entry_restarts_and_runs_the_command():
    env = {k: v for k, v in os.environ.items()
           if k not in ("GLIBC_TUNABLES", NO_RESTART_VARIABLE)}
    code = ("import atexit, os, sys; atexit.register(lambda: print('tunables', "
            "os.environ.get('GLIBC_TUNABLES'))); sys.argv = ['mannlab', '--help']; "
            "from mannlab.__main__ import entry; entry()")
    out = subprocess.run([sys.executable, "-c", code], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "train a model from a YAML config" in out.stdout
    restarted = "tunables glibc.malloc.hugetlb=1" in out.stdout
    assert restarted == GLIBC_LINUX, out.stdout[-200:]


def test_single_thread_flags_join_a_users_xla_flags():
    from mannlab.runtime import SINGLE_THREAD_FLAGS, flags_with_single_thread

    assert flags_with_single_thread("") == SINGLE_THREAD_FLAGS
    assert flags_with_single_thread("--xla_dump_to=/tmp/d") == (
        f"--xla_dump_to=/tmp/d {SINGLE_THREAD_FLAGS}")
    mine = "--xla_cpu_multi_thread_eigen=true"
    assert flags_with_single_thread(mine) == mine


def test_tests_compile_into_a_temporary_cache_not_the_home_directory():
    """tests/conftest.py points the cache at a directory of this session, in
    the environment, so that the `mannlab` programs tests start use it too."""
    cache = os.environ["MANNLAB_JAX_CACHE"]
    assert jax.config.jax_compilation_cache_dir == cache
    assert not Path(cache).resolve().is_relative_to(Path.home().resolve() / ".cache")
    code = "import os; print(os.environ['MANNLAB_JAX_CACHE'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == cache
