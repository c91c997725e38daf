"""The training loop: one loop for every model family.

`Trainer` trains the listed seeds of a run directory: it samples each seed's
batches, hands them to the model family's update step (a `Learner`:
`GradientLearner` for every model trained by gradient descent on the task
loss, `MannRLLearner` for MANN-RL's two learners), and owns everything
else once: the step and time budget, records (metrics.jsonl, TensorBoard),
held-out evaluation and early stopping, checkpoints and exact resume,
progress. Each seed has its own model initialisation (``PRNGKey(seed)``)
and its own data stream (``numpy.random.default_rng(seed)``), so a seed's
result does not depend on which other seeds share its run. A seed stops at
convergence (held-out metric below ``train.converge_at``) and is frozen
while the others go on; all stop at the step or time budget.

The loop imports nothing above the training layer: figures and progress
bars plug in as a `Reporter` and `EvalHook`s.
"""

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

from mannlab.config import RunConfig, build_model
from mannlab.tasks.base import Batch, Task
from mannlab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoints
from mannlab.training.mann_rl import MannRLLearner
from mannlab.training.optimizer import make_optimizer
from mannlab.training.records import RecordWriter, SeedProgress
from mannlab.training.rundir import BUDGET_FIELDS, CHECKPOINT_FILE, model_summary, seed_dir
from mannlab.training.step import GradientLearner, Learner, Rows, make_eval_step

HELDOUT_CHUNK = 100
"""Held-out sequences per evaluation call: small enough that an evaluation
can stop after the first call (`Trainer.evaluate`), as fast per sequence as
larger calls on a CPU."""


@dataclass
class SeedResult:
    seed: int
    steps: int
    seconds: float
    converged: dict | None
    heldout: dict | None


class Reporter(Protocol):
    """Shows progress: called at the start, after every log interval and at
    the end (`mannlab.training.progress.ProgressReporter`)."""

    def start(self, trainer: "Trainer") -> None: ...

    def update(self, trainer: "Trainer") -> None: ...

    def finish(self, trainer: "Trainer") -> None: ...


EvalHook = Callable[["Trainer", list[int]], None]
"""Called after each held-out evaluation with the indices of the seeds it
evaluated (e.g. `mannlab.viz.tensorboard.SequenceImageLogger`)."""


def make_learner(config: RunConfig, task: Task, models: list, seeds: list[int]) -> Learner:
    """The update step of the model family ``config.model.learner`` names."""
    if config.model.learner == "mann_rl":
        return MannRLLearner(models, seeds, task, config)
    return GradientLearner(models, task, make_optimizer(config.train))


