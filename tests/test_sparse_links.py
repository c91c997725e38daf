"""The sparse link matrix (memory/sparse_links.py) against the dense DNC
update (memory/temporal_links.py) restricted to the same nonzeros."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from mannlab.memory.sparse_links import (
    column_decay,
    first_in_rows,
    first_slots,
    merge_rows,
    merge_top,
    sparse_directional_weightings,
    sparse_link_update,
    sparse_lookup,
    sparse_precedence_update,
    sparse_table,
    table_firsts,
    to_dense,
)
from mannlab.memory.temporal_links import (
    directional_weightings,
    link_update,
    precedence_update,
)

N = 9


def storages(dense: np.ndarray, k: int):
    """pred (rows of L) and succ (columns of L) with k slots, from a dense L
    with at most k nonzeros per row and per column."""
    def rows_of(m):
        ids = np.zeros((N, k), np.int32)
        vals = np.zeros((N, k), np.float32)
        for r in range(N):
            nz = np.flatnonzero(m[r])
            ids[r, :len(nz)], vals[r, :len(nz)] = nz, m[r, nz]
        return jnp.asarray(ids), jnp.asarray(vals)
    return rows_of(dense), rows_of(dense.T)


def random_sparse_link(rng, k):
    """A link matrix with at most k nonzeros per row and column, zero
    diagonal, rows and columns summing to < 1."""
    dense = np.zeros((N, N), np.float32)
    for shift in rng.choice(np.arange(1, N), size=k, replace=False):
        for i in range(N):
            if rng.random() < 0.7:
                dense[i, (i + shift) % N] = rng.uniform(0.01, 1.0 / k)
    return dense


def sparse_vector(rng, size, total):
    idx = rng.choice(N, size=size, replace=False).astype(np.int32)
    val = rng.dirichlet(np.ones(size)).astype(np.float32) * total
    dense = np.zeros(N, np.float32)
    dense[idx] = val
    return (jnp.asarray(idx), jnp.asarray(val)), dense


def test_merge_top_sums_repeats_and_keeps_the_largest():
    idx, val = merge_top(jnp.array([4, 2, 4, 7, 1], jnp.int32),
                         jnp.array([0.1, 0.3, 0.25, 0.05, 0.2]), 3, 8)
    assert dict(zip(np.asarray(idx).tolist(), np.asarray(val).tolist())) == \
        {4: np.float32(0.35), 2: np.float32(0.3), 1: np.float32(0.2)}
    idx, val = merge_top(jnp.array([3, 3], jnp.int32), jnp.array([0.5, 0.25]), 2, 8)
    assert sorted(np.asarray(val).tolist()) == [0.0, 0.75]


def test_first_slots_and_sparse_table_by_hand():
    idx = jnp.array([3, 1, 3, 0], jnp.int32)
    assert np.asarray(first_slots(idx, 5)).tolist() == [3, 1, 4, 0, 4]
    table = sparse_table(idx, jnp.array([0.1, 0.2, 0.3, 0.4]), 5)
    np.testing.assert_allclose(table[1], [0.4, 0.2, 0.0, 0.4, 0.0], rtol=1e-6)
    np.testing.assert_allclose(sparse_lookup(jnp.array([[3, 2], [0, 1]]), table),
                               [[0.4, 0.0], [0.4, 0.2]], rtol=1e-6)
    first, total = table_firsts(idx, table)
    assert np.asarray(first).tolist() == [True, True, False, True]
    np.testing.assert_allclose(np.where(first, total, 0), [0.4, 0.2, 0.0, 0.4], rtol=1e-6)


def as_dict(ids, vals):
    """A sparse vector as {index: value} of its nonzero entries (repeats summed)."""
    out = {}
    for i, v in zip(np.asarray(ids).tolist(), np.asarray(vals).tolist()):
        out[i] = out.get(i, 0.0) + v
    return {i: v for i, v in out.items() if v != 0}


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_merge_rows_is_merge_top_of_the_concatenation(seed):
    """Rows with distinct live indices and value-0 repeats (as the storages
    hold them), new indices with repeats: the same kept entries as
    `merge_top` of each row's concatenation."""
    rng = np.random.default_rng(seed)
    G, k, C2 = 4, 3, 5
    ids = np.zeros((G, k), np.int32)
    vals = np.zeros((G, k), np.float32)
    for g in range(G):
        live = rng.integers(0, k + 1)
        ids[g] = rng.choice(N, size=k, replace=False)
        ids[g, live:] = ids[g, 0]  # value-0 repeats
        vals[g, :live] = rng.uniform(0.01, 1.0, live)
    new_ids = jnp.asarray(rng.integers(0, N, C2), jnp.int32)
    new_vals = jnp.asarray(rng.uniform(0.01, 1.0, (G, C2)), jnp.float32)
    slot = first_slots(new_ids, N)
    first = slot[new_ids] == jnp.arange(C2)
    # each new index's total in each row at its first position
    totals = jax.vmap(lambda v: table_firsts(new_ids, sparse_table(new_ids, v, N))[1])(new_vals)
    got_ids, got_vals = merge_rows(jnp.asarray(ids), jnp.asarray(vals), new_ids, first, totals)
    for g in range(G):
        want = merge_top(jnp.concatenate([jnp.asarray(ids[g]), new_ids]),
                         jnp.concatenate([jnp.asarray(vals[g]), new_vals[g]]), k, N)
        got, expect = as_dict(got_ids[g], got_vals[g]), as_dict(*want)
        assert got.keys() == expect.keys()
        np.testing.assert_allclose([got[i] for i in expect], list(expect.values()), rtol=1e-6)


