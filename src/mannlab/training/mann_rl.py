"""MANN-RL's training recipe: two coupled learners (Barrett 2025, section 3).

* The **action network** (with a word embedding in front, for token-id
  tasks) learns by supervised cross entropy with the ``train`` section's
  optimiser (paper: Adam, lr 1e-4, element-wise clipping 0.01, batch 16). The
  memory it reads is carried without gradient, so its loss never reaches the
  memory-net.
* The **memory-net** learns by Q-learning with experience replay, its reward
  being the negative of the action loss at each step. A history buffer holds
  per-step states ``(m_t, in_t, out_t, target_t, loss_t)`` of the last
  ``history`` training batches (device arrays [history, T_max, B, ...], with a
  ``valid`` flag on every (t, t+1) pair that lies inside one sequence, so no
  pair crosses a sequence boundary or touches padding). A memory-net update
  draws ``memory_samples`` valid pairs uniformly and takes one gradient step
  (``memory_optimizer``, default RMSprop, element-wise clipping
  ``memory_clipping``) on the Smooth L1 loss between

      actual   = f_mn(m_t, in_t, out_t)
      expected = gamma * f_mn(m_{t+1}, in_{t+1}, out_{t+1}) - clamp(loss_t, 0, memory_clamp)

  The expected side is a fixed target (stop-gradient), as in DQN (Mnih et
  al. 2013), which the paper follows; the paper does not say otherwise.
  ``target_gradient: true`` lets gradients flow through it instead.
  BatchNorm in these updates uses its running averages, i.e. the memory-net
  is the same function as in the roll-outs that produced the buffer (a batch
  of 8 sampled pairs would give very noisy statistics); the running averages
  themselves follow the roll-outs of the action batches.

The training dance, in units of action-network batches (``step``):

    settle  `settle` batches: action network trains, nothing buffered
    buffer  `history` batches: action network trains, each batch's states
            go into the next buffer slot
    memory  right after the last buffer batch: `memory_train_iterations`
            memory-net updates; the buffer is cleared and the cycle restarts

`MannRLTrainer` runs this behind the same interface as `Trainer` (run
directory, metrics.jsonl, TensorBoard scalars and images, checkpoints, exact
``--resume``, progress bar, held-out evaluation, convergence and budget
stopping). A checkpoint holds the parameters (BatchNorm running averages
included, so ``mannlab eval`` / ``show`` see the model as trained) and, as its
optimiser state, ``(action optimiser, memory optimiser, history buffer)``;
the JSON state adds the cycle position, the replay PRNG key and counters.
Several seeds are trained one after the other.
"""

import json
import time
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mannlab.config import MannRLConfig, RunConfig
from mannlab.models.embedded import Embedded
from mannlab.models.mann_rl import group_filter
from mannlab.training.checkpoint import load_checkpoint, save_checkpoint
from mannlab.training.optimizer import make_optimizer
from mannlab.training.rundir import BUDGET_FIELDS, CHECKPOINT_FILE, model_summary, seed_dir
from mannlab.training.step import make_eval_step
from mannlab.training.trainer import SeedProgress, SeedResult, build_model


# ---------------------------------------------------------------- pure pieces
def expected_memory(next_memory: jnp.ndarray, loss: jnp.ndarray, gamma: float,
                    clamp: float) -> jnp.ndarray:
    """``gamma * f_mn(m_{t+1}, ...) - clamp(loss_t, 0, clamp)``.

    Args:
      next_memory: [N, D] the memory-net's output on the t+1 states.
      loss: [N] the action loss at t (broadcast over the D memory values).
    """
    return gamma * next_memory - jnp.clip(loss, 0.0, clamp)[:, None]


def smooth_l1(actual: jnp.ndarray, expected: jnp.ndarray) -> jnp.ndarray:
    """PyTorch's SmoothL1Loss (beta 1, mean over all elements)."""
    return optax.huber_loss(actual, expected, delta=1.0).mean()


def cycle_phase(position: int, settle: int, history: int) -> str:
    """Phase of the action batch at `position` in the cycle: "settle" or "buffer".
    The memory phase follows the batch at position settle + history - 1."""
    if not 0 <= position < settle + history:
        raise ValueError(f"cycle position {position} outside 0..{settle + history - 1}")
    return "settle" if position < settle else "buffer"


