"""The training loop: one compiled step for all seeds, logging, evaluation, checkpoints.

`Trainer` trains the listed seeds of a run directory together (stacked on
a leading axis, one `jax.vmap`-ed program; `make_trainer` picks it or
MANN-RL's trainer). Each seed has its own model
initialisation (``PRNGKey(seed)``) and its own data stream
(``numpy.random.default_rng(seed)``), so a seed's result does not depend on
which other seeds share its program. A seed stops at convergence (held-out
metric below ``train.converge_at``) and is frozen while the others go on; all
stop at the step or time budget.
"""

import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from mannlab.config import RunConfig
from mannlab.models.embedded import wrap_for_task
from mannlab.tasks.base import Batch, stack_chunk
from mannlab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoints
from mannlab.training.optimizer import make_optimizer
from mannlab.training.rundir import BUDGET_FIELDS, CHECKPOINT_FILE, model_summary, seed_dir
from mannlab.training.step import make_eval_step, make_train_step

HELDOUT_CHUNK = 100
"""Held-out sequences per evaluation call: small enough that an evaluation
can stop after the first call (`Trainer.evaluate`), as fast per sequence as
larger calls on a CPU."""


def build_model(config: RunConfig, task, seed: int):
    """The model of `config` for `task`, initialised from PRNGKey(seed).

    Tasks over token ids (``task.vocab_size``) get a learned embedding in
    front of the model (`mannlab.models.embedded`).
    """
    return wrap_for_task(config.model.build, task, jax.random.PRNGKey(seed))


