"""Throughput of a full DNC training step on the copy task.

Setting: copy task with sequences of length 20 (8 bits, 41 time steps),
memory 128 x 20, 4 read heads, LSTM-100 controller. One step is forward +
backward + RMSprop update (gradients clipped), jitted, `lax.scan` over time.
Prints the median sequences per second over repeats for each batch size.

    .venv/bin/python benchmarks/dnc_step.py [--batches 1 16 64] [--repeats 7] [--naive]
    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        .venv/bin/python benchmarks/dnc_step.py
"""

import argparse
import statistics
import time

import equinox as eqx
import jax
import numpy as np
import optax

from mannlab.models.dnc import DNC
from mannlab.tasks.copy import CopyTask


def make_step(static, task, optimizer):
    """The jitted training step; the model runs without the padding mask, as
    in the trainer (`training/step.py: sequence_loss`)."""

    def loss_fn(params, batch):
        model = eqx.combine(params, static)
        ys, _ = model(batch.inputs, model.init_state(batch.inputs.shape[1]))
        return task.loss(ys, batch)[0]

    @jax.jit
    def step(params, opt_state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def setup(length: int = 20, **model_kw):
    """The benchmark's DNC (memory 128 x 20, 4 read heads, LSTM-100, RMSprop as
    in the configs) on copy sequences of `length`: returns (step, params,
    opt_state, task); `step` is jitted but not yet compiled."""
    task = CopyTask(bits=8, min_length=length, max_length=length)
    model = DNC(task.input_size, task.output_size, controller="lstm", controller_size=100,
                memory_size=128, memory_width=20, read_heads=4, key=jax.random.key(0),
                **model_kw)
    params, static = eqx.partition(model, eqx.is_array)
    optimizer = optax.chain(optax.clip(10.0), optax.rmsprop(1e-4, decay=0.95, momentum=0.9))
    return make_step(static, task, optimizer), params, optimizer.init(params), task


def measure(batch_size: int, repeats: int, seconds: float, length: int = 20,
            **model_kw) -> float:
    step, params, opt_state, task = setup(length, **model_kw)
    rng = np.random.default_rng(0)
    batches = [jax.device_put(task.sample(rng, batch_size, length)) for _ in range(4)]
    params, opt_state, loss = step(params, opt_state, batches[0])  # compile
    loss.block_until_ready()
    t0 = time.perf_counter()
    params, opt_state, loss = step(params, opt_state, batches[1])
    loss.block_until_ready()
    iters = max(2, int(seconds / (time.perf_counter() - t0)))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(iters):
            params, opt_state, loss = step(params, opt_state, batches[i % len(batches)])
        loss.block_until_ready()
        rates.append(iters * batch_size / (time.perf_counter() - t0))
    return statistics.median(rates)


def use_reference_formulation():
    """Swap the fast paths for the plain autodiff ones (for comparison): link
    update and directional weightings without the hand VJP, erase-and-add
    without the hand VJP, allocation by sorting; combine with ``remat=False``
    for the naive DNC."""
    from mannlab.memory.allocation import allocation_weighting_by_sort
    from mannlab.memory.read_write import erase_and_add
    from mannlab.memory.temporal_links import directional_weightings, link_update
    from mannlab.models import dnc

    def plain_link_step(link, precedence, write_weights, read_weights):
        new = link_update(link, precedence, write_weights)
        return (new,) + directional_weightings(new, read_weights)

    dnc.link_step = plain_link_step
    dnc.erase_and_add_one_head = erase_and_add
    dnc.allocation_weighting = allocation_weighting_by_sort


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="rough duration of one repeat")
    parser.add_argument("--naive", action="store_true",
                        help="plain autodiff DNC without remat, for comparison")
    args = parser.parse_args()
    if args.naive:
        use_reference_formulation()
    for b in args.batches:
        rate = measure(b, repeats=args.repeats, seconds=args.seconds,
                       **({"remat": False} if args.naive else {}))
        print(f"batch {b:4d}: {rate:8.1f} sequences/s  ({1000 * b / rate:7.2f} ms/step)",
              flush=True)


if __name__ == "__main__":
    from mannlab import runtime

    runtime.restart_with_huge_pages()  # as the `mannlab` program does
    main()