def ends_cycle(position: int, settle: int, history: int) -> bool:
    """True if memory training follows the batch at `position`."""
    return position == settle + history - 1


class History(NamedTuple):
    """The replay buffer: one slot per buffered batch, time padded to T_max.

    memory [H, T, B, D], inputs [H, T, B, I], outputs [H, T, B, O] (what the
    memory-net saw), targets [H, T, B] int32, loss [H, T, B] (per-step action
    loss, 0 where unscored), valid [H, T, B]: the pair (t, t+1) of sequence b
    in slot h is a real pair (both steps inside the sequence)."""

    memory: jnp.ndarray
    inputs: jnp.ndarray
    outputs: jnp.ndarray
    targets: jnp.ndarray
    loss: jnp.ndarray
    valid: jnp.ndarray


__all__ = ["History", "MannRLTrainer", "cycle_phase", "empty_history",
           "ends_cycle", "expected_memory", "pair_mask", "sample_pairs", "smooth_l1",
           "write_slot"]


def empty_history(history: int, steps: int, batch: int, memory: int, inputs: int,
                  outputs: int) -> History:
    z = lambda *s: jnp.zeros((history, steps, batch) + s, jnp.float32)
    return History(z(memory), z(inputs), z(outputs),
                   jnp.zeros((history, steps, batch), jnp.int32), z(),
                   jnp.zeros((history, steps, batch), bool))


def pair_mask(step_mask: jnp.ndarray) -> jnp.ndarray:
    """[T, B]: True at t when steps t and t+1 both belong to the sequence."""
    nxt = jnp.concatenate([step_mask[1:], jnp.zeros_like(step_mask[:1])], 0)
    return step_mask & nxt


def write_slot(buf: History, slot, record, targets, loss, step_mask) -> History:
    """Put one batch's states [T, B, ...] into slot `slot` (time padded to T_max)."""
    T_max = buf.memory.shape[1]
    T = step_mask.shape[0]

    def put(dst, src):
        src = jnp.pad(src.astype(dst.dtype), [(0, T_max - T)] + [(0, 0)] * (src.ndim - 1))
        return jax.lax.dynamic_update_index_in_dim(dst, src, slot, 0)

    return History(put(buf.memory, record.memory), put(buf.inputs, record.inputs),
                   put(buf.outputs, record.outputs), put(buf.targets, targets),
                   put(buf.loss, loss), put(buf.valid, pair_mask(step_mask)))


def sample_pairs(key, valid: jnp.ndarray, n: int):
    """`n` indices (h, t, b) drawn uniformly (with replacement) among valid pairs."""
    logits = jnp.where(valid.ravel(), 0.0, -jnp.inf)
    flat = jax.random.categorical(key, logits, shape=(n,))
    return jnp.unravel_index(flat, valid.shape)


def per_step_loss(ys, targets, loss_mask):
    """[T, B] cross-entropy of each scored step (0 elsewhere)."""
    logp = jax.nn.log_softmax(ys, -1)
    nll = -jnp.take_along_axis(logp, targets[..., None].astype(jnp.int32), -1)[..., 0]
    return nll * loss_mask


def _inner(model):
    return model.inner if isinstance(model, Embedded) else model


def _with_inner(model, inner):
    return eqx.tree_at(lambda m: m.inner, model, inner) if isinstance(model, Embedded) else inner


# ---------------------------------------------------------------- jitted steps
def make_memory_optimizer(mcfg: MannRLConfig) -> optax.GradientTransformation:
    if mcfg.memory_optimizer == "rmsprop":
        opt = optax.rmsprop(mcfg.memory_learning_rate, decay=mcfg.memory_decay, eps=1e-8,
                            eps_in_sqrt=False)
    else:
        opt = optax.adam(mcfg.memory_learning_rate)
    return optax.chain(optax.clip(mcfg.memory_clipping), opt)


class ActionOutput(NamedTuple):
    loss: jnp.ndarray
    metrics: jnp.ndarray  # [K] batch means
    grad_norm: jnp.ndarray


