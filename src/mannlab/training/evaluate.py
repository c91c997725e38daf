"""Evaluation of trained runs: generalisation tables and traced sequences."""

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from mannlab.config import ConfigError, RunConfig, build_model
from mannlab.tasks.base import Batch, Task
from mannlab.tasks.chomsky import protocol
from mannlab.training.checkpoint import CheckpointError, load_params, read_metadata
from mannlab.training.files import write_text_atomic
from mannlab.training.rundir import CHECKPOINT_FILE, is_pretrained, seed_of
from mannlab.training.step import make_eval_step, stack_trees, unstack_tree

IMAGE_SEED = 1410_5401
"""Seed of the fixed sequence drawn in TensorBoard images and report figures."""


def load_models(config: RunConfig, task: Task, seed_dirs: list[Path]):
    """(stacked params [S, ...], static) of the checkpoints in `seed_dirs`.

    Raises:
      CheckpointError if a checkpoint's parameters are not all finite.
    """
    params_list, static = [], None
    for d in seed_dirs:
        params, static = eqx.partition(build_model(config, task, seed_of(d)), eqx.is_array)
        loaded = load_params(d / CHECKPOINT_FILE, params, config, task.inputs_fingerprint)
        if not all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(loaded)):
            raise CheckpointError(f"{d / CHECKPOINT_FILE}: its parameters are not all finite "
                                  f"(the run diverged); nothing to evaluate")
        params_list.append(loaded)
    return stack_trees(params_list), static


def checkpoint_stamp(seed_dir: Path) -> dict:
    """What an evaluation of `seed_dir` was computed from: its checkpoint's
    step and the SHA-256 of the config stored in it (`eval.json` keeps it, so
    a stale evaluation can be told from a current one)."""
    meta = read_metadata(seed_dir / CHECKPOINT_FILE)
    return {"step": json.loads(meta["state"])["step"],
            "config_sha256": hashlib.sha256(meta["config"].encode()).hexdigest()}


def generalisation(config: RunConfig, seed_dirs: list[Path], lengths: list[int],
                   sequences: int = 1000, chunk: int = 250, **task_kwargs) -> dict:
    """Mean metrics per seed at each fixed length.

    Every length has its own fixed data stream (seeded by the length), so runs
    are compared on the same sequences. Lengths the task cannot give (a data
    set without sentences of that length) are skipped and listed.

    Returns:
      {"lengths": [evaluated], "skipped": [lengths], "metrics": [names],
       "seeds": {seed_dir_name: {length: {metric: mean}}}}
    """
    task = config.task.build()
    skipped = [n for n in lengths if not task.has_length(n)]
    lengths = [n for n in lengths if task.has_length(n)]
    params, static = load_models(config, task, seed_dirs)
    eval_step = make_eval_step(static, task)
    table = {d.name: {} for d in seed_dirs}
    for length in lengths:
        rng = np.random.default_rng([length, *task_kwargs.values()])
        per_seq = []
        for start in range(0, sequences, chunk):
            batch = task.sample(rng, min(chunk, sequences - start), length=length, **task_kwargs)
            per_seq.append(np.asarray(eval_step(params, jax.tree.map(jnp.asarray, batch))))
        means = np.concatenate(per_seq, axis=-1).mean(-1)  # [S, K]
        for i, d in enumerate(seed_dirs):
            table[d.name][str(length)] = {n: float(means[i, k])
                                          for k, n in enumerate(task.metric_names)}
    return {"lengths": lengths, "skipped": skipped, "sequences": sequences,
            "task_kwargs": task_kwargs, "metrics": list(task.metric_names), "seeds": table}


