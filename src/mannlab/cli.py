"""The `mannlab` command: train, resume, evaluate and show runs.

    mannlab train CONFIG.yaml [key=value ...] [--seeds N] [--run-dir DIR]
    mannlab train --resume RUN [train.max_steps=N ...]
    mannlab eval RUN --lengths 10 20 30 50 120
    mannlab show RUN --length 40 -o copy.png
    mannlab report RUN [RUN ...] -o report.html
"""

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

from mannlab import runtime


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mannlab", description=__doc__.split("\n")[0])
    p.add_argument("--threads", choices=["single", "multi"], default="single",
                   help="XLA CPU threads per process (default: single; see docs/benchmarks.md)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a YAML config, or resume a run")
    t.add_argument("config", nargs="?", help="YAML config (see configs/)")
    t.add_argument("overrides", nargs="*", help="config overrides: train.batch_size=16 ...")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    t.add_argument("--seeds", type=int, default=1, help="train N seeds: seed, seed+1, ...")
    t.add_argument("--execution", choices=["auto", "vmap", "processes"], default="auto",
                   help="how to run several seeds (auto: processes on CPU, vmap on GPU)")
    t.add_argument("--run-dir", help="run directory (default: runs/<config>-<time>)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="generalisation table of a trained run")
    e.add_argument("run", help="RUN or RUN/seed-K")
    e.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 30, 50, 120])
    e.add_argument("--repeats", type=int, nargs="+", help="repeat counts (repeat-copy)")
    e.add_argument("--sequences", type=int, default=1000, help="sequences per length")

    s = sub.add_parser("show", help="figure of a trained model on one sequence")
    s.add_argument("run", help="RUN or RUN/seed-K (first seed if RUN)")
    s.add_argument("--length", type=int, default=40)
    s.add_argument("--repeats", type=int, help="repeat count (repeat-copy)")
    s.add_argument("--sample-seed", type=int, default=0, help="which random sequence")
    s.add_argument("-o", "--output", default="show.png")

    r = sub.add_parser("report", help="self-contained HTML report of one or several runs")
    r.add_argument("runs", nargs="+", metavar="RUN", help="run directories (overlaid)")
    r.add_argument("-o", "--output", default="report.html")
    r.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 30, 50, 120],
                   help="generalisation lengths for seeds without eval.json")
    r.add_argument("--sequences", type=int, default=1000,
                   help="sequences per length for seeds without eval.json")
    r.add_argument("--show-lengths", type=int, nargs="+",
                   help="lengths of the memory figures (default: the longest training "
                        "length and the longest evaluated one)")
    r.add_argument("--title", help="report title")
    return p