def stack_trees(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack_tree(tree, i: int):
    return jax.tree.map(lambda x: x[i], tree)


@dataclass
class SeedProgress:
    """Host-side state of one seed: everything besides params needed to resume."""

    seed: int
    dir: Path
    rng: np.random.Generator
    window: int
    step: int = 0
    seconds: float = 0.0
    converged: dict | None = None
    last_eval: dict | None = None
    windows: dict = field(default_factory=dict)
    _writer: object = field(default=None, repr=False)
    _purge_step: int | None = field(default=None, repr=False)

    @property
    def writer(self):
        """This seed's TensorBoard writer (its directory is one TensorBoard run;
        events an earlier, stopped process logged past where this one starts
        are hidden: `restore`, `start_afresh`)."""
        if self._writer is None:
            from tensorboardX import SummaryWriter

            # tensorboardX names files by the second and opens them "wb": a suffix
            # in nanoseconds keeps two writers of one second apart, in order
            self._writer = SummaryWriter(logdir=str(self.dir), flush_secs=10,
                                         purge_step=self._purge_step,
                                         filename_suffix=f".{time.time_ns()}")
        return self._writer

    def log(self, record: dict) -> None:
        """Append `record` to metrics.jsonl; its numbers go to TensorBoard as
        ``<split>/<name>`` at ``record["step"]``."""
        with open(self.dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        for k, v in record.items():
            if isinstance(v, (int, float)) and k not in ("step", "split"):
                self.writer.add_scalar(f"{record['split']}/{k}", v, record["step"])

    def finish(self, result: "SeedResult") -> None:
        """Close the TensorBoard writer and write the seed's summary.json."""
        if self._writer is not None:
            self._writer.close()
        (self.dir / "summary.json").write_text(json.dumps(result.__dict__, indent=2) + "\n")

    def push(self, name: str, value: float) -> None:
        self.windows.setdefault(name, deque(maxlen=self.window)).append(value)

    def average(self, name: str) -> float:
        values = self.windows.get(name)
        return float(np.mean(values)) if values else float("nan")

    def to_json(self) -> dict:
        return {"seed": self.seed, "step": self.step, "seconds": self.seconds,
                "rng": self.rng.bit_generator.state, "converged": self.converged,
                "last_eval": self.last_eval,
                "windows": {k: list(v) for k, v in self.windows.items()}}

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint's `state`: records that training logged
        after that checkpoint (before it stopped) are dropped from
        metrics.jsonl, and from TensorBoard when it next writes, as they will
        be logged again."""
        self.step, self.seconds = state["step"], state["seconds"]
        self.rng.bit_generator.state = state["rng"]
        self.converged, self.last_eval = state["converged"], state["last_eval"]
        self.windows = {k: deque(v, maxlen=self.window) for k, v in state["windows"].items()}
        self._drop_records_after(self.step)

    def start_afresh(self) -> None:
        """Begin at step 0 in a seed directory that has no checkpoint: what a
        process stopped before its first checkpoint logged is dropped."""
        if (self.dir / "metrics.jsonl").exists() or any(self.dir.glob("events.out.tfevents.*")):
            self._drop_records_after(0)

    def _drop_records_after(self, step: int) -> None:
        """Keep the metrics.jsonl records up to `step` (and lines a stopped
        process left half-written go), rewriting the file atomically; hide
        TensorBoard events after `step`."""
        self._purge_step = step + 1
        metrics = self.dir / "metrics.jsonl"
        if not metrics.exists():
            return
        lines = metrics.read_text().splitlines()
        kept = [line for line in lines if (n := _step_of(line)) is not None and n <= step]
        if len(kept) < len(lines):
            tmp = metrics.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(line + "\n" for line in kept))
            os.replace(tmp, metrics)


def _step_of(line: str) -> int | None:
    """The step of a metrics.jsonl line, None if the line is not a record."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class SeedResult:
    seed: int
    steps: int
    seconds: float
    converged: dict | None
    heldout: dict | None


def make_trainer(run_dir: Path, config: RunConfig, seeds: list[int], reporter=None):
    """The trainer for `config`: `Trainer`, or MANN-RL's two-learner
    `mannlab.training.mann_rl.MannRLTrainer` when ``model.name`` is mann_rl."""
    if config.model.name == "mann_rl":
        from mannlab.training.mann_rl import MannRLTrainer

        return MannRLTrainer(run_dir, config, seeds, reporter)
    return Trainer(run_dir, config, seeds, reporter)


class Trainer:
    """Trains `seeds` of the run in `run_dir` (created by `rundir.create_run`)."""

    def __init__(self, run_dir: Path, config: RunConfig, seeds: list[int],
                 reporter=None):
        self.run_dir, self.config, self.cfg = Path(run_dir), config, config.train
        self.task = config.task.build()
        self.optimizer = make_optimizer(self.cfg)
        models = [build_model(config, self.task, s) for s in seeds]
        self.static = eqx.partition(models[0], eqx.is_array)[1]
        self.params = stack_trees([eqx.filter(m, eqx.is_array) for m in models])
        self.opt_state = jax.vmap(self.optimizer.init)(self.params)
        self.seeds = [SeedProgress(s, seed_dir(run_dir, s), np.random.default_rng(s),
                                   self.cfg.window) for s in seeds]
        self.reporter = reporter
        self.config_json = json.dumps(config.model_dump(mode="json"))
        self._train_step = make_train_step(self.static, self.task, self.optimizer)
        self._eval_step = make_eval_step(self.static, self.task)
        self._heldout = None
        self._images = None
        self._resume_if_possible()
        summary = self.run_dir / "model.txt"
        if not summary.exists():
            summary.write_text(model_summary(models[0], config))

    # ------------------------------------------------------------ persistence
    def _resume_if_possible(self) -> None:
        paths = [p.dir / CHECKPOINT_FILE for p in self.seeds]
        if not any(p.exists() for p in paths):
            for p in self.seeds:
                p.start_afresh()
            return
        missing = [p.dir.name for p, path in zip(self.seeds, paths) if not path.exists()]
        if missing:
            raise CheckpointError(
                f"{self.run_dir}: {', '.join(missing)} have no checkpoint but other seeds do; "
                f"resume the others one by one (--resume {self.run_dir}/seed-K)")
        p_skel, o_skel = unstack_tree(self.params, 0), unstack_tree(self.opt_state, 0)
        loaded = [load_checkpoint(path, p_skel, o_skel, self.config, BUDGET_FIELDS)
                  for path in paths]
        self.params = stack_trees([lp[0] for lp in loaded])
        self.opt_state = stack_trees([lp[1] for lp in loaded])
        for progress, (_, _, state) in zip(self.seeds, loaded):
            progress.restore(state)

    def save(self) -> None:
        """Every seed's checkpoint, all written before any replaces its old one."""
        save_checkpoints([(p.dir / CHECKPOINT_FILE, unstack_tree(self.params, i),
                           unstack_tree(self.opt_state, i), p.to_json(), self.config_json)
                          for i, p in enumerate(self.seeds)])

    # ------------------------------------------------------------ evaluation
    def heldout(self):
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
        batches = self.heldout()
        live = self._active()
        bound = (None if complete or self.cfg.converge_at is None else
                 self.cfg.converge_at * sum(b.inputs.shape[1] for b in batches))
        per_seq, totals = [], 0.0
        for b in batches:
            per_seq.append(np.asarray(self._eval_step(self.params, b)))  # [S, K, B]
            totals = totals + per_seq[-1][:, 0].sum(axis=-1)
            if bound is not None and np.all(totals[live] >= bound):
                break
        values = np.concatenate(per_seq, axis=-1)
        return values.mean(-1), values.shape[-1]

    def _log_images(self, seeds: list[int]) -> None:
        """TensorBoard images of one test sequence for the seeds at these indices."""
        from mannlab.viz.tensorboard import SequenceImageLogger

        if self._images is None:
            self._images = SequenceImageLogger(self.static, self.task, self.config)
        self._images.log(self.params, [(i, self.seeds[i].step, self.seeds[i].writer,
                                        self.seeds[i].dir.name) for i in seeds])

    # ------------------------------------------------------------ the loop
    def _active(self) -> np.ndarray:
        return np.array([p.converged is None for p in self.seeds])

    def _next_chunk(self) -> tuple[Batch, np.ndarray]:
        """The batches of the next training call [K, S, ...] (K = steps_per_call)
        and which seeds train at each of its steps [K, S].

        Steps run up to the next multiple of K and not past ``max_steps``; the
        other slots, and converged seeds, get a copy of a live batch and do not
        train (nor draw from their data stream), so every seed sees exactly
        the data of a run with any other K.
        """
        K, cfg = self.cfg.steps_per_call, self.cfg
        step = max(p.step for p in self.seeds)
        live_steps = min(K - step % K, cfg.max_steps - step)
        active = np.array([[k < live_steps and p.converged is None for p in self.seeds]
                           for k in range(K)])
        rows = [[self.task.sample(p.rng, cfg.batch_size) if a else None
                 for p, a in zip(self.seeds, row)] for row in active]
        filler = next(b for row in rows for b in row if b is not None)
        return stack_chunk([[b if b is not None else filler for b in row] for row in rows]), active

    def _out_of_budget(self) -> bool:
        """Whether the step budget or, for a seed still training, the time
        budget is spent (a converged seed's clock stops at its convergence)."""
        over_steps = max(q.step for q in self.seeds) >= self.cfg.max_steps
        live_seconds = [q.seconds for q in self.seeds if q.converged is None]
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
                if p.converged is None:
                    p.seconds = base + now

        def flush():
            nonlocal pending, interval_start
            if not pending:
                return
            outs = jax.device_get(pending)
            elapsed = time.perf_counter() - interval_start
            for i, p in enumerate(self.seeds):
                rows = [(o.loss[k, i], o.metrics[k, i], o.grad_norm[k, i], a[k, i])
                        for o, a in outs for k in range(len(a))]
                rows = [r for r in rows if r[3]]
                if not rows:
                    continue
                for _, m, _, _ in rows:
                    for k, name in enumerate(names):
                        p.push(name, float(m[k]))
                record = {"split": "train", "step": p.step, "seconds": round(p.seconds, 3),
                          "sequences": p.step * cfg.batch_size,
                          "loss": float(np.mean([r[0] for r in rows])),
                          "grad_norm": float(np.mean([r[2] for r in rows])),
                          "learning_rate": cfg.learning_rate,
                          "seq_per_s": len(rows) * cfg.batch_size / max(elapsed, 1e-9)}
                for k, name in enumerate(names):
                    record[name] = float(np.mean([r[1][k] for r in rows]))
                    record[f"{name}_window"] = p.average(name)
                p.log(record)
            pending, interval_start = [], time.perf_counter()

        def evaluate(complete=False):
            means, sequences = self.evaluate(complete)
            clock()
            evaluated = [i for i, p in enumerate(self.seeds) if p.converged is None]
            for i, p in enumerate(self.seeds):
                if p.converged is not None:
                    continue
                result = {name: float(means[i, k]) for k, name in enumerate(names)}
                p.last_eval = result
                p.log({"split": "heldout", "step": p.step, "seconds": round(p.seconds, 3),
                       "heldout_sequences": sequences, **result})
                if cfg.converge_at is not None and result[names[0]] < cfg.converge_at:
                    p.converged = {"step": p.step, "seconds": round(p.seconds, 3),
                                   "sequences": p.step * cfg.batch_size}
            if cfg.log_images:
                self._log_images(evaluated)

        if self.reporter:
            self.reporter.start(self)
        while self._active().any() and not self._out_of_budget():
            batches, active = self._next_chunk()
            self.params, self.opt_state, out = self._train_step(
                self.params, self.opt_state, jax.tree.map(jnp.asarray, batches),
                jnp.asarray(active))
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
        if any(p.last_eval is None or p.converged is None for p in self.seeds):
            evaluate(complete=True)
        clock()
        self.save()
        if self.reporter:
            self.reporter.finish(self)
        results = [SeedResult(p.seed, p.step, p.seconds, p.converged, p.last_eval)
                   for p in self.seeds]
        for p, r in zip(self.seeds, results):
            p.finish(r)
        return results
