"""Where the NTM's training step spends its time: memory size vs controller size.

Times the jitted gradient of the copy loss (length 20, 41 time steps) for the
default NTM (memory 128 x 20, LSTM-100) and for variants with a 16-row memory
and/or a 10-unit controller, interleaved in one process, and prints the
median and minimum over rounds. What the 16-row, 10-unit variant still costs
is the part of the step that does not depend on either size (per-op and
per-iteration overhead of the compiled loop).

    python benchmarks/ntm_cost_split.py [--batch 1] [--rounds 15]
"""

import argparse
import statistics
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    from mannlab import runtime

    runtime.configure("single", cache_dir="off")
    import equinox as eqx
    import jax
    import numpy as np

    from mannlab.models.ntm import NTM
    from mannlab.tasks.copy import CopyTask

    task = CopyTask(bits=8, min_length=20, max_length=20)
    batch = jax.device_put(task.sample(np.random.default_rng(0), args.batch, 20))
    variants = {"memory 128, controller 100": {}, "memory 16, controller 100":
                {"memory_size": 16}, "memory 128, controller 10": {"controller_size": 10},
                "memory 16, controller 10": {"memory_size": 16, "controller_size": 10}}
    grads = {}
    for name, sizes in variants.items():
        model = NTM(task.input_size, task.output_size, key=jax.random.key(0), **sizes)
        params, static = eqx.partition(model, eqx.is_array)

        def loss(p, static=static):
            m = eqx.combine(p, static)
            ys, _ = m(batch.inputs, m.init_state(args.batch))
            return task.loss(ys, batch)[0]

        grad = jax.jit(jax.grad(loss))
        jax.block_until_ready(grad(params))
        grads[name] = (grad, params)
    calls = max(2, 20 // args.batch)
    times = {name: [] for name in grads}
    for _ in range(args.rounds):
        for name, (grad, params) in grads.items():
            start = time.perf_counter()
            for _ in range(calls):
                out = grad(params)
            jax.block_until_ready(out)
            times[name].append(1e3 * (time.perf_counter() - start) / calls)
    print(f"gradient of the copy loss, batch {args.batch}, length 20 (ms per step)")
    for name, ts in times.items():
        print(f"{name:28s} median {statistics.median(ts):6.2f}  min {min(ts):6.2f}")


if __name__ == "__main__":
    main()
