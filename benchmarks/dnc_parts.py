"""What a DNC training step is made of: the step with its mechanisms swapped
for trivial stand-ins, all built in one process and timed in alternation.

Per-op profiles of these steps mislead (one-off ops such as zero-fills are
charged time that concurrent ops spent), so the share of a mechanism is read
from how much faster the step gets without it:

* ``full``: mannlab's DNC step (`dnc_step.setup`: copy task, length 20,
  memory 128 x 20, 4 read heads, LSTM-100);
* ``no link``: the link step returns the previous link matrix and the
  previous read weightings as forward and backward weightings;
* ``no allocation``: the allocation weighting is a softmax of minus the usage;
* ``neither``: both.

The stand-ins keep every shape, so the rest of the step is unchanged. Prints
each variant's median over rounds (`throughput.time_alternately`).

    .venv/bin/python benchmarks/dnc_parts.py [--batches 16 64] [--rounds 7]
"""

import argparse

import jax
import numpy as np
from dnc_step import setup
from throughput import time_alternately

from mannlab.models import dnc


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


def runner(link_step, allocation, batch_size: int):
    """run() making one training step of the DNC built with `link_step` and
    `allocation` in place of its own (swapped only while it compiles)."""
    step, params, opt_state, task = setup()
    batch = jax.device_put(task.sample(np.random.default_rng(0), batch_size, 20))
    dnc.link_step, dnc.allocation_weighting = link_step, allocation  # read at trace time
    try:
        compiled = step.lower(params, opt_state, batch).compile()
    finally:
        dnc.link_step, dnc.allocation_weighting = VARIANTS["full"]
    return lambda: compiled(params, opt_state, batch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for batch_size in args.batches:
        runners = [runner(*parts, batch_size) for parts in VARIANTS.values()]
        rates = time_alternately(runners, batch_size, args.rounds)
        for name, rate in zip(VARIANTS, rates):
            print(f"batch {batch_size:3d} {name:14s} {1000 * batch_size / rate:8.1f} ms/step "
                  f"{rate:6.0f} seq/s", flush=True)


if __name__ == "__main__":
    from mannlab import runtime

    runtime.restart_with_huge_pages()  # as the `mannlab` program does
    runtime.configure("single", cache_dir="off")
    main()
