"""Approximate against exact top-K search over a memory (issue 18): recall@K
and time per query of `memory/lsh.py` (spherical hashing into 2^P random
Voronoi cells, the T nearest cells probed, exact re-ranking) against
`memory/sparse_read.py: exact_top_k`, at N = 1K to 1M rows.

Memory: N rows of W = 20 standard normal entries, all indexed
(`build_index`; by default 2^P = 4 sqrt(N) cells, C = twice the mean
occupancy, T = 128 cells probed: `lsh.default_bits`, `default_capacity`,
`DEFAULT_PROBES`; "indexed" is the fraction of rows that found a slot). Queries, 64 per setting, K = 8: "near": a stored
row plus normal noise of 0.1 per entry (about 6 degrees away: what a read of
stored content asks); "noisy": noise 0.3 (17 degrees); "random": a fresh
random vector. recall@K = |approximate top K ∩ exact top K| / K, averaged;
"hit" = how often the stored row the query came from is the approximate
search's first row. Time: median of 5 jitted calls of the 64 queries, one
query at a time (`lax.map`, as SAM searches at batch 1 with one read head;
one batch of 64 would gather 64 T C rows at once, slow on XLA's CPU
backend), exact and approximate, in ms for all 64; "cand" = B rows
re-ranked per query (by default the rows T cells hold on average).

    python benchmarks/approximate_search.py [--sizes 1024 8192 65536 1048576]
        [--bits P] [--capacity C] [--probes 32 64 128] [--no-time]
"""

import argparse
import statistics
import sys
import time

W, K, QUERIES = 20, 8, 64


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
    p.add_argument("--bits", type=int, default=None,
                   help="2^P cells for every size (default: lsh.default_bits(N))")
    p.add_argument("--capacity", type=int, default=None,
                   help="C slots per cell (default: lsh.default_capacity(N, P))")
    p.add_argument("--probes", type=int, nargs="+", default=[None],
                   help="T cells probed (default: lsh.DEFAULT_PROBES)")
    p.add_argument("--candidates", type=float, nargs="+", default=[1.0],
                   help="B = this x lsh.default_candidates (the rows T cells hold on average); "
                        "0: every slot of the T cells")
    p.add_argument("--no-time", action="store_true", help="recall only")
    args = p.parse_args()
    from mannlab import runtime

    runtime.configure("single", cache_dir="off")
    import jax
    import numpy as np

    from mannlab.memory.lsh import (
        DEFAULT_PROBES,
        build_index,
        default_bits,
        default_candidates,
        default_capacity,
        lsh_top_k,
        random_centroids,
    )
    from mannlab.memory.sparse_read import exact_top_k

    print(f"W = {W}, K = {K}, {QUERIES} queries; median of 5 timings", flush=True)
    print(f"{'N':>8s} {'P':>3s} {'C':>4s} {'indexed':>7s} {'T':>5s} {'cand':>6s} "
          f"{'queries':>7s} {'recall@K':>8s} {'hit':>5s} {'exact ms':>9s} {'approx ms':>9s}",
          flush=True)
    one_by_one = lambda search: jax.jit(
        lambda m, q, *a: jax.lax.map(lambda k: search(m, k[None], *a)[0], q))
    exact = one_by_one(lambda m, q: exact_top_k(m, q, K))
    for n in args.sizes:
        bits = args.bits if args.bits is not None else default_bits(n)
        capacity = args.capacity or default_capacity(n, bits)
        memory = jax.random.normal(jax.random.key(0), (n, W))
        centroids = random_centroids(jax.random.key(1), bits, W)
        index = jax.jit(build_index, static_argnums=2)(memory, centroids, capacity)
        indexed = float(np.mean(np.asarray(index.row_bucket[:n]) >= 0))
        targets = jax.random.choice(jax.random.key(2), n, (QUERIES,), replace=False)
        noise = jax.random.normal(jax.random.key(3), (QUERIES, W))
        kinds = (("near", memory[targets] + 0.1 * noise),
                 ("noisy", memory[targets] + 0.3 * noise),
                 ("random", noise))
        truth = {name: np.asarray(exact(memory, keys)) for name, keys in kinds}
        t_exact = {name: (timed(exact, memory, keys) * 1000 if not args.no_time else float("nan"))
                   for name, keys in kinds}
        for probes in args.probes:
            probes = min(probes or DEFAULT_PROBES, 2 ** bits)
            for factor in args.candidates:
                budget = (round(factor * default_candidates(n, bits, probes))
                          if factor else probes * capacity)
                approx = one_by_one(
                    lambda m, q, ix, c, t=probes, b=budget: lsh_top_k(m, q, c, ix, K, t, b))
                for name, keys in kinds:
                    a, e = np.asarray(approx(memory, keys, index, centroids)), truth[name]
                    recall = np.mean([len(set(x) & set(y)) / K for x, y in zip(a, e)])
                    hit = (np.mean(a[:, 0] == np.asarray(targets)) if name != "random"
                           else float("nan"))
                    t_approx = (timed(approx, memory, keys, index, centroids) * 1000
                                if not args.no_time else float("nan"))
                    print(f"{n:8d} {bits:3d} {capacity:4d} {indexed:7.4f} {probes:5d} "
                          f"{budget:6d} {name:>7s} {recall:8.3f} {hit:5.2f} "
                          f"{t_exact[name]:9.2f} {t_approx:9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
