"""Schedules built from pieces (`jopt._src.schedules.compose`) against closed-form tables and optax.

- piecewise_constant (switch "at": torch's MultiStepLR and optax; "after": Keras'
  PiecewiseConstantDecay, one step later), piecewise_constant_schedule, piecewise_linear,
  join_schedules, multiply_schedules, piecewise_interpolate_schedule and per_epoch equal tables
  written out here from their docstrings at step 0, 1, every boundary +- 1, far past, and at the
  saturated step 2**31 - 1 (the last piece's limit); float32 by default, float64 under x64,
  Python int or int32 steps, jit and vmap.
- The optax drop-ins (piecewise_constant_schedule, piecewise_interpolate_schedule,
  join_schedules) agree with optax 0.2.8 to 1e-6.
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
from tests.schedules.tables import S, Tables, assert_agrees_with_optax


def _cos(fraction: float) -> float:
    """The cosine annealing factor `(1 + cos(pi * fraction)) / 2`, from 1 down to 0."""
    return (1 + math.cos(math.pi * fraction)) / 2


def _joined(step: int) -> float:
    """Linear 0 -> 2 over 10 steps; cosine from 2 over 20 steps from step 10; 0.5 from step 30."""
    if step < 10:
        return 0.2 * step
    if step < 30:
        return 2.0 * _cos(min(step - 10, 20) / 20)
    return 0.5


def _interpolated(step: int, cosine: bool) -> float:
    """2 at step 0, 2 * 0.5 = 1 at step 10, 1 * 4 = 4 at step 30, held after."""
    points = [(0, 2.0), (10, 1.0), (30, 4.0)]
    for (lo, a), (hi, b) in zip(points, points[1:], strict=False):
        if step < hi:
            f = (step - lo) / (hi - lo)
            return b + (a - b) * _cos(f) if cosine else a + (b - a) * f
    return 4.0


TABLES = {
    # values[i] for boundaries[i-1] <= step < boundaries[i]
    "piecewise_constant_at": (
        lambda: jopt.piecewise_constant([3, 7], [1.0, 0.5, 0.2]),
        [(0, 1.0), (1, 1.0), (2, 1.0), (3, 0.5), (4, 0.5), (6, 0.5), (7, 0.2), (8, 0.2)]
        + [(1000, 0.2), (S, 0.2)],
    ),
    # values[i] for boundaries[i-1] < step <= boundaries[i] (Keras)
    "piecewise_constant_after": (
        lambda: jopt.piecewise_constant([3, 7], [1.0, 0.5, 0.2], switch="after"),
        [(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0), (4, 0.5), (6, 0.5), (7, 0.5), (8, 0.2)]
        + [(1000, 0.2), (S, 0.2)],
    ),
    "piecewise_constant_no_boundaries": (
        lambda: jopt.piecewise_constant([], [3.0]),
        [(0, 3.0), (1, 3.0), (S, 3.0)],
    ),
    # 2, times 0.5 from step 10, times 0.1 more from step 20.
    "piecewise_constant_schedule": (
        lambda: jopt.piecewise_constant_schedule(2.0, {20: 0.1, 10: 0.5}),
        [(0, 2.0), (1, 2.0), (9, 2.0), (10, 1.0), (11, 1.0), (19, 1.0), (20, 0.1), (21, 0.1)]
        + [(1000, 0.1), (S, 0.1)],
    ),
    "piecewise_constant_schedule_no_boundaries": (
        lambda: jopt.piecewise_constant_schedule(2.0),
        [(0, 2.0), (S, 2.0)],
    ),
    # Through (10, 1), (20, 3), (40, 0); constant outside.
    "piecewise_linear": (
        lambda: jopt.piecewise_linear([10, 20, 40], [1.0, 3.0, 0.0]),
        [(0, 1.0), (9, 1.0), (10, 1.0), (11, 1.2), (15, 2.0), (19, 2.8), (20, 3.0), (21, 2.85)]
        + [(30, 1.5), (39, 0.15), (40, 0.0), (41, 0.0), (1000, 0.0), (S, 0.0)],
    ),
    "join_schedules": (
        lambda: jopt.join_schedules(
            [
                jopt.linear_schedule(0.0, 2.0, 10),
                jopt.cosine_decay_schedule(2.0, 20),
                jopt.constant_schedule(0.5),
            ],
            [10, 30],
        ),
        [(k, _joined(k)) for k in (0, 1, 9, 10, 11, 20, 29, 30, 31, 1000, S)],
    ),
    # 3 * (1 - step / 10) * 0.5 ** (step / 5)
    "multiply_schedules": (
        lambda: jopt.multiply_schedules(
            jopt.linear_schedule(1.0, 0.0, 10),
            jopt.constant_schedule(3.0),
            jopt.exponential_decay(1.0, 5, 0.5),
        ),
        [(k, 3 * (1 - k / 10) * 0.5 ** (k / 5)) for k in (0, 1, 5, 9, 10)]
        + [(11, 0.0), (1000, 0.0), (S, 0.0)],
    ),
    "piecewise_interpolate_linear": (
        lambda: jopt.piecewise_interpolate_schedule("linear", 2.0, {10: 0.5, 30: 4.0}),
        [(k, _interpolated(k, False)) for k in (0, 1, 5, 9, 10, 11, 20, 29, 30, 31, 1000, S)],
    ),
    "piecewise_interpolate_cosine": (
        lambda: jopt.piecewise_interpolate_schedule("cosine", 2.0, {10: 0.5, 30: 4.0}),
        [(k, _interpolated(k, True)) for k in (0, 1, 5, 9, 10, 11, 20, 29, 30, 31, 1000, S)],
    ),
    # step_decay stepped once per epoch of 10 steps: 0.5 ** floor(floor(step / 10) / 2).
    "per_epoch": (
        lambda: jopt.per_epoch(jopt.step_decay(1.0, 2, 0.5), 10),
        [(0, 1.0), (1, 1.0), (9, 1.0), (10, 1.0), (19, 1.0), (20, 0.5), (21, 0.5), (39, 0.5)]
        + [(40, 0.25), (1000, 0.5**50), (S, 0.0)],
    ),
}


CHECKS = Tables(TABLES)


@pytest.mark.parametrize("name", TABLES)
def test_schedule_matches_its_closed_form_table(name):
    CHECKS.check(name)


def test_switch_after_changes_value_one_step_later_than_switch_at():
    steps = jnp.arange(40, dtype=jnp.int32)
    at = jax.vmap(jopt.piecewise_constant([5, 12, 30], [4.0, 3.0, 2.0, 1.0]))(steps)
    after = jax.vmap(jopt.piecewise_constant([5, 12, 30], [4.0, 3.0, 2.0, 1.0], switch="after"))(
        steps
    )
    chex.assert_trees_all_equal(after[1:], at[:-1])
    np.testing.assert_array_equal(np.flatnonzero(np.diff(np.asarray(at))) + 1, [5, 12, 30])


# -- optax ---------------------------------------------------------------------------------------

SCALES = {0: 0.9, 30: 0.5, 80: 0.1, 81: 2.0, 200: 3.0}

OPTAX_TWINS = {
    "piecewise_constant_schedule": (
        lambda: jopt.piecewise_constant_schedule(2.0, SCALES),
        lambda: optax.piecewise_constant_schedule(2.0, SCALES),
    ),
    "piecewise_interpolate_linear": (
        lambda: jopt.piecewise_interpolate_schedule("linear", 2.0, SCALES),
        lambda: optax.piecewise_interpolate_schedule("linear", 2.0, SCALES),
    ),
    "piecewise_interpolate_cosine": (
        lambda: jopt.piecewise_interpolate_schedule("cosine", 2.0, {30: 0.5, 80: 0.1, 200: 3.0}),
        lambda: optax.piecewise_interpolate_schedule("cosine", 2.0, {30: 0.5, 80: 0.1, 200: 3.0}),
    ),
    "join_schedules": (
        lambda: jopt.join_schedules(
            [
                jopt.linear_schedule(0.0, 1.0, 20),
                jopt.cosine_decay_schedule(1.0, 100, 0.1),
                jopt.exponential_decay(0.1, 50, 0.5),
            ],
            [20, 150],
        ),
        lambda: optax.join_schedules(
            [
                optax.linear_schedule(0.0, 1.0, 20),
                optax.cosine_decay_schedule(1.0, 100, 0.1),
                optax.exponential_decay(0.1, 50, 0.5),
            ],
            [20, 150],
        ),
    ),
}


@pytest.mark.parametrize("name", OPTAX_TWINS)
def test_optax_drop_in_agrees_with_optax(name):
    ours, theirs = OPTAX_TWINS[name]
    assert_agrees_with_optax(ours(), theirs())


def test_join_schedules_accepts_optax_pieces_and_agrees_with_optax():
    pieces = [optax.linear_schedule(0.0, 1.0, 20), optax.cosine_decay_schedule(1.0, 100)]
    counts = jnp.arange(200, dtype=jnp.int32)
    got = jax.jit(jax.vmap(jopt.join_schedules(pieces, [20])))(counts)
    want = jax.jit(jax.vmap(optax.join_schedules(pieces, [20])))(counts)
    chex.assert_trees_all_equal(got, want)


def test_per_epoch_steps_a_torch_schedulers_momentum_per_epoch_too():
    one_cycle = jopt.torch.OneCycleLR(0.1, total_steps=10)
    stepped = jopt.per_epoch(one_cycle, 3)
    assert stepped.base_lr == one_cycle.base_lr
    steps = jnp.arange(30)
    np.testing.assert_array_equal(stepped.momentum(steps), one_cycle.momentum(steps // 3))
    np.testing.assert_array_equal(stepped(steps), one_cycle(steps // 3))
    # An optimizer given it cycles its momentum once an epoch, as torch's per-epoch loop does.
    tx = jopt.torch.SGD(lr=stepped, momentum=0.9)
    params = jnp.ones(2)
    state = tx.init(params)
    used = []
    for _ in range(7):
        _, state = tx.update(jnp.ones(2), state, params)
        used.append(float(jopt.get_hparams(state)["momentum"]))
    np.testing.assert_allclose(used, one_cycle.momentum(jnp.arange(7) // 3), rtol=1e-7)
    plain = jopt.per_epoch(jopt.constant_schedule(0.1), 3)
    assert plain.momentum is None and plain.base_lr is None


@pytest.mark.parametrize(
    "build",
    [
        lambda: jopt.piecewise_constant([5], [0.1, 0.3]),
        lambda: jopt.piecewise_linear([0, 10], [0.1, 0.3]),
    ],
    ids=["piecewise_constant", "piecewise_linear"],
)
def test_tables_built_without_x64_give_float64_values_under_x64(build):
    schedule = build()  # built in float32 mode, as a schedule made at import time would be
    with jax.enable_x64(True):
        value = schedule(0)
    assert value.dtype == jnp.float64 and float(value) == 0.1  # not float32's 0.10000000149
