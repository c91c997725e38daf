"""Training throughput: sequences per second of the full training step.

Copy task, fixed length 20 (41 steps), the model of each shipped config in
`CONFIGS` (NTM and DNC: memory 128 x 20, LSTM-100 controller; LSTM: 3 x 256;
SAM and SDNC at the DNC's size, 4 read heads of K = 4 rows, `OVERRIDES`). For each batch
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
and loads. SAM and SDNC are likewise timed in alternation with the dense DNC
(`DENSE_OF`).

`--check` times nothing: it verifies that each baseline is the same model as
mannlab's (same loss, gradients and optimiser update for the same
parameters, `check_baseline`) and exits with status 1 if one is not, so the
ratio compares like with like. tests/test_benchmark_baselines.py runs it.

    python benchmarks/throughput.py [--models ntm lstm] [--batches 1 16 64] [--repeats 5]
    python benchmarks/throughput.py --check
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import time

CONFIGS = {"ntm": "ntm-copy", "lstm": "lstm-copy", "dnc": "dnc-copy", "sam": "sam-copy",
           "sdnc": "sdnc-copy"}
"""The shipped config (`mannlab configs`) each model is timed with."""
OVERRIDES = {"sam": ["model.read_heads=4", "model.trace_memory=false"],
             "sdnc": ["model.trace_memory=false"]}
"""What makes a config's model the size the DNC is timed at (issue 18: SAM and
SDNC at the DNC's benchmark size, memory 128 x 20 and 4 read heads)."""
BASELINES = {"ntm": "plain_jax_ntm", "dnc": "plain_jax_dnc"}
"""The plain-JAX baseline of each model: a module next to this script."""


DENSE_OF = {"sam": "dnc", "sdnc": "dnc"}
"""The sparse models' lines: timed in alternation with the dense DNC (issue
18's target: SDNC >= 2x the DNC at batch 16 and 64)."""


def mannlab_runner(model: str, batch: int, seeds: int, calls: int, steps_per_call: int = 1):
    """A compiled mannlab training step on prepared data (copy, length 20):
    returns run(), which makes `calls` calls of `steps_per_call` steps for
    `seeds` models and returns the last output (not yet waited for)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mannlab.config import build_model, find_config, load_config
    from mannlab.tasks.base import stack_chunk
    from mannlab.training.optimizer import make_optimizer
    from mannlab.training.step import make_train_step, stack_trees

    config = load_config(find_config(CONFIGS[model]), OVERRIDES.get(model, []))
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

    from mannlab.config import find_config, load_config

    plain = importlib.import_module(BASELINES[model])  # this script's directory is on sys.path
    task = load_config(find_config(CONFIGS[model])).task.build()
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


def lstm_as_baseline(cell) -> tuple:
    """An `eqx.nn.LSTMCell` as the baselines hold it: one weight matrix
    [inputs + hidden, 4 hidden] (inputs before hidden, gates i, f, g, o) and
    its bias."""
    import jax.numpy as jnp

    return jnp.concatenate([cell.weight_ih, cell.weight_hh], axis=1).T, cell.bias


def ntm_as_baseline(model) -> dict:
    """The arrays of a mannlab NTM (one read and one write head) laid out as
    `plain_jax_ntm.init_params` lays out its own: the head parameters of both
    heads, then the write head's erase and add vectors, in one matrix."""
    import jax.numpy as jnp

    lstm, lstm_bias = lstm_as_baseline(model.controller.cells[0])
    return {"lstm": lstm, "lstm_bias": lstm_bias,
            "heads": jnp.concatenate([model.head_params.weight, model.write_params.weight]).T,
            "heads_bias": jnp.concatenate([model.head_params.bias, model.write_params.bias]),
            "out": model.readout.weight.T, "out_bias": model.readout.bias}


def dnc_as_baseline(model) -> dict:
    """The arrays of a mannlab DNC laid out as `plain_jax_dnc.init_params`."""
    lstm, lstm_bias = lstm_as_baseline(model.controller.cells[0])
    return {"lstm": lstm, "lstm_bias": lstm_bias,
            "interface": model.interface.weight.T, "interface_bias": model.interface.bias,
            "out": model.readout.weight.T, "out_bias": model.readout.bias}


AS_BASELINE = {"ntm": ntm_as_baseline, "dnc": dnc_as_baseline}
CHECK_OVERRIDES = {"ntm": ["model.memory_init=constant"], "dnc": []}
"""What makes the config's model the baseline's: the NTM baseline starts
from the constant memory (the config's is learned, one more parameter)."""
CHECK_SCALE = 3.0
"""The check multiplies the initial weights by this: at the initial scale
gates, key strengths and sharpening are near their uniform starting values
and much of the memory's working barely shows in the loss; at 3x a swapped
read mode or a missing retention changes the gradients by 1e-3 or more."""
CHECK_TOLERANCE = 1e-4
"""Largest relative difference allowed (the two agree to about 1e-6, float32
rounding in a different order)."""


def scaled_layers(model, factor: float):
    """`model` with the weights and biases of its layers (`eqx.nn.Linear`,
    `eqx.nn.LSTMCell`) multiplied by `factor`, its other arrays (the NTM's
    initial memory) as they were."""
    import equinox as eqx
    import jax

    is_layer = lambda x: isinstance(x, (eqx.nn.Linear, eqx.nn.LSTMCell))
    return jax.tree.map(lambda x: jax.tree.map(lambda a: factor * a, x) if is_layer(x) else x,
                        model, is_leaf=is_layer)


