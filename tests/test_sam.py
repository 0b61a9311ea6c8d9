"""`jopt.sam` and `jopt.sam_train_step` (jopt/_src/transforms/sam.py): the two-gradient SAM
step written by hand in NumPy float64, optax.contrib.sam bitwise, rho in the state, and where
jopt departs from optax (sync_period=1, a zero gradient), and the refusals."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt._src.transforms.sam import sam, sam_train_step
from tests import helpers
from tests.reference import problems
from tests.reference.loss_based import run_sam_sgd

# Past ~30 steps on this quadratic the SAM iterates circle an unstable point (the ascent's
# direction flips), and rounding differences grow fourfold per step: 20 steps stay at 1e-16.
STEPS = 20
LR, RHO = 0.05, 0.1


def _quadratic():
    """The ill-conditioned quadratic, its JAX loss and gradient (call under x64)."""
    problem = problems.quadratic(dim=5, condition=10)
    a, x_star = jnp.asarray(problem.extras["A"]), jnp.asarray(problem.x_star)

    def loss(x):
        return 0.5 * (x - x_star) @ a @ (x - x_star)

    return problem, loss, jax.grad(loss)


def _transparent(tx, grad, params, calls):
    """The params after each of `calls` updates, each with the gradient at the params."""
    update = jax.jit(tx.update)
    state, out = tx.init(params), [params]
    for _ in range(calls):
        updates, state = update(grad(params), state, params)
        params = optax.apply_updates(params, updates)
        out.append(params)
    return out, state


def _opaque(tx, grad, params, calls):
    def grad_fn(p, i):
        return grad(p)

    update = jax.jit(lambda g, s, p: tx.update(g, s, p, grad_fn=grad_fn))
    state, out = tx.init(params), [params]
    for _ in range(calls):
        updates, state = update(grad(params), state, params)
        params = optax.apply_updates(params, updates)
        out.append(params)
    return out, state


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def _close(got, want, tolerance=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    assert (np.abs(got - want) / np.maximum(1.0, np.abs(want))).max() <= tolerance


def test_transparent_sam_is_the_two_step_update_written_by_hand():
    """Odd updates ascend to x + rho g / ||g||, even ones step from x with the gradient there."""
    with jax.enable_x64(True):
        problem, _, grad = _quadratic()
        x0 = jnp.asarray(problem.x0)
        got, _ = _transparent(sam(jopt.sgd(LR), rho=RHO), grad, x0, 2 * STEPS)
    want = run_sam_sgd(problem.grad, problem.x0, STEPS, LR, RHO)
    _close(np.stack(got[::2]), np.stack(want))
    for x, ascended in zip(want, got[1::2], strict=False):
        g = problem.grad(x)
        _close(ascended, x + RHO * g / np.linalg.norm(g))


def test_opaque_sam_and_the_train_step_are_one_sam_step_per_update():
    with jax.enable_x64(True):
        problem, loss, grad = _quadratic()
        x0 = jnp.asarray(problem.x0)
        tx = sam(jopt.sgd(LR), rho=RHO, opaque_mode=True)
        got, _ = _opaque(tx, grad, x0, STEPS)
        step = jax.jit(sam_train_step(loss, tx))
        params, state, stepped, losses = x0, tx.init(x0), [x0], []
        for _ in range(STEPS):
            params, state, value = step(params, state)
            stepped.append(params)
            losses.append(value)
    want = np.stack(run_sam_sgd(problem.grad, problem.x0, STEPS, LR, RHO))
    _close(np.stack(got), want)
    _close(np.stack(stepped), want)
    _close(np.stack(losses), [problem.value(x) for x in want[:-1]])  # the loss at the params


OPTAX_CASES = [
    pytest.param(False, 2, True, jnp.float32, id="transparent-2-reset-float32"),
    pytest.param(False, 3, False, jnp.float64, id="transparent-3-float64"),
    pytest.param(True, 2, True, jnp.float64, id="opaque-2-reset-float64"),
    pytest.param(True, 3, False, jnp.float32, id="opaque-3-float32"),
]


@pytest.mark.parametrize(("opaque", "period", "reset", "dtype"), OPTAX_CASES)
def test_sam_is_optax_contrib_sam_bitwise(opaque, period, reset, dtype):
    """The paper's ascent in jopt's state, optax's as chain(normalize(), sgd(rho)); Adam outside."""
    run = _opaque if opaque else _transparent
    adversary = optax.chain(optax.contrib.normalize(), optax.sgd(RHO))
    settings = {"sync_period": period, "reset_state": reset, "opaque_mode": opaque}
    with jax.enable_x64(dtype == jnp.float64):
        _, grad, start = helpers.random_problem(2)
        ours, _ = run(sam(jopt.adam(LR), rho=RHO, **settings), grad, start(dtype), 30)
        theirs, _ = run(
            optax.contrib.sam(optax.adam(LR), adversary, **settings), grad, start(dtype), 30
        )
    chex.assert_tree_all_finite(theirs)
    chex.assert_trees_all_equal(ours, theirs)


