"""The `mannlab` command: train, resume, evaluate, draw and report runs.

    mannlab train CONFIG.yaml [key=value ...] [--seeds N] [--run-dir DIR]
    mannlab train --resume RUN [train.max_steps=N ...]
    mannlab eval RUN --lengths 10 20 30 50 120
    mannlab show RUN --length 40 -o copy.png
    mannlab report RUN [RUN ...] -o report.html
    mannlab configs
    mannlab pretrained
    mannlab sweep SWEEP.yaml [--dir DIR] [--address ADDR --storage PATH_OR_URI]
    mannlab bench chomsky --models lstm ntm dnc [--tasks ...] [--steps N] [--seeds S] [--dir DIR]
    mannlab bench babi --models dnc dnc-md lstm ntm [--tasks 1 2 3 19] [--steps N] [--seeds S]
"""

import argparse
import math
import statistics
import sys
import time

from rich.console import Console
from rich.table import Table

from mannlab import api, bench, pretrained, runtime, sweep
from mannlab.config import ConfigError, shipped_configs
from mannlab.training.checkpoint import CheckpointError
from mannlab.training.trainer import TrainingInterrupted
from mannlab.viz.figures import save_figure
from mannlab.viz.report import build_report

RESTART_NOTE = """On Linux the program restarts itself once, before anything else, with
glibc's malloc asking for transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1),
which makes the large per-step buffers of a training step much cheaper. Set
MANNLAB_NO_RESTART=1 (or GLIBC_TUNABLES=glibc.malloc.hugetlb=0) to skip it.
Options and config overrides may come in any order."""


def _commands() -> dict[str, argparse.ArgumentParser]:
    """One parser per command (each parses options and positionals intermixed)."""
    t = argparse.ArgumentParser(prog="mannlab train",
                                description="train a model from a YAML config, or resume a run")
    t.add_argument("config", nargs="?", help="YAML config file or shipped config name "
                   "(`mannlab configs`)")
    t.add_argument("overrides", nargs="*", help="config overrides: train.batch_size=16 ...")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    t.add_argument("--restart", action="store_true",
                   help="with --resume: seeds without a checkpoint train from step 0")
    t.add_argument("--seeds", type=int, default=1, help="train N seeds: seed, seed+1, ...")
    t.add_argument("--execution", choices=["auto", "vmap", "processes"], default="auto",
                   help="how to run several seeds (auto: processes on CPU, vmap on GPU)")
    t.add_argument("--run-dir", help="run directory (default: runs/<config>-<time>)")
    t.add_argument("--no-progress", action="store_true", help="no progress display")

    e = argparse.ArgumentParser(prog="mannlab eval",
                                description="generalisation table of a trained run")
    e.add_argument("run", help="RUN, RUN/seed-K or pretrained:NAME (`mannlab pretrained`)")
    e.add_argument("--lengths", type=int, nargs="*", default=list(api.DEFAULT_LENGTHS),
                   help="sequence lengths to evaluate (none: only the task's own splits)")
    e.add_argument("--repeats", type=int, nargs="+", help="repeat counts (repeat-copy)")
    e.add_argument("--sequences", type=int, default=1000, help="sequences per length")
    e.add_argument("--train-limit", type=int,
                   help="language tasks: score only the first N training examples")

    s = argparse.ArgumentParser(prog="mannlab show",
                                description="figure of a trained model on one sequence")
    s.add_argument("run", help="RUN, RUN/seed-K (first seed if RUN) or pretrained:NAME")
    s.add_argument("--length", type=int, default=40)
    s.add_argument("--repeats", type=int, help="repeat count (repeat-copy)")
    s.add_argument("--sample-seed", type=int, default=0, help="which random sequence")
    s.add_argument("-o", "--output", default="show.png")

    r = argparse.ArgumentParser(prog="mannlab report",
                                description="self-contained HTML report of one or several runs")
    r.add_argument("runs", nargs="+", metavar="RUN",
                   help="run directories or pretrained:NAME (overlaid)")
    r.add_argument("-o", "--output", default="report.html")
    r.add_argument("--lengths", type=int, nargs="+", default=list(api.DEFAULT_LENGTHS),
                   help="generalisation lengths for seeds without eval.json")
    r.add_argument("--sequences", type=int, default=1000,
                   help="sequences per length for seeds without eval.json")
    r.add_argument("--show-lengths", type=int, nargs="+",
                   help="lengths of the memory figures (default: the longest training "
                        "length and the longest evaluated one)")
    r.add_argument("--title", help="report title")

    c = argparse.ArgumentParser(prog="mannlab configs",
                                description="list the configs that ship with mannlab")
    p = argparse.ArgumentParser(prog="mannlab pretrained",
                                description="list the trained models that ship with mannlab")
    w = argparse.ArgumentParser(prog="mannlab sweep",
                                description="run a sweep of configurations x seeds on Ray")
    w.add_argument("sweep", help="sweep file (docs/sweeps.md) or shipped sweep name")
    w.add_argument("--dir", help="sweep directory (default: sweeps/<sweep name>); the same "
                   "command again skips finished trials and resumes interrupted ones")
    w.add_argument("--address", help="a running Ray cluster, as ray.init takes it (default: "
                   "start Ray on this machine, one trial per core)")
    w.add_argument("--storage", help="with --address: a path or S3-style URI every node "
                   "sees, for Tune's checkpoints (its storage_path)")
    b = argparse.ArgumentParser(
        prog="mannlab bench", description="a benchmark suite: tasks x models trained, scored "
        "and set beside the published numbers")
    b.add_argument("suite", help=f"the suite: {', '.join(bench.SUITES)}")
    b.add_argument("--models", nargs="*", default=[], help="models to train, e.g. lstm ntm dnc")
    b.add_argument("--tasks", nargs="+", help="tasks (default: the suite's first subset; all: "
                   "every task)")
    b.add_argument("--steps", metavar="N", help="training steps (default: the base configs')")
    b.add_argument("--seeds", metavar="S", default="1", help="seeds per task x model x "
                   "learning rate (default 1; the paper: 10)")
    b.add_argument("--learning-rates", nargs="+", metavar="LR",
                   help="learning rates (default: the base configs' own)")
    b.add_argument("--max-length", metavar="L", help="chomsky: evaluate test lengths up to L "
                   "only (stated in every table)")
    b.add_argument("--sequences", metavar="N", help="chomsky: sequences per test length; babi: "
                   "the first N test stories of each task (default: the suite's)")
    b.add_argument("--set", action="append", default=[], metavar="[MODEL:]KEY=VALUE",
                   help="config override for every model that has the field, or for MODEL: "
                   "--set model.controller_size=64 --set lstm:model.hidden_size=64")
    b.add_argument("--runner", default="auto", help="auto (a sweep on Ray when Ray is "
                   "installed, else in this process), sweep or local")
    b.add_argument("--dir", help="bench directory (default: bench/<suite>); the same command "
                   "again skips finished training and scoring")
    return {"train": t, "eval": e, "show": s, "report": r, "configs": c, "pretrained": p,
            "sweep": w, "bench": b}


