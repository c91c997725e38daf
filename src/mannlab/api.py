"""mannlab's Python API: train, resume, evaluate, load and draw runs.

    import mannlab
    run = mannlab.train("ntm-copy", overrides=["train.max_steps=2000"], seeds=2)
    table = mannlab.evaluate(run.path, lengths=[10, 20, 40])
    model = mannlab.load(run.path)                   # the trained Equinox module
    mannlab.figure(run.path, length=20).savefig("copy-20.png")

The CLI (`mannlab.cli`) is a thin layer over these functions.
"""

import functools
import lzma
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import equinox as eqx

from mannlab.config import ConfigError, RunConfig, build_model, find_config, load_config
from mannlab.training import rundir
from mannlab.training.checkpoint import load_params, remove_stale_temporaries
from mannlab.training.evaluate import (
    SplitScorer,
    checkpoint_stamp,
    generalisation,
    save_eval,
    split_scores,
    trace_sequence,
)
from mannlab.training.footprint import available_bytes, training_bytes
from mannlab.training.progress import ProgressReporter
from mannlab.training.seeds import Execution, choose_execution, train_in_processes
from mannlab.training.trainer import Trainer
from mannlab.viz.figures import figure_title, sequence_figure
from mannlab.viz.tensorboard import SequenceImageLogger

DEFAULT_LENGTHS = (10, 20, 30, 50, 120)


@dataclass
class TrainedRun:
    """A run directory and the result of each seed trained in this call
    (``seed``, ``steps``, ``seconds``, ``converged``, ``heldout``)."""

    path: Path
    seeds: list[dict]


def _check_buildable(config: RunConfig, source: str, seeds: int = 1) -> None:
    """Build the task, and the model's shapes, so that a combination of
    fields the task or model rejects (or a missing or damaged data file), or
    a model too large for this machine's memory, is a one-line ConfigError
    before anything is written."""
    try:
        task = config.task.build()
        needed = training_bytes(config, task, seeds)
    except (ValueError, OSError, EOFError, lzma.LZMAError) as err:
        raise ConfigError(f"{source}: {err}") from None
    available = available_bytes()
    if available is not None and needed > available:
        sizes = ", ".join(f"model.{k}={v}" for k, v in config.model.model_dump().items()
                          if k.endswith("_size"))
        raise ConfigError(
            f"{source}: a training step needs about {needed / 2**30:.1f} GiB ({sizes}, "
            f"train.batch_size={config.train.batch_size}, {seeds} seed(s)) and "
            f"{available / 2**30:.1f} GiB are free; make the model or the batch smaller")


def make_trainer(run: Path, config: RunConfig, seeds: list[int], progress: bool = False,
                 resume: bool = False, restart: bool = False) -> Trainer:
    """The training loop for `seeds` of `run` (see `Trainer` for `resume` and
    `restart`), with TensorBoard images of a test sequence
    (``train.log_images``) and, if `progress`, a progress display."""
    trainer = Trainer(run, config, seeds, reporter=ProgressReporter() if progress else None,
                      resume=resume, restart=restart)
    if config.train.log_images:
        trainer.on_eval.append(SequenceImageLogger(trainer))
    if config.train.score_every:
        task = trainer.task
        trainer.on_eval.append(SplitScorer(task, trainer.learner.static,
                                           task.splits(config.train.score_train_limit),
                                           config.train.score_every))
    return trainer


def _train_seed(run_dir: str, seed: int, resume: bool = False, restart: bool = False) -> dict:
    """Train one seed of a run (a worker process of `train_in_processes`)."""
    run, config, _ = rundir.open_run(run_dir)
    (result,) = make_trainer(run, config, [seed], resume=resume, restart=restart).train()
    return asdict(result)


def _run_seeds(run: Path, config: RunConfig, seeds: list[int], execution: Execution,
               progress: bool, on_done=None, resume: bool = False,
               restart: bool = False) -> TrainedRun:
    if choose_execution(execution, len(seeds)) == "processes":
        worker = functools.partial(_train_seed, resume=resume, restart=restart)
        results = train_in_processes(run, seeds, worker, on_done=on_done)
    else:
        trainer = make_trainer(run, config, seeds, progress, resume, restart)
        results = [asdict(r) for r in trainer.train()]
        for r in results:
            if on_done:
                on_done(r)
    rundir.write_seed_results(run, results)
    return TrainedRun(run, results)


def train(config: str | Path | RunConfig, overrides: Sequence[str] = (),
          run_dir: str | Path | None = None, seeds: int = 1, execution: Execution = "auto",
          progress: bool = False, on_done=None, on_start=None) -> TrainedRun:
    """Train a model in a new run directory.

    Args:
      config: a YAML file, the name of a shipped config (``"ntm-copy"``; see
        `mannlab.config.shipped_configs`) or a `RunConfig`.
      overrides: ``"section.field=value"`` strings applied to the config.
      run_dir: the new run directory (default ``runs/<config name>-<time>``).
      seeds: train seeds ``config.seed``, ``config.seed + 1``, ...
      execution: several seeds as one vmapped program or one process each
        (``auto``: processes on a CPU).
      progress: show a progress display.
      on_done: called with each seed's result as it finishes.
      on_start: called with the run directory once it exists.
    Returns:
      The run directory and each seed's result.
    """
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    if isinstance(config, RunConfig):
        if overrides:
            raise ConfigError("overrides apply to a config file or name, not to a RunConfig")
        source, name = "config", "run"
    else:
        path = find_config(config)
        config, source, name = load_config(path, overrides), str(path), path.stem
    _check_buildable(config, source, seeds)
    seed_list = [config.seed + k for k in range(seeds)]
    run = Path(run_dir) if run_dir else rundir.new_run_dir("runs", name)
    rundir.create_run(run, config, seed_list)
    if on_start:
        on_start(run)
    return _run_seeds(run, config, seed_list, execution, progress, on_done)


