"""Test set-up: single-threaded XLA (as the CLI) before JAX is imported."""

from mannlab import runtime

runtime.configure("single")
