"""Schedule-free SGD and AdamW, and the wrapper: what the shared suites do not see.

The shared suites compare the params (y, where the gradients are taken) with the NumPy
reference and with optax. Here:
- `jopt.schedule_free_eval_params` gives the reference's x, the average to evaluate at, at every
  step (float64, both forms), and x converges on a quadratic;
- optax's conventions the registry's examples leave out agree with optax bitwise: a warmup (its
  schedule read at t - 1 for the step, at t for the weight), weight decay, a learning-rate
  schedule, the wrapper around optax's and jopt's optimizers;
- the evaluation point is found inside chains and wrappers, and optax's reader takes jopt's state.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests import helpers
from tests.reference import problems
from tests.reference import schedule_free as reference

STEPS = 300
SGD = {"learning_rate": 0.1, "weight_decay": 0.01, "warmup_steps": 10}
ADAMW = {"learning_rate": 0.01, "weight_decay": 0.01, "warmup_steps": 10, "b1": 0.8}


def _run(tx, steps: int, dtype=jnp.float64):
    """(params y, eval params x) after each of `steps` jitted steps on the random problem, the
    start included, flattened to (steps + 1, n) float64 arrays."""
    with jax.enable_x64(dtype == jnp.float64):
        _, grad, start = helpers.random_problem(0)
        params = start(dtype)

        def body(carry, _):
            p, s = carry
            u, s = tx.update(grad(p), s, p)
            p = optax.apply_updates(p, u)
            return (p, s), (p, jopt.schedule_free_eval_params(s, p))

        @jax.jit
        def run(p):
            return jax.lax.scan(body, (p, tx.init(p)), None, length=steps)[1]

        def flat(iterates):
            stacked = jax.tree.map(lambda x0, x: jnp.concatenate([x0[None], x]), params, iterates)
            return helpers.flat_trajectory(stacked)

        ys, xs = run(params)
        return flat(ys), flat(xs)


def _reference(name: str, kwargs: dict, steps: int):
    """The reference's (y's, x's), as (steps + 1, n) arrays."""
    problem = helpers.random_problem(0)[0]
    kwargs = dict(kwargs)
    b2, eps = kwargs.pop("b2", 0.999), kwargs.pop("eps", 1e-8)
    if name == "adamw":
        direction = reference.adamw_direction(b2, eps, kwargs.get("form", "optax"))
    else:
        direction = lambda g, t: (g, 1.0)  # noqa: E731
    ys, xs = reference.schedule_free_iterates(
        problem.grad, problem.x0, steps, direction=direction, **kwargs
    )
    return np.stack(ys), np.stack(xs)


@pytest.mark.parametrize("form", ["optax", "paper"])
@pytest.mark.parametrize(("name", "kwargs"), [("sgd", SGD), ("adamw", ADAMW)], ids=["sgd", "adamw"])
def test_eval_params_are_the_references_average(name, kwargs, form):
    kwargs = {**kwargs, "form": form, "r": 0.5 if form == "paper" else 0.0}
    ys, xs = _run(getattr(jopt, f"schedule_free_{name}")(**kwargs), STEPS)
    want_y, want_x = _reference(name, kwargs, STEPS)
    # optax's warmup ramp min(t, T) / T is computed in float32 even under x64 (JAX divides int32
    # by int32 in float32), and jopt's optax form reproduces it.
    tolerance = 1e-12 if form == "paper" else 1e-6
    np.testing.assert_allclose(ys, want_y, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(xs, want_x, rtol=tolerance, atol=tolerance)
    assert np.abs(xs - ys).max() > 1e-3  # x and y are different points


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_the_average_converges_on_a_quadratic(name):
    # The registry's convergence configurations; x oscillates towards x* with y (whose first
    # visit within 1e-3 test_convergence measures), and settles.
    problem = problems.quadratic(dim=5, condition=100)
    a, x_star = problem.extras["A"], problem.x_star
    tx = getattr(jopt, f"schedule_free_{name}")(learning_rate=0.006 if name == "sgd" else 0.05)
    with jax.enable_x64(True):

        @jax.jit
        def run(y):
            def body(carry, _):
                y, s = carry
                u, s = tx.update(jnp.asarray(a) @ (y - jnp.asarray(x_star)), s, y)
                return (optax.apply_updates(y, u), s), None

            (y, s), _ = jax.lax.scan(body, (y, tx.init(y)), None, length=20_000)
            return jopt.schedule_free_eval_params(s, y)

        x = run(jnp.asarray(problem.x0))
    assert np.linalg.norm(np.asarray(x) - x_star) < 1e-4


def _pair(name: str, kwargs: dict):
    return getattr(jopt, f"schedule_free_{name}")(**kwargs), getattr(
        optax.contrib, f"schedule_free_{name}"
    )(**kwargs)


OPTAX_CONVENTIONS = {
    "sgd_warmup_decay": ("sgd", SGD),
    "adamw_warmup_decay": ("adamw", {**ADAMW, "weight_lr_power": 1.0}),
    "sgd_schedule": ("sgd", {"learning_rate": optax.linear_schedule(0.1, 0.01, 50)}),
}
# A schedule is compiled into each program, and XLA fuses `1 - count / 50` differently in the
# two: its value differs by an ulp under jit (eagerly the two agree bitwise, checked below).
NOT_BITWISE = {("sgd_schedule", "float32"): 1e-6, ("sgd_schedule", "float64"): 1e-14}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case_id", list(OPTAX_CONVENTIONS))
def test_optax_conventions_agree_with_optax_bitwise(case_id, dtype):
    ours, theirs = _pair(*OPTAX_CONVENTIONS[case_id])
    with jax.enable_x64(dtype == jnp.float64):
        _, grad, start = helpers.random_problem(0)
        got, _ = helpers.run_jopt(ours, grad, start(dtype), STEPS)
        want, _ = helpers.run_jopt(theirs, grad, start(dtype), STEPS)
        tolerance = NOT_BITWISE.get((case_id, np.dtype(dtype).name))
        if tolerance is None:
            chex.assert_trees_all_equal(got, want)
            return
        chex.assert_trees_all_close(got, want, rtol=tolerance, atol=tolerance)
        params = (start(dtype), ours.init(start(dtype))), (start(dtype), theirs.init(start(dtype)))
        for _ in range(5):  # eagerly
            params = tuple(
                (optax.apply_updates(p, u), s)
                for tx, (p, s) in zip((ours, theirs), params, strict=True)
                for u, s in [tx.update(grad(p), s, p)]
            )
        chex.assert_trees_all_equal(params[0][0], params[1][0])


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.sgd(0.05),
        lambda lib: lib.adam(0.01, b1=0.0),
        lambda lib: optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.05)),
    ],
    ids=["sgd", "adam", "optax_chain"],
)
def test_the_wrapper_agrees_with_optax_bitwise(make):
    # The wrapper's learning rate only weighs the average (the base optimizer has its own).
    ours = jopt.schedule_free(make(jopt), 0.05, b1=0.8)
    theirs = optax.contrib.schedule_free(make(optax), 0.05, b1=0.8)
    _, grad, start = helpers.random_problem(0)
    got, state = helpers.run_jopt(ours, grad, start(jnp.float32), STEPS)
    want, optax_state = helpers.run_jopt(theirs, grad, start(jnp.float32), STEPS)
    chex.assert_trees_all_equal(got, want)
    last = jax.tree.map(lambda x: x[-1], got)
    # optax rounds 1 - b1 in the params' dtype where its update uses 1 - b1 rounded once.
    chex.assert_trees_all_close(
        jopt.schedule_free_eval_params(state, last),
        optax.contrib.schedule_free_eval_params(optax_state, last),
        rtol=1e-6,
        atol=1e-6,
    )


