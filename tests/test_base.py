"""`jopt._src.base`: the saturating step counter, the dtype rules, and fresh state buffers.

- `increment` saturates at the maximum of the count's dtype (2**31 - 1 for int32) instead of
  wrapping to a negative number, eagerly and under `jit`.
- Every optimizer in `tests/helpers.CASES`, from a state whose step counts are 2**31 - 2, takes two
  more steps with finite updates and params, and its counts stay pinned at 2**31 - 1.
- `compute_dtype` and `wider`: half precision computes in float32, float32 and float64 in
  themselves, and `wider` takes the widest.
- `zeros_like` / `full_like` return new buffers, never the params' own; every optimizer's `init`
  does too, so a jitted step that donates both params and state runs (donating one buffer twice
  is an error) and consumes the donated buffers.
"""

from __future__ import annotations

import functools
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jopt._src import base
from tests import helpers

INT32_MAX = 2**31 - 1
PARAMS = (jnp.arange(3.0), jnp.ones((2, 4)))

# -- the saturating counter ----------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_increment_saturates_at_int32_max(jit):
    increment = jax.jit(base.increment) if jit else base.increment
    counts = jnp.array([0, 41, INT32_MAX - 2, INT32_MAX - 1, INT32_MAX], jnp.int32)
    want = jnp.array([1, 42, INT32_MAX - 1, INT32_MAX, INT32_MAX], jnp.int32)
    chex.assert_trees_all_equal(increment(counts), want)
    chex.assert_trees_all_equal(increment(increment(jnp.asarray(INT32_MAX - 1))), INT32_MAX)


@pytest.mark.parametrize("dtype", [jnp.int8, jnp.uint8, jnp.int16], ids=lambda d: d.__name__)
def test_increment_saturates_at_the_maximum_of_any_integer_dtype(dtype):
    top = np.iinfo(dtype).max
    got = base.increment(jnp.array([top - 1, top], dtype))
    chex.assert_trees_all_equal(got, jnp.array([top, top], dtype))


COUNTERS = ("count", "schedule_count")  # the step counter's names (jopt._src.stateful)


def _counter(node: Any) -> str | None:
    fields = getattr(node, "_fields", ()) if isinstance(node, tuple) else ()
    return next((name for name in COUNTERS if name in fields), None)


def with_counts(state: Any, value: int) -> Any:
    """`state` with the step counter of every NamedTuple in it set to `value` (same dtype)."""

    def set_count(node):
        name = _counter(node)
        if name is None:
            return node
        return node._replace(**{name: jnp.full_like(getattr(node, name), value)})

    return jax.tree.map(set_count, state, is_leaf=lambda node: _counter(node) is not None)


def _counts(state: Any) -> list[jax.Array]:
    nodes = jax.tree.leaves(state, is_leaf=lambda node: _counter(node) is not None)
    return [getattr(node, name) for node in nodes if (name := _counter(node)) is not None]