def make_action_step(static, task, optimizer, action_spec):
    """jit ``(params, opt, batch) -> (params, opt, ActionOutput, (record, step_loss))``."""

    def step(params, opt_state, batch):
        action_p, rest = eqx.partition(params, action_spec)

        def loss_fn(ap):
            model = eqx.combine(ap, rest, static)
            inner = _inner(model)
            xs = model.embed(batch.inputs) if isinstance(model, Embedded) else batch.inputs
            ys, record, new_inner = inner.train_sequence(
                xs, inner.init_state(xs.shape[1]), batch.step_mask)
            loss, metrics = task.loss(ys, batch)
            new_model = _with_inner(model, new_inner)
            return loss, (metrics, record, ys, eqx.filter(new_model, eqx.is_array))

        (loss, (metrics, record, ys, new_arrays)), grads = jax.value_and_grad(
            loss_fn, has_aux=True)(action_p)
        updates, opt_state = optimizer.update(grads, opt_state, action_p)
        action_p = optax.apply_updates(action_p, updates)
        _, others = eqx.partition(new_arrays, action_spec)  # memory params + new stats
        params = eqx.combine(action_p, others)
        means = jnp.stack([metrics[k].mean() for k in task.metric_names])
        step_loss = per_step_loss(jax.lax.stop_gradient(ys), batch.targets, batch.loss_mask)
        return params, opt_state, ActionOutput(loss, means, optax.tree.norm(grads)), \
            (record, step_loss)

    return jax.jit(step, donate_argnums=(0, 1))


def make_memory_step(static, mcfg: MannRLConfig, optimizer, memory_spec):
    """jit ``(params, opt, history, key) -> (params, opt, mean TD loss, key)``:
    `memory_train_iterations` memory-net updates of `memory_samples` pairs."""

    def td_loss(mp, rest, buf, idx, idx_next):
        net = _inner(eqx.combine(mp, rest, static)).memory
        take = lambda a, i: a[i]
        cur = [take(a, idx) for a in (buf.inputs, buf.outputs, buf.memory)]
        nxt = [take(a, idx_next) for a in (buf.inputs, buf.outputs, buf.memory)]
        actual, _ = net(*cur)
        following, _ = net(*nxt)
        if not mcfg.target_gradient:
            following = jax.lax.stop_gradient(following)
        target = expected_memory(following, buf.loss[idx], mcfg.gamma, mcfg.memory_clamp)
        return smooth_l1(actual, target)

    def step(params, opt_state, buf, key):
        mp, rest = eqx.partition(params, memory_spec)
        losses = []
        for _ in range(mcfg.memory_train_iterations):
            key, k = jax.random.split(key)
            h, t, b = sample_pairs(k, buf.valid, mcfg.memory_samples)
            loss, grads = jax.value_and_grad(td_loss)(mp, rest, buf, (h, t, b), (h, t + 1, b))
            updates, opt_state = optimizer.update(grads, opt_state, mp)
            mp = optax.apply_updates(mp, updates)
            losses.append(loss)
        mean = jnp.mean(jnp.stack(losses)) if losses else jnp.float32(0.0)
        return eqx.combine(mp, rest), opt_state, mean, key

    return jax.jit(step, donate_argnums=(0, 1))


@jax.jit
def _write(buf, slot, record, targets, loss, step_mask):
    return write_slot(buf, slot, record, targets, loss, step_mask)


@jax.jit
def _clear(buf):
    return buf._replace(valid=jnp.zeros_like(buf.valid))


# ---------------------------------------------------------------- the trainer
class SeedState:
    """Device state of one seed: params, both optimisers, buffer, replay key."""

    def __init__(self, params, action_opt, memory_opt, history, key):
        self.params, self.action_opt, self.memory_opt = params, action_opt, memory_opt
        self.history, self.key = history, key
        self.cycle = 0
        self.memory_updates = 0
        self.memory_loss: float | None = None  # mean TD loss of the last memory phase


def is_mann_rl(config: RunConfig) -> bool:
    return config.model.name == "mann_rl"


