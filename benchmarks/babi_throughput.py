"""bAbI training throughput: stories per second of the full training step
(forward, backward, RMSprop update) of each shipped bAbI config's model at
the DNC paper's sizes, on joint training data (all 20 tasks, 10k).

A training batch is padded to its length bucket (`BabiTask.edges`), so a
step's cost depends on the bucket. For each model and batch size this times
the jitted step (one step per call, `mannlab.training.step.make_train_step`,
as the trainer runs it) at every bucket that joint batches of that size
reach, weights each bucket by how often 2,000 sampled joint batches land in
it, and prints stories per second and the wall clock of one epoch (every
training story once: 43,000 stories at 10k) at that rate.

    python benchmarks/babi_throughput.py [--models dnc lstm] [--batches 1 8 32]
        [--repeats 3] [--calls 3]
"""

import argparse
import statistics
import time
from collections import Counter

CONFIGS = {"dnc": "dnc-babi", "dnc-md": "dnc-md-babi", "ntm": "ntm-babi", "lstm": "lstm-babi"}


def bucket_mix(task, batch: int, draws: int = 2000) -> dict[int, float]:
    """How often a joint training batch of `batch` stories is padded to each bucket."""
    import numpy as np

    from mannlab.tasks.base import pad_length

    rng = np.random.default_rng(0)
    counts = Counter()
    for _ in range(draws):
        picks = rng.integers(0, len(task.tasks), size=batch)
        longest = max(len(task.train_by_task[task.tasks[k]][rng.integers(
            0, len(task.train_by_task[task.tasks[k]]))].inputs) for k in picks)
        counts[pad_length(longest, task.edges)] += 1
    return {edge: n / draws for edge, n in sorted(counts.items())}


def step_seconds(config, task, batch: int, length: int, repeats: int, calls: int) -> float:
    """Median seconds of one training step on batches of `length` steps."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mannlab.config import build_model
    from mannlab.tasks.base import stack_chunk
    from mannlab.training.optimizer import make_optimizer
    from mannlab.training.step import make_train_step, stack_trees

    model = build_model(config, task, 0)
    params = stack_trees([eqx.filter(model, eqx.is_array)])
    static = eqx.partition(model, eqx.is_array)[1]
    opt = make_optimizer(config.train)
    opt_state = jax.vmap(opt.init)(params)
    step = make_train_step(static, task, opt)
    rng = np.random.default_rng(0)
    pool = [e for e in task.train_examples if len(e.inputs) <= length]
    chunks = [jax.tree.map(jnp.asarray, stack_chunk([[task.make_batch(
        [pool[i] for i in rng.integers(0, len(pool), batch)], steps=length)]]))
        for _ in range(2)]
    active = jnp.ones((1, 1), bool)
    params, opt_state, out = step(params, opt_state, chunks[0], active)  # compiles
    jax.block_until_ready(out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(calls):
            params, opt_state, out = step(params, opt_state, chunks[i % 2], active)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["dnc", "lstm"], choices=list(CONFIGS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--buckets", type=int, default=None,
                        help="time only the this many most frequent buckets (the rest are "
                             "extrapolated linearly in length from the timed ones)")
    args = parser.parse_args()

    from mannlab.config import find_config, load_config

    for name in args.models:
        config = load_config(find_config(CONFIGS[name]), ["task.tasks=all"])
        task = config.task.build()
        print(f"{name}: {config.model.name}, joint 20 tasks 10k: {task.epoch_stories} training "
              f"stories, buckets {task.edges}", flush=True)
        for batch in args.batches:
            mix = bucket_mix(task, batch)
            timed = sorted(mix, key=lambda e: -mix[e])[:args.buckets or len(mix)]
            per_step = {e: step_seconds(config, task, batch, e, args.repeats, args.calls)
                        for e in sorted(timed)}
            per_token = statistics.median(s / e for e, s in per_step.items())
            mean_step = sum(p * per_step.get(e, per_token * e) for e, p in mix.items())
            rate = batch / mean_step
            detail = ", ".join(f"T={e}: {s:.3f} s ({mix[e]:.0%})" for e, s in per_step.items())
            print(f"  batch {batch:3d}: {rate:7.2f} stories/s, {mean_step:.3f} s a step; "
                  f"one epoch {task.epoch_stories / rate / 3600:.1f} h  [{detail}]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
