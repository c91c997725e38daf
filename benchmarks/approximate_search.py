"""Approximate against exact top-K search over a memory (issue 18): recall@K
and time per query of `memory/lsh.py` (random-hyperplane hashing, multi-probe)
against `memory/sparse_read.py: exact_top_k`, at N = 1K to 1M rows.

Memory: N rows of W = 20 standard normal entries, all indexed
(`build_index`; P = log2(N / 8) hyperplanes, rounded, at least 4: about 8
rows per bucket; C = 32 slots per bucket). Queries, 64 per setting, K = 8:
"near": a stored row plus normal noise of 0.1 per entry (about 6 degrees
away: what a read of stored content asks); "noisy": noise 0.3 (17 degrees);
"random": a fresh random vector. recall@K = |approximate top K ∩ exact top
K| / K, averaged; "hit" = how often the stored row the query came from is
the approximate search's first row. Time: median of 5 jitted calls of the
64 queries (one batch), exact and approximate.

    python benchmarks/approximate_search.py [--sizes 1024 8192 65536 1048576] [--radius 2]
"""

import argparse
import statistics
import sys
import time

W, K, QUERIES, CAPACITY = 20, 8, 64, 32


def timed(fn, *args, repeats=5):
    import jax

    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 8192, 65536, 1048576])
    p.add_argument("--radius", type=int, default=1, choices=[0, 1, 2],
                   help="probe the buckets within this many bits of the key's code")
    args = p.parse_args()
    from mannlab import runtime

    runtime.configure("single", cache_dir="off")
    import jax
    import numpy as np

    from mannlab.memory.lsh import build_index, lsh_top_k, random_planes
    from mannlab.memory.sparse_read import exact_top_k

    print(f"W = {W}, K = {K}, {QUERIES} queries, C = {CAPACITY} slots per bucket, probe "
          f"radius {args.radius} bits; "
          "median of 5 timings", flush=True)
    print(f"{'N':>8s} {'P':>3s} {'queries':>7s} {'recall@K':>8s} {'hit':>5s} "
          f"{'exact ms':>9s} {'approx ms':>9s}", flush=True)
    for n in args.sizes:
        bits = max(4, round(float(np.log2(n / 8))))
        memory = jax.random.normal(jax.random.key(0), (n, W))
        planes = random_planes(jax.random.key(1), bits, W)
        index = jax.jit(build_index, static_argnums=2)(memory, planes, CAPACITY)
        exact = jax.jit(lambda m, q: exact_top_k(m, q, K))
        approx = jax.jit(lambda m, q, ix, pl: lsh_top_k(m, q, pl, ix, K, args.radius))
        targets = jax.random.choice(jax.random.key(2), n, (QUERIES,), replace=False)
        noise = jax.random.normal(jax.random.key(3), (QUERIES, W))
        for name, keys in (("near", memory[targets] + 0.1 * noise),
                           ("noisy", memory[targets] + 0.3 * noise),
                           ("random", noise)):
            e, a = np.asarray(exact(memory, keys)), np.asarray(approx(memory, keys, index, planes))
            recall = np.mean([len(set(x) & set(y)) / K for x, y in zip(a, e)])
            hit = np.mean(a[:, 0] == np.asarray(targets)) if name != "random" else float("nan")
            t_exact = timed(exact, memory, keys) * 1000
            t_approx = timed(approx, memory, keys, index, planes) * 1000
            print(f"{n:8d} {bits:3d} {name:>7s} {recall:8.3f} {hit:5.2f} {t_exact:9.2f} "
                  f"{t_approx:9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
