"""Decay schedules (`jopt.schedules`) against closed-form tables, optax, and monotonicity.

- Each schedule equals a table of values written out here in float64 from its docstring's formula
  (not computed by jopt) at step 0, 1, every boundary and boundary +- 1, far past the end, and at
  the saturated step count 2**31 - 1, where the value is finite and the documented limit (periodic
  schedules, which have none, stay finite and in their range). Values are float32 scalars by
  default and float64 under `jax.enable_x64`; steps may be Python ints or int32 arrays, under
  `jax.jit` and `jax.vmap`. Periods whose multiples k * n XLA's `(k * n) / n` puts just below k
  (41 in float32, 49 in float64) still change stair at step k * n, and a fractional power of
  `1 - t / T` is not NaN at t = T under jit.
- The optax drop-ins agree with optax 0.2.8 to 1e-6 over 400 steps.
- With hypothesis: exponential, step and multi-step decay with a rate < 1 never increase, nor do
  polynomial, linear and (non-periodic) cosine decay from init_value >= end_value, nor inverse-time
  decay.
- `cosine_decay_schedule(periodic=True)` rises again past decay_steps, as torch's
  CosineAnnealingLR; the default stays at its floor, as optax and Keras.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jopt
from tests.schedules.tables import S, Tables, assert_agrees_with_optax, series

EXAMPLES = settings(max_examples=30, deadline=None)


def _cos(fraction: float) -> float:
    """The cosine annealing factor `(1 + cos(pi * fraction)) / 2`, from 1 down to 0."""
    return (1 + math.cos(math.pi * fraction)) / 2


# -- closed-form tables --------------------------------------------------------------------------

TABLES = {
    "constant": (
        lambda: jopt.constant_schedule(2.5),
        [(0, 2.5), (1, 2.5), (1000, 2.5), (S, 2.5)],
    ),
    # 2 * 0.5 ** (step / 10)
    "exponential": (
        lambda: jopt.exponential_decay(2.0, 10, 0.5),
        [(0, 2.0), (1, 2 * 0.5**0.1), (9, 2 * 0.5**0.9), (10, 1.0), (11, 2 * 0.5**1.1)]
        + [(100, 2 * 0.5**10), (S, 0.0)],
    ),
    # Held at 2 until step 5, then halved every 10 steps, floored at 0.3.
    "exponential_staircase_begin_end": (
        lambda: jopt.exponential_decay(
            2.0, 10, 0.5, transition_begin=5, staircase=True, end_value=0.3
        ),
        [(0, 2.0), (1, 2.0), (4, 2.0), (5, 2.0), (6, 2.0), (14, 2.0), (15, 1.0), (16, 1.0)]
        + [(24, 1.0), (25, 0.5), (26, 0.5), (35, 0.3), (1000, 0.3), (S, 0.3)],
    ),
    # Growth, 0.5 * 2 ** (step / 4), capped at 3.
    "exponential_growth_capped": (
        lambda: jopt.exponential_decay(0.5, 4, 2.0, end_value=3.0),
        [(0, 0.5), (1, 0.5 * 2**0.25), (4, 1.0), (8, 2.0), (9, 0.5 * 2**2.25)]
        + [(10, 0.5 * 2**2.5), (11, 3.0), (12, 3.0), (1000, 3.0), (S, 3.0)],
    ),
    # 0.1 ** floor(step / 30)
    "step": (
        lambda: jopt.step_decay(1.0, 30, 0.1),
        [(0, 1.0), (1, 1.0), (29, 1.0), (30, 0.1), (31, 0.1), (59, 0.1), (60, 0.01)]
        + [(61, 0.01), (300, 1e-10), (S, 0.0)],
    ),
    # 0.5 ** (milestones <= step); 5 is listed twice and halves twice.
    "multistep": (
        lambda: jopt.multistep_decay(1.0, [3, 5, 5, 9], 0.5),
        [(0, 1.0), (1, 1.0), (2, 1.0), (3, 0.5), (4, 0.5), (5, 0.125), (6, 0.125)]
        + [(8, 0.125), (9, 0.0625), (10, 0.0625), (1000, 0.0625), (S, 0.0625)],
    ),
    # 1 / (1 + 0.5 * step / 10): no floor, but finite and small at the saturated step.
    "inverse_time": (
        lambda: jopt.inverse_time_decay(1.0, 10, 0.5),
        [(0, 1.0), (1, 1 / 1.05), (9, 1 / 1.45), (10, 1 / 1.5), (11, 1 / 1.55), (100, 1 / 6)]
        + [(S, 1 / (1 + 0.05 * S))],
    ),
    "inverse_time_staircase": (
        lambda: jopt.inverse_time_decay(1.0, 10, 0.5, staircase=True),
        [(0, 1.0), (1, 1.0), (9, 1.0), (10, 1 / 1.5), (11, 1 / 1.5), (19, 1 / 1.5), (20, 0.5)]
        + [(1000, 1 / 51), (S, 1 / (1 + 0.5 * (S // 10)))],
    ),
    # 1.5 * (1 - t / 10) ** 2 + 0.5,  t = clip(step - 3, 0, 10)
    "polynomial": (
        lambda: jopt.polynomial_schedule(2.0, 0.5, 2.0, 10, transition_begin=3),
        [(0, 2.0), (1, 2.0), (2, 2.0), (3, 2.0), (4, 1.5 * 0.9**2 + 0.5), (8, 1.5 * 0.5**2 + 0.5)]
        + [(12, 1.5 * 0.1**2 + 0.5), (13, 0.5), (14, 0.5), (1000, 0.5), (S, 0.5)],
    ),
    # 1 - (step - 2) / 8 between steps 2 and 10.
    "linear_down_to_zero": (
        lambda: jopt.linear_schedule(1.0, 0.0, 8, transition_begin=2),
        [(0, 1.0), (1, 1.0), (2, 1.0), (3, 0.875), (9, 0.125), (10, 0.0), (11, 0.0)]
        + [(1000, 0.0), (S, 0.0)],
    ),
    "linear_up": (
        lambda: jopt.linear_schedule(0.1, 1.0, 9),
        [(0, 0.1), (1, 0.2), (8, 0.9), (9, 1.0), (10, 1.0), (1000, 1.0), (S, 1.0)],
    ),
    # 2 * (0.9 * c + 0.1),  c = (1 + cos(pi * min(step, 10) / 10)) / 2
    "cosine": (
        lambda: jopt.cosine_decay_schedule(2.0, 10, alpha=0.1),
        [(k, 2 * (0.9 * _cos(k / 10) + 0.1)) for k in (0, 1, 5, 9)]
        + [(10, 0.2), (11, 0.2), (1000, 0.2), (S, 0.2)],
    ),
    "cosine_exponent": (
        lambda: jopt.cosine_decay_schedule(1.0, 10, exponent=2.0),
        [(k, _cos(k / 10) ** 2) for k in (0, 1, 3, 9)]
        + [(10, 0.0), (11, 0.0), (1000, 0.0)]
        + [(S, 0.0)],
    ),
    # 0.9 * sqrt(1 - step / 15) + 0.1: a fractional power of 1 - t / T, which jit once made NaN
    # at t = T (XLA's t * (1 / T) exceeds 1 there).
    "polynomial_sqrt": (
        lambda: jopt.polynomial_schedule(1.0, 0.1, 0.5, 15),
        [(k, 0.9 * math.sqrt(1 - k / 15) + 0.1) for k in (0, 1, 7, 14)]
        + [(15, 0.1), (16, 0.1), (1000, 0.1), (S, 0.1)],
    ),
    "cosine_periodic": (
        lambda: jopt.cosine_decay_schedule(2.0, 10, alpha=0.1, periodic=True),
        [(k, 2 * (0.9 * _cos(k / 10) + 0.1)) for k in (0, 1, 9, 10, 11, 15, 19, 20, 21, 105)],
    ),
}


def _polynomial_cycle(step: int) -> float:
    """Keras' PolynomialDecay(2.0, 10, 0.5, power=2, cycle=True): the horizon grows by 10."""
    horizon = 10 * max(math.ceil(step / 10), 1)
    return 1.5 * (1 - step / horizon) ** 2 + 0.5


