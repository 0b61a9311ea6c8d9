"""jopt schedules as optimizer hyperparameters: what the state shows, and the trajectory they give.

- With a schedule as learning_rate (sgd with classic or Keras-style momentum, adam), after k
  jitted updates `jopt.current_lr(state)` is schedule(k - 1), the value the k-th update used
  (schedule(0) before any update).
- A schedule as sgd's momentum (one_cycle_momentum, cyclic_momentum), adam's b1 and adamw's
  weight_decay is evaluated at each step, and `jopt.get_hparams` reads back the value used.
- adam and sgd with momentum and a jopt schedule give trajectories bitwise identical to optax's
  with the same schedule (float32 and float64), and sgd with a scheduled momentum and learning
  rate follows a NumPy float64 loop written from the update rule to 1e-12.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests import helpers

STEPS = 12


def _read_after_each_step(tx, read):
    """`read(state)` before any update and after each of STEPS updates (traced: call in jit)."""
    _, grad, start = helpers.random_problem(0)
    params = start(jnp.float32)

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(grad(params), state, params)
        state_read = read(state)
        return (optax.apply_updates(params, updates), state), state_read

    state = tx.init(params)
    _, seen = jax.lax.scan(step, (params, state), length=STEPS)
    return jnp.concatenate([read(state)[None], seen])


@functools.cache
def _reads() -> dict:
    """Every test's reads, from one jitted program (one compilation instead of one per test)."""
    runs = {
        f"{optimizer}/{schedule}": (make(LR_SCHEDULES[schedule]), jopt.current_lr)
        for optimizer, make in OPTIMIZERS.items()
        for schedule in LR_SCHEDULES
    }
    for name, (make, hparam, schedule) in HPARAM_SCHEDULES.items():
        runs[name] = (make(schedule), lambda s, h=hparam: jopt.get_hparams(s)[h])
    return jax.jit(lambda: {name: _read_after_each_step(*run) for name, run in runs.items()})()


def _used_at_each_step(schedule):
    """schedule(0) before any update, then schedule(k - 1) after update k."""
    return jnp.stack([schedule(k) for k in [0, *range(STEPS)]])


LR_SCHEDULES = {
    "warmup_cosine": jopt.warmup_cosine_decay_schedule(0.0, 0.1, 3, 10, 0.01),
    "one_cycle": jopt.one_cycle_schedule(STEPS, 0.1),
    "piecewise_constant": jopt.piecewise_constant([2, 5], [0.1, 0.05, 0.01]),
    "cosine_restarts": jopt.cosine_decay_restarts(0.1, 3, 2.0, 0.5),
}
OPTIMIZERS = {
    "sgd_momentum": lambda lr: jopt.sgd(lr, momentum=0.9),
    "sgd_lr_inside": lambda lr: jopt.sgd(lr, momentum=0.9, momentum_form="lr_inside"),
    "adam": jopt.adam,
}


@pytest.mark.parametrize("schedule_name", LR_SCHEDULES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_current_lr_after_k_updates_is_the_schedule_at_k_minus_one(optimizer, schedule_name):
    schedule = LR_SCHEDULES[schedule_name]
    got = _reads()[f"{optimizer}/{schedule_name}"]
    chex.assert_trees_all_close(got, _used_at_each_step(schedule), rtol=1e-6, atol=1e-9)


HPARAM_SCHEDULES = {
    "sgd_momentum_one_cycle": (
        lambda s: jopt.sgd(0.05, momentum=s),
        "momentum",
        jopt.one_cycle_momentum(STEPS, 0.85, 0.95),
    ),
    "sgd_lr_inside_momentum_cyclic": (
        lambda s: jopt.sgd(0.05, momentum=s, momentum_form="lr_inside"),
        "momentum",
        jopt.cyclic_momentum(0.8, 0.9, 3),
    ),
    "adam_b1_one_cycle": (
        lambda s: jopt.adam(0.01, b1=s),
        "b1",
        jopt.one_cycle_momentum(STEPS, 0.85, 0.95, three_phase=True, pct_start=0.25),
    ),
    "adamw_weight_decay_cosine": (
        lambda s: jopt.adamw(0.01, weight_decay=s),
        "weight_decay",
        jopt.cosine_decay_schedule(1e-2, STEPS, alpha=0.1),
    ),
}


@pytest.mark.parametrize("name", HPARAM_SCHEDULES)
def test_scheduled_hyperparameter_is_read_back_after_each_step(name):
    make, hparam, schedule = HPARAM_SCHEDULES[name]
    got = _reads()[name]
    want = _used_at_each_step(schedule)
    chex.assert_trees_all_close(got, want, rtol=1e-6)
    assert np.ptp(np.asarray(want)) > 0.05 * float(want.max())  # the schedule does move


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    "ours, theirs",
    [(jopt.adam, optax.adam), (jopt.sgd, optax.sgd)],
    ids=["adam", "sgd_momentum"],
)
def test_trajectory_with_a_schedule_is_bitwise_optax(ours, theirs, dtype):
    kwargs = {} if ours is jopt.adam else {"momentum": 0.9}
    with jax.enable_x64(dtype == jnp.float64):
        schedule = jopt.warmup_cosine_decay_schedule(0.0, 0.05, 5, 30, 1e-3)
        _, grad, start = helpers.random_problem(0)
        got, _ = helpers.run_jopt(ours(schedule, **kwargs), grad, start(dtype), 40)
        want, _ = helpers.run_jopt(theirs(schedule, **kwargs), grad, start(dtype), 40)
        chex.assert_trees_all_equal(got, want)
        chex.assert_trees_all_equal_dtypes(got, want)


def test_sgd_with_scheduled_momentum_and_lr_follows_the_update_rule():
    """m_t = mu(t-1) m + g;  x_t = x_{t-1} - lr(t-1) m_t  (t counts updates from 1)."""
    steps = 30
    with jax.enable_x64(True):
        tx = jopt.sgd(
            jopt.piecewise_constant([10, 20], [0.05, 0.02, 0.01]),
            momentum=jopt.linear_schedule(0.9, 0.5, 10),
        )
        problem, grad, start = helpers.random_problem(0)
        trajectory, _ = helpers.run_jopt(tx, grad, start(jnp.float64), steps)
    got = helpers.flat_trajectory(trajectory)
    x, m, want = problem.x0.astype(np.float64), 0.0, [problem.x0]
    for t in range(steps):  # t: the updates taken before this one
        mu = 0.9 - 0.04 * min(t, 10)
        lr = 0.05 if t < 10 else 0.02 if t < 20 else 0.01
        m = mu * m + problem.grad(x)
        x = x - lr * m
        want.append(x)
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-12, atol=1e-12)
