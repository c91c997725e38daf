"""Evaluation of trained runs: generalisation tables and single traced sequences."""

import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from mannlab.config import RunConfig
from mannlab.training.checkpoint import load_params
from mannlab.training.rundir import CHECKPOINT_FILE
from mannlab.training.step import make_eval_step
from mannlab.training.trainer import build_model, stack_trees


def load_models(config: RunConfig, task, seed_dirs: list[Path]):
    """(stacked params [S, ...], static) of the checkpoints in `seed_dirs`."""
    from mannlab.training.rundir import seed_of

    params_list = []
    for d in seed_dirs:
        model = build_model(config, task, seed_of(d))
        params, static = eqx.partition(model, eqx.is_array)
        loaded = load_params(d / CHECKPOINT_FILE, params, config)
        params_list.append(loaded)
    return stack_trees(params_list), static


def has_length(task, length: int) -> bool:
    """`task.has_length(length)`; True for a task that does not say."""
    check = getattr(task, "has_length", None)
    return True if check is None else bool(check(length))


def generalisation(config: RunConfig, seed_dirs: list[Path], lengths: list[int],
                   sequences: int = 1000, chunk: int = 250, **task_kwargs) -> dict:
    """Mean metrics per seed at each fixed length.

    Every length has its own fixed data stream (seeded by the length), so runs
    are compared on the same sequences. Lengths the task cannot give (a data
    set without sentences of that length) are skipped and listed.

    Returns:
      {"lengths": [evaluated], "skipped": [lengths], "metrics": [names],
       "seeds": {seed_dir_name: {length: {metric: mean}}}}
    Raises:
      ConfigError if the task has none of the lengths.
    """
    from mannlab.config import ConfigError

    task = config.task.build()
    skipped = [n for n in lengths if not has_length(task, n)]
    lengths = [n for n in lengths if has_length(task, n)]
    if not lengths:
        raise ConfigError(f"--lengths: the {config.task.name} task has no sequence of length "
                          f"{' or '.join(map(str, skipped))}")
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


def save_eval(seed_dirs: list[Path], result: dict, name: str = "eval.json") -> None:
    for d in seed_dirs:
        own = {**result, "seeds": {d.name: result["seeds"][d.name]}}
        (d / name).write_text(json.dumps(own, indent=2) + "\n")


def trace_sequence(config: RunConfig, seed_dir: Path, length: int, sample_seed: int = 0,
                   **task_kwargs):
    """Run one sequence of `length` through a trained seed with its trace.

    Returns (batch with B = 1, outputs [T, O] as probabilities, trace with
    leaves [T, ...]).
    """
    from mannlab.config import ConfigError

    task = config.task.build()
    if not has_length(task, length):
        raise ConfigError(f"--length: the {config.task.name} task has no sequence of length "
                          f"{length}")
    params, static = load_models(config, task, [seed_dir])
    model = eqx.combine(jax.tree.map(lambda x: x[0], params), static)
    batch = task.sample(np.random.default_rng(sample_seed), 1, length=length, **task_kwargs)
    ys, _, trace = model(jnp.asarray(batch.inputs), model.init_state(1),
                         jnp.asarray(batch.step_mask), with_trace=True)
    probs = jax.nn.sigmoid(ys) if batch.targets.ndim == 3 else jax.nn.softmax(ys, -1)
    trace = jax.tree.map(lambda x: np.asarray(x[:, 0]), trace)
    return batch, np.asarray(probs[:, 0]), trace
