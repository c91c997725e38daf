"""Test set-up, before JAX is imported: single-threaded XLA (as the CLI), and
the persistent compilation cache in a temporary directory of this session,
so that tests never write to ~/.cache. The directory is set in the
environment (MANNLAB_JAX_CACHE, read by `runtime.configure`), so the
`mannlab` programs and seed worker processes that tests start inherit it."""

import atexit
import os
import shutil
import tempfile

from mannlab import runtime

JAX_CACHE = tempfile.mkdtemp(prefix="mannlab-tests-jax-cache-")
atexit.register(shutil.rmtree, JAX_CACHE, ignore_errors=True)
os.environ["MANNLAB_JAX_CACHE"] = JAX_CACHE
runtime.configure("single")
