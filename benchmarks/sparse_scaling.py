"""How a training step's time and memory grow with the memory size N: the
dense NTM and DNC against the sparse SAM and SDNC (issue 18).

Setting, the same for every model: copy task, 8-bit vectors, length 10
(21 time steps; ``--length L``: 2 L + 1), LSTM-100 controller, word size W = 20, one read head (the
NTM: one read and one write head), K = 8 rows per read (SAM, SDNC), K_L = 8
link entries per row and column (SDNC), batch 1 and 16. The step is the
training step: forward, backward and an RMSprop update, jitted.

For each (model, N, batch) a fresh process (so its peak RSS is its own)
compiles the step, reads XLA's memory analysis of the compiled program
(arguments + outputs + temporaries - aliased; `compiled.memory_analysis()`),
and, if that fits in half the memory available (MemAvailable), times the
step: the median of `--repeats` calls after one untimed call. Where the
estimate does not fit, it prints the reason and skips the timing. Beside
SAM it times a bare exact search over the same memory (cosine similarity to
all N rows and `jax.lax.top_k`, per step, forward only), the floor SAM's
exact search cannot go below.

Prints one line per configuration and a table, writes the results as JSON
and a log-log plot (time per step and XLA's estimate against N).

    python benchmarks/sparse_scaling.py [--models ntm dnc sam sdnc] [--sizes 128 1024 ...]
        [--batches 1 16] [--repeats 5] [--json out.json] [--plot docs/figures/sparse_scaling.png]
        [--search lsh] [--length 10]

``--search lsh`` gives SAM the approximate search (`memory/lsh.py`, its
defaults for N) instead of the exact one; the other models are unchanged.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

LENGTH, BITS, WIDTH, K, K_LINKS, CONTROLLER = 10, 8, 20, 8, 8, 100
SIZES = [128, 1024, 8192, 65536, 1048576]
MODELS = ["ntm", "dnc", "sam", "sdnc", "search"]
MIN_TIMING_S = 0.5
"""One timing runs at least this long (fast steps: several calls, averaged)."""
FIT_FRACTION = 0.5
"""A configuration is timed only if XLA's estimate is below this fraction
of the memory available when it starts."""


def model_kwargs(name: str, n: int, search: str = "exact") -> dict:
    common = {"controller_size": CONTROLLER, "memory_size": n, "memory_width": WIDTH,
              "read_heads": 1}
    if name == "ntm":
        return {**common, "memory_init": "constant"}
    if name == "dnc":
        return common
    if name == "sam":
        return {**common, "top_k": K, "search": search}
    return {**common, "top_k": K, "link_k": K_LINKS}


def available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def one(name: str, n: int, batch: int, repeats: int, search: str = "exact",
        length: int = LENGTH) -> dict:
    """Compile, estimate and (if it fits) time one configuration in this process."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from mannlab.memory.content import cosine_similarity
    from mannlab.models.dnc import DNC
    from mannlab.models.ntm import NTM
    from mannlab.models.sam import SAM
    from mannlab.models.sdnc import SDNC
    from mannlab.tasks.copy import CopyTask
    from mannlab.training.step import sequence_loss

    task = CopyTask(bits=BITS, min_length=length, max_length=length)
    data = jax.tree.map(jnp.asarray, task.sample(np.random.default_rng(0), batch, length))
    steps = int(data.inputs.shape[0])
    result = {"model": name, "N": n, "batch": batch, "steps": steps}
    if name == "sam":
        result["search"] = search

    if name == "search":
        memory = jax.random.normal(jax.random.key(0), (batch, n, WIDTH))
        keys = jax.random.normal(jax.random.key(1), (steps, batch, 1, WIDTH))

        def search(memory, keys):
            def body(carry, q):
                sims = jax.vmap(cosine_similarity)(q, memory)
                idx = jax.lax.top_k(sims, K)[1]
                return carry + idx.sum(), None
            return jax.lax.scan(body, jnp.int32(0), keys)[0]

        fn, args = jax.jit(search), (memory, keys)
    else:
        cls = {"ntm": NTM, "dnc": DNC, "sam": SAM, "sdnc": SDNC}[name]
        model = cls(task.input_size, task.output_size, key=jax.random.key(0),
                    **model_kwargs(name, n, search))
        params, static = eqx.partition(model, eqx.is_array)
        opt = optax.chain(optax.clip(10.0), optax.rmsprop(1e-4, decay=0.95, momentum=0.9))
        opt_state = opt.init(params)

        def train_step(params, opt_state, data):
            (loss, _), grads = jax.value_and_grad(sequence_loss, has_aux=True)(
                params, static, task, data)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        fn, args = jax.jit(train_step), (params, opt_state, data)

    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    result["compile_s"] = time.perf_counter() - start
    m = compiled.memory_analysis()
    estimate = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                - m.alias_size_in_bytes)
    result["xla_bytes"] = int(estimate)
    result["xla_temp_bytes"] = int(m.temp_size_in_bytes)
    free = available_bytes()
    if estimate > FIT_FRACTION * free:
        result["skipped"] = (f"XLA's estimate {estimate / 2**30:.1f} GiB exceeds half of the "
                             f"{free / 2**30:.1f} GiB available")
        return result
    start = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    calls = max(1, int(MIN_TIMING_S / max(time.perf_counter() - start, 1e-6)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = compiled(*args)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - start) / calls)
    result["step_s"] = statistics.median(times)
    result["per_time_step_ms"] = 1000 * result["step_s"] / steps
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result


