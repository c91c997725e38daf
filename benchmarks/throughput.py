"""Training throughput: sequences per second of the full training step.

Copy task, fixed length 20 (41 steps), the model of each config in configs/
(NTM: memory 128 x 20, LSTM-100 controller; LSTM: 3 x 256). For each batch
size it times the jitted step (forward, backward, optimiser update), one step
per call, and prints the median of repeats; where the config runs several
steps per call (`train.steps_per_call`, a `lax.scan` over steps, as the
trainer does), a second batch-1 line times that. `--seeds 8` lines: eight
batch-1 models trained as one vmapped program, and as one process per core
(one step per call).

For the NTM and the DNC, each batch size is also timed against a baseline
in the same run: `plain_jax_ntm.py` and `plain_jax_dnc.py`, the same step
written directly in JAX (what the issues' "throwaway JAX prototype" and
"throwaway JAX DNC" describe). The two are timed in alternation and the line
gives the ratio, which unlike absolute figures carries over between machines
and loads.

    python benchmarks/throughput.py [--models ntm lstm] [--batches 1 16 64] [--repeats 5]
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"ntm": "configs/ntm-copy.yaml", "lstm": "configs/lstm-copy.yaml",
           "dnc": "configs/dnc-copy.yaml"}
BASELINES = {"ntm": "plain_jax_ntm", "dnc": "plain_jax_dnc"}


def mannlab_runner(model: str, batch: int, seeds: int, calls: int, steps_per_call: int = 1):
    """A compiled mannlab training step on prepared data (copy, length 20):
    returns run(), which makes `calls` calls of `steps_per_call` steps for
    `seeds` models and returns the last output (not yet waited for)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mannlab.config import load_config
    from mannlab.tasks.base import stack_chunk
    from mannlab.training.optimizer import make_optimizer
    from mannlab.training.step import make_train_step
    from mannlab.training.trainer import build_model, stack_trees

    config = load_config(ROOT / CONFIGS[model])
    task = config.task.build()
    models = [build_model(config, task, s) for s in range(seeds)]
    params = stack_trees([eqx.filter(m, eqx.is_array) for m in models])
    static = eqx.partition(models[0], eqx.is_array)[1]
    opt = make_optimizer(config.train)
    opt_state = jax.vmap(opt.init)(params)
    step = make_train_step(static, task, opt)
    rng = np.random.default_rng(0)
    chunks = [jax.tree.map(jnp.asarray, stack_chunk(
        [[task.sample(rng, batch, length=20) for _ in range(seeds)]
         for _ in range(steps_per_call)])) for _ in range(4)]
    active = jnp.ones((steps_per_call, seeds), bool)

    def run():
        nonlocal params, opt_state
        for i in range(calls):
            params, opt_state, out = step(params, opt_state, chunks[i % 4], active)
        return out

    return run


def plain_runner(model: str, batch: int, calls: int):
    """The same for the plain-JAX baseline of `model` (`BASELINES`), one model."""
    import importlib

    import jax
    import jax.numpy as jnp
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    plain = importlib.import_module(BASELINES[model])

    from mannlab.config import load_config

    task = load_config(ROOT / CONFIGS[model]).task.build()
    rng = np.random.default_rng(0)
    batches = [tuple(jnp.asarray(a) for a in (b.inputs, b.targets,
                                              b.loss_mask.astype(np.float32)))
               for b in (task.sample(rng, batch, length=20) for _ in range(4))]
    params = plain.init_params(jax.random.key(0))
    opt_state = plain.OPTIMISER.init(params)

    def run():
        nonlocal params, opt_state
        for i in range(calls):
            params, opt_state, loss = plain.train_step(params, opt_state, *batches[i % 4])
        return loss

    return run


def time_alternately(runners: list, sequences_per_run: int, repeats: int) -> list[float]:
    """Median sequences/second of each runner over `repeats` rounds in which
    the runners take turns (after one untimed run each, which compiles)."""
    import jax

    for run in runners:
        jax.block_until_ready(run())
    rates = [[] for _ in runners]
    for _ in range(repeats):
        for run, found in zip(runners, rates):
            start = time.perf_counter()
            jax.block_until_ready(run())
            found.append(sequences_per_run / (time.perf_counter() - start))
    return [statistics.median(r) for r in rates]


