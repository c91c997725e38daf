"""What running trials through Ray costs: `mannlab sweep` against `mannlab train --seeds`.

The same trials both ways, in alternation, on this machine: by default the
copy half of the memory-initialisation study (configs/sweeps/ntm-memory-init.yaml:
the NTM on copy at RMSprop 1e-4 x memory init {constant, learned, random} x
10 seeds, 30 trials). `mannlab sweep` runs them on a local Ray, one trial per
core; `mannlab train ntm-copy --seeds 10 model.memory_init=X` runs each
init's ten seeds one process per core, the three inits one after the other.
Both start from an empty compilation cache and their own directories. Each
repeat prints both wall clocks and their ratio; the end, the median ratio.
Ray's own start-up and shut-down (`ray.init` / `ray.shutdown` of a local
instance) are timed separately.

    python benchmarks/sweep_overhead.py [--seeds 10] [--repeats 2] [--dir /tmp/sweep-overhead]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

INITS = ["constant", "learned", "random"]
MANNLAB = [sys.executable, "-m", "mannlab"]


def timed(command: list[str], cache: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "MANNLAB_JAX_CACHE": cache})
    return time.perf_counter() - start


def through_ray(root: Path, seeds: int) -> float:
    sweep = root / "copy-inits.yaml"
    sweep.write_text(yaml.safe_dump({
        "base": "ntm-copy", "set": {"train.learning_rate": 1.0e-4},
        "grid": {"model.memory_init": INITS}, "seeds": seeds,
        "resources": {"cpus": 1, "gpus": 0}}))
    return timed([*MANNLAB, "sweep", str(sweep), "--dir", str(root / "sweep")],
                 tempfile.mkdtemp(dir=root))


def through_seeds(root: Path, seeds: int) -> float:
    cache = tempfile.mkdtemp(dir=root)
    return sum(timed([*MANNLAB, "train", "ntm-copy", "--seeds", str(seeds), "--no-progress",
                      "--run-dir", str(root / f"train-{init}"), "train.learning_rate=1.0e-4",
                      f"model.memory_init={init}"], cache) for init in INITS)


def ray_start_stop() -> tuple[float, float]:
    code = ("import time, ray; t = time.perf_counter(); ray.init(num_cpus=2, "
            "include_dashboard=False, log_to_driver=False); a = time.perf_counter() - t; "
            "t = time.perf_counter(); ray.shutdown(); print(a, time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[-2]), float(out[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "sweep-overhead")
    args = ap.parse_args()
    starts = [ray_start_stop() for _ in range(3)]
    print(f"ray.init {statistics.median(s[0] for s in starts):.2f} s, ray.shutdown "
          f"{statistics.median(s[1] for s in starts):.2f} s (median of 3)")
    ratios = []
    for r in range(args.repeats):
        walls = {}
        order = [("sweep", through_ray), ("train --seeds", through_seeds)]
        for how, run in (order if r % 2 == 0 else order[::-1]):  # alternate who goes first
            root = args.dir / f"r{r}-{how.split()[0]}"
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            walls[how] = run(root, args.seeds)
        ratios.append(walls["sweep"] / walls["train --seeds"])
        print(f"repeat {r}: mannlab sweep {walls['sweep']:.1f} s, mannlab train --seeds "
              f"{walls['train --seeds']:.1f} s, ratio {ratios[-1]:.3f}", flush=True)
    print(f"median ratio sweep / train --seeds: {statistics.median(ratios):.3f} "
          f"({len(INITS) * args.seeds} trials, {args.repeats} repeats)")


if __name__ == "__main__":
    main()
