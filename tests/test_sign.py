"""What the shared suites cannot see of the sign family (jopt/_src/transforms/sign.py, rprop.py).

- Rprop⁺, the paper's algorithm (`weight_backtracking=True`), against the NumPy reference over
  1000 steps, float64 and float32, as tests/test_trajectories.py checks the registry's examples.
- jopt's default Rprop applies each step when it computes it: torch's trajectory (live, where
  torch is installed) and the sequence of optax pull request 1725; optax 0.2.8's one update late.
- Rprop's learning rate is the initial step size: set before the first update it is used, set
  after it changes nothing; complex parameters are refused with a clear error.
- Signum's updates are the signs of an EMA, whatever the scale of the gradients: the heavy-ball
  buffer would give the same.
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
from tests.reference.sign import run_rprop

RPROP = {"learning_rate": 0.01, "min_step_size": 1e-3}  # the registry's example (catalogue)


@pytest.mark.parametrize(("dtype", "tolerance"), [(jnp.float64, 1e-12), (jnp.float32, 1e-5)])
def test_rprop_plus_with_weight_backtracking_matches_the_reference(dtype, tolerance):
    kwargs = {**RPROP, "weight_backtracking": True}
    with jax.enable_x64(dtype == jnp.float64):
        problem, grad, start = helpers.random_problem(0)
        trajectory, _ = helpers.run_jopt(jopt.rprop(**kwargs), grad, start(dtype), 1000)
        got = helpers.flat_trajectory(trajectory)
    want = np.stack(run_rprop(problem.grad, problem.x0, 1000, **kwargs))
    assert (np.abs(got - want) / np.maximum(1.0, np.abs(want))).max() <= tolerance
    # Backtracking happened, and changed the path.
    plain = np.stack(run_rprop(problem.grad, problem.x0, 1000, **RPROP))
    assert np.abs(plain - want).max() > 1e-3


def _updates(tx, grads):
    state = tx.init(jnp.zeros(1))
    out = []
    for g in grads:
        u, state = tx.update(jnp.array([g]), state, jnp.zeros(1))
        out.append(float(u[0]))
    return out


def test_rprop_applies_each_step_at_once_and_optax_one_update_late():
    grads = [1.0, 1.0, 1.0, -1.0, 1.0]
    now = [-0.1, -0.12, -0.144, 0.0, -0.072]  # optax pull request 1725's "correct" sequence
    late = [0.0, -0.1, -0.12, 0.0, 0.0]
    np.testing.assert_allclose(_updates(jopt.rprop(0.1), grads), now, rtol=1e-6)
    np.testing.assert_allclose(_updates(jopt.rprop(0.1, stale_update=True), grads), late, rtol=1e-6)
    np.testing.assert_allclose(_updates(optax.rprop(0.1), grads), late, rtol=1e-6)


def test_rprop_is_torchs_rprop():
    torch = pytest.importorskip("torch")
    with jax.enable_x64(True):
        problem, grad, start = helpers.random_problem(0)
        trajectory, _ = helpers.run_jopt(jopt.rprop(**RPROP), grad, start(jnp.float64), 200)
        got = helpers.flat_trajectory(trajectory)
    x = torch.tensor(problem.x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Rprop([x], lr=0.01, step_sizes=(1e-3, 50.0))
    want = [problem.x0]
    for _ in range(200):
        opt.zero_grad()
        x.grad = torch.tensor(problem.grad(x.detach().numpy()))
        opt.step()
        want.append(x.detach().numpy().copy())
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-12, atol=1e-12)


def test_rprop_learning_rate_is_the_initial_step_size_read_at_the_first_update():
    params = jnp.array([1.0, -2.0])
    grads = jnp.array([0.5, -3.0])
    tx = jopt.rprop(0.1)
    state = jopt.set_hparams(tx.init(params), learning_rate=0.25)
    updates, state = tx.update(grads, state, params)
    chex.assert_trees_all_close(updates, jnp.array([-0.25, 0.25]))
    later = jopt.set_hparams(state, learning_rate=5.0)
    chex.assert_trees_all_equal(tx.update(grads, later, params)[0], tx.update(grads, state)[0])


def test_rprop_refuses_complex_parameters_naming_the_path():
    with pytest.raises(TypeError, match=r"jopt\.rprop: the parameter at \['w'\] is complex"):
        jopt.rprop(0.1).init({"w": jnp.ones(2, jnp.complex64)})


def test_signum_steps_by_the_sign_of_the_ema_whatever_the_gradients_scale():
    params = jnp.zeros(3)
    grads = [jnp.array([1.0, -2.0, 0.5]), jnp.array([-3.0, 1.0, -0.4]), jnp.array([-1, 1, 1.0])]
    tx = jopt.signum(0.5, beta=0.9)
    for scale in (1e-3, 1.0, 1e3):
        state, m = tx.init(params), np.zeros(3)
        for g in grads:
            updates, state = tx.update(scale * g, state, params)
            m = 0.9 * m + scale * np.asarray(g)  # the heavy-ball buffer: the same signs
            np.testing.assert_array_equal(updates, -0.5 * np.sign(m))