def _print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    names = result["metrics"]
    table = Table(title=f"per sequence, mean of {result['sequences']} sequences per row")
    table.add_column("seed")
    table.add_column("length", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    for seed, rows in result["seeds"].items():
        for length, metrics in rows.items():
            table.add_row(seed, length, *(f"{metrics[n]:.4g}" for n in names))
    seeds = list(result["seeds"].values())
    if len(seeds) > 1:  # NTMs are seed-sensitive: the median seed is the honest summary
        table.add_section()
        for length in seeds[0]:
            table.add_row(f"median of {len(seeds)}", length,
                          *(f"{_median([s[length][n] for s in seeds]):.4g}" for n in names))
    Console().print(table)


def _median(values: list[float]) -> float:
    """The median, NaN if any value is NaN (a diverged seed is not skipped)."""
    return math.nan if any(math.isnan(v) for v in values) else statistics.median(values)


def cmd_train(args) -> int:
    from mannlab.config import ConfigError, load_config
    from mannlab.training import rundir
    from mannlab.training.seeds import choose_execution, train_in_processes

    if args.resume:
        overrides = ([args.config] if args.config else []) + args.overrides
        run, config, seed_paths = rundir.open_run(args.resume)
        if overrides:
            config = rundir.extend_budget(run, overrides)
        seeds = [rundir.seed_of(p) for p in seed_paths]
    else:
        if not args.config:
            raise ConfigError("train needs a CONFIG.yaml (or --resume RUN)")
        if args.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
        config = load_config(args.config, args.overrides)
        _check_buildable(config, args.config)
        seeds = [config.seed + k for k in range(args.seeds)]
        run = Path(args.run_dir) if args.run_dir else rundir.new_run_dir(
            "runs", Path(args.config).stem)
        rundir.create_run(run, config, seeds)
    print(f"run directory: {run}")
    print(f"watch it live:  tensorboard --logdir {run}")
    execution = choose_execution(args.execution, len(seeds))
    started = time.perf_counter()
    if execution == "processes":
        print(f"training {len(seeds)} seeds in separate processes ...")

        def done(r):
            print(f"  seed {r['seed']}: {_status(r)}", flush=True)

        results = train_in_processes(run, seeds, on_done=done)
    else:
        from mannlab.training.progress import ProgressReporter
        from mannlab.training.trainer import make_trainer

        trainer = make_trainer(run, config, seeds,
                          reporter=None if args.no_progress else ProgressReporter())
        results = [r.__dict__ for r in trainer.train()]
        for r in results:
            print(f"  seed {r['seed']}: {_status(r)}")
    converged = sum(r["converged"] is not None for r in results)
    print(f"{converged}/{len(results)} seeds converged; wall clock "
          f"{time.perf_counter() - started:.1f} s")
    _write_seed_results(run / "seeds.json", results)
    return 0


def _write_seed_results(path: Path, results: list[dict]) -> None:
    """seeds.json: every seed's result, these replacing earlier ones of the
    same seeds (resuming one seed keeps the others' results)."""
    earlier = json.loads(path.read_text()) if path.exists() else []
    fresh = {r["seed"] for r in results}
    merged = [r for r in earlier if r["seed"] not in fresh] + results
    path.write_text(json.dumps(sorted(merged, key=lambda r: r["seed"]), indent=2) + "\n")


def _check_buildable(config, source: str) -> None:
    """Build the task, and the model's shapes, once before the run directory
    is made, so that a combination of fields the task or model rejects (or a
    missing or damaged data file) is a one-line ConfigError and leaves nothing
    behind."""
    import lzma

    import equinox as eqx
    import jax

    from mannlab.config import ConfigError

    try:
        task = config.task.build()
        # token-id tasks put an embedding in front: any input size checks the model
        inputs = task.input_size if getattr(task, "vocab_size", None) is None else 1
        eqx.filter_eval_shape(config.model.build, inputs, task.output_size,
                              jax.random.key(config.seed))
    except (ValueError, OSError, EOFError, lzma.LZMAError) as err:
        raise ConfigError(f"{source}: {err}") from None


def _status(r: dict) -> str:
    held = ", ".join(f"{k} {v:.4g}" for k, v in (r["heldout"] or {}).items())
    if r["converged"]:
        c = r["converged"]
        return f"converged at step {c['step']} ({c['seconds']:.1f} s); held-out {held}"
    return f"not converged after {r['steps']} steps ({r['seconds']:.1f} s); held-out {held}"


def _check_repeats(config, repeats) -> None:
    from mannlab.config import ConfigError

    if repeats and config.task.name != "repeat_copy":
        raise ConfigError(f"--repeats applies to repeat_copy runs; this run's task is "
                          f"{config.task.name}")


def _note_skipped(result: dict) -> None:
    if result.get("skipped"):
        print(f"skipped lengths {' '.join(map(str, result['skipped']))}: the task has no "
              "sequence of that length")


def cmd_eval(args) -> int:
    from mannlab.training.evaluate import generalisation, save_eval
    from mannlab.training.rundir import open_run

    _, config, seed_paths = open_run(args.run)
    _check_repeats(config, args.repeats)
    if args.repeats:
        result = None
        for r in args.repeats:
            part = generalisation(config, seed_paths, args.lengths, args.sequences, repeats=r)
            _note_skipped(part)
            _print_table(part)
            result = result or {**part, "by_repeats": {}}
            result["by_repeats"][str(r)] = part["seeds"]
        save_eval(seed_paths, result)
        return 0
    result = generalisation(config, seed_paths, args.lengths, args.sequences)
    _note_skipped(result)
    _print_table(result)
    save_eval(seed_paths, result)
    return 0


def cmd_show(args) -> int:
    from mannlab.training.evaluate import trace_sequence
    from mannlab.training.rundir import open_run
    from mannlab.viz.figures import save_figure, sequence_figure

    _, config, seed_paths = open_run(args.run)
    _check_repeats(config, args.repeats)
    kwargs = {"repeats": args.repeats} if args.repeats else {}
    batch, probs, trace = trace_sequence(config, seed_paths[0], args.length, args.sample_seed,
                                         **kwargs)
    from mannlab.viz.figures import figure_title
    from mannlab.viz.trace import memory_before

    title = figure_title(config, args.length, seed_paths[0].name)
    save_figure(sequence_figure(batch, probs, trace, title,
                                memory_before=memory_before(config, seed_paths[0])),
                args.output)
    print(f"wrote {args.output}")
    return 0


def cmd_report(args) -> int:
    from mannlab.viz.report import build_report

    out = build_report(args.runs, args.output, args.lengths, args.sequences,
                       args.show_lengths, args.title)
    print(f"wrote {out['output']}: {len(out['figures'])} figures, {len(out['tables'])} tables")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    runtime.configure(args.threads)
    from mannlab.config import ConfigError
    from mannlab.training.checkpoint import CheckpointError

    commands = {"train": cmd_train, "eval": cmd_eval, "show": cmd_show, "report": cmd_report}
    try:
        return commands[args.command](args)
    except (ConfigError, CheckpointError) as err:
        print(f"mannlab: error: {err}", file=sys.stderr)
        return 2


def entry() -> None:
    """The `mannlab` program: restarts itself once with huge pages for
    malloc (`runtime.restart_with_huge_pages`), then runs `main`."""
    runtime.restart_with_huge_pages()
    sys.exit(main())


if __name__ == "__main__":
    entry()