TABLES["polynomial_cycle"] = (
    lambda: jopt.polynomial_schedule(2.0, 0.5, 2.0, 10, cycle=True),
    [(k, _polynomial_cycle(k)) for k in (0, 1, 5, 9, 10, 11, 19, 20, 21, 1003)],
)

# Periods whose multiples k * n come out of `(k * n) / n` just below k under jit (n = 41 in
# float32, 49 in float64): the stair, or the cycle, must still change at step k * n.
TABLES["step_jit_boundaries_41"] = (
    lambda: jopt.step_decay(1.0, 41, 0.9),
    [(k, 0.9 ** (k // 41)) for k in (0, 1, 40, 41, 42, 81, 82, 83, 163, 164, 165, 1000)]
    + [(S, 0.0)],
)
TABLES["step_jit_boundaries_49"] = (
    lambda: jopt.step_decay(1.0, 49, 0.9),
    [(k, 0.9 ** (k // 49)) for k in (0, 1, 48, 49, 50, 97, 98, 99, 146, 147, 148, 1000)]
    + [(S, 0.0)],
)
TABLES["exponential_staircase_jit_boundaries"] = (
    lambda: jopt.exponential_decay(1.0, 41, 0.5, transition_begin=3, staircase=True),
    [(k, 0.5 ** (max(k - 3, 0) // 41)) for k in (0, 1, 3, 43, 44, 45, 84, 85, 86, 167, 1000)]
    + [(S, 0.0)],
)
TABLES["inverse_time_staircase_jit_boundaries"] = (
    lambda: jopt.inverse_time_decay(1.0, 49, 1.0, staircase=True),
    [(k, 1 / (1 + k // 49)) for k in (0, 1, 48, 49, 50, 97, 98, 99, 147, 1000, S)],
)
TABLES["polynomial_cycle_jit_boundaries"] = (
    lambda: jopt.polynomial_schedule(1.0, 0.0, 0.5, 41, cycle=True),
    [(k, math.sqrt(1 - k / (41 * max(math.ceil(k / 41), 1)))) for k in (0, 1, 40, 41, 42)]
    + [(k, math.sqrt(1 - k / (41 * math.ceil(k / 41)))) for k in (81, 82, 83, 164, 1000)],
)


CHECKS = Tables(TABLES)


@pytest.mark.parametrize("name", TABLES)
def test_schedule_matches_its_closed_form_table(name):
    CHECKS.check(name)


# Periodic schedules have no limit: at the saturated step they stay finite and in their range.
PERIODIC = {
    "cosine_periodic": (
        lambda: jopt.cosine_decay_schedule(2.0, 10, alpha=0.1, periodic=True),
        0.2,
        2.0,
    ),
    "polynomial_cycle": (lambda: jopt.polynomial_schedule(2.0, 0.5, 2.0, 10, cycle=True), 0.5, 2.0),
}


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
@pytest.mark.parametrize("name", PERIODIC)
def test_periodic_schedule_is_finite_and_in_range_at_the_saturated_step(name, x64):
    make, lo, hi = PERIODIC[name]
    with jax.enable_x64(x64):
        got = jax.jit(make())(jnp.int32(S))
        chex.assert_tree_all_finite(got)
        assert lo * (1 - 1e-6) <= float(got) <= hi * (1 + 1e-6), float(got)


def test_periodic_cosine_rises_again_past_decay_steps_and_the_default_stays_at_its_floor():
    periodic = series(jopt.cosine_decay_schedule(2.0, 10, alpha=0.1, periodic=True), 31)
    clipped = series(jopt.cosine_decay_schedule(2.0, 10, alpha=0.1), 31)
    np.testing.assert_array_equal(periodic[:11], clipped[:11])
    np.testing.assert_array_equal(clipped[10:], np.float32(0.2))
    assert np.all(np.diff(periodic[10:21]) > 0)  # back up from the floor to init_value at 20
    chex.assert_trees_all_close(periodic[20], np.float32(2.0), rtol=1e-6)
    assert np.all(np.diff(periodic[20:31]) < 0)  # and down again


def test_step_count_dtypes_give_the_same_value():
    schedule = jopt.exponential_decay(2.0, 10, 0.5)
    want = schedule(7)
    for step in (np.int32(7), np.int64(7), jnp.int32(7), jnp.asarray([7], jnp.int32)[0]):
        chex.assert_trees_all_equal(schedule(step), want)


# -- optax ---------------------------------------------------------------------------------------

OPTAX_TWINS = {
    "exponential": (jopt.exponential_decay, optax.exponential_decay, (2.0, 7, 0.6)),
    "exponential_begin": (jopt.exponential_decay, optax.exponential_decay, (2.0, 7, 0.6, 13)),
    "exponential_staircase": (
        jopt.exponential_decay,
        optax.exponential_decay,
        (2.0, 7, 0.6, 13, True),
    ),
    "exponential_end_value": (
        jopt.exponential_decay,
        optax.exponential_decay,
        (2.0, 7, 0.6, 13, False, 0.3),
    ),
    "exponential_growth_end_value": (
        jopt.exponential_decay,
        optax.exponential_decay,
        (0.5, 7, 1.3, 5, True, 3.0),
    ),
    "polynomial": (jopt.polynomial_schedule, optax.polynomial_schedule, (2.0, 0.1, 1.7, 100, 20)),
    "linear": (jopt.linear_schedule, optax.linear_schedule, (2.0, 0.1, 100, 20)),
    "linear_up": (jopt.linear_schedule, optax.linear_schedule, (0.1, 2.0, 100)),
    "cosine": (jopt.cosine_decay_schedule, optax.cosine_decay_schedule, (2.0, 100)),
    "cosine_alpha_exponent": (
        jopt.cosine_decay_schedule,
        optax.cosine_decay_schedule,
        (2.0, 100, 0.1, 2.0),
    ),
}


@pytest.mark.parametrize("name", OPTAX_TWINS)
def test_optax_drop_in_agrees_with_optax(name):
    ours, theirs, args = OPTAX_TWINS[name]
    assert_agrees_with_optax(ours(*args), theirs(*args))


# -- monotonicity --------------------------------------------------------------------------------

_init = st.floats(0.01, 10.0)
_rate = st.floats(0.01, 0.999)
_steps = st.integers(1, 40)


@EXAMPLES
@given(
    init=_init,
    transition_steps=_steps,
    rate=_rate,
    begin=st.integers(0, 20),
    staircase=st.booleans(),
    end_fraction=st.none() | st.floats(0.0, 1.0),
)
def test_exponential_decay_with_rate_below_one_never_increases(
    init, transition_steps, rate, begin, staircase, end_fraction
):
    end = None if end_fraction is None else init * end_fraction
    schedule = jopt.exponential_decay(init, transition_steps, rate, begin, staircase, end)
    assert np.all(np.diff(series(schedule, 300)) <= 0)


@EXAMPLES
@given(init=_init, step_size=_steps, gamma=_rate)
def test_step_decay_with_gamma_below_one_never_increases(init, step_size, gamma):
    assert np.all(np.diff(series(jopt.step_decay(init, step_size, gamma), 300)) <= 0)


@EXAMPLES
@given(init=_init, milestones=st.lists(st.integers(0, 250), max_size=6).map(sorted), gamma=_rate)
def test_multistep_decay_with_gamma_below_one_never_increases(init, milestones, gamma):
    values = series(jopt.multistep_decay(init, milestones, gamma), 300)
    assert np.all(np.diff(values) <= 0)
    # It drops exactly at each distinct milestone.
    drops = np.flatnonzero(np.diff(values) < 0) + 1
    np.testing.assert_array_equal(drops, sorted({m for m in milestones if 0 < m < 300}))


@EXAMPLES
@given(
    init=_init,
    end_fraction=st.floats(0.0, 1.0),
    power=st.floats(0.1, 5.0),
    transition_steps=st.integers(1, 200),
    begin=st.integers(0, 50),
)
def test_polynomial_and_linear_decay_from_init_above_end_never_increase(
    init, end_fraction, power, transition_steps, begin
):
    end = init * end_fraction
    polynomial = jopt.polynomial_schedule(init, end, power, transition_steps, begin)
    linear = jopt.linear_schedule(init, end, transition_steps, begin)
    for schedule in (polynomial, linear):
        values = series(schedule, 300)
        assert np.all(np.diff(values) <= 0)
        chex.assert_trees_all_close(values[0], np.float32(init), rtol=1e-6)


@EXAMPLES
@given(
    init=_init,
    decay_steps=st.integers(1, 250),
    alpha=st.floats(0.0, 1.0),
    exponent=st.floats(0.1, 5.0),
)
def test_cosine_decay_with_alpha_at_most_one_never_increases(init, decay_steps, alpha, exponent):
    values = series(jopt.cosine_decay_schedule(init, decay_steps, alpha, exponent), 300)
    assert np.all(np.diff(values) <= 0)


@EXAMPLES
@given(
    init=_init,
    decay_steps=_steps,
    rate=st.floats(0.0, 10.0),
    staircase=st.booleans(),
)
def test_inverse_time_decay_never_increases(init, decay_steps, rate, staircase):
    values = series(jopt.inverse_time_decay(init, decay_steps, rate, staircase), 300)
    assert np.all(np.diff(values) <= 0)
