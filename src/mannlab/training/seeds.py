"""Running many seeds: one vmapped program, or one process per core.

Both give each seed the same initialisation and data stream, so per-seed
results agree either way (up to float reassociation). On this project's CPU
machines one process per core measured faster than vmapping batch-1 models
(docs/performance-notes.md), so `auto` picks processes on a CPU and vmap elsewhere.
"""

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Literal

import jax

from mannlab import runtime
from mannlab.training.trainer import TrainingInterrupted, on_signals

PR_SET_PDEATHSIG = 1
"""prctl option: the signal a process gets when its parent dies (Linux)."""

Execution = Literal["auto", "vmap", "processes"]


def choose_execution(execution: Execution, seeds: int) -> str:
    if execution != "auto":
        return execution
    if seeds == 1:
        return "vmap"
    return "processes" if jax.default_backend() == "cpu" else "vmap"


def _pin_to_a_free_core(cores) -> None:
    """Bind this process to the next core of the queue."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cores.get()})


def _exit_with_parent(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when its parent dies (Linux's
    PR_SET_PDEATHSIG; kill -9 of the parent included), which the training
    loop answers by saving and stopping; exit now if the parent is already
    gone. (The signal follows the parent *thread* that started the worker:
    the pool starts workers from the parent's main thread, which lives as
    long as the parent.)"""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)


def _start_worker(cores, cache_dir: str | None, parent: int) -> None:
    """Worker initialiser: stop when the parent dies, take a core of its own
    (if `cores` is a queue) and use the parent's persistent compilation cache
    (if it has one), so a program compiled for one seed is loaded, not
    compiled, for the next."""
    _exit_with_parent(parent)
    if cores is not None:
        _pin_to_a_free_core(cores)
    if cache_dir:
        runtime.use_compilation_cache(cache_dir)


def train_in_processes(run: Path, seeds: list[int], train_seed: Callable[[str, int], dict],
                       workers: int | None = None, on_done=None) -> list[dict]:
    """Train each seed in its own process, `workers` at a time (default: cores):
    ``train_seed(run_dir, seed)``, a module-level function (it is pickled by
    name), returns the seed's result.

    Where the OS allows it and there is a core per worker, each worker is
    bound to its own core, so that a worker's Python thread and XLA thread
    share that core instead of competing with the other workers. Workers use
    this process's persistent compilation cache, if it has one.

    SIGINT or SIGTERM to this process reaches every worker (each saves its
    seed and stops), seeds not yet started are not started, and
    `TrainingInterrupted` is raised once all workers have stopped. Workers
    stop by themselves if this process dies.
    """
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    workers = workers or min(len(seeds), len(allowed) or os.cpu_count() or 1)
    ctx = multiprocessing.get_context("spawn")
    cores = None
    if workers <= len(allowed):
        cores = ctx.Queue()
        for core in allowed[:workers]:
            cores.put(core)
    results, stopped = {}, []

    def forward(signum, frame):
        stopped.append(signum)
        for child in multiprocessing.active_children():
            os.kill(child.pid, signum)

    restore = on_signals(forward)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_start_worker,
                                 initargs=(cores, jax.config.jax_compilation_cache_dir,
                                           os.getpid())) as pool:
            futures = {pool.submit(train_seed, str(run), s): s for s in seeds}
            for fut in as_completed(futures):
                if stopped:
                    for other in futures:
                        other.cancel()
                if fut.cancelled():
                    continue
                try:
                    results[futures[fut]] = fut.result()
                except TrainingInterrupted as stop:
                    stopped.append(stop.signum)
                    continue
                if on_done:
                    on_done(results[futures[fut]])
    finally:
        restore()
    if stopped:
        raise TrainingInterrupted(stopped[0], str(run))
    return [results[s] for s in seeds]

