"""What the shared suites cannot see of the adaptive family (jopt/_src/catalogue/adaptive.py).

- Adan's `form="paper"` (Algorithm 1: the difference weighted by b2, moments started at their
  first samples, proximal weight decay), which optax does not offer, follows its NumPy
  reference over 1000 steps in float64 and float32; only its first step is optax's form's; a
  mask all False is no decay, all True the decay of every leaf; it respects dtypes as the
  registry's examples do.
- Yogi's moments start at 1e-6, as optax's: zero gradients move the params; started at 0 they do
  not.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from tests import helpers
from tests.reference import adaptive as reference
from tests.test_dtypes import _grads, _mixed, _params, _strict

STEPS = 1000
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}
PAPER = {"learning_rate": 0.01, "weight_decay": 0.01, "form": "paper"}


@functools.cache
def _paper_reference() -> np.ndarray:
    problem = helpers.random_problem()[0]
    return np.stack(reference.run_adan(problem.grad, problem.x0, STEPS, **PAPER))


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
def test_adan_paper_form_matches_its_reference(dtype_name):
    dtype = jnp.dtype(dtype_name)
    with jax.enable_x64(dtype_name == "float64"):
        _, grad, start = helpers.random_problem()
        trajectory, _ = helpers.run_jopt(jopt.adan(**PAPER), grad, start(dtype), STEPS)
        got = helpers.flat_trajectory(trajectory)
    want = _paper_reference()
    error = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    assert error.max() <= TOLERANCE[dtype_name], error.max()


def _steps(tx, steps: int, dtype=jnp.float32):
    _, grad, start = helpers.random_problem()
    return helpers.flat_trajectory(helpers.run_jopt(tx, grad, start(dtype), steps)[0])


def test_adan_forms_agree_on_the_first_step_only():
    optax_form, paper_form = _steps(jopt.adan(0.01), 2), _steps(jopt.adan(0.01, form="paper"), 2)
    # Equal up to the rounding of optax's bias corrections ((1 - b) g / (1 - b) for g).
    np.testing.assert_allclose(optax_form[1], paper_form[1], rtol=1e-6)
    assert np.abs(optax_form[2] - paper_form[2]).max() > 1e-4


def test_adan_paper_form_mask_selects_the_decayed_leaves():
    decay_none, decay_all = (False, False), (True, True)
    chex.assert_trees_all_equal(
        _steps(jopt.adan(0.01, weight_decay=0.1, mask=decay_none, form="paper"), 20),
        _steps(jopt.adan(0.01, weight_decay=0.0, form="paper"), 20),
    )
    chex.assert_trees_all_equal(
        _steps(jopt.adan(0.01, weight_decay=0.1, mask=lambda params: decay_all, form="paper"), 20),
        _steps(jopt.adan(0.01, weight_decay=0.1, form="paper"), 20),
    )


def test_adan_paper_form_keeps_dtypes_under_strict_promotion():
    tx = jopt.adan(0.01, weight_decay=0.1, form="paper")
    params = _mixed(_params)
    with _strict():
        state = tx.init(params)
        for _ in range(3):
            updates, new_state = jax.jit(tx.update)(_mixed(_grads), state, params)
            chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)
            chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)
            chex.assert_tree_all_finite(updates)
            state = new_state


@pytest.mark.parametrize(("initial", "moves"), [(1e-6, True), (0.0, False)])
def test_yogi_zero_gradients_move_the_params_only_from_a_nonzero_start(initial, moves):
    tx = jopt.yogi(0.1, initial_accumulator_value=initial)
    params = jnp.array([1.0, -2.0])
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update(jnp.zeros(2), state, params)
    assert bool(jnp.any(updates != 0)) is moves