def test_sparse_update_with_repeated_writes_equals_the_dense_one():
    """The write weighting with repeated rows (two heads read the same row,
    the LRU row also read), without cuts: both storages are the dense L_t."""
    rng = np.random.default_rng(3)
    L = random_sparse_link(rng, 3)
    pred, succ = storages(L, N)
    w_idx = jnp.array([2, 5, 2, 7, 5], jnp.int32)
    w_val = jnp.array([0.1, 0.2, 0.15, 0.05, 0.1])
    w_dense = np.zeros(N, np.float32)
    np.add.at(w_dense, np.asarray(w_idx), np.asarray(w_val))
    (p_idx, p_val), p_dense = sparse_vector(rng, 4, 0.8)
    p = (jnp.pad(p_idx, (0, N - 4)), jnp.pad(p_val, (0, N - 4)))  # K_L = N slots
    new_pred, new_succ = sparse_link_update(pred, succ, p, (w_idx, w_val))
    dense = np.asarray(link_update(jnp.asarray(L), jnp.asarray(p_dense), jnp.asarray(w_dense)))
    np.testing.assert_allclose(to_dense(*new_pred, N), dense, atol=1e-6)
    np.testing.assert_allclose(to_dense(*new_succ, N), dense.T, atol=1e-6)


def test_sparse_update_without_cuts_equals_the_dense_one():
    """With K_L = N slots nothing is cut: both storages are the dense L_t."""
    rng = np.random.default_rng(0)
    L = random_sparse_link(rng, 3)
    pred, succ = storages(L, N)
    w, w_dense = sparse_vector(rng, 3, 0.9)
    (p_idx, p_val), p_dense = sparse_vector(rng, 4, 0.8)
    p = (jnp.pad(p_idx, (0, N - 4)), jnp.pad(p_val, (0, N - 4)))  # K_L = N slots
    new_pred, new_succ = sparse_link_update(pred, succ, p, w)
    dense = np.asarray(link_update(jnp.asarray(L), jnp.asarray(p_dense), jnp.asarray(w_dense)))
    np.testing.assert_allclose(to_dense(*new_pred, N), dense, atol=1e-6)
    np.testing.assert_allclose(to_dense(*new_succ, N), dense.T, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_sparse_update_is_the_dense_one_cut_to_its_largest_entries(seed):
    """With K_L = 3: every kept entry has the dense update's value, and each
    row (pred) and column (succ) keeps the K_L largest of the dense one."""
    k = 3
    rng = np.random.default_rng(seed)
    L = random_sparse_link(rng, k)
    pred, succ = storages(L, k)
    w, w_dense = sparse_vector(rng, 2, rng.uniform(0.1, 1.0))
    p, p_dense = sparse_vector(rng, k, rng.uniform(0.1, 1.0))
    new_pred, new_succ = sparse_link_update(pred, succ, p, w)
    dense = np.asarray(link_update(jnp.asarray(L), jnp.asarray(p_dense), jnp.asarray(w_dense)))
    for (ids, vals), full in ((new_pred, dense), (new_succ, dense.T)):
        ids, vals = np.asarray(ids), np.asarray(vals)
        for r in range(N):
            live = vals[r] > 0
            np.testing.assert_allclose(vals[r][live], full[r, ids[r][live]], rtol=1e-5)
            kth = np.sort(full[r])[::-1][:k]
            np.testing.assert_allclose(np.sort(vals[r])[::-1], kth, rtol=1e-5, atol=1e-7)


def test_first_in_rows_by_hand():
    got = first_in_rows(jnp.array([[2, 3, 2, 2], [1, 0, 4, 0]], jnp.int32))
    assert np.asarray(got).tolist() == [[True, True, False, False], [True, True, True, False]]


def test_column_decay_by_hand():
    """Columns 2 (written twice: y_2 = 0.1 + 0.15) and 4 (y_4 = 0.25): each
    listed row's first slot for the column decays once, however often the
    row is listed (value-0 repeats) or the column written; row 1 (recomputed
    whole) and row 4 (holds column 2, not listed: a cut) keep theirs."""
    ids = jnp.array([[2, 3, 2], [2, 0, 0], [0, 0, 0], [4, 4, 4], [2, 2, 2]], jnp.int32)
    vals = jnp.array([[0.4, 0.2, 0.0], [0.5, 0.1, 0.0], [0.0, 0.0, 0.0], [0.3, 0.0, 0.0],
                      [0.6, 0.0, 0.0]])
    c_idx = jnp.array([2, 4, 2], jnp.int32)
    found = jnp.array([[0, 1, 0], [3, 3, 3], [0, 1, 0]], jnp.int32)
    y = sparse_table(c_idx, jnp.array([0.1, 0.25, 0.15]), 5)
    got = column_decay(ids, vals, found, c_idx, y, jnp.array([1], jnp.int32))
    want = np.asarray(vals).copy()
    want[0, 0] *= 0.75
    want[3, 0] *= 0.75
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_after_a_cut_an_entry_not_listed_by_the_other_storage_keeps_its_value():
    """pred holds L[0, 2] = 0.3, which succ cut (its list for column 2 holds
    rows 1 and 3). Writing row 2 (w_2 = 0.5, p = 0): the dense update halves
    every entry in row 2 and column 2; succ's row 2 is recomputed whole and
    pred's L[1, 2], found through succ, decays, but L[0, 2] keeps 0.3."""
    pred = (jnp.array([[2, 2], [2, 2], [0, 0], [0, 0]], jnp.int32),
            jnp.array([[0.3, 0.0], [0.4, 0.0], [0.0, 0.0], [0.0, 0.0]]))
    succ = (jnp.array([[0, 0], [0, 0], [1, 3], [0, 0]], jnp.int32),
            jnp.array([[0.0, 0.0], [0.0, 0.0], [0.4, 0.5], [0.0, 0.0]]))
    p = (jnp.array([3, 3], jnp.int32), jnp.zeros(2))
    w = (jnp.array([2], jnp.int32), jnp.array([0.5]))
    (_, pred_vals), (_, succ_vals) = sparse_link_update(pred, succ, p, w)
    np.testing.assert_allclose(pred_vals[:2], [[0.3, 0.0], [0.2, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(succ_vals[2], [0.2, 0.25], rtol=1e-6)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000))
def test_steps_without_cuts_equal_the_dense_ones(seed):
    """From empty storages (every index 0), six steps with repeated write rows
    and K_L = N: both storages are the dense L_t, the precedence the dense
    p_t, at every step."""
    rng = np.random.default_rng(seed)
    zeros = (jnp.zeros((N, N), jnp.int32), jnp.zeros((N, N)))
    pred, succ, p = zeros, zeros, (jnp.zeros(N, jnp.int32), jnp.zeros(N))
    L, p_dense = jnp.zeros((N, N)), jnp.zeros(N)
    for _ in range(6):
        w_idx = jnp.asarray(rng.integers(0, N, 4), jnp.int32)
        w_val = jnp.asarray(rng.dirichlet(np.ones(4)) * rng.uniform(0.2, 1.0), jnp.float32)
        w_dense = jnp.zeros(N).at[w_idx].add(w_val)
        pred, succ = sparse_link_update(pred, succ, p, (w_idx, w_val))
        p = sparse_precedence_update(*p, w_idx, w_val, N)
        L = link_update(L, p_dense, w_dense)
        p_dense = precedence_update(p_dense, w_dense)
        np.testing.assert_allclose(to_dense(*pred, N), L, atol=1e-6)
        np.testing.assert_allclose(to_dense(*succ, N), L.T, atol=1e-6)
        np.testing.assert_allclose(jnp.zeros(N).at[p[0]].add(p[1]), p_dense, atol=1e-6)


def test_precedence_and_directional_weightings_match_the_dense_ones():
    rng = np.random.default_rng(1)
    (p_idx, p_val), p_dense = sparse_vector(rng, 3, 0.7)
    w, w_dense = sparse_vector(rng, 2, 0.6)
    new_idx, new_val = sparse_precedence_update(p_idx, p_val, *w, N)
    dense = np.asarray(precedence_update(jnp.asarray(p_dense), jnp.asarray(w_dense)))
    got = np.zeros(N, np.float32)
    np.add.at(got, np.asarray(new_idx), np.asarray(new_val))
    top = np.sort(dense)[::-1][:3]
    np.testing.assert_allclose(np.sort(got)[::-1][:3], top, rtol=1e-6)

    L = random_sparse_link(rng, 3)
    pred, succ = storages(L, 3)
    r_idx = jnp.array([[1, 4], [0, 8]], jnp.int32)
    r_w = jnp.array([[0.7, 0.3], [0.5, 0.25]])
    r_dense = np.zeros((2, N), np.float32)
    for h in range(2):
        r_dense[h, np.asarray(r_idx[h])] = np.asarray(r_w[h])
    (f_idx, f_val), (b_idx, b_val) = sparse_directional_weightings(pred, succ, r_idx, r_w)
    fwd, bwd = directional_weightings(jnp.asarray(L), jnp.asarray(r_dense))
    for (idx, val), want in (((f_idx, f_val), fwd), ((b_idx, b_val), bwd)):
        got = np.zeros((2, N), np.float32)
        for h in range(2):
            np.add.at(got[h], np.asarray(idx[h]), np.asarray(val[h]))
        np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.slow  # finite differences over N x N storages: 10-17 s
def test_link_update_gradients_match_finite_differences():
    """Without cuts (K_L = N slots, every column once per row): which entries
    are kept cannot change under a small step, so the update is smooth."""
    rng = np.random.default_rng(2)
    L = random_sparse_link(rng, 3)
    full = lambda m: (jnp.broadcast_to(jnp.arange(N, dtype=jnp.int32), (N, N)), jnp.asarray(m))
    pred, succ = full(L), full(L.T)
    (w_idx, w_val), _ = sparse_vector(rng, 2, 0.6)
    (p_idx, p_val), _ = sparse_vector(rng, N, 0.5)

    def f(pred_vals, succ_vals, w_val, p_val):
        new_pred, new_succ = sparse_link_update((pred[0], jnp.asarray(pred_vals)),
                                                (succ[0], jnp.asarray(succ_vals)),
                                                (p_idx, p_val), (w_idx, w_val))
        return jnp.sum(new_pred[1] ** 2) + jnp.sum(jnp.sin(new_succ[1]))

    check_grads(f, (pred[1], succ[1], w_val, p_val), order=1, modes=["rev"],
                atol=1e-2, rtol=1e-2)
    assert jax.grad(f)(pred[1], succ[1], w_val, p_val).shape == (N, N)
