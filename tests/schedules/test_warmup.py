"""Warmup schedules (`jopt.schedules`) against closed-form tables, optax, and monotonicity.

- `with_warmup` (linear and half-cosine ramps) and the warmup + decay schedules equal tables of
  values written out here in float64 from their docstrings' formulas at step 0, 1, the end of the
  warmup +- 1, the end of the decay +- 1, far past it, and at the saturated step 2**31 - 1 (the
  final value); float32 by default, float64 under x64, Python int or int32 steps, jit and vmap.
- The optax drop-ins (warmup_cosine_decay, warmup_exponential_decay, warmup_constant) agree with
  optax 0.2.8 to 1e-6.
- The two step-counting conventions, `decay_steps_include_warmup`, on all three warmup
  functions, each setting against its own closed-form table (step 0, the end of the warmup, the
  end of the decay, far past it, 2**31 - 1): with False the following schedule's clock starts at
  0 at the end of the warmup; with True `with_warmup` and `warmup_exponential_decay_schedule` run
  it from step 0 (the ramp ends at its value at step warmup_steps, stairs count from step 0) and
  `warmup_cosine_decay_schedule` ends the cosine at step decay_steps (optax) instead of
  warmup_steps + decay_steps (Keras). The defaults are optax's: True for the cosine, False for
  the exponential and `with_warmup`.
- With hypothesis: the value never decreases during the warmup from init_value up to the target,
  and joins the schedule without a jump, under both conventions.
"""

from __future__ import annotations

import math

import chex
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


def _warm_cosine(step, warmup, cosine_steps, init=0.1, peak=2.0, end=0.2):
    """Linear from init to peak over `warmup` steps, then cosine to end over `cosine_steps`."""
    if step < warmup:
        return init + (peak - init) * step / warmup
    return end + (peak - end) * _cos(min(step - warmup, cosine_steps) / cosine_steps)


def _warm_exponential(step):
    """Linear 0 -> 1 over 4 steps, then 0.5 ** ((t - 2) / 10) from t = 2, floored at 0.1."""
    if step < 4:
        return step / 4
    return max(0.5 ** (max(step - 4 - 2, 0) / 10), 0.1)


def _ramp(step, warmup, init, target):
    """The linear warmup: init + (target - init) * step / warmup."""
    return init + (target - init) * step / warmup