def relative_difference(a, b) -> float:
    """|a - b| / |b| (Euclidean norms over all entries)."""
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def check_baseline(model: str) -> list[str]:
    """Compare the plain-JAX baseline of `model` with mannlab's model of the
    same config, for the same parameters on the same copy batch: the loss,
    every gradient, and the optimiser's first two updates. Returns one line per
    difference above `CHECK_TOLERANCE` (empty if the two agree).

    mannlab's loss is nats per sequence, the baseline's bits: the baseline's
    loss and gradients are multiplied by ln 2 first. The optimiser update is
    compared on mannlab's gradients (clipping makes it scale-dependent), twice.
    """
    import importlib

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mannlab.config import build_model, find_config, load_config
    from mannlab.training.optimizer import make_optimizer
    from mannlab.training.step import sequence_loss

    plain = importlib.import_module(BASELINES[model])  # this script's directory is on sys.path
    config = load_config(find_config(CONFIGS[model]), CHECK_OVERRIDES[model])
    task = config.task.build()
    params, static = eqx.partition(scaled_layers(build_model(config, task, 0), CHECK_SCALE),
                                   eqx.is_array)
    as_baseline = lambda tree: AS_BASELINE[model](eqx.combine(tree, static))
    expected = plain.init_params(jax.random.key(0))
    if (jax.tree.structure(as_baseline(params)) != jax.tree.structure(expected)
            or jax.tree.map(jnp.shape, as_baseline(params)) != jax.tree.map(jnp.shape, expected)):
        return [f"{model}: the baseline's parameters do not have the model's shapes"]
    batch = task.sample(np.random.default_rng(0), 4)

    def ours(p):
        return sequence_loss(p, static, task, batch)[0]

    loss, grads = jax.jit(jax.value_and_grad(ours))(params)
    base_loss, base_grads = jax.jit(jax.value_and_grad(plain.loss))(
        as_baseline(params), *(jnp.asarray(a) for a in (batch.inputs, batch.targets,
                                                        batch.loss_mask)))
    ln2 = float(np.log(2.0))
    found = [("loss", relative_difference(base_loss * ln2, loss))]
    ours_grads = as_baseline(grads)
    found += [(f"gradient of {name}", relative_difference(base_grads[name] * ln2, g))
              for name, g in ours_grads.items()]
    ours_opt, base_opt = make_optimizer(config.train), plain.OPTIMISER
    ours_state, base_state = ours_opt.init(params), base_opt.init(as_baseline(params))
    for step in (1, 2):  # the second update is where the momentum shows
        ours_update, ours_state = ours_opt.update(grads, ours_state, params)
        base_update, base_state = base_opt.update(ours_grads, base_state, as_baseline(params))
        found += [(f"update {step} of {name}", relative_difference(base_update[name], u))
                  for name, u in as_baseline(ours_update).items()]
    worst = max(d for _, d in found)
    print(f"{model}: loss {float(loss) / ln2:.4f} bits (baseline {float(base_loss):.4f}); "
          f"largest relative difference {worst:.1e} (tolerance {CHECK_TOLERANCE:.0e})",
          flush=True)
    return [f"{model}: {what} differs by {d:.1e} (relative)"
            for what, d in found if not d <= CHECK_TOLERANCE]


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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["ntm", "lstm"])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--seeds", type=int, default=8,
                   help="models for the seeds lines (vmap and processes); 0 skips them")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0, help="rough length of one timing")
    p.add_argument("--threads", choices=["single", "multi"], default="single")
    p.add_argument("--check", action="store_true",
                   help="time nothing: check that the plain-JAX baselines compute what "
                        "mannlab's models compute (exit status 1 if not)")
    args = p.parse_args()
    if args.seeds < 0:
        p.error(f"--seeds must be 0 or more, got {args.seeds}")
    from mannlab import runtime

    if args.check:
        runtime.configure("single", cache_dir="off")
        problems = [line for model in BASELINES for line in check_baseline(model)]
        print("\n".join(problems) or "the baselines compute what mannlab's models compute")
        return 1 if problems else 0

    runtime.restart_with_huge_pages()  # as the `mannlab` program does
    runtime.configure(args.threads, cache_dir="off")
    from mannlab.config import find_config, load_config

    print(f"threads: {args.threads}; median of {args.repeats} repeats; copy, length 20",
          flush=True)
    for model in args.models:
        per_call = load_config(find_config(CONFIGS[model]),
                               OVERRIDES.get(model, [])).train.steps_per_call
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
            if model in DENSE_OF:
                dense, sparse = time_alternately(
                    [mannlab_runner(DENSE_OF[model], batch, 1, steps),
                     mannlab_runner(model, batch, 1, steps)], steps * batch, args.repeats)
                print(f"{model:5s} batch {batch:3d} against {DENSE_OF[model]} {sparse:6.0f} seq/s "
                      f"({DENSE_OF[model]} {dense:.0f} in alternation, ratio "
                      f"{sparse / dense:.2f})", flush=True)
            if batch == 1 and per_call > 1:
                calls = max(2, steps // per_call)
                one, many = time_alternately(
                    [mannlab_runner(model, batch, 1, calls * per_call, 1),
                     mannlab_runner(model, batch, 1, calls, per_call)],
                    calls * per_call * batch, args.repeats)
                print(f"{model:5s} batch {batch:3d} {per_call} steps/call {many:6.0f} seq/s "
                      f"(the config's train.steps_per_call; 1 step/call {one:.0f} in "
                      f"alternation, ratio {many / one:.2f})", flush=True)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