def protocol_score(config: RunConfig, seed_dirs: list[Path], max_length: int | None = None,
                   sequences: int = protocol.SEQUENCES) -> dict:
    """The Chomsky suite's score of every seed (`mannlab.tasks.chomsky.protocol`):
    mean accuracy over the test lengths ``protocol.TEST_LENGTHS`` (those up to
    `max_length`), `sequences` fixed sequences each (those of `generalisation`).

    Returns:
      {"lengths": [...], "sequences": n, "max_length": max_length,
       "seeds": {seed_dir_name: {"score", "solved", "accuracy": {length: mean}}},
       "summary": {"best", "median", "solved_rate", "seeds"}}
    Raises:
      ConfigError for a task other than a Chomsky task, or a `max_length`
      that keeps no test length.
    """
    if config.task.name != "chomsky":
        raise ConfigError(f"task: the protocol's score is for the chomsky tasks, not "
                          f"{config.task.name}")
    try:
        lengths = protocol.protocol_lengths(max_length)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    table = generalisation(config, seed_dirs, lengths, sequences, chunk=sequences)
    seeds = {}
    for name, by_length in table["seeds"].items():
        accuracy = {n: by_length[n]["accuracy"] for n in map(str, table["lengths"])}
        value = protocol.score(accuracy)
        seeds[name] = {"score": value, "solved": value >= protocol.SOLVED, "accuracy": accuracy}
    return {"lengths": table["lengths"], "sequences": sequences, "max_length": max_length,
            "seeds": seeds, "summary": protocol.summary([s["score"] for s in seeds.values()])}


def heldout_metrics(config: RunConfig, seed_dirs: list[Path], size: int = 1000) -> dict:
    """Every seed's metric means on the task's fixed held-out set (`Task.heldout`:
    `size` sequences at the training lengths, the set training's convergence
    is judged on).

    Returns:
      {seed_dir_name: {metric: mean}}
    """
    task = config.task.build()
    params, static = load_models(config, task, seed_dirs)
    eval_step = make_eval_step(static, task)
    per_seq = [np.asarray(eval_step(params, jax.tree.map(jnp.asarray, b)))
               for b in task.heldout(size)]
    means = np.concatenate(per_seq, axis=-1).mean(-1)  # [S, K]
    return {d.name: {n: float(means[i, k]) for k, n in enumerate(task.metric_names)}
            for i, d in enumerate(seed_dirs)}


def split_scores(config: RunConfig, seed_dirs: list[Path],
                 train_limit: int | None = None) -> dict:
    """The task's own scores (`Task.scores`, e.g. micro and weighted P / R /
    F1 and whole-answer accuracy for the language tasks) of every seed on
    each of the task's fixed splits (`Task.splits`), and its baselines'.

    Returns:
      {"seeds": {seed_dir_name: {split: scores}}, "baselines": {name: {split:
      scores}}}; both empty for tasks without splits (the generated tasks).
    """
    task = config.task.build()
    splits = task.splits(train_limit)
    if not any(splits.values()):
        return {"seeds": {}, "baselines": {}}
    params, static = load_models(config, task, seed_dirs)
    scores = SplitScorer(task, static, splits).scores(params)
    return {"seeds": {d.name: scores[i] for i, d in enumerate(seed_dirs)},
            "baselines": task.baselines()}


def babi_errors(config: RunConfig, seed_dirs: list[Path], stories: int | None = None,
                chunk: int = 64) -> dict:
    """Every seed's bAbI scores on the test split (`BabiTask.scores`: the
    per-task word error ``qaN_error``, ``mean_error``, ``failed_tasks``, ...)
    over every test story of the config's tasks, or the first `stories` of
    each task (the first ``stories x tasks`` of the interleaved split, so a
    task with fewer stories leaves its share to the others), in fixed
    batches of at most `chunk` stories.

    Returns:
      {seed_dir_name: scores}
    Raises:
      ConfigError for a task other than babi, or `stories` < 1.
    """
    if config.task.name != "babi":
        raise ConfigError(f"task: bAbI errors are for the babi task, not {config.task.name}")
    if stories is not None and stories < 1:
        raise ConfigError(f"stories: must be >= 1, got {stories}")
    task = config.task.build()
    size = None if stories is None else stories * len(task.tasks)  # the tasks interleaved
    params, static = load_models(config, task, seed_dirs)
    scores = SplitScorer(task, static, {"test": task.heldout(size, chunk)}).scores(params)
    return {d.name: scores[i]["test"] for i, d in enumerate(seed_dirs)}