class Trainer:
    """Trains `seeds` of the run in `run_dir` (created by `rundir.create_run`).

    Args:
      run_dir: the run directory.
      config: the run's config.
      seeds: the seeds to train (each has a ``seed-K`` directory).
      reporter: optional progress display.
      on_eval: called after each held-out evaluation.
    """

    def __init__(self, run_dir: Path, config: RunConfig, seeds: list[int],
                 reporter: Reporter | None = None, on_eval: list[EvalHook] = ()):
        self.run_dir, self.config, self.cfg = Path(run_dir), config, config.train
        self.task = config.task.build()
        models = [build_model(config, self.task, s) for s in seeds]
        self.learner = make_learner(config, self.task, models, seeds)
        self.seeds = [SeedProgress(s, np.random.default_rng(s), self.cfg.window)
                      for s in seeds]
        self.dirs = [seed_dir(self.run_dir, s) for s in seeds]
        self.reporter, self.on_eval = reporter, list(on_eval)
        self.config_json = json.dumps(config.model_dump(mode="json"))
        self._eval_step = make_eval_step(self.learner.static, self.task)
        self._heldout = None
        self._resume_if_possible()
        self.writers = [RecordWriter(d, p.step) for d, p in zip(self.dirs, self.seeds)]
        summary = self.run_dir / "model.txt"
        if not summary.exists():
            summary.write_text(model_summary(models[0], config))

    # ------------------------------------------------------------ persistence
    def _resume_if_possible(self) -> None:
        paths = [d / CHECKPOINT_FILE for d in self.dirs]
        if not any(p.exists() for p in paths):
            return
        missing = [d.name for d, path in zip(self.dirs, paths) if not path.exists()]
        if missing:
            raise CheckpointError(
                f"{self.run_dir}: {', '.join(missing)} have no checkpoint but other seeds do; "
                f"resume the others one by one (--resume {self.run_dir}/seed-K)")
        for i, (progress, path) in enumerate(zip(self.seeds, paths)):
            p_skel, a_skel, _ = self.learner.seed_state(i)
            params, arrays, state = load_checkpoint(path, p_skel, a_skel, self.config,
                                                    BUDGET_FIELDS)
            self.learner.restore_seed(i, params, arrays, state)
            progress.restore(state)

    def save(self) -> None:
        """Every seed's checkpoint, all written before any replaces its old one."""
        checkpoints = []
        for i, (p, d) in enumerate(zip(self.seeds, self.dirs)):
            params, arrays, extras = self.learner.seed_state(i)
            checkpoints.append((d / CHECKPOINT_FILE, params, arrays,
                                {**p.to_json(), **extras}, self.config_json))
        save_checkpoints(checkpoints)

    # ------------------------------------------------------------ evaluation
    def heldout(self) -> list[Batch]:
        if self._heldout is None:
            # the task's fixed set, cut along the batch axis into calls
            self._heldout = [Batch(*(jnp.asarray(a[:, i:i + HELDOUT_CHUNK]) for a in b))
                             for b in self.task.heldout(self.cfg.eval_size)
                             for i in range(0, b.inputs.shape[1], HELDOUT_CHUNK)]
        return self._heldout

    def evaluate(self, complete: bool = False) -> tuple[np.ndarray, int]:
        """Held-out metric means [S, K] for every seed, and how many held-out
        sequences they cover.

        Unless `complete`, the held-out batches stop as soon as every seed
        still training has summed at least ``converge_at`` x (held-out size)
        of the convergence metric: that metric is non-negative per sequence,
        so no seed could pass on the whole set. The convergence decision is
        the whole set's; the means are then over the sequences evaluated.
        """
        batches, params = self.heldout(), self.learner.params()
        live = self._active()
        bound = (None if complete or self.cfg.converge_at is None else
                 self.cfg.converge_at * sum(b.inputs.shape[1] for b in batches))
        per_seq, totals = [], 0.0
        for b in batches:
            per_seq.append(np.asarray(self._eval_step(params, b)))  # [S, K, B]
            totals = totals + per_seq[-1][:, 0].sum(axis=-1)
            if bound is not None and np.all(totals[live] >= bound):
                break
        values = np.concatenate(per_seq, axis=-1)
        return values.mean(-1), values.shape[-1]

    # ------------------------------------------------------------ the loop
    def _active(self) -> np.ndarray:
        return np.array([p.training for p in self.seeds])

    def _next_rows(self) -> Rows:
        """The batches of the next training call: K rows (K =
        ``steps_per_call``) of one batch per seed, None for a seed that does
        not train at that step.

        Steps run up to the next multiple of K and not past ``max_steps``; in
        the other slots, and for converged seeds, nothing is drawn from the
        seed's data stream, so every seed sees exactly the data of a run with
        any other K.
        """
        K, cfg = self.cfg.steps_per_call, self.cfg
        step = max(p.step for p in self.seeds)
        live_steps = min(K - step % K, cfg.max_steps - step)
        return [[self.task.sample(p.rng, cfg.batch_size) if k < live_steps and p.training
                 else None for p in self.seeds] for k in range(K)]

    def _out_of_budget(self) -> bool:
        """Whether the step budget or, for a seed still training, the time
        budget is spent (a converged seed's clock stops at its convergence)."""
        over_steps = max(q.step for q in self.seeds) >= self.cfg.max_steps
        live_seconds = [q.seconds for q in self.seeds if q.training]
        over_time = (self.cfg.max_seconds is not None and bool(live_seconds)
                     and max(live_seconds) >= self.cfg.max_seconds)
        return over_steps or over_time

    def train(self) -> list[SeedResult]:
        cfg, names = self.cfg, self.task.metric_names
        started = time.perf_counter()
        base_seconds = [p.seconds for p in self.seeds]
        pending, interval_start = [], time.perf_counter()

        def clock():
            now = time.perf_counter() - started
            for p, base in zip(self.seeds, base_seconds):
                if p.training:
                    p.seconds = base + now

        def flush():
            nonlocal pending, interval_start
            if not pending:
                return
            outs = jax.device_get(pending)
            elapsed = time.perf_counter() - interval_start
            for i, (p, writer) in enumerate(zip(self.seeds, self.writers)):
                rows = [(o.loss[k, i], o.metrics[k, i], o.grad_norm[k, i])
                        for o, active in outs for k in range(len(active)) if active[k, i]]
                if not rows:
                    continue
                for _, m, _ in rows:
                    for k, name in enumerate(names):
                        p.push(name, float(m[k]))
                record = {"split": "train", "step": p.step, "seconds": round(p.seconds, 3),
                          "sequences": p.step * cfg.batch_size,
                          "loss": float(np.mean([r[0] for r in rows])),
                          "grad_norm": float(np.mean([r[2] for r in rows])),
                          "learning_rate": cfg.learning_rate,
                          "seq_per_s": len(rows) * cfg.batch_size / max(elapsed, 1e-9),
                          **self.learner.record(i)}
                for k, name in enumerate(names):
                    record[name] = float(np.mean([r[1][k] for r in rows]))
                    record[f"{name}_window"] = p.average(name)
                writer.log(record)
            pending, interval_start = [], time.perf_counter()

        def evaluate(complete=False):
            means, sequences = self.evaluate(complete)
            clock()
            evaluated = [i for i, p in enumerate(self.seeds) if p.training]
            for i in evaluated:
                p = self.seeds[i]
                result = {name: float(means[i, k]) for k, name in enumerate(names)}
                p.last_eval = result
                self.writers[i].log({"split": "heldout", "step": p.step,
                                     "seconds": round(p.seconds, 3),
                                     "heldout_sequences": sequences, **result})
                if cfg.converge_at is not None and result[names[0]] < cfg.converge_at:
                    p.converged = {"step": p.step, "seconds": round(p.seconds, 3),
                                   "sequences": p.step * cfg.batch_size}
            for hook in self.on_eval:
                hook(self, evaluated)

        if self.reporter:
            self.reporter.start(self)
        while self._active().any() and not self._out_of_budget():
            rows = self._next_rows()
            out = self.learner.update(rows)
            active = np.array([[b is not None for b in row] for row in rows])
            pending.append((out, active))
            for p, steps in zip(self.seeds, active.sum(axis=0)):
                p.step += int(steps)
            step = max(p.step for p in self.seeds)
            if step % cfg.log_every == 0:
                clock()
                flush()
                if self.reporter:
                    self.reporter.update(self)
            if step % cfg.eval_every == 0:
                flush()
                evaluate()
            if step % cfg.checkpoint_every == 0:
                flush()
                clock()
                self.save()
        flush()
        if any(p.last_eval is None or p.training for p in self.seeds):
            evaluate(complete=True)
        clock()
        self.save()
        if self.reporter:
            self.reporter.finish(self)
        results = [SeedResult(p.seed, p.step, p.seconds, p.converged, p.last_eval)
                   for p in self.seeds]
        for d, writer, r in zip(self.dirs, self.writers, results):
            writer.close()
            (d / "summary.json").write_text(json.dumps(asdict(r), indent=2) + "\n")
        return results
