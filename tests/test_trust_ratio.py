"""The trust ratio family beyond the shared suites' examples: the papers' forms behind arguments
against the NumPy references, weight decay and masks against optax, the zero-norm cases, a
weight decay built as 0 and set later, and complex parameters.
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
from tests.reference import trust_ratio as reference

STEPS = 200


def _trajectory(tx, dtype=jnp.float64, steps=STEPS, seed=0) -> np.ndarray:
    with jax.enable_x64(dtype == jnp.float64):
        _, grad, start = helpers.random_problem(seed)
        stacked, _ = helpers.run_jopt(tx, grad, start(dtype), steps)
        return helpers.flat_trajectory(stacked)


PAPER_FORMS = [
    pytest.param(
        jopt.lars,
        reference.run_lars,
        {
            "learning_rate": 0.3,
            "weight_decay": 0.05,
            "split_norm": True,
            "weight_decay_mask": (True, False),
            "trust_ratio_mask": (True, True),
        },
        id="lars_split_norm",
    ),
    pytest.param(
        jopt.lars,
        reference.run_lars,
        {"learning_rate": 0.3, "weight_decay": 0.05, "trust_ratio_mask": (False, True)},
        id="lars_trust_ratio_mask",
    ),
    pytest.param(
        jopt.lamb,
        reference.run_lamb,
        {
            "learning_rate": 0.001,
            "weight_decay": 0.01,
            "mask": (False, True),
            "phi_min": 2.0,
            "phi_max": 2.5,
        },
        id="lamb_phi",
    ),
    pytest.param(
        jopt.fromage, reference.run_fromage, {"learning_rate": 0.003, "min_norm": 0.0}, id="fromage"
    ),
]


@pytest.mark.parametrize(("make", "run", "kwargs"), PAPER_FORMS)
def test_papers_forms_follow_the_float64_reference(make, run, kwargs):
    problem = helpers.random_problem(0)[0]
    want = np.stack(run(problem.grad, problem.x0, STEPS, **kwargs))
    got = _trajectory(make(**kwargs))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_lars_split_norm_differs_from_optaxs_with_weight_decay_only():
    kwargs = {"learning_rate": 0.3, "weight_decay": 0.05}
    split = _trajectory(jopt.lars(**kwargs, split_norm=True), steps=20)
    assert not np.array_equal(split, _trajectory(jopt.lars(**kwargs), steps=20))
    plain = _trajectory(jopt.lars(0.3, split_norm=True), steps=20)
    np.testing.assert_array_equal(plain, _trajectory(jopt.lars(0.3), steps=20))


OPTAX_TWINS = [
    pytest.param(
        lambda lib: lib.lars(0.3, weight_decay=0.05, weight_decay_mask=(True, False)), id="lars"
    ),
    pytest.param(lambda lib: lib.lamb(0.001, weight_decay=0.01, mask=(False, True)), id="lamb"),
    pytest.param(lambda lib: lib.fromage(optax.exponential_decay(0.003, 50, 0.5)), id="fromage"),
    pytest.param(
        lambda lib: optax.chain(
            lib.scale_by_trust_ratio(min_norm=0.5, trust_coefficient=0.3, eps=0.01),
            optax.scale_by_learning_rate(0.01),
        ),
        id="scale_by_trust_ratio",
    ),
]


@pytest.mark.parametrize("build", OPTAX_TWINS)
def test_weight_decay_masks_schedules_and_the_block_are_optaxs_bitwise(build):
    # float32: optax computes a scheduled learning rate's 1 / sqrt(1 + lr**2) in float32 even
    # under x64, where jopt keeps the state's float64.
    ours = _trajectory(build(jopt), jnp.float32, steps=300)
    theirs = _trajectory(build(optax), jnp.float32, steps=300)
    assert np.all(np.isfinite(theirs))
    np.testing.assert_array_equal(ours, theirs)


def _first_update(tx, params):
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    return updates


def test_a_zero_leaf_moves_as_optax_and_the_papers_code_move_it():
    params = (jnp.zeros(3), jnp.ones(4))
    # LARS and LAMB: ratio 1 where ||w|| = 0, as optax.
    for name in ("lars", "lamb"):
        ours = _first_update(getattr(jopt, name)(0.1), params)
        chex.assert_trees_all_equal(ours, _first_update(getattr(optax, name)(0.1), params))
    # Fromage's min_norm = 0 is its code's ratio 1: the zero leaf steps by lr / sqrt(1 + lr**2).
    step = _first_update(jopt.fromage(0.1, min_norm=0.0), params)[0]
    chex.assert_trees_all_close(step, jnp.full(3, -0.1 / np.sqrt(1.01)), rtol=1e-6)
    # optax's min_norm = 1e-6 takes 1e-6 / ||g|| instead.
    tiny = _first_update(jopt.fromage(0.1), params)[0]
    chex.assert_trees_all_close(tiny, step * 1e-6 / np.sqrt(3.0), rtol=1e-5)
    # The LAMB paper's phi with gamma_l > 0: phi_min / ||r|| (r = 1 at the first Adam step).
    lamb = _first_update(jopt.lamb(0.1, phi_min=0.5), params)[0]
    chex.assert_trees_all_close(lamb, jnp.full(3, -0.1 * 0.5 / np.sqrt(3.0)), rtol=1e-5)


def test_zero_gradients_give_zero_updates_without_weight_decay():
    params = (jnp.ones(3), jnp.zeros(4))
    zeros = jax.tree.map(jnp.zeros_like, params)
    for tx in (jopt.lars(0.1), jopt.lamb(0.1), jopt.scale_by_trust_ratio()):
        chex.assert_trees_all_equal(tx.update(zeros, tx.init(params), params)[0], zeros)


@pytest.mark.parametrize("name", ["lars", "lamb"])
def test_a_weight_decay_built_as_zero_can_be_set_later(name):
    make = getattr(jopt, name)
    _, grad, start = helpers.random_problem(0)
    params = start(jnp.float32)
    zero = make(0.01)
    state = jopt.set_hparams(zero.init(params), weight_decay=0.05)
    got = _run_from(zero, grad, params, state)
    built = make(0.01, weight_decay=0.05)
    chex.assert_trees_all_equal(got, _run_from(built, grad, params, built.init(params)))
    assert not np.array_equal(got, _run_from(zero, grad, params, zero.init(params)))


def _run_from(tx, grad, params, state, steps=20):
    def body(carry, _):
        p, s = carry
        u, s = tx.update(grad(p), s, p)
        return (optax.apply_updates(p, u), s), None

    return jax.jit(lambda p, s: jax.lax.scan(body, (p, s), None, length=steps)[0][0])(params, state)


@pytest.mark.parametrize("name", ["lars", "lamb", "fromage"])
def test_complex_parameters_are_optaxs_bitwise(name):
    params = jnp.array([1.0 + 2.0j, -0.5 + 0.25j, 3.0 - 1.0j], jnp.complex64)
    target = jnp.array([0.5 - 1.0j, 1.0 + 1.0j, -2.0 + 0.5j], jnp.complex64)

    def run(tx):
        def body(carry, _):
            p, s = carry
            u, s = tx.update(p - target, s, p)  # the conjugate gradient of |p - target|^2 / 2
            return (optax.apply_updates(p, u), s), None

        return jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), None, length=50)[0][0])(params)

    ours, theirs = run(getattr(jopt, name)(0.01)), run(getattr(optax, name)(0.01))
    assert ours.dtype == jnp.complex64
    chex.assert_tree_all_finite(theirs)
    chex.assert_trees_all_equal(ours, theirs)