class SplitScorer:
    """The task's own scores (`Task.scores`) on the non-empty ones of `splits`
    (`Task.splits`: {name: [Batch]}). Called as a training-loop `EvalHook`
    (``train.score_every``), it logs each evaluated seed's scores, at steps
    that are multiples of `every`, as ``scores_<split>`` records."""

    def __init__(self, task: Task, static, splits: dict, every: int = 1):
        self.task, self.every = task, every
        self.splits = {n: b for n, b in splits.items() if b}
        self._run = jax.jit(jax.vmap(lambda p, b: _outputs(p, static, b), in_axes=(0, None)))

    def scores(self, params) -> list[dict]:
        """``[{split: scores}]``, one per seed of stacked `params` [S, ...]."""
        per_seed: list[dict] = []
        for split, batches in self.splits.items():
            outputs = [(np.asarray(self._run(params, jax.tree.map(jnp.asarray, b))), b)
                       for b in batches]
            per_seed = per_seed or [{} for _ in range(outputs[0][0].shape[0])]
            for i, scores in enumerate(per_seed):
                scores[split] = self.task.scores([(ys[i], b) for ys, b in outputs])
        return per_seed

    def __call__(self, trainer, seeds: list[int]) -> None:
        seeds = [i for i in seeds if trainer.seeds[i].step % self.every == 0]
        if not seeds:
            return
        scores = self.scores(trainer.learner.params())
        for i in seeds:
            p = trainer.seeds[i]
            for split, values in scores[i].items():
                trainer.writers[i].log({"split": f"scores_{split}", "step": p.step,
                                        "seconds": round(p.seconds, 3), **values})


def _outputs(params, static, batch: Batch):
    """The model's outputs ys [T, B, O] on a batch (padding inert)."""
    model = eqx.combine(params, static)
    ys, _ = model(batch.inputs, model.init_state(batch.inputs.shape[1]), batch.step_mask)
    return ys


def save_eval(seed_dirs: list[Path], result: dict, name: str = "eval.json") -> None:
    """Write each seed's part of `result` to its directory, stamped with the
    checkpoint it was computed from; nothing is written to a pretrained
    model's directory (the installed package: its evaluations are returned,
    not saved)."""
    for d in seed_dirs:
        if is_pretrained(d):
            continue
        own = {**result, "seeds": {d.name: result["seeds"][d.name]},
               "checkpoint": checkpoint_stamp(d)}
        if "splits" in result:
            own["splits"] = {**result["splits"],
                             "seeds": {d.name: result["splits"]["seeds"][d.name]}}
        write_text_atomic(d / name, json.dumps(own, indent=2) + "\n")


# ---------------------------------------------------------------- traces
class Traced(NamedTuple):
    """One sequence through one seed: probs [T, O] (sigmoid or softmax of the
    outputs), the model's trace (leaves [T, ...]; ``()`` for models without
    one) and memory_before [N, M] (None for models without a memory)."""

    probs: np.ndarray
    trace: Any
    memory_before: np.ndarray | None


def sample_sequence(task: Task, length: int | None = None, seed: int = IMAGE_SEED,
                    **task_kwargs) -> Batch:
    """One fixed sequence (B = 1) of `length` (default: the task's longest
    training length)."""
    length = task.max_length if length is None else length
    if not task.has_length(length):
        raise ConfigError(f"--length: the task has no sequence of length {length}")
    return task.sample(np.random.default_rng(seed), 1, length=length, **task_kwargs)


def make_tracer(static):
    """A ``(params [S, ...], batch with B = 1) -> [Traced per seed]``, compiled
    once per sequence shape."""

    def one(params, batch):
        model = eqx.combine(params, static)
        state = model.init_state(1)
        ys, _, trace = model(batch.inputs, state, batch.step_mask, with_trace=True)
        probs = jax.nn.sigmoid(ys) if batch.targets.ndim == 3 else jax.nn.softmax(ys, -1)
        memory = model.memory_matrix(state)
        return probs[:, 0], jax.tree.map(lambda x: x[:, 0], trace), \
            None if memory is None else memory[0]

    run = jax.jit(jax.vmap(one, in_axes=(0, None)))

    def tracer(params, batch: Batch) -> list[Traced]:
        probs, trace, before = jax.device_get(run(params, jax.tree.map(jnp.asarray, batch)))
        return [Traced(np.asarray(probs[i]), unstack_tree(trace, i),
                       None if before is None else np.asarray(before[i]))
                for i in range(len(probs))]

    return tracer


def trace_sequence(config: RunConfig, seed_dir: Path, length: int | None = None,
                   sample_seed: int = IMAGE_SEED, **task_kwargs) -> tuple[Batch, Traced]:
    """Run one sequence of `length` through a trained seed, with its trace."""
    task = config.task.build()
    batch = sample_sequence(task, length, sample_seed, **task_kwargs)
    params, static = load_models(config, task, [seed_dir])
    (traced,) = make_tracer(static)(params, batch)
    return batch, traced