def test_rho_is_in_the_state_and_setting_it_is_building_with_it():
    _, grad, start = helpers.random_problem(0)
    params = start(jnp.float32)
    tx = sam(jopt.sgd(LR))
    state = tx.init(params)
    assert jopt.get_hparams(state) == {"rho": np.float32(0.05), "learning_rate": np.float32(LR)}
    update = jax.jit(tx.update)

    def run(tx_update, state, calls=6):
        p = params
        for _ in range(calls):
            u, state = tx_update(grad(p), state, p)
            p = optax.apply_updates(p, u)
        return p

    set_rho = run(update, jopt.set_hparams(state, rho=0.3))
    built = sam(jopt.sgd(LR), rho=0.3)
    chex.assert_trees_all_equal(set_rho, run(jax.jit(built.update), built.init(params)))


def test_resetting_the_adversary_keeps_the_hyperparameters_it_was_set():
    _, grad, start = helpers.random_problem(0)
    params = start(jnp.float32)
    tx = sam(jopt.sgd(LR), jopt.adam(0.1))  # only the adversary has a b1
    state = jopt.set_hparams(tx.init(params), b1=0.5)
    for _ in range(2):  # an ascent step, then the outer step, which resets the adversary
        _, state = tx.update(grad(params), state, params)
    assert int(optax.tree.get(state.adv_state, "count")) == 0
    assert jopt.get_hparams(state.adv_state)["b1"] == np.float32(0.5)


def test_sync_period_one_is_the_outer_optimizer_alone_where_optax_restarts_each_step():
    _, grad, start = helpers.random_problem(0)
    params = start(jnp.float32)
    ours, _ = _transparent(sam(jopt.sgd(LR), sync_period=1), grad, params, 5)
    alone, _ = _transparent(jopt.sgd(LR), grad, params, 5)
    chex.assert_trees_all_equal(ours, alone)
    # optax 0.2.8 reads its cache before refreshing it: each step starts from the params before
    # the previous step, x_{t+1} = x_{t-1} - lr grad(x_t).
    adversary = optax.chain(optax.contrib.normalize(), optax.sgd(RHO))
    theirs, _ = _transparent(optax.contrib.sam(optax.sgd(LR), adversary, 1), grad, params, 5)
    skipping = jax.tree.map(lambda p, g: p - LR * g, theirs[3], grad(theirs[4]))
    chex.assert_trees_all_close(theirs[5], skipping, rtol=1e-6)
    assert np.abs(_flat(theirs[5]) - _flat(alone[5])).max() > 1e-3


def test_a_zero_gradient_makes_no_ascent_step():
    params = {"w": jnp.ones(3)}
    tx = sam(jopt.sgd(LR))
    updates, _ = tx.update({"w": jnp.zeros(3)}, tx.init(params), params)
    chex.assert_trees_all_equal(updates, {"w": jnp.zeros(3)})
    adversary = optax.chain(optax.contrib.normalize(), optax.sgd(RHO))
    theirs = optax.contrib.sam(optax.sgd(LR), adversary)
    nan, _ = theirs.update({"w": jnp.zeros(3)}, theirs.init(params), params)
    assert np.isnan(nan["w"]).all()  # optax normalizes by 0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: sam(jopt.sgd(LR), jopt.sgd(0.1), rho=0.1), "rho is the radius of jopt's own"),
        (lambda: sam(jopt.sgd(LR), sync_period=0), "sync_period must be an integer >= 1, got 0"),
        (lambda: sam(jopt.sgd(LR), rho=-1.0), "rho must be >= 0, got -1.0"),
        (lambda: sam("sgd"), "optimizer must be an optax.GradientTransformation"),
        (lambda: sam_train_step(0.1, jopt.sgd(LR)), "loss_fn must be a callable"),
    ],
)
def test_bad_arguments_are_refused_at_construction(build, message):
    with pytest.raises(jopt.ArgumentError, match=message):
        build()


def test_update_says_what_it_needs():
    params = jnp.ones(2)
    tx = sam(jopt.sgd(LR), opaque_mode=True)
    with pytest.raises(ValueError, match=r"jopt\.sam: opaque_mode=True needs grad_fn\(params, i\)"):
        tx.update(params, tx.init(params), params)
    with pytest.raises(ValueError, match=r"jopt\.sam: needs the params"):
        tx.update(params, tx.init(params))