class MannRLTrainer:
    """Trains `seeds` of a MANN-RL run (see the module docstring)."""

    def __init__(self, run_dir: Path, config: RunConfig, seeds: list[int], reporter=None):
        if not is_mann_rl(config):
            raise ValueError(f"MannRLTrainer needs model mann_rl, got {config.model.name}")
        self.run_dir, self.config, self.cfg = Path(run_dir), config, config.train
        self.mcfg: MannRLConfig = config.model
        self.task = config.task.build()
        self.reporter = reporter
        self.config_json = json.dumps(config.model_dump(mode="json"))
        self.action_optimizer = make_optimizer(self.cfg)
        self.memory_optimizer = make_memory_optimizer(self.mcfg)
        self.seeds = [SeedProgress(s, seed_dir(run_dir, s), np.random.default_rng(s),
                                   self.cfg.window) for s in seeds]
        self.states = []
        model = None
        for s in seeds:
            model = build_model(config, self.task, s)
            self.states.append(self._fresh_state(model, s))
        params, self.static = eqx.partition(model, eqx.is_array)
        self.action_spec = group_filter(params, "action")
        self.memory_spec = group_filter(params, "memory")
        self._action_step = make_action_step(self.static, self.task, self.action_optimizer,
                                             self.action_spec)
        self._memory_step = make_memory_step(self.static, self.mcfg, self.memory_optimizer,
                                             self.memory_spec)
        self._eval_step = make_eval_step(self.static, self.task)
        self._heldout, self._images = None, None
        self._resume_if_possible()
        summary = self.run_dir / "model.txt"
        if not summary.exists():
            summary.write_text(model_summary(model, config))

    def _fresh_state(self, model, seed: int) -> SeedState:
        params = eqx.filter(model, eqx.is_array)
        action_p, _ = eqx.partition(params, group_filter(params, "action"))
        memory_p, _ = eqx.partition(params, group_filter(params, "memory"))
        inner = _inner(model)
        in_size = model.weight.shape[1] if isinstance(model, Embedded) else self.task.input_size
        steps = max(self.task.edges[-1], self.task.max_length) if hasattr(
            self.task, "edges") else self.task.max_length
        hist = empty_history(self.mcfg.history, steps, self.cfg.batch_size, inner.memory_size,
                             in_size, self.task.output_size)
        return SeedState(params, self.action_optimizer.init(action_p),
                         self.memory_optimizer.init(memory_p), hist,
                         jax.random.PRNGKey(seed + 7919))

    # ------------------------------------------------------------ persistence
    def _resume_if_possible(self) -> None:
        for p, st in zip(self.seeds, self.states):
            path = p.dir / CHECKPOINT_FILE
            if not path.exists():
                p.start_afresh()
                continue
            params, (a, m, h), state = load_checkpoint(
                path, st.params, (st.action_opt, st.memory_opt, st.history), self.config,
                BUDGET_FIELDS)
            st.params = jax.tree.map(jnp.asarray, params)
            st.action_opt, st.memory_opt = (jax.tree.map(jnp.asarray, a),
                                            jax.tree.map(jnp.asarray, m))
            st.history = History(*(jnp.asarray(x) for x in h))
            p.restore(state)
            extra = state["mann_rl"]
            st.cycle, st.memory_updates = extra["cycle"], extra["memory_updates"]
            st.memory_loss = extra["memory_loss"]
            st.key = jnp.asarray(np.array(extra["key"], np.uint32))

    def _save(self, i: int) -> None:
        p, st = self.seeds[i], self.states[i]
        state = p.to_json()
        state["mann_rl"] = {"cycle": st.cycle, "memory_updates": st.memory_updates,
                            "memory_loss": st.memory_loss,
                            "key": np.asarray(jax.device_get(st.key)).tolist()}
        save_checkpoint(p.dir / CHECKPOINT_FILE, st.params,
                        (st.action_opt, st.memory_opt, st.history), state, self.config_json)

    def save(self) -> None:
        for i in range(len(self.seeds)):
            self._save(i)

    # ------------------------------------------------------------ evaluation
    def heldout(self):
        if self._heldout is None:
            self._heldout = [jax.tree.map(jnp.asarray, b)
                             for b in self.task.heldout(self.cfg.eval_size)]
        return self._heldout

    def evaluate_seed(self, i: int) -> dict:
        params = jax.tree.map(lambda x: x[None], self.states[i].params)
        per = [np.asarray(self._eval_step(params, b))[0] for b in self.heldout()]
        means = np.concatenate(per, axis=-1).mean(-1)
        return {n: float(means[k]) for k, n in enumerate(self.task.metric_names)}

    def _log_images(self, i: int) -> None:
        from mannlab.viz.tensorboard import SequenceImageLogger

        if self._images is None:
            self._images = SequenceImageLogger(self.static, self.task, self.config)
        p = self.seeds[i]
        params = jax.tree.map(lambda x: x[None], self.states[i].params)
        self._images.log(params, [(0, p.step, p.writer, p.dir.name)])

    # ------------------------------------------------------------ the loop
    def train_batch(self, i: int, batch) -> tuple[ActionOutput, str]:
        """One action-network batch of seed `i`, then memory training if the
        cycle ends there. Returns the action output and the batch's phase."""
        st, m = self.states[i], self.mcfg
        phase = cycle_phase(st.cycle, m.settle, m.history)
        batch = jax.tree.map(jnp.asarray, batch)
        st.params, st.action_opt, out, (record, step_loss) = self._action_step(
            st.params, st.action_opt, batch)
        if phase == "buffer":
            st.history = _write(st.history, st.cycle - m.settle, record, batch.targets,
                                step_loss, batch.step_mask)
        if ends_cycle(st.cycle, m.settle, m.history):
            if m.memory_train_iterations:
                st.params, st.memory_opt, loss, st.key = self._memory_step(
                    st.params, st.memory_opt, st.history, st.key)
                st.memory_loss = float(loss)
                st.memory_updates += m.memory_train_iterations
            st.history = _clear(st.history)
            st.cycle = 0
        else:
            st.cycle += 1
        self.seeds[i].step += 1
        return out, phase

    def _out_of_budget(self, p: SeedProgress) -> bool:
        over_time = self.cfg.max_seconds is not None and p.seconds >= self.cfg.max_seconds
        return p.step >= self.cfg.max_steps or over_time

    def _train_seed(self, i: int) -> SeedResult:
        cfg, names, p, st = self.cfg, self.task.metric_names, self.seeds[i], self.states[i]
        started, base = time.perf_counter(), p.seconds
        pending, interval_start = [], time.perf_counter()

        def clock():
            p.seconds = base + time.perf_counter() - started

        def flush():
            nonlocal pending, interval_start
            if not pending:
                return
            outs = jax.device_get(pending)
            elapsed = time.perf_counter() - interval_start
            for o in outs:
                for k, name in enumerate(names):
                    p.push(name, float(o.metrics[k]))
            record = {"split": "train", "step": p.step, "seconds": round(p.seconds, 3),
                      "sequences": p.step * cfg.batch_size,
                      "loss": float(np.mean([o.loss for o in outs])),
                      "grad_norm": float(np.mean([o.grad_norm for o in outs])),
                      "learning_rate": cfg.learning_rate,
                      "seq_per_s": len(outs) * cfg.batch_size / max(elapsed, 1e-9),
                      "memory_updates": st.memory_updates, "cycle": st.cycle}
            if st.memory_loss is not None:
                record["memory_loss"] = st.memory_loss
            for k, name in enumerate(names):
                record[name] = float(np.mean([o.metrics[k] for o in outs]))
                record[f"{name}_window"] = p.average(name)
            p.log(record)
            pending, interval_start = [], time.perf_counter()

        def evaluate():
            result = self.evaluate_seed(i)
            clock()
            p.last_eval = result
            p.log({"split": "heldout", "step": p.step, "seconds": round(p.seconds, 3),
                   **result})
            if cfg.converge_at is not None and result[names[0]] < cfg.converge_at:
                p.converged = {"step": p.step, "seconds": round(p.seconds, 3),
                               "sequences": p.step * cfg.batch_size}
            if cfg.log_images:
                self._log_images(i)

        while p.converged is None and not self._out_of_budget(p):
            out, _ = self.train_batch(i, self.task.sample(p.rng, cfg.batch_size))
            pending.append(out)
            if p.step % cfg.log_every == 0:
                clock()
                flush()
                if self.reporter:
                    self.reporter.update(self)
            if p.step % cfg.eval_every == 0:
                flush()
                evaluate()
            if p.step % cfg.checkpoint_every == 0:
                flush()
                clock()
                self._save(i)
            if len(pending) >= 1000:
                flush()
            clock()
        flush()
        if p.last_eval is None or (p.converged is None and p.step % cfg.eval_every):
            evaluate()
        clock()
        self._save(i)
        return SeedResult(p.seed, p.step, p.seconds, p.converged, p.last_eval)

    def train(self) -> list[SeedResult]:
        if self.reporter:
            self.reporter.start(self)
        results = [self._train_seed(i) for i in range(len(self.seeds))]
        if self.reporter:
            self.reporter.finish(self)
        for p, r in zip(self.seeds, results):
            p.finish(r)
        return results
