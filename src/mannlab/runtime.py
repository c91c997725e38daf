"""Process-wide JAX settings, applied by the CLI and benchmarks before JAX starts.

On a CPU, XLA's multi-threaded Eigen kernels cost more than they give for the
small matrices of these models: one thread per process measured faster here
(docs/benchmarks.md), and leaves the other cores to other seeds' processes.
"""

import os
from pathlib import Path

SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def configure(threads: str = "single", cache_dir: str | None = None) -> None:
    """Set XLA threading (must run before JAX is imported) and the compile cache.

    Args:
      threads: "single" (default) or "multi" (XLA's own default).
      cache_dir: persistent compilation cache; default ~/.cache/mannlab/jax.
        Compiled programs are reused across runs with the same shapes.
    """
    if threads == "single" and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = SINGLE_THREAD_FLAGS
    cache = cache_dir or os.environ.get("MANNLAB_JAX_CACHE",
                                        str(Path.home() / ".cache" / "mannlab" / "jax"))
    import jax

    if cache != "off":
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