def measure(model: str, batch: int, seeds: int, repeats: int, calls: int,
            steps_per_call: int = 1) -> float:
    """Median sequences/second over `repeats` timings of `calls` training calls
    of `steps_per_call` steps each (data made beforehand, outside the timing)."""
    run = mannlab_runner(model, batch, seeds, calls, steps_per_call)
    return time_alternately([run], calls * steps_per_call * batch * seeds, repeats)[0]


def plain_against_mannlab(model: str, batch: int, repeats: int,
                          calls: int) -> tuple[float, float]:
    """Median seq/s of the plain-JAX baseline and of mannlab's step of `model`
    at `batch`, the two timed in alternation (`repeats` rounds of `calls` steps)."""
    runners = [plain_runner(model, batch, calls), mannlab_runner(model, batch, 1, calls)]
    base, ours = time_alternately(runners, calls * batch, repeats)
    return base, ours


def _worker(args):
    model, repeats, steps, threads = args
    from mannlab import runtime

    runtime.configure(threads)
    return measure(model, 1, 1, repeats, steps)


def in_processes(model: str, seeds: int, repeats: int, steps: int, threads: str) -> float:
    """Total seq/s of `seeds` batch-1 models, one process per core, timed concurrently."""
    workers = min(seeds, os.cpu_count() or 1)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        rates = pool.map(_worker, [(model, repeats, steps, threads)] * workers)
    return sum(rates)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["ntm", "lstm"])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--seeds", type=int, default=8,
                   help="models for the seeds lines (vmap and processes); 0 skips them")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0, help="rough length of one timing")
    p.add_argument("--threads", choices=["single", "multi"], default="single")
    args = p.parse_args()
    if args.seeds < 0:
        p.error(f"--seeds must be 0 or more, got {args.seeds}")
    from mannlab import runtime

    runtime.restart_with_huge_pages()  # as the `mannlab` program does
    runtime.configure(args.threads, cache_dir="off")
    from mannlab.config import load_config

    print(f"threads: {args.threads}; median of {args.repeats} repeats; copy, length 20",
          flush=True)
    for model in args.models:
        if not (ROOT / CONFIGS[model]).exists():
            print(f"{model}: no config {CONFIGS[model]}, skipped")
            continue
        per_call = load_config(ROOT / CONFIGS[model]).train.steps_per_call
        for batch in args.batches:
            probe = measure(model, batch, 1, 1, 5)
            steps = max(5, int(args.seconds * probe / batch))
            rate = measure(model, batch, 1, args.repeats, steps)
            print(f"{model:5s} batch {batch:3d}            {rate:8.0f} seq/s", flush=True)
            if model in BASELINES:
                base, ours = plain_against_mannlab(model, batch, args.repeats, steps)
                print(f"plain-JAX {model.upper()} batch {batch:3d}    {base:8.0f} seq/s (baseline; "
                      f"mannlab {ours:.0f} in alternation, ratio {ours / base:.2f})",
                      flush=True)
            if batch == 1 and per_call > 1:
                rate = measure(model, batch, 1, args.repeats, max(2, steps // per_call),
                               per_call)
                print(f"{model:5s} batch {batch:3d} {per_call} steps/call {rate:6.0f} seq/s "
                      "(the config's train.steps_per_call)", flush=True)
        if args.seeds == 0:
            continue
        steps = max(5, int(args.seconds * probe / 64 / args.seeds))
        rate = measure(model, 1, args.seeds, args.repeats, max(5, steps))
        print(f"{model:5s} batch   1 seeds {args.seeds} vmap     {rate:8.0f} seq/s", flush=True)
        single = measure(model, 1, 1, 1, 20)
        rate = in_processes(model, args.seeds, args.repeats, max(5, int(args.seconds * single)),
                            args.threads)
        print(f"{model:5s} batch   1 seeds {args.seeds} processes {rate:7.0f} seq/s "
              f"({min(args.seeds, os.cpu_count() or 1)} processes)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