def in_subprocess(name: str, n: int, batch: int, repeats: int, search: str = "exact",
                  length: int = LENGTH) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", name, str(n), str(batch),
                          "--repeats", str(repeats), "--search", search,
                          "--length", str(length)],
                         capture_output=True, text=True, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": name, "N": n, "batch": batch, "skipped": f"failed: {tail[:160]}"}
    return json.loads(lines[-1])


def describe(r: dict) -> str:
    head = f"{r['model']:6s} N {r['N']:8d} batch {r['batch']:2d}"
    if "skipped" in r:
        est = f" (XLA {r['xla_bytes'] / 2**20:,.0f} MiB)" if "xla_bytes" in r else ""
        return f"{head}  skipped: {r['skipped']}{est}"
    rss = r.get("peak_rss_bytes", 0) / 2**20
    return (f"{head}  {r['step_s'] * 1000:10.1f} ms/step ({r['per_time_step_ms']:8.2f} ms per "
            f"time step)  XLA {r['xla_bytes'] / 2**20:10.1f} MiB (temp "
            f"{r['xla_temp_bytes'] / 2**20:.1f})  peak RSS {rss:8.0f} MiB")


def plot(results: list[dict], path: str) -> None:
    from matplotlib.figure import Figure

    batches = sorted({r["batch"] for r in results})
    fig = Figure(figsize=(11, 4.2 * len(batches)))
    axes = fig.subplots(len(batches), 2, squeeze=False)
    for row, batch in zip(axes, batches):
        for name in MODELS:
            rs = sorted((r for r in results if r["model"] == name and r["batch"] == batch),
                        key=lambda r: r["N"])
            timed = [r for r in rs if "step_s" in r]
            if timed:
                row[0].plot([r["N"] for r in timed], [r["step_s"] * 1000 for r in timed],
                            "o-", label=name if name != "search" else "bare search (fwd)")
            est = [r for r in rs if "xla_bytes" in r and name != "search"]
            if est:
                row[1].plot([r["N"] for r in est], [r["xla_bytes"] / 2**20 for r in est],
                            "o-" if all("step_s" in r for r in est) else "o--", label=name)
        row[0].set_title(f"training step time, batch {batch}", loc="left", fontsize=10)
        row[0].set_ylabel("ms per training step")
        row[1].set_title(f"XLA's memory estimate of the step, batch {batch} "
                         "(dashed: not timed)", loc="left", fontsize=10)
        row[1].set_ylabel("MiB")
        for ax in row:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("memory rows N")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    p.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--plot", default=None, help="write the log-log plot here (png)")
    p.add_argument("--search", default="exact", choices=["exact", "lsh"],
                   help="SAM's search: exact, or approximate (memory/lsh.py)")
    p.add_argument("--length", type=int, default=LENGTH,
                   help="copy length L (2 L + 1 time steps)")
    p.add_argument("--one", nargs=3, metavar=("MODEL", "N", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        from mannlab import runtime

        runtime.configure("single", cache_dir="off")
        name, n, batch = args.one[0], int(args.one[1]), int(args.one[2])
        print(json.dumps(one(name, n, batch, args.repeats, args.search, args.length)),
              flush=True)
        return 0
    print(f"copy length {args.length} ({2 * args.length + 1} steps), LSTM-{CONTROLLER}, W = {WIDTH}, "
          f"K = {K}, K_L = {K_LINKS}, one read head, SAM's search {args.search}; "
          f"median of {args.repeats}; "
          f"{os.cpu_count()} cores", flush=True)
    results = []
    for batch in args.batches:
        for name in args.models:
            dense_gone = False
            for n in sorted(args.sizes):
                if dense_gone:
                    r = {"model": name, "N": n, "batch": batch,
                         "skipped": "a smaller N did not fit"}
                else:
                    r = in_subprocess(name, n, batch, args.repeats, args.search, args.length)
                    dense_gone = "skipped" in r
                results.append(r)
                print(describe(r), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
