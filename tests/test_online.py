"""What the shared suites cannot see of the online family (jopt/_src/transforms/asgd.py,
ftrl.py).

- ASGD's average, which does not move the params: against the reference's averages (Bottou's
  recursion) over 1000 steps in float64 and float32; it is the iterate until averaging starts,
  and `asgd_eval_params` finds it inside wrappers; a schedule is read at its own step.
- FTRL: scale invariance where its regularizers are 0 (the shared property suite skips the
  optimizer, whose regularized example is not); exact zeros from l1 (the paper's sparsity);
  Keras' weight decay applied before the step; Keras' L2 strengths are twice jopt's.
- Refusals with their messages.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt._src.transforms.asgd import asgd, asgd_eval_params
from jopt._src.transforms.ftrl import ftrl
from tests import helpers
from tests.reference.online import asgd_trajectories, run_asgd, run_ftrl

AVERAGED = {"learning_rate": 0.1, "l2": 0.05, "alpha": 0.6, "t0": 20.0}  # the registry's second


def _with_averages(tx, grad, params, steps: int):
    """(iterates, averages) after every step, x0 first: one jitted scan."""

    def body(carry, _):
        p, s = carry
        u, s = tx.update(grad(p), s, p)
        p = optax.apply_updates(p, u)
        return (p, s), (p, asgd_eval_params(s, p))

    @jax.jit
    def run(p):
        _, (ps, averages) = jax.lax.scan(body, (p, tx.init(p)), None, length=steps)
        return ps, averages

    ps, averages = run(params)

    def join(xs):
        return jax.tree.map(lambda x0, x: jnp.concatenate([x0[None], x]), params, xs)

    return helpers.flat_trajectory(join(ps)), join(averages)


@pytest.mark.parametrize(("dtype", "tolerance"), [(jnp.float64, 1e-12), (jnp.float32, 1e-5)])
def test_asgd_average_matches_the_references(dtype, tolerance):
    with jax.enable_x64(dtype == jnp.float64):
        problem, grad, start = helpers.random_problem(0)
        _, averages = _with_averages(asgd(**AVERAGED), grad, start(dtype), 1000)
        got = helpers.flat_trajectory(averages)
    want = np.stack(asgd_trajectories(problem.grad, problem.x0, 1000, **AVERAGED)[1])
    assert (np.abs(got - want) / np.maximum(1.0, np.abs(want))).max() <= tolerance


def test_asgd_average_is_the_iterate_until_it_starts_then_their_mean():
    with jax.enable_x64(True):
        _, grad, start = helpers.random_problem(0)
        iterates, averages = _with_averages(asgd(**AVERAGED), grad, start(jnp.float64), 40)
    averages = helpers.flat_trajectory(averages)
    # mu = 1 / max(1, t - t0), t the steps taken before: 1 up to t = t0 + 1 = 21, whose step
    # gives iterate 22; from there on, the mean of the iterates since iterate 22.
    np.testing.assert_array_equal(averages[:23], iterates[:23])
    np.testing.assert_allclose(averages[40], iterates[22:41].mean(axis=0), rtol=1e-13)
    assert np.abs(averages[40] - iterates[40]).max() > 1e-3


def test_asgd_eval_params_is_found_inside_wrappers_and_refused_without_asgd():
    params = {"w": jnp.array([1.0, -2.0])}
    tx = optax.chain(optax.clip_by_global_norm(1.0), asgd(0.1, t0=0.0))
    state = tx.init(params)
    updates, state = tx.update({"w": jnp.array([0.5, 0.5])}, state, params)
    chex.assert_trees_all_equal(
        asgd_eval_params(state, params), optax.apply_updates(params, updates)
    )
    with pytest.raises(ValueError, match="jopt.asgd_eval_params: expected one asgd state"):
        asgd_eval_params(jopt.sgd(0.1).init(params), params)


def test_asgd_reads_a_schedule_at_its_own_step():
    def schedule(count):
        return 0.05 * 0.99**count

    with jax.enable_x64(True):
        problem, grad, start = helpers.random_problem(0)
        tx = asgd(schedule, l2=0.05)
        trajectory, _ = helpers.run_jopt(tx, grad, start(jnp.float64), 200)
    want = np.stack(run_asgd(problem.grad, problem.x0, 200, lambda t: 0.05 * 0.99**t, l2=0.05))
    np.testing.assert_allclose(helpers.flat_trajectory(trajectory), want, rtol=1e-12, atol=1e-12)


def test_asgd_average_is_torchs_ax():
    torch = pytest.importorskip("torch")
    kwargs = {"lambd": 0.01, "alpha": 0.6, "t0": 20.0, "weight_decay": 0.01}
    with jax.enable_x64(True):
        problem, grad, start = helpers.random_problem(0)
        _, averages = _with_averages(jopt.torch.ASGD(0.05, **kwargs), grad, start(jnp.float64), 100)
        got = helpers.flat_trajectory(averages)[-1]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch keeps eta and mu in the default dtype
    try:
        x = torch.tensor(problem.x0, requires_grad=True)
        opt = torch.optim.ASGD([x], lr=0.05, foreach=False, **kwargs)
        for _ in range(100):
            x.grad = torch.tensor(problem.grad(x.detach().numpy()))
            opt.step()
    finally:
        torch.set_default_dtype(previous)
    np.testing.assert_allclose(got, opt.state[x]["ax"].numpy(), rtol=1e-12, atol=1e-14)


def test_ftrl_without_regularizers_is_invariant_to_the_gradients_scale():
    tx = ftrl(0.5, initial_accumulator_value=0.0)
    _, grad, start = helpers.random_problem(0)

    def scaled(scale):
        return lambda p: jax.tree.map(lambda g: scale * g, grad(p))

    want, _ = helpers.run_jopt(tx, grad, start(jnp.float32), 50)
    for scale in (1e-3, 1e3):
        got, _ = helpers.run_jopt(tx, scaled(scale), start(jnp.float32), 50)
        chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)


def test_ftrl_l1_sets_coordinates_with_small_z_to_exactly_zero():
    # The paper's sparsity: |z| <= l1 gives w = 0, not a small number. z sums the gradients,
    # so a coordinate stays at 0 until they outweigh l1: after 5 steps, 5 of the 11 do.
    with jax.enable_x64(True):
        problem, grad, start = helpers.random_problem(0)
        trajectory, state = helpers.run_jopt(ftrl(0.5, l1=3.0), grad, start(jnp.float64), 5)
        got = helpers.flat_trajectory(trajectory)
        z = np.concatenate([np.ravel(x) for x in state.linear])
    want = np.stack(run_ftrl(problem.grad, problem.x0, 5, 0.5, l1=3.0))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    zero = np.abs(z) <= 3.0
    assert zero.sum() == 5
    np.testing.assert_array_equal(got[-1][zero], 0.0)
    assert np.all(got[-1][~zero] != 0.0)


def test_ftrl_weight_decay_is_applied_to_the_params_before_the_step():
    params = {"w": jnp.array([1.5, -0.7]), "b": jnp.array([0.2])}
    grads = {"w": jnp.array([0.3, -1.0]), "b": jnp.array([0.05])}
    lr, wd, mask = 0.5, 0.1, {"w": True, "b": False}
    decayed = {"w": params["w"] - params["w"] * wd * lr, "b": params["b"]}
    with_decay = ftrl(lr, weight_decay=wd, weight_decay_mask=mask)
    plain = ftrl(lr)
    u, _ = with_decay.update(grads, with_decay.init(params), params)
    v, _ = plain.update(grads, plain.init(params), decayed)
    chex.assert_trees_all_close(
        optax.apply_updates(params, u), optax.apply_updates(decayed, v), rtol=1e-6
    )


def test_keras_ftrl_l2_strengths_are_twice_jopts():
    params = jnp.array([1.5, -0.7, 0.2])
    keras = jopt.keras.Ftrl(
        0.5, l2_regularization_strength=0.05, l2_shrinkage_regularization_strength=0.02
    )
    ours = ftrl(0.5, l2=0.1, l2_shrinkage=0.04)
    grads = jnp.array([0.3, -1.0, 0.05])
    state_keras, state_ours = keras.init(params), ours.init(params)
    for _ in range(3):
        u_keras, state_keras = keras.update(grads, state_keras, params)
        u_ours, state_ours = ours.update(grads, state_ours, params)
        chex.assert_trees_all_equal(u_keras, u_ours)
    assert jopt.get_hparams(state_keras)["l2"] == jnp.float32(0.1)


@pytest.mark.parametrize(
    ("make", "kwargs", "error", "message"),
    [
        (asgd, {"t0": -1.0}, ValueError, "jopt.asgd: t0 must be >= 0, got -1.0."),
        (asgd, {"l2": -1e-4}, ValueError, "jopt.asgd: l2 must be >= 0, got -0.0001."),
        (ftrl, {"learning_rate_power": 0.5}, ValueError,
         "jopt.ftrl: learning_rate_power must be <= 0, got 0.5."),
        (ftrl, {"initial_accumulator_value": -0.1}, ValueError,
         "jopt.ftrl: initial_accumulator_value must be >= 0, got -0.1."),
        (ftrl, {"l1": -1.0}, ValueError, "jopt.ftrl: l1 must be >= 0, got -1.0."),
        (ftrl, {"beta": float("nan")}, ValueError, "jopt.ftrl: beta must be >= 0, got nan."),
        (ftrl, {"weight_decay_mask": "bias"}, TypeError,
         "jopt.ftrl: weight_decay_mask must be None, a callable params -> tree of bools, or a "
         "tree of bools shaped like the params, got 'bias'."),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_with_their_range(make, kwargs, error, message):
    with pytest.raises(error) as caught:
        make(0.1, **kwargs)
    assert str(caught.value) == message


def test_ftrl_refuses_complex_parameters_naming_the_path():
    with pytest.raises(TypeError, match=r"jopt\.ftrl: the parameter at \['w'\] is complex"):
        ftrl(0.1).init({"w": jnp.ones(2, jnp.complex64)})
