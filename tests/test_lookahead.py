"""`jopt.lookahead`: optax's trajectory bitwise, the paper's algorithm (a NumPy float64
reference), hyperparameters in the state, the reset, non-finite steps and the refusals."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt._src.errors import ArgumentError
from tests import helpers
from tests.reference.lookahead import run_lookahead_sgd

STEPS = 23  # four synchronizations and a partial period


def _run(tx, params, grad, steps=STEPS):
    """(slow, fast) trajectories of `tx`, gradients (`grad`) at the fast weights.

    The update is jitted on its own: jitted together with `apply_updates`, XLA's CPU backend
    may contract `p + (u - c * d)` into fused multiply-adds differently for jopt's select (which
    keeps a non-finite step out of the slow weights) than for optax's multiply by 0 or 1, and the
    two then differ by an ulp at some steps."""
    update, apply = jax.jit(tx.update), jax.jit(optax.apply_updates)

    def step(params, state):
        updates, state = update(grad(params.fast), state, params)
        return apply(params, updates), state

    state = tx.init(params)
    slows, fasts = [params.slow], [params.fast]
    for _ in range(steps):
        params, state = step(params, state)
        slows.append(params.slow)
        fasts.append(params.fast)
    return slows, fasts, state


@pytest.mark.parametrize("reset_state", [False, True])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
def test_trajectory_is_optaxs_bitwise(dtype, reset_state):
    with jax.enable_x64(dtype == jnp.float64):
        _, grad, start = helpers.random_problem(seed=3)
        params = optax.LookaheadParams.init_synced(start(dtype))
        ours = _run(jopt.lookahead(jopt.adam(0.05), 4, 0.3, reset_state), params, grad)
        theirs = _run(optax.lookahead(optax.adam(0.05), 4, 0.3, reset_state), params, grad)
        for a, b in zip(ours[:2], theirs[:2], strict=True):
            chex.assert_trees_all_equal(a, b)


@pytest.mark.parametrize("reset_state", [False, True])
def test_trajectory_is_the_papers_algorithm_in_float64(reset_state):
    with jax.enable_x64(True):
        problem, grad, start = helpers.random_problem(seed=5)
        params = optax.LookaheadParams.init_synced(start(jnp.float64))
        tx = jopt.lookahead(jopt.sgd(0.05, momentum=0.9), 5, 0.5, reset_state)
        slows, fasts, _ = _run(tx, params, grad)
        want_slow, want_fast = run_lookahead_sgd(
            problem.grad, problem.x0, STEPS, 0.05, 5, 0.5, 0.9, reset_state
        )
        for got, want in ((slows, want_slow), (fasts, want_fast)):
            flat = np.stack([np.concatenate([np.ravel(p) for p in x]) for x in got])
            np.testing.assert_allclose(flat, np.stack(want), rtol=1e-12, atol=1e-14)


def test_hyperparameters_are_in_the_state_and_set_hparams_survives_the_reset():
    params = optax.LookaheadParams.init_synced({"w": jnp.ones(3)})
    tx = jopt.lookahead(jopt.adam(0.1), sync_period=2, slow_step_size=0.5, reset_state=True)
    state = tx.init(params)
    assert jopt.get_hparams(state)["sync_period"] == 2
    state = jopt.set_hparams(state, slow_step_size=0.25, learning_rate=0.01)
    grads = {"w": jnp.ones(3)}
    for _ in range(3):  # through a synchronization, which re-initializes the fast state
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    assert jopt.get_hparams(state)["slow_step_size"] == 0.25
    np.testing.assert_allclose(jopt.current_lr(state), 0.01)


def test_an_infinite_gradient_between_synchronizations_does_not_reach_the_slow_weights():
    params = optax.LookaheadParams.init_synced({"w": jnp.ones(2)})
    tx = jopt.lookahead(jopt.sgd(0.1), sync_period=3, slow_step_size=0.5)
    state = tx.init(params)
    updates, _ = tx.update({"w": jnp.array([jnp.inf, 1.0])}, state, params)
    np.testing.assert_array_equal(updates.slow["w"], [0.0, 0.0])  # optax: [nan, 0]


def test_init_takes_the_fast_params_alone_as_optax_does():
    tx = jopt.lookahead(jopt.sgd(0.1), 2, 0.5)
    chex.assert_trees_all_equal_structs(
        tx.init({"w": jnp.ones(2)}),
        tx.init(optax.LookaheadParams.init_synced({"w": jnp.ones(2)})),
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"sync_period": 0}, ArgumentError, r"sync_period must be an integer >= 1, got 0"),
        ({"slow_step_size": 1.5}, ArgumentError, r"slow_step_size must be in \[0, 1\], got 1\.5"),
        ({"slow_step_size": float("nan")}, ArgumentError, r"slow_step_size must be in"),
        ({"reset_state": "yes"}, TypeError, r"reset_state must be True or False, got 'yes'"),
        ({"fast_optimizer": "adam"}, TypeError, r"fast_optimizer must be an optax\."),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs, error, message):
    args = {"fast_optimizer": jopt.sgd(0.1), "sync_period": 5, "slow_step_size": 0.5} | kwargs
    with pytest.raises(error, match=message):
        jopt.lookahead(**args)


def test_update_without_lookahead_params_names_what_it_needs():
    tx = jopt.lookahead(jopt.sgd(0.1), 2, 0.5)
    params = {"w": jnp.ones(2)}
    with pytest.raises(TypeError, match=r"needs the params as optax\.LookaheadParams"):
        tx.update(params, tx.init(params), params)
