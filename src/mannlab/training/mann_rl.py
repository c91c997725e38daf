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

The paper's text counts the settle period in batches, its tables ("settle:
number of time steps before buffering history") in time steps. ``schedule:
time_steps`` is that second reading: within each batch of sequences the
action network takes one update per time step (on the batch's rows at that
step, `MannRL.train_time_step`), and the settle / buffer / memory cycle
advances by time steps, so a memory phase may fall inside a batch; the
buffer then holds `history` time steps [1, history, B, ...], whose
consecutive slots are a pair when they are steps t and t+1 of one sequence.

`MannRLLearner` is this recipe as the training loop's update step
(`mannlab.training.step.Learner`): the loop (`mannlab.training.trainer`)
gives MANN-RL the same run directory, records, evaluation, early stopping,
checkpoints and exact ``--resume`` as every model. A checkpoint holds the parameters (BatchNorm running averages
included, so ``mannlab eval`` / ``show`` see the model as trained) and, as its
optimiser state, ``(action optimiser, memory optimiser, history buffer)``;
the JSON state adds the cycle position, the replay PRNG key and counters.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mannlab.config import MannRLRecipe, RunConfig
from mannlab.models.embedded import Embedded
from mannlab.models.mann_rl import group_filter
from mannlab.training.optimizer import make_optimizer
from mannlab.training.step import Rows, StepOutput, stack_trees


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


