"""SAM (models/sam.py): the fast kernel's memory-free backward pass against
plain autodiff of the same model, the shapes of the fast training step's
program (no N x T or N x N array, forward or backward), the trace, the step
cell in a user's own scan, and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mannlab.memory.lsh import build_index
from mannlab.models.ntm import NTM
from mannlab.models.sam import SAM
from mannlab.tasks.copy import CopyTask
from mannlab.training.step import make_train_step

T, B, I, O = 9, 2, 5, 3
SMALL = {"controller_size": 12, "memory_size": 6, "memory_width": 4, "read_heads": 2,
         "top_k": 2}


def model(kernels, **kw):
    return SAM(I, O, kernels=kernels, key=jax.random.key(0), **{**SMALL, **kw})


def value_and_grads(m, xs, state, mask):
    """A loss of the outputs and of the whole final state, and its gradients
    with respect to the parameters, the inputs and the initial memory."""
    params, static = eqx.partition(m, eqx.is_array)

    def loss(p, xs, memory):
        mm = eqx.combine(p, static)
        ys, st = mm(xs, state._replace(memory=memory), mask)
        return (jnp.sum(jnp.sin(3 * ys)) + jnp.sum(st.memory ** 2) + jnp.sum(st.reads)
                + jnp.sum(st.read_weights ** 2) + jnp.sum(jnp.cos(st.controller.hidden[0])))

    return jax.value_and_grad(loss, argnums=(0, 1, 2))(params, xs, state.memory)


@pytest.mark.parametrize("masked", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["no-mask", "mask"])
def test_fast_equals_autodiff_over_a_sequence_with_repeated_writes(masked):
    """Values and gradients of the memory-free backward pass equal plain
    autodiff's to float32 rounding, over a sequence where rows are written
    twice in one step (two heads read the same row, the LRU row was read)
    and again and again over the sequence (6 rows, 9 steps)."""
    xs = jax.random.normal(jax.random.key(1), (T, B, I))
    mask = jnp.asarray(np.random.default_rng(0).random((T, B)) > 0.3) if masked else None
    ref, fast = model("reference"), model("fast")
    state = ref.init_state(B)
    state = state._replace(memory=0.3 * jax.random.normal(jax.random.key(2), state.memory.shape))
    (v_ref, g_ref), (v_fast, g_fast) = (value_and_grads(m, xs, state, mask) for m in (ref, fast))
    np.testing.assert_allclose(v_fast, v_ref, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * float(np.abs(b).max()))
    # the sequence did write some row twice in one step and rows again over time
    _, _, trace = ref(xs, state, mask, with_trace=True)
    rows = np.asarray(trace.write_rows)
    assert any(len(set(r)) < len(r) for r in rows.reshape(-1, rows.shape[-1]))
    assert len(np.unique(rows[:, 0])) < rows.shape[0] * rows.shape[-1]


def test_fast_and_reference_give_the_same_outputs_and_state():
    xs = jax.random.normal(jax.random.key(3), (T, B, I))
    ref, fast = model("reference"), model("fast")
    ys_r, st_r = ref(xs, ref.init_state(B))
    ys_f, st_f = fast(xs, fast.init_state(B))
    np.testing.assert_allclose(ys_f, ys_r, rtol=1e-6, atol=1e-6)
    for a, b in zip(jax.tree.leaves(st_f), jax.tree.leaves(st_r), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def _shapes(jaxpr):
    """Every variable's shape in a jaxpr and in all jaxprs nested in it."""
    for var in list(jaxpr.invars) + list(jaxpr.constvars):
        yield var.aval.shape
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            yield var.aval.shape
        for param in eqn.params.values():
            for sub in param if isinstance(param, list | tuple) else [param]:
                if hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                    yield from _shapes(sub.jaxpr)  # ClosedJaxpr
                elif hasattr(sub, "eqns"):
                    yield from _shapes(sub)


def training_step_shapes(m, task, length, batch):
    params, static = eqx.partition(m, eqx.is_array)
    stack = lambda tree: jax.tree.map(lambda x: jnp.asarray(x)[None], tree)
    optimizer = optax.rmsprop(1e-4)
    params = stack(params)
    opt_state = optimizer.init(params)
    data = task.sample(np.random.default_rng(0), batch, length)
    step = make_train_step(static, task, optimizer)
    jaxpr = jax.make_jaxpr(step)(params, opt_state, stack(stack(data)),
                                 jnp.ones((1, 1), bool))
    return list(_shapes(jaxpr.jaxpr)), data.inputs.shape[0]


def test_no_n_by_t_or_n_by_n_array_in_the_fast_training_step():
    """The jaxpr of a whole training step (forward, jax.grad, optimiser
    update) of the fast SAM has no array with the memory size N and the
    sequence length T together, nor N twice (the dense NTM's has: the check
    sees them). So has the reference kernel's: every operation on the whole
    memory is linear in it (gathers, scatter-adds, the erase), so autodiff
    keeps only the gathered rows per step."""
    N = 37  # a size no other axis has
    task = CopyTask(bits=3, min_length=5, max_length=5)
    kw = {"controller_size": 7, "memory_size": N, "memory_width": 5, "read_heads": 2,
          "top_k": 3}
    fast = SAM(task.input_size, task.output_size, key=jax.random.key(0), **kw)
    shapes, steps = training_step_shapes(fast, task, 5, 2)
    assert steps != N and any(N in s for s in shapes) and any(steps in s for s in shapes)
    bad = [s for s in shapes if (N in s and steps in s) or s.count(N) > 1]
    assert not bad, f"arrays with N and T or N twice: {sorted(set(bad))}"
    reference = SAM(task.input_size, task.output_size, kernels="reference",
                    key=jax.random.key(0), **kw)
    shapes, _ = training_step_shapes(reference, task, 5, 2)
    assert not [s for s in shapes if (N in s and steps in s) or s.count(N) > 1]
    ntm = NTM(task.input_size, task.output_size, controller_size=7, memory_size=N,
              memory_width=5, key=jax.random.key(0))
    shapes, _ = training_step_shapes(ntm, task, 5, 2)
    assert any(N in s and steps in s for s in shapes)


