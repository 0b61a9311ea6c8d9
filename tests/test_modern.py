"""The modern family's conventions that the registry's examples leave out (the shared suites
run each optimizer's defaults).

- ADOPT with its clipping active (a constant bound and a schedule; the default t**(1/4) never
  binds on the test problem after the first step), with optax's Nesterov momentum and unclipped:
  bitwise optax's and within float64 rounding of the paper's reference. With eps = 0 and a zero
  gradient the first update is 0 (optax's is NaN); complex gradients are clipped in magnitude.
- AdEMAMix with the paper's warm-ups of alpha and b3 as schedules: optax's bitwise and the
  reference's.
- The paper's forms of the optimistic methods (`previous_init="zero"`, Adam's moments) against
  the reference; optimistic Adam's optimism tied to the learning rate follows `set_hparams`.
- Optimistic gradient descent converges on the bilinear game min_x max_y x*y, where gradient
  descent ascent spirals out.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests import helpers
from tests.reference import modern

STEPS = 200


def _trajectory(tx, dtype=jnp.float64, steps: int = STEPS) -> np.ndarray:
    with jax.enable_x64(dtype == jnp.float64):
        _, grad, start = helpers.random_problem(0)
        trajectory, _ = helpers.run_jopt(tx, grad, start(dtype), steps)
    return helpers.flat_trajectory(trajectory)


def _reference(run, **kwargs) -> np.ndarray:
    problem = helpers.random_problem(0)[0]
    return np.stack(run(problem.grad, problem.x0, STEPS, **kwargs))


def _assert_near(got: np.ndarray, want: np.ndarray, tolerance: float = 1e-12) -> None:
    error = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    assert error.max() <= tolerance, error.max()


# (jopt's arguments, optax's): the clipping bounds bind on the test problem (0.05 t**(1/4) is
# optax's kind of argument, a function of the int32 count, which jopt takes too).
ADOPT_CASES = {
    "constant_clip": ({"clip_value_fn": 0.3}, {"clip_value_fn": lambda t: 0.3}),
    "scheduled_clip": ({"clip_value_fn": lambda t: 0.05 * t**0.25},) * 2,
    "nesterov": ({"nesterov": True},) * 2,
    "unclipped": ({"use_clipping": False},) * 2,
}


@pytest.mark.parametrize("name", list(ADOPT_CASES))
def test_adopt_conventions_match_optax_bitwise_and_the_reference(name):
    ours, theirs = ADOPT_CASES[name]
    got = _trajectory(jopt.adopt(0.01, **ours))
    chex.assert_trees_all_equal(got, _trajectory(optax.contrib.adopt(0.01, **theirs)))
    _assert_near(got, _reference(modern.run_adopt, learning_rate=0.01, **theirs))


def test_adopt_clipping_binds_in_the_clipped_cases():
    clipped = _trajectory(jopt.adopt(0.01, clip_value_fn=0.3))
    assert np.abs(clipped - _trajectory(jopt.adopt(0.01))).max() > 1e-3


def test_adopt_with_eps_zero_and_a_zero_gradient_takes_a_zero_first_step():
    params = jnp.array([1.0, -2.0])
    grads = jnp.array([0.0, 3.0])
    ours, _ = jopt.adopt(0.1, eps=0.0).update(grads, jopt.adopt(0.1, eps=0.0).init(params), params)
    chex.assert_trees_all_equal(ours, jnp.zeros(2))
    tx = optax.contrib.adopt(0.1, eps=0.0)
    theirs, _ = tx.update(grads, tx.init(params), params)
    assert bool(jnp.isnan(theirs[0]))  # 0 / 0 times (1 - b1) = 0


def test_adopt_clips_a_complex_gradient_in_magnitude_keeping_its_phase():
    tx = jopt.scale_by_adopt(b1=0.0, clip_value_fn=0.5)
    params = jnp.zeros(2, jnp.complex64)
    state = tx.init(params)
    _, state = tx.update(jnp.array([1.0 + 0.0j, 0.0 + 2.0j], jnp.complex64), state)
    updates, _ = tx.update(jnp.array([3.0 + 4.0j, 0.1 + 0.0j], jnp.complex64), state)
    # x = g / sqrt(v): (3 + 4i) / 1 has magnitude 5, clipped to 0.5; 0.1 / 2 = 0.05 is kept.
    np.testing.assert_allclose(updates, [0.3 + 0.4j, 0.05 + 0.0j], rtol=1e-6)


def _paper_b3(b1: float, b3: float, warmup: int):
    """The paper's b3 scheduler, from b1 to b3 over `warmup` steps, of the count t."""
    log_b1, log_b3 = math.log(b1), math.log(b3)

    def schedule(t):
        fraction = jnp.minimum(jnp.asarray(t, float) / warmup, 1.0)  # the default float dtype
        value = jnp.exp(log_b1 * log_b3 / ((1 - fraction) * log_b3 + fraction * log_b1))
        return jnp.minimum(value, b3)

    return schedule


def test_ademamix_with_the_papers_warmups_matches_optax_bitwise_and_the_reference():
    # alpha = min(t / T, 1) * alpha: the paper's linear warm-up. Both schedules compute in the
    # default float dtype (float64 under x64, where jit's and the reference's rounding then
    # differ by ~1e-16, not float32's 1e-8).
    kwargs = {
        "alpha": lambda t: 5.0 * jnp.minimum(jnp.asarray(t, float) / 100, 1.0),
        "b3": _paper_b3(0.9, 0.999, 100),
    }
    got = _trajectory(jopt.ademamix(0.01, **kwargs), jnp.float32)
    chex.assert_trees_all_equal(
        got, _trajectory(optax.contrib.ademamix(0.01, **kwargs), jnp.float32)
    )
    # In float64 optax computes 1 - b3 in the schedule's float32; jopt and the reference in
    # float64, from the value the schedule gives.
    got = _trajectory(jopt.ademamix(0.01, **kwargs))
    # The schedules called as jopt calls them (an int32 count, under x64): the same values.
    as_jopt = {name: lambda t, f=f: f(jnp.int32(t)) for name, f in kwargs.items()}
    with jax.enable_x64(True):
        want = _reference(modern.run_ademamix, learning_rate=0.01, **as_jopt)
    _assert_near(got, want)


def test_ademamix_with_weight_decay_matches_optax_bitwise_and_the_reference():
    kwargs = {"b3": 0.999, "alpha": 3.3, "weight_decay": 0.01}
    for dtype in (jnp.float32, jnp.float64):
        got = _trajectory(jopt.ademamix(0.01, **kwargs), dtype)
        chex.assert_trees_all_equal(got, _trajectory(optax.contrib.ademamix(0.01, **kwargs), dtype))
    _assert_near(got, _reference(modern.run_ademamix, learning_rate=0.01, **kwargs))


@pytest.mark.parametrize(
    ("make", "run", "kwargs"),
    [
        (jopt.optimistic_gradient_descent, modern.run_optimistic_gradient_descent, {}),
        (jopt.optimistic_gradient_descent, modern.run_optimistic_gradient_descent, {"beta": 0.5}),
        (jopt.optimistic_adam, modern.run_optimistic_adam, {"nesterov": False}),
        (jopt.optimistic_adam, modern.run_optimistic_adam, {"optimism": 0.003}),
    ],
    ids=["ogd", "ogd_beta", "optimistic_adam_paper", "optimistic_adam_optimism"],
)
def test_optimistic_methods_with_a_zero_first_previous_match_the_reference(make, run, kwargs):
    kwargs = {"learning_rate": 0.001, **kwargs, "previous_init": "zero"}
    got = _trajectory(make(**kwargs))
    _assert_near(got, _reference(run, **kwargs))
    # The paper's zero start is not optax's: the first steps differ.
    current = _trajectory(make(**{**kwargs, "previous_init": "current"}))
    assert np.abs(got[1] - current[1]).max() > 0


def test_optimistic_adam_optimism_follows_the_learning_rate_set_in_the_state():
    _, grad, start = helpers.random_problem(0)
    params = start(jnp.float32)
    tx = jopt.optimistic_adam(0.01)
    state = jopt.set_hparams(tx.init(params), learning_rate=0.002)
    assert "optimism" not in jopt.get_hparams(state)

    def run(tx, state):
        def body(carry, _):
            p, s = carry
            u, s = tx.update(grad(p), s, p)
            return (optax.apply_updates(p, u), s), p

        return jax.jit(lambda p, s: jax.lax.scan(body, (p, s), None, length=STEPS)[1])(
            params, state
        )

    # As if built with the optimism at the new rate (both states given at run time: optax's
    # constants, compiled into its program, may round differently in XLA, see
    # tests/test_optax_agreement.py's NOT_BITWISE).
    want_tx = jopt.optimistic_adam(0.002, optimism=0.002)
    chex.assert_trees_all_equal(run(tx, state), run(want_tx, want_tx.init(params)))


def test_optimistic_gradient_descent_converges_on_a_bilinear_game_where_gda_spirals_out():
    # min_x max_y x * y: the descent direction is (y, -x); the equilibrium is (0, 0).
    def grad(z):
        return jnp.stack([z[1], -z[0]])

    def distance(tx) -> float:
        trajectory, _ = helpers.run_jopt(tx, grad, jnp.array([1.0, 1.0]), 2000)
        return float(jnp.linalg.norm(trajectory[-1]))

    assert distance(jopt.optimistic_gradient_descent(0.1)) < 1e-3
    assert distance(jopt.sgd(0.1)) > 1.0