def test_optax_warmup_takes_its_first_step_with_a_zero_learning_rate_the_paper_does_not():
    params = jnp.array([1.0, -2.0])
    grads = jnp.array([0.5, 0.5])
    for form, moves in (("optax", False), ("paper", True)):
        tx = jopt.schedule_free_sgd(0.1, warmup_steps=4, form=form)
        updates, state = tx.update(grads, tx.init(params), params)
        assert bool(jnp.any(updates != 0)) is moves, form
        # current_lr is the learning rate before the warmup factor.
        assert float(jopt.current_lr(state)) == pytest.approx(0.1)


def test_eval_params_are_found_inside_wrappers_and_optax_reads_the_state():
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    grads = jax.tree.map(lambda p: 0.3 * p + 0.1, params)
    plain = jopt.schedule_free_adamw(0.1)
    wrapped = optax.MultiSteps(optax.chain(optax.clip(1.0), plain), every_k_schedule=1)
    updates, state = plain.update(grads, plain.init(params), params)
    _, wrapped_state = wrapped.update(grads, wrapped.init(params), params)
    params = optax.apply_updates(params, updates)
    x = jopt.schedule_free_eval_params(state, params)
    chex.assert_trees_all_equal(jopt.schedule_free_eval_params(wrapped_state, params), x)
    chex.assert_trees_all_close(
        optax.contrib.schedule_free_eval_params(state, params), x, rtol=1e-6
    )
    assert float(state.b1) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="schedule_free_eval_params: expected one schedule_free"):
        jopt.schedule_free_eval_params(jopt.adam(0.1).init(params), params)


def test_the_wrapper_needs_the_params_and_refuses_another_state():
    params = jnp.ones(3)
    tx = jopt.schedule_free_sgd(0.1)
    with pytest.raises(ValueError, match="jopt.schedule_free_sgd: needs the params"):
        tx.update(params, tx.init(params))
    with pytest.raises(ValueError, match="jopt.schedule_free_sgd: this state was not made by"):
        tx.update(params, jopt.schedule_free_adamw().init(params), params)


def test_reference_by_hand_on_a_one_dimensional_quadratic():
    # f = x**2 / 2 from x0 = 1, lr = 0.5, b1 = 0.5, constant lr: weights 1/1, 1/2.
    ys, xs = reference.schedule_free_iterates(
        lambda x: x, np.array([1.0]), 2, 0.5, lambda g, t: (g, 1.0), b1=0.5
    )
    # t=1: z = 1 - 0.5 = 0.5, c = 1, x = 0.5, y = 0.5.
    # t=2: g = 0.5, z = 0.25, c = 1/2, x = 0.375, y = 0.5 * 0.25 + 0.5 * 0.375 = 0.3125.
    np.testing.assert_allclose(np.concatenate(ys), [1.0, 0.5, 0.3125])
    np.testing.assert_allclose(np.concatenate(xs), [1.0, 0.5, 0.375])


def test_state_dtype_keeps_z_and_updates_come_in_the_params_dtype():
    params = {"w": jnp.array([1.0, -2.0], jnp.bfloat16)}
    tx = jopt.schedule_free_adamw(0.1, state_dtype=jnp.float32)
    state = tx.init(params)
    assert state.z["w"].dtype == jnp.float32 and state.weight_sum.dtype == jnp.float32
    updates, state = tx.update({"w": jnp.array([0.5, 0.5], jnp.bfloat16)}, state, params)
    assert updates["w"].dtype == jnp.bfloat16 and state.z["w"].dtype == jnp.float32
    x = jopt.schedule_free_eval_params(state, optax.apply_updates(params, updates))
    assert x["w"].dtype == jnp.bfloat16