def test_reads_of_empty_rows_do_not_run_the_lru_row_through_memory():
    """From an empty memory, once K rows are written the reads choose only
    written rows, so each step stamps one new row (the LRU row it writes):
    in a memory of more than T + K rows no row is erased twice, and every
    row read after the first step holds something. Before empty rows ranked last, an untrained
    model's keys pointing away from the few written rows read K empty rows
    per step, stamping them: the LRU row ran through memory K + 1 rows per
    step and erased the first rows written by step 8 of 30 (as in a trained
    model on copy 1-20: its recall read only empty rows)."""
    steps, n, k = 30, 40, 4
    m = SAM(I, O, controller_size=12, memory_size=n, memory_width=8, top_k=k,
            trace_memory=True, key=jax.random.key(0))
    xs = jax.random.normal(jax.random.key(7), (steps, B, I))
    _, _, trace = m(xs, m.init_state(B), with_trace=True)
    lru = np.asarray(trace.write_rows)[:, :, -1]  # [T, B]
    for b in range(B):
        assert len(set(lru[:, b].tolist())) == steps, lru[:, b]
    rows_read = np.asarray(trace.read_rows).reshape(steps, B, -1)
    held = np.any(np.asarray(trace.memory) != 0, axis=-1)  # [T, B, N] after each step
    for t in range(1, steps):  # step 0 wrote one row: the other K - 1 read are empty
        assert all(held[t, b, rows_read[t, b]].all() for b in range(B)), t


def test_step_in_a_users_scan_equals_the_sequence_call():
    m = model("fast")
    xs = jax.random.normal(jax.random.key(4), (T, B, I))

    def body(state, x):
        state, y, _ = m.step(state, x)
        return state, y

    _, ys = jax.lax.scan(body, m.init_state(B), xs)
    np.testing.assert_allclose(ys, m(xs, m.init_state(B))[0], rtol=1e-6, atol=1e-6)


def test_trace_shapes():
    m = model("fast", trace_memory=True)
    xs = jax.random.normal(jax.random.key(5), (T, B, I))
    _, _, trace = m(xs, m.init_state(B), with_trace=True)
    R, K, N, W = 2, 2, 6, 4
    assert trace.read_rows.shape == (T, B, R, K) and trace.read_rows.dtype == jnp.int32
    assert trace.read_row_weights.shape == (T, B, R, K)
    assert trace.write_rows.shape == (T, B, R * K + 1)
    assert trace.write_row_weights.shape == (T, B, R * K + 1)
    assert trace.memory.shape == (T, B, N, W)
    np.testing.assert_allclose(np.asarray(trace.read_row_weights).sum(-1), 1.0, rtol=1e-5)
    assert model("fast")(xs, m.init_state(B), with_trace=True)[2].memory is None


@pytest.mark.parametrize("kw, message", [
    ({"top_k": 7}, "top_k: at most memory_size (6) rows, got 7"),
    ({"top_k": 0}, "top_k: must be a positive integer, got 0"),
    ({"kernels": "slow"}, "kernels: unknown value 'slow'"),
])
def test_bad_input_is_a_one_line_error(kw, message):
    with pytest.raises(ValueError) as err:
        SAM(I, O, key=jax.random.key(0), **{**SMALL, **kw})
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow  # three models' gradients compiled: 10-20 s
def test_lsh_search_fast_equals_reference_and_covering_probes_equal_exact():
    """search="lsh": the fast kernel still equals autodiff; with one
    hyperplane, probes one bit away and room for every row, the index finds
    every written row, so the model computes what the exact search does."""
    xs = jax.random.normal(jax.random.key(6), (T, B, I))
    lsh = {"search": "lsh", "lsh_bits": 1, "lsh_capacity": 6}
    ref, fast, exact = model("reference", **lsh), model("fast", **lsh), model("fast")
    state = ref.init_state(B)
    state = state._replace(memory=0.3 * jax.random.normal(jax.random.key(2), state.memory.shape))
    index = jax.vmap(lambda m: build_index(m, ref.centroids, 6))(state.memory)
    (v_ref, g_ref), (v_fast, g_fast) = (
        value_and_grads(m, xs, state._replace(index=index), None) for m in (ref, fast))
    np.testing.assert_allclose(v_fast, v_ref, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * float(np.abs(b).max()))
    ys_exact, _ = exact(xs, state._replace(index=None))
    ys_lsh, _ = fast(xs, state._replace(index=index))
    np.testing.assert_allclose(ys_lsh, ys_exact, rtol=1e-5, atol=1e-6)