def _parser(commands: dict[str, argparse.ArgumentParser]) -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<8} {p.description}" for name, p in commands.items())
    p = argparse.ArgumentParser(
        prog="mannlab", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n")[0],
        epilog=f"commands:\n{listing}\n\n`mannlab COMMAND --help` for a command's options.\n\n"
               f"{RESTART_NOTE}")
    p.add_argument("--threads", choices=["single", "multi"], default="single",
                   help="XLA CPU threads per process (default: single; see docs/performance-notes.md)")
    p.add_argument("command", choices=list(commands), help="what to do")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the command's arguments")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The global options, the command, and the command's own arguments in any order."""
    commands = _commands()
    top = _parser(commands).parse_args(argv)
    args = commands[top.command].parse_intermixed_args(top.args)
    args.command, args.threads = top.command, top.threads
    return args


def _print_table(result: dict) -> None:
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
    _console().print(table)


def _console() -> Console:
    """A console that prints whole lines where output is not a terminal (CI
    logs, files): no wrapping of a table into a terminal's width."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _median(values: list[float]) -> float:
    """The median, NaN if any value is NaN (a diverged seed is not skipped)."""
    return math.nan if any(math.isnan(v) for v in values) else statistics.median(values)


def cmd_train(args) -> int:
    def done(r):
        print(f"  seed {r['seed']}: {_status(r)}", flush=True)

    started = time.perf_counter()
    progress = not args.no_progress
    if args.resume:
        overrides = ([args.config] if args.config else []) + args.overrides
        print(f"run directory: {args.resume}")
        run = api.resume(args.resume, overrides, args.execution, progress, on_done=done,
                         restart=args.restart)
    else:
        if not args.config:
            raise ConfigError("train needs a CONFIG.yaml (or --resume RUN)")
        if args.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
        run = api.train(args.config, args.overrides, args.run_dir, args.seeds, args.execution,
                        progress, on_done=done, on_start=_announce)
    converged = sum(r["converged"] is not None for r in run.seeds)
    print(f"{converged}/{len(run.seeds)} seeds converged; wall clock "
          f"{time.perf_counter() - started:.1f} s")
    if all(r["diverged"] for r in run.seeds):
        print(f"mannlab: every seed diverged (non-finite loss or parameters); their last "
              f"finite checkpoints are kept in {run.path}", file=sys.stderr)
        return 1
    return 0


def _announce(run) -> None:
    print(f"run directory: {run}")
    print(f"watch it live:  tensorboard --logdir {run}", flush=True)


def _status(r: dict) -> str:
    if r["diverged"]:
        d = r["diverged"]
        return (f"diverged at step {d['step']} (non-finite {d['non_finite']}); its last "
                f"finite checkpoint is kept")
    held = ", ".join(f"{k} {v:.4g}" for k, v in (r["heldout"] or {}).items())
    if r["converged"]:
        c = r["converged"]
        return f"converged at step {c['step']} ({c['seconds']:.1f} s); held-out {held}"
    return f"not converged after {r['steps']} steps ({r['seconds']:.1f} s); held-out {held}"


