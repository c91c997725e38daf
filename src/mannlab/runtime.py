"""Process-wide settings, applied by the CLI and benchmarks before JAX starts.

On a CPU, XLA's multi-threaded Eigen kernels cost more than they give for the
small matrices of these models: one thread per process measured faster here
(docs/performance-notes.md), and leaves the other cores to other seeds' processes.
The `mannlab` program also restarts itself once so that glibc's malloc asks
for huge pages (`restart_with_huge_pages`).
"""

import os
import platform
import sys
from pathlib import Path

HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb"
"""glibc (>= 2.35) malloc tunable: 1 asks the kernel for transparent huge pages
(madvise) on the large blocks malloc maps. Older glibc ignores it."""

SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

NO_RESTART_VARIABLE = "MANNLAB_NO_RESTART"
"""Environment variable: set to 1, `restart_with_huge_pages` does nothing
(for a debugger or profiler attached to the process, or a supervisor that
tracks it by its first image)."""


def configure(threads: str = "single", cache_dir: str | None = None) -> None:
    """Set XLA threading (must run before JAX is imported) and the compile cache.

    Args:
      threads: "single" (default) or "multi" (XLA's own default).
      cache_dir: persistent compilation cache; default the environment's
        MANNLAB_JAX_CACHE, else ~/.cache/mannlab/jax; "off" for none.
        Compiled programs are reused across runs with the same shapes.
    """
    if threads == "single":
        os.environ["XLA_FLAGS"] = flags_with_single_thread(os.environ.get("XLA_FLAGS", ""))
    cache = cache_dir or os.environ.get("MANNLAB_JAX_CACHE",
                                        str(Path.home() / ".cache" / "mannlab" / "jax"))
    if cache != "off":
        use_compilation_cache(cache)


def flags_with_single_thread(flags: str) -> str:
    """XLA_FLAGS `flags` plus the single-thread flags, unless they already set
    XLA's CPU threading (the user's choice stands)."""
    if "xla_cpu_multi_thread_eigen" in flags or "intra_op_parallelism_threads" in flags:
        return flags
    return f"{flags} {SINGLE_THREAD_FLAGS}".strip()


def use_compilation_cache(cache_dir: str) -> None:
    """Keep compiled programs that took >= 0.5 s to compile in `cache_dir`, and
    reuse them in later runs, and in other seeds' processes, with the same
    programs. (Seed worker processes get their parent's directory.)"""
    # not at the top: XLA_FLAGS must be set (`configure`) before JAX is imported
    import jax

    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def tunables_with_huge_pages(tunables: str) -> str | None:
    """The GLIBC_TUNABLES value that also asks for huge pages, or None if
    `tunables` already sets the huge-page tunable (to any value: a user's
    `glibc.malloc.hugetlb=0` turns the restart off)."""
    entries = [t for t in tunables.split(":") if t]
    if any(t.split("=", 1)[0] == HUGE_PAGES_TUNABLE for t in entries):
        return None
    return ":".join(entries + [f"{HUGE_PAGES_TUNABLE}=1"])


def restart_with_huge_pages() -> None:
    """Re-execute this process with glibc's malloc asking for huge pages.

    A training step allocates large fresh buffers per call (the scan's saved
    per-step state, e.g. the DNC's [T, B, N, N] link matrices); with 4 kB
    pages, zero-filling them is page faults. With transparent huge pages
    (the kernel's `madvise` mode, common default) that fill took 19-21 ms
    instead of 76-81 ms of a DNC batch-64 step (docs/performance-notes.md). glibc
    reads the tunable only at start-up, hence the restart, before anything
    heavy is imported. Linux with glibc only; a no-op when GLIBC_TUNABLES
    already sets the tunable (to 1 after the restart, or to 0 by a user who
    wants the plain allocator), or when MANNLAB_NO_RESTART=1
    (`NO_RESTART_VARIABLE`). Worker processes inherit the environment.
    """
    if os.environ.get(NO_RESTART_VARIABLE) == "1":
        return
    if (sys.platform != "linux" or not sys.executable
            or platform.libc_ver()[0] != "glibc"):
        return
    tunables = tunables_with_huge_pages(os.environ.get("GLIBC_TUNABLES", ""))
    if tunables is None:
        return
    os.environ["GLIBC_TUNABLES"] = tunables
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable] + sys.orig_argv[1:])