__all__ = ["History", "MannRLLearner", "cycle_phase", "empty_history",
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
def make_memory_optimizer(mcfg: MannRLRecipe) -> optax.GradientTransformation:
    if mcfg.memory_optimizer == "rmsprop":
        opt = optax.rmsprop(mcfg.memory_learning_rate, decay=mcfg.memory_decay, eps=1e-8,
                            eps_in_sqrt=False)
    else:
        opt = optax.adam(mcfg.memory_learning_rate)
    return optax.chain(optax.clip(mcfg.memory_clipping), opt)


def make_action_step(static, task, optimizer, action_spec):
    """jit ``(params, opt, batch) -> (params, opt, StepOutput, (record, step_loss))``."""

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
        return params, opt_state, StepOutput(loss, means, optax.tree.norm(grads)), \
            (record, step_loss)

    return jax.jit(step, donate_argnums=(0, 1))


def make_memory_step(static, mcfg: MannRLRecipe, optimizer, memory_spec):
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


def make_action_time_step(static, optimizer, action_spec):
    """jit ``(params, opt, x [B, ...], m [B, D], targets [B], loss_mask [B],
    valid [B]) -> (params, opt, logits [B, O], next memory, input as the
    memory-net saw it [B, I], output as it saw it [B, O], loss per row [B],
    gradient norm)``: one action update on one time step (``time_steps``)."""

    def step(params, opt_state, x, m, targets, loss_mask, valid):
        action_p, rest = eqx.partition(params, action_spec)

        def loss_fn(ap):
            model = eqx.combine(ap, rest, static)
            seen = model.embed(x) if isinstance(model, Embedded) else x
            logits, m_next, out, new_inner = _inner(model).train_time_step(seen, m, valid)
            nll = per_step_loss(logits[None], targets[None], loss_mask[None])[0]
            new_arrays = eqx.filter(_with_inner(model, new_inner), eqx.is_array)
            return nll.sum() / jnp.maximum(loss_mask.sum(), 1.0), (
                logits, m_next, jax.lax.stop_gradient(seen), out, nll, new_arrays)

        (_, (logits, m_next, seen, out, nll, new_arrays)), grads = jax.value_and_grad(
            loss_fn, has_aux=True)(action_p)
        updates, opt_state = optimizer.update(grads, opt_state, action_p)
        action_p = optax.apply_updates(action_p, updates)
        _, others = eqx.partition(new_arrays, action_spec)
        return (eqx.combine(action_p, others), opt_state, jax.lax.stop_gradient(logits),
                m_next, seen, out, jax.lax.stop_gradient(nll), optax.tree.norm(grads))

    return jax.jit(step, donate_argnums=(0, 1))


@jax.jit
def _write_time_step(buf, slot, memory, inputs, outputs, targets, loss, valid):
    """Put one time step's states [B, ...] into slot `slot` of a ``time_steps``
    buffer [1, history, B, ...]; `valid` [B]: this step and the next slot's
    are steps t and t+1 of one sequence."""
    put = lambda dst, src: dst.at[0, slot].set(src.astype(dst.dtype))
    return History(put(buf.memory, memory), put(buf.inputs, inputs),
                   put(buf.outputs, outputs), put(buf.targets, targets),
                   put(buf.loss, loss), put(buf.valid, valid))


@jax.jit
def _write(buf, slot, record, targets, loss, step_mask):
    return write_slot(buf, slot, record, targets, loss, step_mask)


@jax.jit
def _clear(buf):
    return buf._replace(valid=jnp.zeros_like(buf.valid))


# ---------------------------------------------------------------- the learner
class SeedState(NamedTuple):
    """One seed's MANN-RL state: the device arrays (params, both optimisers'
    states, the replay buffer, the replay PRNG key) and the host counters
    (position in the cycle, memory-net updates so far, mean TD loss of the
    last memory phase or None)."""

    params: object
    action_opt: object
    memory_opt: object
    history: History
    key: jnp.ndarray
    cycle: int = 0
    memory_updates: int = 0
    memory_loss: float | None = None


class MannRLLearner:
    """MANN-RL's update step for the training loop (`mannlab.training.step.Learner`):
    one action-network batch per step, then the memory phase when the cycle
    ends there (see the module docstring). Seeds have separate states and
    are stepped one after another.

    Args:
      models: one initialised `MannRL` model (optionally `Embedded`) per seed.
      seeds: the seeds (each seed's replay key is ``PRNGKey(seed + 7919)``).
      task: a symbol-sequence task (its ``max_time_steps`` sizes the buffer).
      config: the run's config (``train`` and ``train.mann_rl``).
    """

    def __init__(self, models: list, seeds: list[int], task, config: RunConfig):
        self.cfg, self.recipe = config.train, config.train.mann_rl
        self.task = task
        self.action_optimizer = make_optimizer(self.cfg)
        self.memory_optimizer = make_memory_optimizer(self.recipe)
        params, self.static = eqx.partition(models[0], eqx.is_array)
        self.action_spec = group_filter(params, "action")
        self.memory_spec = group_filter(params, "memory")
        self.states = [self._fresh_state(m, s) for m, s in zip(models, seeds)]
        self._action_step = make_action_step(self.static, task, self.action_optimizer,
                                             self.action_spec)
        self._memory_step = make_memory_step(self.static, self.recipe, self.memory_optimizer,
                                             self.memory_spec)
        self._action_time_step = make_action_time_step(self.static, self.action_optimizer,
                                                       self.action_spec)

    def _fresh_state(self, model, seed: int) -> SeedState:
        params = eqx.filter(model, eqx.is_array)
        action_p, _ = eqx.partition(params, self.action_spec)
        memory_p, _ = eqx.partition(params, self.memory_spec)
        in_size = model.weight.shape[1] if isinstance(model, Embedded) else self.task.input_size
        slots, steps = ((self.recipe.history, self.task.max_time_steps)
                        if self.recipe.schedule == "batches" else (1, self.recipe.history))
        hist = empty_history(slots, steps, self.cfg.batch_size, _inner(model).memory_size,
                             in_size, self.task.output_size)
        return SeedState(params, self.action_optimizer.init(action_p),
                         self.memory_optimizer.init(memory_p), hist,
                         jax.random.PRNGKey(seed + 7919))

    # ------------------------------------------------------------ Learner
    def params(self):
        return stack_trees([st.params for st in self.states])

    def update(self, rows: Rows) -> StepOutput:
        (row,) = rows  # one step per call (RunConfig checks steps_per_call)
        outs = [self.train_batch(i, b)[0] if b is not None else None for i, b in enumerate(row)]
        blank = next(o for o in outs if o is not None)
        outs = [o if o is not None else jax.tree.map(jnp.zeros_like, blank) for o in outs]
        return StepOutput(*(jnp.stack(parts)[None] for parts in zip(*outs)))

    def record(self, i: int) -> dict:
        st = self.states[i]
        extra = {"memory_updates": st.memory_updates, "cycle": st.cycle}
        if st.memory_loss is not None:
            extra["memory_loss"] = st.memory_loss
        return extra

    def seed_state(self, i: int):
        st = self.states[i]
        extras = {"mann_rl": {"cycle": st.cycle, "memory_updates": st.memory_updates,
                              "memory_loss": st.memory_loss,
                              "key": np.asarray(jax.device_get(st.key)).tolist()}}
        return st.params, (st.action_opt, st.memory_opt, st.history), extras

    def restore_seed(self, i: int, params, arrays, extras: dict) -> None:
        action_opt, memory_opt, history = arrays
        saved = extras["mann_rl"]
        as_device = lambda tree: jax.tree.map(jnp.asarray, tree)
        self.states[i] = SeedState(
            as_device(params), as_device(action_opt), as_device(memory_opt),
            History(*(jnp.asarray(x) for x in history)),
            jnp.asarray(np.array(saved["key"], np.uint32)), saved["cycle"],
            saved["memory_updates"], saved["memory_loss"])

    # ------------------------------------------------------------ one batch
    def train_batch(self, i: int, batch) -> tuple[StepOutput, str]:
        """One action-network batch of seed `i`, then memory training if the
        cycle ends there. Returns the action output and the batch's phase
        (``time_steps``: the phase of its first time step)."""
        if self.recipe.schedule == "time_steps":
            return self.train_time_steps(i, batch)
        st, m = self.states[i], self.recipe
        phase = cycle_phase(st.cycle, m.settle, m.history)
        batch = jax.tree.map(jnp.asarray, batch)
        params, action_opt, out, (record, step_loss) = self._action_step(
            st.params, st.action_opt, batch)
        st = st._replace(params=params, action_opt=action_opt)
        if phase == "buffer":
            st = st._replace(history=_write(st.history, st.cycle - m.settle, record,
                                            batch.targets, step_loss, batch.step_mask))
        if ends_cycle(st.cycle, m.settle, m.history):
            st = self._memory_phase(st)
        else:
            st = st._replace(cycle=st.cycle + 1)
        self.states[i] = st
        return out, phase

    def _memory_phase(self, st: SeedState) -> SeedState:
        """The memory-net updates that end a cycle, then an empty buffer."""
        m = self.recipe
        if m.memory_train_iterations:
            params, memory_opt, loss, key = self._memory_step(
                st.params, st.memory_opt, st.history, st.key)
            st = st._replace(params=params, memory_opt=memory_opt, key=key,
                             memory_loss=float(loss),
                             memory_updates=st.memory_updates + m.memory_train_iterations)
        return st._replace(history=_clear(st.history), cycle=0)

    def train_time_steps(self, i: int, batch) -> tuple[StepOutput, str]:
        """One batch of seed `i` under the ``time_steps`` schedule: an action
        update per time step that has a valid row, the cycle advancing per time
        step (a memory phase may fall between two steps of the batch)."""
        st, m = self.states[i], self.recipe
        first = cycle_phase(st.cycle, m.settle, m.history)
        mask = np.asarray(batch.step_mask)
        steps = int(mask.any(axis=1).sum())  # the rest is padding of every row
        memory = _inner(eqx.combine(st.params, self.static)).init_state(mask.shape[1]).vector
        logits, norms = [], []
        for t in range(steps):
            phase = cycle_phase(st.cycle, m.settle, m.history)
            params, action_opt, ys, memory_next, seen, out, nll, norm = self._action_time_step(
                st.params, st.action_opt, batch.inputs[t], memory, batch.targets[t],
                batch.loss_mask[t], mask[t])
            st = st._replace(params=params, action_opt=action_opt)
            if phase == "buffer":
                slot = st.cycle - m.settle
                pair = (mask[t] & mask[t + 1] if t + 1 < steps and slot + 1 < m.history
                        else np.zeros_like(mask[t]))
                st = st._replace(history=_write_time_step(
                    st.history, slot, memory, seen, out, batch.targets[t], nll, pair))
            if ends_cycle(st.cycle, m.settle, m.history):
                st = self._memory_phase(st)
            else:
                st = st._replace(cycle=st.cycle + 1)
            memory = memory_next
            logits.append(ys)
            norms.append(norm)
        self.states[i] = st
        ys = jnp.stack(logits + [jnp.zeros_like(logits[0])] * (mask.shape[0] - steps))
        batch = jax.tree.map(jnp.asarray, batch)
        loss, metrics = self.task.loss(ys, batch)
        means = jnp.stack([metrics[k].mean() for k in self.task.metric_names])
        return StepOutput(loss, means, jnp.mean(jnp.stack(norms))), first