@functools.cache
def _donating_step(case_id: str):
    """One jitted update + apply for `case_id`, donating params and state; built once per case."""
    tx = helpers.CASES_BY_ID[case_id].build()

    def step(params, state):
        grads = jax.tree.map(lambda p: 0.5 * p - 1.0, params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, updates

    # keep_unused: a state leaf that a configuration writes but never reads (MoMo's lower bound
    # when it is not estimated) would otherwise be dropped from the program, and not donated.
    return tx, jax.jit(step, donate_argnums=(0, 1), keep_unused=True)


def _fresh_params() -> tuple[jax.Array, ...]:
    return jax.tree.map(jnp.copy, PARAMS)


@pytest.mark.parametrize("case", helpers.FIRST_CASES, ids=repr)
def test_every_count_starts_at_zero_in_int32_and_counts_each_update(case):
    """The first update of every block sees t = 1 (bias corrections, schedules at step 0)."""
    tx, step = _donating_step(case.id)
    state = tx.init(_fresh_params())
    assert _counts(state), "the state holds no step count"
    for count in _counts(state):
        assert count.shape == () and count.dtype == jnp.int32 and int(count) == 0
    params = _fresh_params()
    for want in (1, 2):
        params, state, _ = step(params, state)
        assert [int(c) for c in _counts(state)] == [want] * len(_counts(state))


@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_state_at_the_maximum_count_keeps_stepping_with_pinned_counts(case):
    tx, step = _donating_step(case.id)
    # A state that has stepped (estimates some optimizers take at their first step are in it),
    # its counts then moved to the last but one.
    params, state, _ = step(_fresh_params(), tx.init(_fresh_params()))
    state = with_counts(state, INT32_MAX - 1)
    assert _counts(state), "the state holds no step count"
    chex.assert_trees_all_equal(_counts(state), [INT32_MAX - 1] * len(_counts(state)))
    for _ in range(2):
        params, state, updates = step(params, state)
        chex.assert_tree_all_finite((params, updates))
    chex.assert_trees_all_equal(_counts(state), [INT32_MAX] * len(_counts(state)))
    chex.assert_trees_all_equal_shapes_and_dtypes(params, PARAMS)


# -- dtype rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "want"),
    [
        (jnp.float16, np.float32),
        (jnp.bfloat16, np.float32),
        (jnp.float32, np.float32),
        (jnp.float64, np.float64),
    ],
    ids=["float16", "bfloat16", "float32", "float64"],
)
def test_compute_dtype_is_at_least_float32(dtype, want):
    assert base.compute_dtype(dtype) == np.dtype(want)
    assert base.wider(dtype) == np.dtype(want)


@pytest.mark.parametrize(
    ("dtypes", "want"),
    [
        ((jnp.float16, jnp.bfloat16), np.float32),
        ((jnp.bfloat16, jnp.float32), np.float32),
        ((jnp.float16, jnp.float64), np.float64),
        ((jnp.float64, jnp.float32), np.float64),
        ((jnp.bfloat16, jnp.float32, jnp.float64), np.float64),
    ],
    ids=lambda v: "-".join(np.dtype(d).name for d in v) if isinstance(v, tuple) else None,
)
def test_wider_is_the_widest_compute_dtype(dtypes, want):
    assert base.wider(*dtypes) == np.dtype(want)


def test_wider_works_under_strict_dtype_promotion():
    with jax.numpy_dtype_promotion("strict"):
        assert base.wider(jnp.bfloat16, jnp.float16) == np.dtype(np.float32)


# -- fresh buffers -------------------------------------------------------------------------------


def _pointers(tree: Any) -> set[int]:
    return {leaf.unsafe_buffer_pointer() for leaf in jax.tree.leaves(tree)}


@pytest.mark.parametrize(
    "make", [base.zeros_like, lambda t: base.full_like(t, 0.0)], ids=["zeros_like", "full_like"]
)
def test_zeros_like_and_full_like_return_new_buffers(make):
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}  # already zero: a shortcut could alias
    out = make(params)
    chex.assert_trees_all_equal(out, params)
    chex.assert_trees_all_equal_shapes_and_dtypes(out, params)
    assert all(
        o is not p for o, p in zip(jax.tree.leaves(out), jax.tree.leaves(params), strict=True)
    )
    assert not _pointers(out) & _pointers(params)


def test_zeros_like_takes_a_dtype():
    out = base.zeros_like({"w": jnp.ones(3, jnp.bfloat16)}, jnp.float32)
    chex.assert_trees_all_equal(out, {"w": jnp.zeros(3, jnp.float32)})


def test_donating_params_together_with_fresh_zeros_runs():
    params = jnp.ones(3)
    zeros = base.zeros_like(params)
    out = jax.jit(lambda p, z: (p + 1, z + 1), donate_argnums=(0, 1))(params, zeros)
    chex.assert_trees_all_equal(out, (jnp.full(3, 2.0), jnp.ones(3)))
    assert params.is_deleted() and zeros.is_deleted()


@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_init_state_shares_no_buffer_with_params_and_can_be_donated(case):
    tx, step = _donating_step(case.id)
    params = _fresh_params()
    state = tx.init(params)
    assert not _pointers(state) & _pointers(params)
    new_params, new_state, _ = step(params, state)
    chex.assert_tree_all_finite(new_params)
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves((params, state)))
    chex.assert_trees_all_equal_structs(new_state, tx.init(PARAMS))
