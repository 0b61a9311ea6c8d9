"""Dtypes are respected (DESIGN.md contract 5), for every optimizer in `tests.helpers.CASES`.

- One update keeps the state's structure, shapes and dtypes, and returns finite updates in the
  params' dtype: for a tree holding float16, bfloat16 and float32 params side by side, and for
  float64 params (with x64 enabled).
- float16 params with an eps that underflows in float16 (1e-8), zero gradients and tiny (1e-6)
  gradients get finite updates (optax 0.2.8's adam gets nan and -inf there).
- `mu_dtype` / `nu_dtype` choose the dtype of Adam's moments and nothing else.
- bfloat16 bias corrections are computed before the cast (in bfloat16, 1 - 0.999**t is 0).
- All of the above runs under `jax.numpy_dtype_promotion("strict")`, init and update, so no
  implicit promotion happens anywhere (optax 0.2.8's adam raises there).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests import helpers

HALF_AND_SINGLE = {"float16": jnp.float16, "bfloat16": jnp.bfloat16, "float32": jnp.float32}


def _params(dtype) -> dict[str, jax.Array]:
    return {
        "a": jnp.asarray([-1.0, 0.5, 2.0], dtype),
        "b": jnp.asarray([[0.5, -2.0], [1.5, 0.25]], dtype),
    }


def _grads(dtype) -> dict[str, jax.Array]:
    return {
        "a": jnp.asarray([0.3, -1.2, 0.05], dtype),
        "b": jnp.asarray([[-0.7, 0.1], [2.0, -0.4]], dtype),
    }


def _mixed(make: Callable[[object], dict[str, jax.Array]]) -> dict[str, dict[str, jax.Array]]:
    """`make(dtype)` for float16, bfloat16 and float32, side by side in one tree."""
    return {name: make(dtype) for name, dtype in HALF_AND_SINGLE.items()}


def _to32(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float32), tree)


def _strict():
    return jax.numpy_dtype_promotion("strict")


def _assert_updates_like_params(updates, params) -> None:
    chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)
    chex.assert_tree_all_finite(updates)


@functools.cache
def _strict_jitted(case_id: str) -> tuple[optax.GradientTransformation, Callable]:
    """The case's transform and its jitted update, run under strict promotion.

    Shared by the tests: one compile per case for the mixed-precision tree.
    """
    tx = helpers.CASES_BY_ID[case_id].build()
    update = jax.jit(tx.update)

    def strict_update(*args):
        with _strict():
            return update(*args)

    return tx, strict_update


@pytest.mark.parametrize("case", helpers.FIRST_CASES, ids=repr)
def test_update_keeps_state_dtypes_and_returns_params_dtype_in_half_and_single(case):
    tx, update = _strict_jitted(case.id)
    params = _mixed(_params)
    with _strict():
        state = tx.init(params)
    updates, new_state = update(_mixed(_grads), state, params)
    chex.assert_trees_all_equal_shapes_and_dtypes(state, new_state)
    _assert_updates_like_params(updates, params)


@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_update_keeps_state_dtypes_and_returns_params_dtype_in_float64(case):
    # Eager: the dtype rules are the same as under jit, and the primitives compiled for one case
    # serve the others.
    tx = case.build()
    with jax.enable_x64(True), _strict():
        params = _params(jnp.float64)
        state = tx.init(params)
        updates, new_state = tx.update(_grads(jnp.float64), state, params)
        chex.assert_trees_all_equal_shapes_and_dtypes(state, new_state)
        _assert_updates_like_params(updates, params)


@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_float16_zero_and_tiny_grads_give_finite_updates(case):
    # eps=1e-8 (adam's default) is 0 in float16, and so is a tiny gradient's square (1e-12):
    # without float32 arithmetic, m / (sqrt(v) + eps) is 0/0 or 1e-7/0. Three steps, because the
    # second moment stored in float16 underflows to 0 after the first one. The float16 params sit
    # next to bfloat16 and float32 ones, which must stay finite too.
    params = _mixed(_params)
    tx, update = _strict_jitted(case.id)
    for grad in (0.0, 1e-6, -1e-6):
        grads = jax.tree.map(lambda p, g=grad: jnp.full_like(p, g), params)
        with _strict():
            state = tx.init(params)
        for _ in range(3):
            updates, state = update(grads, state, params)
            _assert_updates_like_params(updates, params)


def test_optax_adam_float16_zero_and_tiny_grads_are_not_finite():
    # The contrast that motivates the test above: optax 0.2.8 computes in float16 here.
    params = _params(jnp.float16)
    tx = optax.adam(1e-3)
    update = jax.jit(tx.update)
    for grad in (0.0, 1e-6):
        grads = jax.tree.map(lambda p, g=grad: jnp.full_like(p, g), params)
        updates, _ = update(grads, tx.init(params), params)
        assert not any(bool(jnp.any(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


def test_adam_float16_updates_match_float32_arithmetic():
    # Finite is not enough: the float16 step is the float32 step, rounded once to float16.
    params = _params(jnp.float16)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-6), params)
    tx = jopt.adam(1e-3)
    with _strict():
        updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
        want, _ = jax.jit(tx.update)(_to32(grads), tx.init(_to32(params)), _to32(params))
    chex.assert_trees_all_close(_to32(updates), want, rtol=1e-3)


@functools.cache
def _adam_float32_trajectory() -> np.ndarray:
    """100 steps of float32 Adam on `random_problem(0)`: the reference for the moment dtypes."""
    _, grad, start = helpers.random_problem(0)
    with _strict():
        trajectory, _ = helpers.run_jopt(jopt.adam(0.01), grad, start(jnp.float32), 100)
    return helpers.flat_trajectory(trajectory)


@pytest.mark.parametrize(
    "moment_dtype",
    [pytest.param(jnp.bfloat16, id="bfloat16"), pytest.param(jnp.float16, id="float16")],
)
@pytest.mark.parametrize("which", ["mu_dtype", "nu_dtype"])
def test_moment_dtype_sets_that_moment_only_and_stays_close(which, moment_dtype):
    _, grad, start = helpers.random_problem(0)
    params = start(jnp.float32)
    tx = jopt.adam(0.01, **{which: moment_dtype})
    with _strict():
        trajectory, state = helpers.run_jopt(tx, grad, params, 100)
    mu, nu = state[0].mu, state[0].nu
    chosen, other = (mu, nu) if which == "mu_dtype" else (nu, mu)
    chex.assert_trees_all_equal_shapes_and_dtypes(
        chosen, jax.tree.map(lambda p: p.astype(moment_dtype), params)
    )
    chex.assert_trees_all_equal_shapes_and_dtypes(other, params)
    # Updates (hence the iterates) stay in the params' dtype.
    chex.assert_trees_all_equal_dtypes(trajectory, params)
    got, want = helpers.flat_trajectory(trajectory), _adam_float32_trajectory()
    error = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    assert error.max() <= 1e-2, f"{which}={np.dtype(moment_dtype).name}: error {error.max():.3g}"
    # Rounding the moment to 16 bits must change something, or the dtype was not applied.
    assert error.max() > 0.0


def test_bfloat16_adam_bias_correction_is_finite_and_matches_float32():
    # In bfloat16, 0.999 rounds to 1.0, so a correction computed there would divide by zero.
    assert float(1 - jnp.bfloat16(0.999) ** 1) == 0.0
    params = _params(jnp.bfloat16)
    grads = _grads(jnp.bfloat16)
    tx = jopt.adam(1e-2)
    update = jax.jit(tx.update)
    with _strict():
        state, state32 = tx.init(params), tx.init(_to32(params))
        for _ in range(3):
            updates, state = update(grads, state, params)
            want, state32 = update(_to32(grads), state32, _to32(params))
            _assert_updates_like_params(updates, params)
            chex.assert_trees_all_close(_to32(updates), want, rtol=2e-2)


def test_optax_adam_raises_under_strict_dtype_promotion():
    # The contrast: optax 0.2.8 mixes a Python float with its int32 step count.
    tx = optax.adam(1e-3)
    params = _params(jnp.float32)
    with jax.numpy_dtype_promotion("strict"), pytest.raises(jax.dtypes.TypePromotionError):
        jax.jit(tx.update)(params, tx.init(params), params)
