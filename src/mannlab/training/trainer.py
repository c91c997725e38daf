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
import signal
import threading
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
from mannlab.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoints,
)
from mannlab.training.curriculum import make_curriculum
from mannlab.training.files import write_text_atomic
from mannlab.training.lock import SeedLock
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
    diverged: dict | None = None


class TrainingInterrupted(Exception):
    """Training stopped by SIGINT or SIGTERM after a checkpoint of every seed
    (``signum``; ``run``: the run directory, to resume)."""

    def __init__(self, signum: int, run: str):
        super().__init__(signum, run)
        self.signum, self.run = signum, run

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        return (f"stopped by {name}; every seed saved: continue with "
                f"mannlab train --resume {self.run}")


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
      resume: every seed must continue from its checkpoint (a seed without
        one is an error) unless `restart`; False: a new run, no checkpoints.
      restart: with `resume`, seeds without a checkpoint start from step 0
        (dropping what an earlier process logged for them).

    Each seed directory is locked (`SeedLock`) from here until `train`
    returns or the process ends.
    """

    def __init__(self, run_dir: Path, config: RunConfig, seeds: list[int],
                 reporter: Reporter | None = None, on_eval: list[EvalHook] = (),
                 resume: bool = False, restart: bool = False):
        self.run_dir, self.config, self.cfg = Path(run_dir), config, config.train
        self.clock: Callable[[], float] = time.perf_counter  # seconds; replaceable in tests
        self.dirs = [seed_dir(self.run_dir, s) for s in seeds]
        self.locks: list[SeedLock] = []
        self.writers: list[RecordWriter] = []
        try:
            for d in self.dirs:
                self.locks.append(SeedLock(d))
                remove_stale_temporaries(d)
            self.task = config.task.build()
            models = [build_model(config, self.task, s) for s in seeds]
            self.learner = make_learner(config, self.task, models, seeds)
            self.seeds = [SeedProgress(s, np.random.default_rng(s), self.cfg.window,
                                       curriculum=make_curriculum(self.cfg, self.task))
                          for s in seeds]
            self.reporter, self.on_eval = reporter, list(on_eval)
            self.config_json = json.dumps(config.model_dump(mode="json"))
            self._eval_step = make_eval_step(self.learner.static, self.task)
            self._heldout = None
            self._stop: int | None = None
            self._resume(resume, restart)
            self.writers = [RecordWriter(d, p.step) for d, p in zip(self.dirs, self.seeds)]
            summary = self.run_dir / "model.txt"
            if not summary.exists():
                write_text_atomic(summary, model_summary(models[0], config))
        except BaseException:
            self._close()
            raise

    # ------------------------------------------------------------ persistence
    def _resume(self, resume: bool, restart: bool) -> None:
        """Load every seed's checkpoint, or check that a new run has none."""
        paths = [d / CHECKPOINT_FILE for d in self.dirs]
        missing = [d for d, path in zip(self.dirs, paths) if not path.exists()]
        if not resume:
            if len(missing) < len(paths):
                raise CheckpointError(f"{self.run_dir}: has checkpoints; continue it with "
                                      f"--resume {self.run_dir}")
            return
        if missing and not restart:
            raise CheckpointError(
                f"{missing[0]}: no {CHECKPOINT_FILE} to resume from (it stopped before its "
                f"first checkpoint); add --restart to train it from step 0")
        if missing and len(missing) < len(paths):
            raise CheckpointError(
                f"{self.run_dir}: {', '.join(d.name for d in missing)} have no checkpoint but "
                f"other seeds do; resume them one by one (--resume {self.run_dir}/seed-K)")
        if missing:
            return
        for i, (progress, path) in enumerate(zip(self.seeds, paths)):
            p_skel, a_skel, _ = self.learner.seed_state(i)
            params, arrays, state = load_checkpoint(path, p_skel, a_skel, self.config,
                                                    BUDGET_FIELDS, seed=progress.seed,
                                                    inputs=self.task.inputs_fingerprint)
            self.learner.restore_seed(i, params, arrays, state)
            progress.restore(state)

    def save(self) -> None:
        """Every seed's checkpoint, all written before any replaces its old one.

        A seed whose arrays are not all finite is marked diverged instead, and
        keeps its last (finite) checkpoint; so does a seed already diverged.
        """
        checkpoints = []
        for i, (p, d) in enumerate(zip(self.seeds, self.dirs)):
            if p.diverged is not None:
                continue
            params, arrays, extras = self.learner.seed_state(i)
            if not all(np.isfinite(np.asarray(x)).all()
                       for x in jax.tree.leaves((params, arrays))):
                self._diverge(i, p.step, "parameters")
                continue
            checkpoints.append((d / CHECKPOINT_FILE, params, arrays,
                                {**p.to_json(), **extras}, self.config_json,
                                self.task.inputs_fingerprint))
        save_checkpoints(checkpoints)
        for writer in self.writers:
            writer.flush()

    def _diverge(self, i: int, step: int, what: str) -> None:
        """Stop seed `i`: its `what` (loss or parameters) stopped being finite at `step`."""
        p = self.seeds[i]
        p.diverged = {"step": step, "seconds": round(p.seconds, 3), "non_finite": what}
        self.writers[i].log({"split": "diverged", "step": step, "seconds": round(p.seconds, 3),
                             "non_finite": what})

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
        return [[self._sample(p) if k < live_steps and p.training else None
                 for p in self.seeds] for k in range(K)]

    def _sample(self, p: SeedProgress) -> Batch:
        """Seed `p`'s next training batch: the task's own, or its curriculum's."""
        if p.curriculum is None:
            return self.task.sample(p.rng, self.cfg.batch_size)
        return p.curriculum.sample(self.task, p.rng, self.cfg.batch_size)

    def _out_of_budget(self) -> bool:
        """Whether the step budget or, for a seed still training, the time
        budget is spent (a converged seed's clock stops at its convergence)."""
        over_steps = max(q.step for q in self.seeds) >= self.cfg.max_steps
        live_seconds = [q.seconds for q in self.seeds if q.training]
        over_time = (self.cfg.max_seconds is not None and bool(live_seconds)
                     and max(live_seconds) >= self.cfg.max_seconds)
        return over_steps or over_time

    # ------------------------------------------------------------ records
    def _clock(self) -> None:
        """Bring the clock of every seed still training up to now."""
        now = self.clock() - self._started
        for p, base in zip(self.seeds, self._base_seconds):
            if p.training:
                p.seconds = base + now

    def _flush(self) -> None:
        """Turn the outputs of the calls since the last flush into one training
        record per seed; a seed whose loss is not finite is marked diverged."""
        if not self._pending:
            return
        cfg, names = self.cfg, self.task.metric_names
        outs = jax.device_get(self._pending)
        elapsed = self.clock() - self._interval_start
        for i, (p, writer) in enumerate(zip(self.seeds, self.writers)):
            rows = [(o.loss[k, i], o.metrics[k, i], o.grad_norm[k, i])
                    for o, active in outs for k in range(len(active)) if active[k, i]]
            if not rows:
                continue
            bad = [j for j, r in enumerate(rows) if not np.isfinite(r[0])]
            drawn = {"curriculum_max": p.curriculum.maximum} if p.curriculum else {}
            for j, (_, m, _) in enumerate(rows):
                for k, name in enumerate(names):
                    p.push(name, float(m[k]))
                if p.curriculum is not None:
                    p.curriculum.observe(p.step - len(rows) + j + 1, float(m[0]))
            record = {"split": "train", "step": p.step, "seconds": round(p.seconds, 3),
                      "sequences": p.step * cfg.batch_size,
                      "loss": float(np.mean([r[0] for r in rows])),
                      "grad_norm": float(np.mean([r[2] for r in rows])),
                      "learning_rate": cfg.learning_rate,
                      "seq_per_s": len(rows) * cfg.batch_size / max(elapsed, 1e-9),
                      **drawn,  # the longest length these steps could draw
                      **self.learner.record(i)}
            for k, name in enumerate(names):
                record[name] = float(np.mean([r[1][k] for r in rows]))
                record[f"{name}_window"] = p.average(name)
            writer.log(record)
            if bad and p.diverged is None:
                self._diverge(i, p.step - len(rows) + bad[0] + 1, "loss")
        self._pending, self._interval_start = [], self.clock()

    def _evaluate_and_record(self, complete: bool = False) -> None:
        """Held-out evaluation of the seeds still training: records, convergence, hooks."""
        cfg, names = self.cfg, self.task.metric_names
        means, sequences = self.evaluate(complete)
        if sequences == sum(b.inputs.shape[1] for b in self.heldout()):
            self._complete_eval_step = max(p.step for p in self.seeds)
        self._clock()
        evaluated = [i for i, p in enumerate(self.seeds) if p.training]
        for i in evaluated:
            p = self.seeds[i]
            result = {name: float(means[i, k]) for k, name in enumerate(names)}
            p.last_eval = result
            self.writers[i].log({"split": self.task.heldout_split, "step": p.step,
                                 "seconds": round(p.seconds, 3),
                                 "heldout_sequences": sequences, **result})
            if cfg.converge_at is not None and result[names[0]] < cfg.converge_at:
                p.converged = {"step": p.step, "seconds": round(p.seconds, 3),
                               "sequences": p.step * cfg.batch_size}
        for hook in self.on_eval:
            hook(self, evaluated)

    # ------------------------------------------------------------ the loop
    def train(self) -> list[SeedResult]:
        """Train until every seed has converged or diverged, or the budget is spent.

        Raises:
          TrainingInterrupted: SIGINT or SIGTERM arrived; the current call
            finished and every seed was saved first.
        """
        try:
            return self._train()
        finally:
            self._close()

    def _train(self) -> list[SeedResult]:
        cfg = self.cfg
        self._started = self._interval_start = self.clock()
        self._base_seconds = [p.seconds for p in self.seeds]
        self._pending = []
        self._complete_eval_step: int | None = None
        if self.reporter:
            self.reporter.start(self)
        restore = self._catch_signals()
        try:
            while self._active().any() and not self._out_of_budget() and self._stop is None:
                rows = self._next_rows()
                out = self.learner.update(rows)
                active = np.array([[b is not None for b in row] for row in rows])
                self._pending.append((out, active))
                for p, steps in zip(self.seeds, active.sum(axis=0)):
                    p.step += int(steps)
                step = max(p.step for p in self.seeds)
                if step % cfg.log_every == 0:
                    self._clock()
                    self._flush()
                    if self.reporter:
                        self.reporter.update(self)
                if step % cfg.eval_every == 0:
                    self._flush()
                    self._evaluate_and_record()
                if step % cfg.checkpoint_every == 0:
                    self._flush()
                    self._clock()
                    self.save()
        finally:
            restore()
        self._flush()
        if self._stop is not None:
            self._clock()
            self.save()
            raise TrainingInterrupted(self._stop, str(self.run_dir))
        step = max(p.step for p in self.seeds)
        if any(p.last_eval is None for p in self.seeds) or (
                self._active().any() and self._complete_eval_step != step):
            self._evaluate_and_record(complete=True)  # unless just done, on the whole set
        self._clock()
        self.save()
        if self.reporter:
            self.reporter.finish(self)
        results = [SeedResult(p.seed, p.step, p.seconds, p.converged, p.last_eval, p.diverged)
                   for p in self.seeds]
        for d, r in zip(self.dirs, results):
            write_text_atomic(d / "summary.json", json.dumps(asdict(r), indent=2) + "\n")
        return results

    def _close(self) -> None:
        """Close the record writers and release the seed locks (idempotent)."""
        for writer in self.writers:
            writer.close()
        for lock in self.locks:
            lock.release()

    def _catch_signals(self) -> Callable[[], None]:
        """Until the returned function is called, SIGINT and SIGTERM stop the
        loop after the current call."""

        def stop(signum, frame):
            self._stop = signum

        return on_signals(stop)


def on_signals(handler) -> Callable[[], None]:
    """Handle SIGINT and SIGTERM with `handler` until the returned function
    restores the previous handlers (in the main thread; signals reach no
    other, so elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore
