"""The loss based family (jopt/_src/transforms/polyak.py, momo.py, lbfgs.py, zoom_linesearch.py;
registry entries in jopt/_src/catalogue/loss_based.py).

The registry examples meet the shared suites, which pass them the loss (`reads_value`):
1000 steps against the NumPy float64 references and against optax bitwise. Here:
- Where the forms differ: Polyak's scaling, MoMo's weight decay; optax's other arguments, bitwise.
- MoMo*'s lower bound; the hyperparameters of the line search in the state; L-BFGS against an
  independent strong Wolfe L-BFGS on Rosenbrock (the line search zooms there); the refusals.
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
from jopt._src.transforms import lbfgs, momo, polyak
from jopt._src.transforms import zoom_linesearch as zoom
from tests import helpers
from tests.reference import loss_based as reference

STEPS = 1000
DTYPES = [pytest.param(jnp.float64, id="float64"), pytest.param(jnp.float32, id="float32")]


def run_with_loss(tx, params, steps, grad, loss):
    """`helpers.run_jopt`, passing the loss: the stacked iterates (x0 included), flattened."""
    stacked, _ = helpers.run_jopt(tx, grad, params, steps, loss=loss)
    return helpers.flat_trajectory(stacked)


def _trajectory(tx, dtype, steps=STEPS):
    with jax.enable_x64(dtype == jnp.float64):
        problem, grad, start = helpers.random_problem(0)
        return run_with_loss(tx, start(dtype), steps, grad, helpers.random_problem_loss(problem))


# -- optax's other arguments, and the forms ------------------------------------------------------

OPTAX_VARIANTS = {
    "lbfgs_small_memory": (
        lbfgs.lbfgs,
        optax.lbfgs,
        {"memory_size": 3, "scale_init_precond": False, "learning_rate": 0.5},
    ),
    "polyak_scaled_sps+": (
        polyak.polyak_sgd,
        optax.polyak_sgd,
        {"scaling": 0.5, "f_min": 0.3, "variant": "sps+", "eps": 1e-3, "max_learning_rate": 0.7},
    ),
    "momo_adaptive_decayed": (
        momo.momo,
        optax.contrib.momo,
        {"learning_rate": 0.3, "beta": 0.8, "weight_decay": 0.01, "adapt_lower_bound": True},
    ),
    "momo_adam_adaptive_decayed": (
        momo.momo_adam,
        optax.contrib.momo_adam,
        {"b1": 0.8, "b2": 0.99, "weight_decay": 0.01, "adapt_lower_bound": True},
    ),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(OPTAX_VARIANTS))
def test_optax_form_with_optaxs_other_arguments_is_optax_bitwise(variant, dtype):
    ours, theirs, kwargs = OPTAX_VARIANTS[variant]
    got = _trajectory(ours(**kwargs), dtype, steps=200)
    np.testing.assert_array_equal(got, _trajectory(theirs(**kwargs), dtype, steps=200))


def _one_update(tx, grads, params, value):
    return tx.update(grads, tx.init(params), params, value=value)[0]


def test_polyak_forms_agree_at_unit_scaling_and_place_the_scaling_differently():
    params, grads, value = jnp.zeros(3), jnp.array([3.0, -4.0, 0.0]), jnp.asarray(2.0)
    kwargs = {"f_min": 0.5, "eps": 1.0, "max_learning_rate": 10.0}
    gap, sq = 1.5, 25.0
    for s in (1.0, 0.5):
        optax_form = _one_update(polyak.polyak_sgd(scaling=s, **kwargs), grads, params, value)
        paper = _one_update(
            polyak.polyak_sgd(scaling=s, form="paper", **kwargs), grads, params, value
        )
        # optax: s * min(gap / (s**2 |g|**2 + eps), cap);  paper: min(s gap / (|g|**2 + eps), cap)
        np.testing.assert_allclose(optax_form, -s * gap / (s**2 * sq + 1.0) * grads, rtol=1e-6)
        np.testing.assert_allclose(paper, -s * gap / (sq + 1.0) * grads, rtol=1e-6)
    # The cap: a tiny gradient meets max_learning_rate in both forms.
    small = 1e-3 * grads
    for form in ("optax", "paper"):
        tx = polyak.polyak_sgd(max_learning_rate=0.25, form=form)
        np.testing.assert_allclose(_one_update(tx, small, params, value), -0.25 * small, rtol=1e-6)


def test_polyak_below_f_min_steps_uphill_unless_sps_plus_and_never_divides_by_zero():
    params, grads, low = jnp.zeros(2), jnp.array([1.0, 2.0]), jnp.asarray(-1.0)
    uphill = _one_update(polyak.polyak_sgd(), grads, params, low)
    np.testing.assert_allclose(uphill, 0.2 * grads, rtol=1e-6)  # gap -1, |g|**2 = 5
    chex.assert_trees_all_equal(
        _one_update(polyak.polyak_sgd(variant="sps+"), grads, params, low), jnp.zeros(2)
    )
    for form in ("optax", "paper"):
        flat = _one_update(polyak.polyak_sgd(form=form), jnp.zeros(2), params, jnp.asarray(3.0))
        chex.assert_trees_all_equal(flat, jnp.zeros(2))


@pytest.mark.parametrize("make", [momo.momo, momo.momo_adam], ids=["momo", "momo_adam"])
def test_momo_weight_decay_forms_differ_only_with_weight_decay(make):
    """One program per form; the weight decay set in the state (0.1, then 0)."""

    def trajectories(form):
        with jax.enable_x64(True):
            problem, grad, start = helpers.random_problem(0)
            loss, params = helpers.random_problem_loss(problem), start(jnp.float64)
            tx = make(learning_rate=0.05, weight_decay=0.1, form=form)

            @jax.jit
            def run(state):
                def body(carry, _):
                    p, s = carry
                    u, s = tx.update(grad(p), s, p, value=loss(p))
                    return (optax.apply_updates(p, u), s), p

                return jax.lax.scan(body, (params, state), None, length=50)[1]

            state = tx.init(params)
            return run(state), run(jopt.set_hparams(state, weight_decay=0.0))

    (paper, paper_plain), (optax_form, optax_plain) = trajectories("paper"), trajectories("optax")
    chex.assert_trees_all_equal(paper_plain, optax_plain)
    assert max(np.abs(a - b).max() for a, b in zip(paper, optax_form, strict=True)) > 1e-3


def test_momo_paper_step_is_proximal_and_optax_shrinks_before_the_step():
    """One update from x = 1 with g = 2, f = 3, lower bound 0, alpha = 0.5, lambda = 1:
    d = g, f_bar = f, gamma = <g, x> = 2, h = (1 + 0.5)(3 - 0 - 2) + 2 = 3.5, tau = min(0.5,
    3.5 / 4) = 0.5; paper: x = (1 - 0.5 * 2) / 1.5 = 0; optax: x = 1 / 1.5 - 0.5 * 2."""
    params, grads, value = jnp.ones(1), jnp.full(1, 2.0), jnp.asarray(3.0)
    for form, new_x in (("paper", 0.0), ("optax", 1 / 1.5 - 1.0)):
        tx = momo.momo(learning_rate=0.5, weight_decay=1.0, form=form)
        np.testing.assert_allclose(
            params + _one_update(tx, grads, params, value), [new_x], atol=1e-7
        )


def test_momo_star_estimates_the_lower_bound_from_the_lower_bound_set_before_the_first_step():
    """One update of MoMo* from x = 1 with g = 2, f = 3: h = 3 - 2 + 2 = 3, tau = min(1, (3 - f_*)
    / 4); the estimate after it is max(f_bar + <d, x> - gamma - tau ||d||**2 / 2, lower bound)."""
    params, grads, value = jnp.ones(1), jnp.full(1, 2.0), jnp.asarray(3.0)
    tx = momo.momo(adapt_lower_bound=True, lower_bound=-5.0)
    state = jopt.set_hparams(tx.init(params), lower_bound=1.0)  # read at the first update
    _, state = tx.update(grads, state, params, value=value)
    tau = min(1.0, (3.0 - 1.0) / 4.0)
    np.testing.assert_allclose(state.lb, max(3.0 - 0.5 * tau * 4.0, 1.0), rtol=1e-6)
    assert jopt.get_hparams(state)["lower_bound"] == 1.0


# -- L-BFGS and its line search ------------------------------------------------------------------


def rosenbrock(z):
    return jnp.sum(100.0 * (z[1:] - z[:-1] ** 2) ** 2 + (1.0 - z[:-1]) ** 2)


ROSENBROCK_X0 = (-1.2, 1.0, -0.5, 0.8, 1.5)
# Settings under which the searches on Rosenbrock zoom, hit the cap, or run out of trials.
SEARCHES = {
    "optax_default": {"max_linesearch_steps": 20, "initial_guess_strategy": "one"},
    "keep_guess": {"max_linesearch_steps": 20},
    "capped_few_trials": {
        "max_linesearch_steps": 4,
        "initial_guess_strategy": "one",
        "max_learning_rate": 0.5,
        "curv_rtol": 0.5,
        "slope_rtol": 0.3,
        "approx_dec_rtol": None,
    },
}


def _rosenbrock_run(tx, dtype, steps):
    """(iterates, trials per search) of `steps` L-BFGS updates on Rosenbrock, the value and
    gradient read back from the state (optax.value_and_grad_from_state)."""
    value_and_grad = optax.value_and_grad_from_state(rosenbrock)

    def body(carry, _):
        p, s = carry
        value, grad = value_and_grad(p, state=s)
        u, s = tx.update(grad, s, p, value=value, grad=grad, value_fn=rosenbrock)
        p = optax.apply_updates(p, u)
        return (p, s), (p, optax.tree.get(s, "info").num_linesearch_steps)

    @jax.jit
    def run(p):
        return jax.lax.scan(body, (p, tx.init(p)), None, length=steps)[1]

    with jax.enable_x64(dtype == jnp.float64):
        iterates, trials = run(jnp.asarray(ROSENBROCK_X0, dtype))
        return np.asarray(iterates, np.float64), np.asarray(trials)


@pytest.mark.parametrize(
    ("search", "dtype"),
    [
        pytest.param("optax_default", jnp.float32, id="optax_default-float32"),
        pytest.param("capped_few_trials", jnp.float64, id="capped_few_trials-float64"),
    ],
)
def test_lbfgs_zooming_on_rosenbrock_is_optax_bitwise(search, dtype):
    ours = _rosenbrock_run(
        lbfgs.lbfgs(memory_size=4, linesearch=zoom.scale_by_zoom_linesearch(**SEARCHES[search])),
        dtype,
        60,
    )
    theirs = _rosenbrock_run(
        optax.lbfgs(memory_size=4, linesearch=optax.scale_by_zoom_linesearch(**SEARCHES[search])),
        dtype,
        60,
    )
    assert (ours[1] > 1).any()  # some searches took more than one trial
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])


@pytest.mark.parametrize("search", ["keep_guess", "capped_few_trials"])
def test_lbfgs_on_rosenbrock_follows_the_independent_strong_wolfe_reference(search):
    """Same trials in every search, and iterates within 1e-9 (relative) over 60 steps: the two
    differ by roundings (the cubic's coefficients by Cramer's rule, not a 2x2 product; NumPy's
    dot products, not XLA's), which L-BFGS's curvature pairs amplify along Rosenbrock's valley
    (measured: 6e-12 and 2.4e-11 here, 1.4e-10 with optax's default search; on the shared
    problem, 4.5e-16 over 1000 steps)."""
    settings = dict(SEARCHES[search])
    got, trials = _rosenbrock_run(
        lbfgs.lbfgs(memory_size=4, linesearch=zoom.scale_by_zoom_linesearch(**settings)),
        jnp.float64,
        60,
    )
    guess = settings.pop("initial_guess_strategy", "keep")

    def value(x):
        return float(rosenbrock(jnp.asarray(x)))

    def grad(x):
        return np.asarray(jax.grad(rosenbrock)(jnp.asarray(x)))

    counted: list[int] = []
    with jax.enable_x64(True):
        want = reference.run_lbfgs(
            grad,
            np.array(ROSENBROCK_X0),
            60,
            value_fn=value,
            memory_size=4,
            initial_guess_strategy=guess,
            trials=counted,
            **settings,
        )
    np.testing.assert_array_equal(trials, counted)
    want = np.stack(want[1:])
    assert (np.abs(got - want) / np.maximum(1.0, np.abs(want))).max() <= 1e-9
    assert max(counted) > 1  # the searches zoomed


def test_line_search_hyperparameters_are_in_the_state_and_setting_them_is_building_with_them():
    changed = {"max_linesearch_steps": 4, "curv_rtol": 0.5, "slope_rtol": 0.3}

    def run(tx, state):
        value_and_grad = optax.value_and_grad_from_state(rosenbrock)

        def step(carry, _):
            p, s = carry
            value, grad = value_and_grad(p, state=s)
            u, s = tx.update(grad, s, p, value=value, grad=grad, value_fn=rosenbrock)
            return (optax.apply_updates(p, u), s), p

        p = jnp.asarray(ROSENBROCK_X0)
        return jax.jit(lambda p, s: jax.lax.scan(step, (p, s), None, length=30)[1])(p, state)

    with jax.enable_x64(True):
        params = jnp.asarray(ROSENBROCK_X0)
        tx = lbfgs.lbfgs(memory_size=4)
        state = tx.init(params)
        assert jopt.get_hparams(state) == {
            "max_linesearch_steps": 20,
            "tol": 0.0,
            "increase_factor": 2.0,
            "slope_rtol": 1e-4,
            "curv_rtol": 0.9,
            "approx_dec_rtol": 1e-6,
            "stepsize_precision": 1e-5,
        }
        built = lbfgs.lbfgs(memory_size=4, **changed)
        ours = run(tx, jopt.set_hparams(state, **changed))
        chex.assert_trees_all_equal(ours, run(built, built.init(params)))


def test_curvature_condition_off_with_none_or_optaxs_inf():
    for off in (None, math.inf):
        tx = zoom.scale_by_zoom_linesearch(10, curv_rtol=off)
        assert "curv_rtol" not in jopt.get_hparams(tx.init(jnp.zeros(2)))


def test_loss_reading_updates_say_what_they_need():
    params = jnp.zeros(2)
    tx = polyak.polyak_sgd()
    with pytest.raises(ValueError, match=r"jopt\.polyak_sgd: needs the loss at the params: call "):
        tx.update(params, tx.init(params), params)
    with pytest.raises(ValueError, match=r"value must be the loss, a scalar, got an array of sh"):
        tx.update(params, tx.init(params), params, value=jnp.ones(4))
    tx = momo.momo()
    with pytest.raises(ValueError, match=r"jopt\.momo: needs the params"):
        tx.update(params, tx.init(params), value=1.0)
    tx = lbfgs.lbfgs()
    with pytest.raises(ValueError, match=r"needs the loss, its gradient and the loss function"):
        tx.update(params, tx.init(params), params, value=1.0)
    with pytest.raises(TypeError, match=r"keyword arguments that value_fn does not take: \['x'\]"):
        tx.update(params, tx.init(params), params, value=1.0, grad=params, value_fn=jnp.sum, x=1)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: polyak.polyak_sgd(variant="sps*"), "variant must be one of"),
        (lambda: polyak.polyak_sgd(form="paper", scaling=-1.0), "scaling must be >= 0, got -1.0"),
        (lambda: momo.momo(beta=1.0), r"beta must be in \[0, 1\), got 1.0"),
        (lambda: momo.momo_adam(form="keras"), "form must be one of"),
        (lambda: lbfgs.lbfgs(memory_size=0), "memory_size must be an integer >= 1, got 0"),
        (lambda: lbfgs.lbfgs(linesearch="backtracking"), "linesearch must be one of 'zoom'"),
        (
            lambda: lbfgs.lbfgs(linesearch=None, curv_rtol=0.5),
            "curv_rtol set the zoom line search, but linesearch is None",
        ),
        (lambda: lbfgs.lbfgs(increase_factor=1.0), r"increase_factor must be > 1"),
        (
            lambda: zoom.scale_by_zoom_linesearch(10, slope_rtol=0.5, curv_rtol=0.4),
            r"slope_rtol must be < curv_rtol .*got 0.5 >= 0.4",
        ),
        (lambda: zoom.scale_by_zoom_linesearch(10, verbose=True), "verbose=True is not offered"),
        (lambda: zoom.scale_by_zoom_linesearch(0), "max_linesearch_steps must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_refused_at_construction(build, message):
    with pytest.raises(jopt.ArgumentError, match=message):
        build()
