"""Seeds in processes: each worker binds itself to a core of its own."""

import os
import queue

import pytest

from mannlab.training.seeds import _pin_to_a_free_core


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_worker_binds_to_the_core_it_takes():
    before = os.sched_getaffinity(0)
    core = max(before)
    cores = queue.Queue()
    cores.put(core)
    try:
        _pin_to_a_free_core(cores)
        assert os.sched_getaffinity(0) == {core}
        assert cores.empty()
    finally:
        os.sched_setaffinity(0, before)