def resume(run: str | Path, overrides: Sequence[str] = (), execution: Execution = "auto",
           progress: bool = False, on_done=None, restart: bool = False) -> TrainedRun:
    """Continue a run (or one seed of it, ``RUN/seed-K``) exactly where it
    stopped; `overrides` may change only the budget (`rundir.BUDGET_FIELDS`).
    A seed without a checkpoint is an error unless `restart` (it then
    trains from step 0)."""
    path, config, seed_paths = rundir.open_run(run)
    remove_stale_temporaries(path)  # of config.yaml and seeds.json writes a kill interrupted
    if overrides:
        at_step = max((checkpoint_stamp(p)["step"] for p in seed_paths
                       if (p / rundir.CHECKPOINT_FILE).exists()), default=0)
        config = rundir.extend_budget(path, list(overrides), at_step)
    seeds = [rundir.seed_of(p) for p in seed_paths]
    return _run_seeds(path, config, seeds, execution, progress, on_done, resume=True,
                      restart=restart)


def _check_repeats(config: RunConfig, repeats) -> None:
    if repeats and config.task.name != "repeat_copy":
        raise ConfigError(f"--repeats applies to repeat_copy runs; this run's task is "
                          f"{config.task.name}")


def evaluate(run: str | Path, lengths: Sequence[int] = DEFAULT_LENGTHS, sequences: int = 1000,
             repeats: Sequence[int] | None = None, train_limit: int | None = None) -> dict:
    """Evaluate a run's seeds, and save the result as every seed's ``eval.json``.

    Returns ``{"lengths", "skipped", "metrics", "seeds": {seed: {length:
    {metric: mean}}}}``: each seed's metrics per sequence at each length
    (`sequences` fixed sequences per length); with `repeats` (repeat copy), one
    such table per repeat count under ``"by_repeats"``. Tasks with fixed
    splits (the language tasks) add ``"splits"``: each seed's scores on each
    split (micro and weighted P / R / F1, whole-answer accuracy; the training
    split limited to its first `train_limit` examples) and the baselines'.
    """
    _, config, seed_paths = rundir.open_run(run)
    _check_repeats(config, repeats)
    if not repeats:
        result = generalisation(config, seed_paths, list(lengths), sequences)
    else:
        parts = {r: generalisation(config, seed_paths, list(lengths), sequences, repeats=r)
                 for r in repeats}
        result = {**parts[repeats[0]], "by_repeats": {str(r): p for r, p in parts.items()}}
    splits = split_scores(config, seed_paths, train_limit)
    if splits["seeds"]:
        result["splits"] = splits
    elif not result["lengths"]:
        raise ConfigError(f"--lengths: the {config.task.name} task has no sequence of length "
                          f"{' or '.join(map(str, result['skipped']))}")
    save_eval(seed_paths, result)
    return result


def load(run: str | Path, seed: int | None = None) -> eqx.Module:
    """The trained model of a run's seed (default: its first seed)."""
    path, config, seed_paths = rundir.open_run(run)
    if seed is not None:
        seed_paths = [p for p in seed_paths if rundir.seed_of(p) == seed]
        if not seed_paths:
            raise ConfigError(f"{path}: no seed-{seed} directory")
    task = config.task.build()
    model = build_model(config, task, rundir.seed_of(seed_paths[0]))
    params, static = eqx.partition(model, eqx.is_array)
    return eqx.combine(load_params(seed_paths[0] / rundir.CHECKPOINT_FILE, params, config,
                                   task.inputs_fingerprint), static)


def figure(run: str | Path, length: int | None = None, sample_seed: int = 0,
           repeats: int | None = None):
    """A matplotlib Figure of one sequence of `length` (default: the longest
    training length) through the run's first seed (or ``RUN/seed-K``): input,
    target, output, head weightings and memory."""
    _, config, seed_paths = rundir.open_run(run)
    _check_repeats(config, repeats)
    kwargs = {"repeats": repeats} if repeats else {}
    task = config.task.build() if length is None or config.task.name == "babi" else None
    length = task.max_length if length is None else length
    batch, traced = trace_sequence(config, seed_paths[0], length, sample_seed, **kwargs)
    title = figure_title(config, length, seed_paths[0].name)
    labels = task.step_labels(batch) if hasattr(task, "step_labels") else None
    return sequence_figure(batch, traced.probs, traced.trace, title,
                           memory_before=traced.memory_before, step_labels=labels)