def _warm_stairs(step, include):
    """Linear 0.2 -> target over 4 steps, then max(0.5 ** floor(s / 10), 0.2) on the clock s."""
    clock = step if include else step - 4
    if step < 4:
        return _ramp(step, 4, 0.2, 1.0)  # the first stair is before step 10 either way
    return max(0.5 ** (clock // 10), 0.2)


def _warm_exponential_from_zero(step):
    """0.5 ** ((step - 2) / 10) floored at 0.1 on the global step; the ramp ends at its step 4."""
    decay = max(0.5 ** (max(step - 2, 0) / 10), 0.1)
    return _ramp(step, 4, 0.0, 0.5**0.2) if step < 4 else decay


TABLES = {
    # 0.5 -> 2 linearly over 4 steps, then cosine_decay_schedule(2.0, 10) from its step 0.
    "with_warmup_linear": (
        lambda: jopt.with_warmup(jopt.cosine_decay_schedule(2.0, 10), 4, 0.5),
        [(0, 0.5), (1, 0.875), (2, 1.25), (3, 1.625), (4, 2.0), (5, 2 * _cos(0.1))]
        + [(13, 2 * _cos(0.9)), (14, 0.0), (15, 0.0), (1000, 0.0), (S, 0.0)],
    ),
    # A half cosine from 0.5 up to 2: 0.5 + 1.5 * (1 - cos(pi * step / 4)) / 2.
    "with_warmup_cosine": (
        lambda: jopt.with_warmup(jopt.constant_schedule(2.0), 4, 0.5, shape="cosine"),
        [(0, 0.5), (1, 0.5 + 1.5 * (1 - math.cos(math.pi / 4)) / 2), (2, 1.25)]
        + [(3, 0.5 + 1.5 * (1 - math.cos(3 * math.pi / 4)) / 2), (4, 2.0), (5, 2.0), (1000, 2.0)]
        + [(S, 2.0)],
    ),
    # The clock runs from step 0: the ramp goes from 0.5 to the cosine's value at step 4,
    # then 2 * c(step / 10), at 0 from step 10.
    "with_warmup_linear_clock_from_zero": (
        lambda: jopt.with_warmup(
            jopt.cosine_decay_schedule(2.0, 10), 4, 0.5, decay_steps_include_warmup=True
        ),
        [(k, _ramp(k, 4, 0.5, 2 * _cos(0.4))) for k in (0, 1, 3)]
        + [(k, 2 * _cos(k / 10)) for k in (4, 5, 9)]
        + [(10, 0.0), (11, 0.0), (1000, 0.0), (S, 0.0)],
    ),
    # A half cosine from 0 up to the linear decay's value at step 4 (0.5), then 1 - step / 8.
    "with_warmup_cosine_clock_from_zero": (
        lambda: jopt.with_warmup(
            jopt.linear_schedule(1.0, 0.0, 8),
            4,
            0.0,
            shape="cosine",
            decay_steps_include_warmup=True,
        ),
        [(k, 0.5 * (1 - math.cos(math.pi * k / 4)) / 2) for k in (0, 1, 2, 3)]
        + [(4, 0.5), (5, 0.375), (7, 0.125), (8, 0.0), (9, 0.0), (1000, 0.0), (S, 0.0)],
    ),
    "with_warmup_zero_steps": (
        lambda: jopt.with_warmup(jopt.linear_schedule(1.0, 0.0, 4), 0, 0.5),
        [(0, 1.0), (1, 0.75), (4, 0.0), (S, 0.0)],
    ),
    # optax's convention: decay_steps=15 counts the 5 warmup steps; the cosine lasts 10.
    "warmup_cosine_includes_warmup": (
        lambda: jopt.warmup_cosine_decay_schedule(0.1, 2.0, 5, 15, 0.2),
        [(k, _warm_cosine(k, 5, 10)) for k in (0, 1, 4, 5, 6, 10, 14, 15, 16, 1000, S)],
    ),
    # Keras' convention: the cosine lasts decay_steps=15 after the 5 warmup steps.
    "warmup_cosine_excludes_warmup": (
        lambda: jopt.warmup_cosine_decay_schedule(
            0.1, 2.0, 5, 15, 0.2, decay_steps_include_warmup=False
        ),
        [(k, _warm_cosine(k, 5, 15)) for k in (0, 1, 4, 5, 6, 14, 15, 19, 20, 21, 1000, S)],
    ),
    "warmup_cosine_exponent_cosine_ramp": (
        lambda: jopt.warmup_cosine_decay_schedule(
            0.0, 1.0, 4, 14, 0.0, exponent=2.0, warmup_shape="cosine"
        ),
        [(0, 0.0), (1, (1 - math.cos(math.pi / 4)) / 2), (3, (1 - math.cos(3 * math.pi / 4)) / 2)]
        + [(4, 1.0), (5, _cos(0.1) ** 2), (13, _cos(0.9) ** 2), (14, 0.0), (15, 0.0), (1000, 0.0)]
        + [(S, 0.0)],
    ),
    "warmup_exponential": (
        lambda: jopt.warmup_exponential_decay_schedule(
            0.0, 1.0, 4, 10, 0.5, transition_begin=2, end_value=0.1
        ),
        [(k, _warm_exponential(k)) for k in (0, 1, 3, 4, 5, 6, 7, 8, 16, 26, 39, 40, 41, 1000)]
        + [(S, 0.1)],
    ),
    "warmup_exponential_clock_from_zero": (
        lambda: jopt.warmup_exponential_decay_schedule(
            0.0, 1.0, 4, 10, 0.5, transition_begin=2, end_value=0.1, decay_steps_include_warmup=True
        ),
        [(k, _warm_exponential_from_zero(k)) for k in (0, 1, 3, 4, 5, 12, 35, 36, 1000)]
        + [(S, 0.1)],
    ),
    # Stairs at steps 10, 20, 30 (clock from 0) or 14, 24, 34 (clock from the warmup's end).
    "warmup_exponential_stairs_clock_from_zero": (
        lambda: jopt.warmup_exponential_decay_schedule(
            0.2, 1.0, 4, 10, 0.5, staircase=True, end_value=0.2, decay_steps_include_warmup=True
        ),
        [(k, _warm_stairs(k, True)) for k in (0, 1, 3, 4, 5, 9, 10, 11, 19, 20, 29, 30, 31)]
        + [(1000, 0.2), (S, 0.2)],
    ),
    "warmup_exponential_stairs_clock_after_warmup": (
        lambda: jopt.warmup_exponential_decay_schedule(
            0.2, 1.0, 4, 10, 0.5, staircase=True, end_value=0.2, decay_steps_include_warmup=False
        ),
        [(k, _warm_stairs(k, False)) for k in (0, 1, 3, 4, 5, 13, 14, 15, 23, 24, 33, 34, 35)]
        + [(1000, 0.2), (S, 0.2)],
    ),
    "warmup_constant": (
        lambda: jopt.warmup_constant_schedule(0.2, 1.0, 4),
        [(0, 0.2), (1, 0.4), (3, 0.8), (4, 1.0), (5, 1.0), (1000, 1.0), (S, 1.0)],
    ),
}


CHECKS = Tables(TABLES)


@pytest.mark.parametrize("name", TABLES)
def test_schedule_matches_its_closed_form_table(name):
    CHECKS.check(name)


@pytest.mark.parametrize(
    "include, end_step", [(True, 50), (False, 60)], ids=["include_warmup", "exclude_warmup"]
)
def test_end_value_is_reached_at_decay_steps_or_after_warmup_plus_decay_steps(include, end_step):
    schedule = jopt.warmup_cosine_decay_schedule(
        0.0, 1.0, 10, 50, 0.1, decay_steps_include_warmup=include
    )
    values = series(schedule, 100)
    assert values[9] < 1.0 and values[10] == np.float32(1.0)  # the peak, after 10 warmup steps
    assert np.all(values[10:end_step] > np.float32(0.1) * (1 + 1e-6))  # not there before
    chex.assert_trees_all_close(values[end_step:], np.full(100 - end_step, np.float32(0.1)))


# The defaults keep optax's numbers: the cosine includes the warmup, the others exclude it.
DEFAULTS = {
    "with_warmup": (
        lambda **kw: jopt.with_warmup(jopt.exponential_decay(1.0, 3, 0.5, 2), 5, 0.1, **kw),
        False,
    ),
    "warmup_exponential": (
        lambda **kw: jopt.warmup_exponential_decay_schedule(0.1, 1.0, 5, 3, 0.5, 2, **kw),
        False,
    ),
    "warmup_cosine": (
        lambda **kw: jopt.warmup_cosine_decay_schedule(0.1, 1.0, 5, 20, 0.1, **kw),
        True,
    ),
}


@pytest.mark.parametrize("name", DEFAULTS)
def test_default_step_counting_is_the_documented_one_and_the_other_differs(name):
    make, default = DEFAULTS[name]
    want = series(make(decay_steps_include_warmup=default), 40)
    np.testing.assert_array_equal(series(make(), 40), want)
    assert not np.allclose(series(make(decay_steps_include_warmup=not default), 40), want)


def test_transition_begin_at_the_warmup_end_on_the_global_clock_is_the_default_convention():
    # Clock from step 0 with the decay starting at step W = clock from the warmup's end, begin 0.
    def make(begin, include):
        return jopt.warmup_exponential_decay_schedule(
            0.1, 1.0, 6, 4, 0.7, begin, staircase=True, decay_steps_include_warmup=include
        )

    np.testing.assert_array_equal(series(make(6, True), 100), series(make(0, False), 100))


# -- optax ---------------------------------------------------------------------------------------

OPTAX_TWINS = {
    "warmup_cosine": (
        jopt.warmup_cosine_decay_schedule,
        optax.warmup_cosine_decay_schedule,
        (0.1, 2.0, 20, 150),
    ),
    "warmup_cosine_end_value_exponent": (
        jopt.warmup_cosine_decay_schedule,
        optax.warmup_cosine_decay_schedule,
        (0.1, 2.0, 20, 150, 0.05, 1.5),
    ),
    "warmup_exponential": (
        jopt.warmup_exponential_decay_schedule,
        optax.warmup_exponential_decay_schedule,
        (0.1, 2.0, 20, 15, 0.5),
    ),
    "warmup_exponential_staircase_begin_end": (
        jopt.warmup_exponential_decay_schedule,
        optax.warmup_exponential_decay_schedule,
        (0.1, 2.0, 20, 15, 0.5, 10, True, 0.05),
    ),
    "warmup_exponential_growth": (
        jopt.warmup_exponential_decay_schedule,
        optax.warmup_exponential_decay_schedule,
        (0.1, 1.0, 20, 15, 1.2, 0, False, 3.0),
    ),
    "warmup_constant": (
        jopt.warmup_constant_schedule,
        optax.warmup_constant_schedule,
        (0.1, 2.0, 20),
    ),
}


@pytest.mark.parametrize("name", OPTAX_TWINS)
def test_optax_drop_in_agrees_with_optax(name):
    ours, theirs, args = OPTAX_TWINS[name]
    assert_agrees_with_optax(ours(*args), theirs(*args))


# -- monotonicity --------------------------------------------------------------------------------


@EXAMPLES
@given(
    peak=st.floats(0.01, 10.0),
    # No float32 subnormals: XLA on the CPU flushes them to 0, so init_value would not hold.
    init_fraction=st.just(0.0) | st.floats(1e-6, 1.0),
    warmup_steps=st.integers(1, 200),
    shape=st.sampled_from(["linear", "cosine"]),
    include=st.booleans(),
)
def test_warmup_never_decreases_from_init_value_to_the_target(
    peak, init_fraction, warmup_steps, shape, include
):
    # A schedule that stays above init until step 300: its value at step 0 or at warmup_steps.
    init = peak * init_fraction
    decay = jopt.linear_schedule(peak, init, 300)
    schedule = jopt.with_warmup(
        decay, warmup_steps, init, shape=shape, decay_steps_include_warmup=include
    )
    target = series(decay, 201)[warmup_steps if include else 0]
    # The warmup and the first step after it (one length for every example: no recompilation).
    values = series(schedule, 201)[: warmup_steps + 1]
    assert np.all(np.diff(values) >= 0)
    assert values[0] == np.float32(init) and values[-1] == target