def _note_skipped(result: dict) -> None:
    if result.get("skipped"):
        print(f"skipped lengths {' '.join(map(str, result['skipped']))}: the task has no "
              "sequence of that length")


def cmd_eval(args) -> int:
    result = api.evaluate(args.run, args.lengths, args.sequences, args.repeats,
                          args.train_limit)
    for part in (result["by_repeats"].values() if args.repeats else [result]):
        _note_skipped(part)
        if part["lengths"]:
            _print_table(part)
    if "splits" in result:
        _print_splits(result["splits"])
    return 0


SPLIT_COLUMNS = ("micro_f1", "weighted_precision", "weighted_recall", "weighted_f1",
                 "whole_accuracy")


def _print_splits(splits: dict) -> None:
    """The task's own scores per seed and split, then its baselines'."""
    table = Table(title="scores on the task's splits")
    for column in ("seed", "split", *SPLIT_COLUMNS, "sequences"):
        table.add_column(column, justify="left" if column in ("seed", "split") else "right")
    rows = [(seed, split, scores) for seed, by_split in splits["seeds"].items()
            for split, scores in by_split.items()]
    rows += [(name, split, scores) for name, by_split in splits["baselines"].items()
             for split, scores in by_split.items()]
    for who, split, scores in rows:
        table.add_row(who, split, *(f"{scores[c]:.3f}" if c in scores else "" for c in
                                    SPLIT_COLUMNS), str(scores.get("sequences", "")))
    _console().print(table)


def cmd_show(args) -> int:
    save_figure(api.figure(args.run, args.length, args.sample_seed, args.repeats), args.output)
    print(f"wrote {args.output}")
    return 0


def cmd_report(args) -> int:
    out = build_report(args.runs, args.output, args.lengths, args.sequences,
                       args.show_lengths, args.title)
    print(f"wrote {out['output']}: {len(out['figures'])} figures, {len(out['tables'])} tables")
    return 0


def cmd_configs(args) -> int:
    for name, description in shipped_configs().items():
        print(f"{name:<28} {description}")
    return 0


def cmd_pretrained(args) -> int:
    table = Table(title="pretrained models: use as pretrained:NAME wherever a run is taken")
    for column in ("name", "held-out bits wrong", "trained by"):
        table.add_column(column, justify="right" if column.startswith("held") else "left")
    for name in pretrained.names():
        about = pretrained.info(name)
        table.add_row(name, f"{about['heldout_bits_wrong']:.4f}", about["command"])
    _console().print(table)
    return 0


def cmd_sweep(args) -> int:
    started = time.perf_counter()
    done = sweep.run_sweep(args.sweep, args.dir, args.address, args.storage)
    _console().print(sweep.results.summary_table(done.data))
    print(f"{done.path}/sweep.json, sweep.csv; trials in {done.path}/trials; wall clock "
          f"{time.perf_counter() - started:.1f} s")
    for t in done.errors:
        print(f"mannlab: trial {t['id']} failed: {t['error']}", file=sys.stderr)
    if done.pending:
        print(f"mannlab: sweep interrupted with {len(done.pending)} trial(s) to go; run the "
              f"same command again to continue", file=sys.stderr)
        return 130
    return 1 if done.errors else 0


def _whole(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{option}: expected a whole number, got {text!r}") from None


def _number(option: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{option}: expected a number, got {text!r}") from None


def cmd_bench(args) -> int:
    started = time.perf_counter()
    options = bench.BenchOptions(
        models=tuple(args.models), tasks=tuple(args.tasks) if args.tasks else None,
        steps=_whole("--steps", args.steps), seeds=_whole("--seeds", args.seeds),
        learning_rates=(tuple(_number("--learning-rates", v) for v in args.learning_rates)
                        if args.learning_rates else None),
        max_length=_whole("--max-length", args.max_length),
        sequences=_whole("--sequences", args.sequences), sets=tuple(args.set),
        runner=args.runner)
    done = bench.run_bench(args.suite, options, args.dir or f"bench/{args.suite}")
    _console().print(bench.summary_table(done.data))
    print(f"{done.path}/bench.json; {done.scored} seed(s) scored in this call; wall clock "
          f"{time.perf_counter() - started:.1f} s; `mannlab report {done.path}` draws it")
    if done.missing:
        print(f"mannlab: {len(done.missing)} seed(s) not trained: {', '.join(done.missing)}; "
              "run the same command again to continue", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runtime.configure(args.threads)
    commands = {"train": cmd_train, "eval": cmd_eval, "show": cmd_show, "report": cmd_report,
                "configs": cmd_configs, "pretrained": cmd_pretrained, "sweep": cmd_sweep,
                "bench": cmd_bench}
    try:
        return commands[args.command](args)
    except (ConfigError, CheckpointError) as err:
        print(f"mannlab: error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted as stop:
        print(f"mannlab: {stop}", file=sys.stderr)
        return 128 + stop.signum
