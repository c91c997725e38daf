import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mannlab.memory.sparse_usage import (
    least_recently_used,
    record_access,
    time_since_access,
)


def test_lru_is_the_oldest_row_lowest_index_on_ties():
    assert int(least_recently_used(jnp.array([3, 1, 4, 1, 5], jnp.int32))) == 1
    assert int(least_recently_used(jnp.zeros(4, jnp.int32))) == 0


def test_usage_update_hand_values():
    last = jnp.array([0, 2, 0, 1], jnp.int32)
    idx = jnp.array([0, 3, 3, 2], jnp.int32)
    w = jnp.array([0.5, 0.001, 0.3, 0.004])  # row 3: one access above delta; row 2: none
    new = record_access(last, idx, w, jnp.int32(5))
    np.testing.assert_array_equal(new, [5, 2, 0, 5])
    np.testing.assert_array_equal(time_since_access(new, jnp.int32(5)), [0, 3, 5, 0])
    assert int(least_recently_used(new)) == 2


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 7), min_size=1, max_size=6), st.integers(1, 100))
def test_accessed_rows_become_most_recent(rows, time):
    last = jnp.zeros(8, jnp.int32)
    idx = jnp.array(rows, jnp.int32)
    new = np.asarray(record_access(last, idx, jnp.ones(len(rows)), jnp.int32(time)))
    assert set(np.flatnonzero(new == time)) == set(rows)
    assert np.all(new[[i for i in range(8) if i not in rows]] == 0)
