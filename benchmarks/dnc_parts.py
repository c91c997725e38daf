"""What a DNC training step is made of: the step with its mechanisms swapped
for trivial stand-ins, all built in one process and timed in alternation.

Per-op profiles of these steps mislead (one-off ops such as zero-fills are
charged time that concurrent ops spent), so the share of a mechanism is read
from how much faster the step gets without it:

* ``full``: mannlab's DNC step (`dnc_step.make_step`, copy task, length 20,
  memory 128 x 20, 4 read heads, LSTM-100);
* ``no link``: the link step returns the previous link matrix and the
  previous read weightings as forward and backward weightings;
* ``no allocation``: the allocation weighting is a softmax of minus the usage;
* ``neither``: both.

The stand-ins keep every shape, so the rest of the step is unchanged. Prints
the median over rounds of each variant's best of 3 steps.

    .venv/bin/python benchmarks/dnc_parts.py [--batches 16 64] [--rounds 7]
"""

import argparse
import statistics
import time

import equinox as eqx
import jax
import numpy as np
import optax
from dnc_step import make_step

from mannlab.models import dnc
from mannlab.tasks.copy import CopyTask


def _no_link(link, precedence, write_weights, read_weights):
    return link, read_weights, read_weights


def _no_allocation(usage):
    return jax.nn.softmax(-usage)


VARIANTS = {
    "full": (dnc.link_step, dnc.allocation_weighting),
    "no link": (_no_link, dnc.allocation_weighting),
    "no allocation": (dnc.link_step, _no_allocation),
    "neither": (_no_link, _no_allocation),
}


def compiled_steps(batch_size: int):
    """{variant: (compiled step, params, opt_state)} and one batch."""
    task = CopyTask(bits=8, min_length=20, max_length=20)
    batch = jax.device_put(task.sample(np.random.default_rng(0), batch_size, 20))
    optimizer = optax.chain(optax.clip(10.0), optax.rmsprop(1e-4, decay=0.95, momentum=0.9))
    steps = {}
    for name, (link_step, allocation) in VARIANTS.items():
        dnc.link_step, dnc.allocation_weighting = link_step, allocation  # read at trace time
        model = dnc.DNC(task.input_size, task.output_size, controller="lstm",
                        controller_size=100, memory_size=128, memory_width=20, read_heads=4,
                        key=jax.random.key(0))
        params, static = eqx.partition(model, eqx.is_array)
        opt_state = optimizer.init(params)
        compiled = make_step(static, task, optimizer).lower(params, opt_state, batch).compile()
        steps[name] = (compiled, params, opt_state)
    dnc.link_step, dnc.allocation_weighting = VARIANTS["full"]
    return steps, batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for batch_size in args.batches:
        steps, batch = compiled_steps(batch_size)
        for compiled, params, opt_state in steps.values():
            jax.block_until_ready(compiled(params, opt_state, batch))
        times = {name: [] for name in steps}
        for _ in range(args.rounds):
            for name, (compiled, params, opt_state) in steps.items():
                best = float("inf")
                for _ in range(3):
                    start = time.perf_counter()
                    jax.block_until_ready(compiled(params, opt_state, batch))
                    best = min(best, time.perf_counter() - start)
                times[name].append(best)
        for name, found in times.items():
            ms = 1000 * statistics.median(found)
            print(f"batch {batch_size:3d} {name:14s} {ms:8.1f} ms/step "
                  f"{1000 * batch_size / ms:6.0f} seq/s", flush=True)


if __name__ == "__main__":
    from mannlab import runtime

    runtime.restart_with_huge_pages()  # as the `mannlab` program does
    runtime.configure("single", cache_dir="off")
    main()
