"""Impossible schedule arguments raise at construction, naming the function, argument and value.

One table row per mistake: zero, negative or fractional step counts, boundaries or milestones out
of order, value and boundary counts that do not match, decay rates <= 0, NaN values, t_mul < 1,
pct_start outside (0, 1), unknown mode / anneal_strategy / switch / shape / interpolate_type, a
schedule that is not callable, an exponential end_value on the wrong side of init_value, a warmup
as long as the decay it is counted in. Each row's regex holds the function's public name, the
argument and the offending value (and, where the check has one, the allowed range).

Ranges narrower than optax 0.2.8, torch 2.13 and Keras 3.15 (which accept these): an exponential
decay_rate > 1 without an end_value to cap the growth (and a growth from a negative value), a
step / multi-step gamma outside (0, 1], a cosine alpha (and warmup cosine end_value / peak_value)
outside [0, 1], a restarts m_mul or alpha outside [0, 1], an exponential end_value outside
[0, init_value] for a decay. The values at the ends of these ranges are accepted and finite.

optax 0.2.8 accepts some of these silently: `optax.exponential_decay(1.0, 0, 0.5)` is a constant
schedule (it logs and returns `constant_schedule(init_value)`); jopt raises.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

_ok = jopt.constant_schedule(1.0)  # a valid schedule, where an argument needs one


def _row(id, call, error, *parts):
    """A table row: `call()` raises `error` with a message containing `parts` in order."""
    return pytest.param(call, error, ".*".join(re.escape(p) for p in parts), id=id)


ROWS = [
    # -- step counts: zero, negative, fractional ------------------------------------------------
    _row(
        "exponential_zero_transition_steps",
        lambda: jopt.exponential_decay(1.0, 0, 0.5),
        ValueError,
        "jopt.exponential_decay:",
        "transition_steps must be an integer >= 1, got 0",
    ),
    _row(
        "exponential_negative_transition_steps",
        lambda: jopt.exponential_decay(1.0, -5, 0.5),
        ValueError,
        "jopt.exponential_decay:",
        "transition_steps",
        "got -5",
    ),
    _row(
        "exponential_fractional_transition_steps",
        lambda: jopt.exponential_decay(1.0, 2.5, 0.5),
        TypeError,
        "jopt.exponential_decay:",
        "transition_steps must be an integer",
        "got 2.5",
    ),
    _row(
        "exponential_negative_transition_begin",
        lambda: jopt.exponential_decay(1.0, 10, 0.5, transition_begin=-1),
        ValueError,
        "jopt.exponential_decay:",
        "transition_begin must be an integer >= 0, got -1",
    ),
    _row(
        "step_decay_zero_step_size",
        lambda: jopt.step_decay(1.0, 0),
        ValueError,
        "jopt.step_decay:",
        "step_size must be an integer >= 1, got 0",
    ),
    _row(
        "inverse_time_fractional_decay_steps",
        lambda: jopt.inverse_time_decay(1.0, 2.5, 0.5),
        TypeError,
        "jopt.inverse_time_decay:",
        "decay_steps",
        "got 2.5",
    ),
    _row(
        "polynomial_zero_transition_steps",
        lambda: jopt.polynomial_schedule(1.0, 0.0, 1.0, 0),
        ValueError,
        "jopt.polynomial_schedule:",
        "transition_steps must be an integer >= 1, got 0",
    ),
    _row(
        "cosine_negative_decay_steps",
        lambda: jopt.cosine_decay_schedule(1.0, -10),
        ValueError,
        "jopt.cosine_decay_schedule:",
        "decay_steps must be an integer >= 1, got -10",
    ),
    _row(
        "restarts_zero_first_decay_steps",
        lambda: jopt.cosine_decay_restarts(1.0, 0),
        ValueError,
        "jopt.cosine_decay_restarts:",
        "first_decay_steps must be an integer >= 1, got 0",
    ),
    _row(
        "one_cycle_total_steps_one",
        lambda: jopt.one_cycle_schedule(1, 1.0),
        ValueError,
        "jopt.one_cycle_schedule:",
        "total_steps must be an integer >= 2, got 1",
    ),
    _row(
        "cyclic_zero_step_size_up",
        lambda: jopt.cyclic_schedule(0.1, 1.0, step_size_up=0),
        ValueError,
        "jopt.cyclic_schedule:",
        "step_size_up must be an integer >= 1, got 0",
    ),
    _row(
        "with_warmup_negative_warmup_steps",
        lambda: jopt.with_warmup(_ok, -3),
        ValueError,
        "jopt.with_warmup:",
        "warmup_steps must be an integer >= 0, got -3",
    ),
    _row(
        "per_epoch_zero_steps_per_epoch",
        lambda: jopt.per_epoch(_ok, 0),
        ValueError,
        "jopt.per_epoch:",
        "steps_per_epoch must be an integer >= 1, got 0",
    ),
    # -- boundaries and milestones --------------------------------------------------------------
    _row(
        "multistep_decreasing_milestones",
        lambda: jopt.multistep_decay(1.0, [30, 10]),
        ValueError,
        "jopt.multistep_decay:",
        "milestones must be non-decreasing, got [30, 10]",
    ),
    _row(
        "multistep_negative_milestone",
        lambda: jopt.multistep_decay(1.0, [10, -1]),
        ValueError,
        "jopt.multistep_decay:",
        "milestones[1] must be an integer >= 0, got -1",
    ),
    _row(
        "piecewise_constant_repeated_boundary",
        lambda: jopt.piecewise_constant([5, 5], [1.0, 0.5, 0.1]),
        ValueError,
        "jopt.piecewise_constant:",
        "boundaries must be strictly increasing, got [5, 5]",
    ),
    _row(
        "piecewise_constant_fractional_boundary",
        lambda: jopt.piecewise_constant([2.5], [1.0, 0.5]),
        TypeError,
        "jopt.piecewise_constant:",
        "boundaries[0] must be an integer",
        "got 2.5",
    ),
    _row(
        "piecewise_constant_too_few_values",
        lambda: jopt.piecewise_constant([3, 7], [1.0, 0.5]),
        ValueError,
        "jopt.piecewise_constant:",
        "needs 3 values for 2 boundaries, got 2",
    ),
    _row(
        "piecewise_linear_too_many_values",
        lambda: jopt.piecewise_linear([3, 7], [1.0, 0.5, 0.1]),
        ValueError,
        "jopt.piecewise_linear:",
        "needs 2 values for 1 boundaries, got 3",
    ),
    _row(
        "join_decreasing_boundaries",
        lambda: jopt.join_schedules([_ok, _ok, _ok], [20, 10]),
        ValueError,
        "jopt.join_schedules:",
        "boundaries must be strictly increasing, got [20, 10]",
    ),
    _row(
        "join_schedule_count_mismatch",
        lambda: jopt.join_schedules([_ok, _ok], [10, 20]),
        ValueError,
        "jopt.join_schedules:",
        "one schedule more than boundaries, got 2 schedules and 2 boundaries",
    ),
    # -- rates and values -----------------------------------------------------------------------
    _row(
        "exponential_zero_decay_rate",
        lambda: jopt.exponential_decay(1.0, 10, 0.0),
        ValueError,
        "jopt.exponential_decay:",
        "decay_rate must be > 0, got 0.0",
    ),
    _row(
        "exponential_negative_decay_rate",
        lambda: jopt.exponential_decay(1.0, 10, -0.5),
        ValueError,
        "jopt.exponential_decay:",
        "decay_rate must be > 0, got -0.5",
    ),
    _row(
        "exponential_nan_decay_rate",
        lambda: jopt.exponential_decay(1.0, 10, math.nan),
        ValueError,
        "jopt.exponential_decay:",
        "decay_rate must be > 0, got nan",
    ),
    _row(
        "step_decay_zero_gamma",
        lambda: jopt.step_decay(1.0, 10, 0.0),
        ValueError,
        "jopt.step_decay:",
        "gamma must be in (0, 1], got 0.0",
    ),
    _row(
        "inverse_time_negative_decay_rate",
        lambda: jopt.inverse_time_decay(1.0, 10, -1.0),
        ValueError,
        "jopt.inverse_time_decay:",
        "decay_rate must be >= 0, got -1.0",
    ),
    _row(
        "exponential_nan_init_value",
        lambda: jopt.exponential_decay(math.nan, 10, 0.5),
        ValueError,
        "jopt.exponential_decay:",
        "init_value",
        "got nan",
    ),
    _row(
        "cosine_infinite_init_value",
        lambda: jopt.cosine_decay_schedule(math.inf, 10),
        ValueError,
        "jopt.cosine_decay_schedule:",
        "init_value",
        "got inf",
    ),
    _row(
        "piecewise_constant_nan_value",
        lambda: jopt.piecewise_constant([3], [1.0, math.nan]),
        ValueError,
        "jopt.piecewise_constant:",
        "values[1]",
        "got nan",
    ),
    _row(
        "piecewise_constant_schedule_negative_scale",
        lambda: jopt.piecewise_constant_schedule(1.0, {10: -0.5}),
        ValueError,
        "jopt.piecewise_constant_schedule:",
        "scale[0] must be >= 0, got -0.5",
    ),
    _row(
        "polynomial_zero_power",
        lambda: jopt.polynomial_schedule(1.0, 0.0, 0.0, 10),
        ValueError,
        "jopt.polynomial_schedule:",
        "power must be > 0, got 0.0",
    ),
    _row(
        "exponential_end_value_above_a_decay",
        lambda: jopt.exponential_decay(1.0, 10, 0.5, end_value=2.0),
        ValueError,
        "jopt.exponential_decay:",
        "end_value=2.0 is never reached from init_value=1.0 with decay_rate=0.5",
    ),
    _row(
        "exponential_end_value_below_a_growth",
        lambda: jopt.exponential_decay(1.0, 10, 2.0, end_value=0.5),
        ValueError,
        "jopt.exponential_decay:",
        "end_value=0.5 is never reached from init_value=1.0 with decay_rate=2.0",
    ),
    _row(
        "restarts_t_mul_below_one",
        lambda: jopt.cosine_decay_restarts(1.0, 10, t_mul=0.5),
        ValueError,
        "jopt.cosine_decay_restarts:",
        "t_mul must be >= 1, got 0.5",
    ),
    _row(
        "restarts_negative_m_mul",
        lambda: jopt.cosine_decay_restarts(1.0, 10, m_mul=-0.5),
        ValueError,
        "jopt.cosine_decay_restarts:",
        "m_mul must be in [0, 1], got -0.5",
    ),
    _row(
        "one_cycle_momentum_base_above_max",
        lambda: jopt.one_cycle_momentum(100, base_momentum=0.95, max_momentum=0.85),
        ValueError,
        "jopt.one_cycle_momentum:",
        "base_momentum=0.95 must not exceed max_momentum=0.85",
    ),
    _row(
        "cyclic_momentum_max_one",
        lambda: jopt.cyclic_momentum(0.8, 1.0),
        ValueError,
        "jopt.cyclic_momentum:",
        "max_momentum must be in [0, 1), got 1.0",
    ),
    _row(
        "one_cycle_zero_div_factor",
        lambda: jopt.one_cycle_schedule(100, 1.0, div_factor=0.0),
        ValueError,
        "jopt.one_cycle_schedule:",
        "div_factor must be >= 1, got 0.0",
    ),
    # -- sane ranges: growth without a ceiling, factors above 1, floors outside [0, 1] ----------
    _row(
        "exponential_growth_without_end_value",
        lambda: jopt.exponential_decay(0.1, 10, 1e9),
        ValueError,
        "jopt.exponential_decay:",
        "decay_rate must be in (0, 1] without end_value, got 1000000000.0",
        "give end_value as a ceiling",
    ),
    _row(
        "exponential_infinite_decay_rate",
        lambda: jopt.exponential_decay(1.0, 10, math.inf),
        ValueError,
        "jopt.exponential_decay:",
        "decay_rate must be a finite number > 0, got inf",
    ),
    _row(
        "exponential_growth_from_a_negative_value",
        lambda: jopt.exponential_decay(-0.1, 10, 2.0, end_value=1.0),
        ValueError,
        "jopt.exponential_decay:",
        "init_value must be >= 0 with decay_rate=2.0 > 1, got -0.1",
    ),
    _row(
        "exponential_end_value_below_zero_for_a_decay",
        lambda: jopt.exponential_decay(1.0, 10, 0.5, end_value=-0.1),
        ValueError,
        "jopt.exponential_decay:",
        "end_value=-0.1 is never reached from init_value=1.0 with decay_rate=0.5",
        "a floor in [0, init_value]",
    ),
    _row(
        "exponential_nan_end_value",
        lambda: jopt.exponential_decay(1.0, 10, 0.5, end_value=math.nan),
        ValueError,
        "jopt.exponential_decay:",
        "end_value must be a finite number, got nan",
    ),
    _row(
        "step_decay_gamma_above_one",
        lambda: jopt.step_decay(1.0, 10, gamma=5),
        ValueError,
        "jopt.step_decay:",
        "gamma must be in (0, 1], got 5",
    ),
    _row(
        "step_decay_nan_init_value",
        lambda: jopt.step_decay(math.nan, 10),
        ValueError,
        "jopt.step_decay:",
        "init_value must be a finite number, got nan",
    ),
    _row(
        "multistep_gamma_above_one",
        lambda: jopt.multistep_decay(1.0, [3, 6], gamma=1.5),
        ValueError,
        "jopt.multistep_decay:",
        "gamma must be in (0, 1], got 1.5",
    ),
    _row(
        "multistep_nan_gamma",
        lambda: jopt.multistep_decay(1.0, [3, 6], gamma=math.nan),
        ValueError,
        "jopt.multistep_decay:",
        "gamma must be in (0, 1], got nan",
    ),
    _row(
        "cosine_alpha_above_one",
        lambda: jopt.cosine_decay_schedule(1.0, 10, alpha=2),
        ValueError,
        "jopt.cosine_decay_schedule:",
        "alpha must be in [0, 1], got 2",
    ),
    _row(
        "cosine_negative_alpha",
        lambda: jopt.cosine_decay_schedule(1.0, 10, alpha=-0.1),
        ValueError,
        "jopt.cosine_decay_schedule:",
        "alpha must be in [0, 1], got -0.1",
    ),
    _row(
        "cosine_zero_exponent",
        lambda: jopt.cosine_decay_schedule(1.0, 10, exponent=0.0),
        ValueError,
        "jopt.cosine_decay_schedule:",
        "exponent must be > 0, got 0.0",
    ),
    _row(
        "restarts_negative_alpha",
        lambda: jopt.cosine_decay_restarts(1.0, 10, alpha=-1),
        ValueError,
        "jopt.cosine_decay_restarts:",
        "alpha must be in [0, 1], got -1",
    ),
    _row(
        "restarts_alpha_above_one",
        lambda: jopt.cosine_decay_restarts(1.0, 10, alpha=1.5),
        ValueError,
        "jopt.cosine_decay_restarts:",
        "alpha must be in [0, 1], got 1.5",
    ),
    _row(
        "restarts_m_mul_above_one",
        lambda: jopt.cosine_decay_restarts(1.0, 10, m_mul=1.5),
        ValueError,
        "jopt.cosine_decay_restarts:",
        "m_mul must be in [0, 1], got 1.5",
    ),
    _row(
        "restarts_infinite_t_mul",
        lambda: jopt.cosine_decay_restarts(1.0, 10, t_mul=math.inf),
        ValueError,
        "jopt.cosine_decay_restarts:",
        "t_mul must be a finite number >= 1, got inf",
    ),
    _row(
        "restarts_nan_init_value",
        lambda: jopt.cosine_decay_restarts(math.nan, 10),
        ValueError,
        "jopt.cosine_decay_restarts:",
        "init_value must be a finite number, got nan",
    ),
    _row(
        "polynomial_nan_power",
        lambda: jopt.polynomial_schedule(1.0, 0.0, math.nan, 10),
        ValueError,
        "jopt.polynomial_schedule:",
        "power must be > 0, got nan",
    ),
    _row(
        "polynomial_negative_transition_begin",
        lambda: jopt.polynomial_schedule(1.0, 0.0, 1.0, 10, transition_begin=-2),
        ValueError,
        "jopt.polynomial_schedule:",
        "transition_begin must be an integer >= 0, got -2",
    ),
    _row(
        "linear_nan_init_value",
        lambda: jopt.linear_schedule(math.nan, 0.0, 10),
        ValueError,
        "jopt.linear_schedule:",
        "init_value must be a finite number, got nan",
    ),
    _row(
        "inverse_time_infinite_decay_rate",
        lambda: jopt.inverse_time_decay(1.0, 10, math.inf),
        ValueError,
        "jopt.inverse_time_decay:",
        "decay_rate must be a finite number >= 0, got inf",
    ),
    _row(
        "warmup_cosine_end_value_above_peak",
        lambda: jopt.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, end_value=2.0),
        ValueError,
        "jopt.warmup_cosine_decay_schedule:",
        "end_value must be in [0, 1] (between 0 and peak_value=1.0), got 2.0",
    ),
    _row(
        "warmup_cosine_negative_end_value",
        lambda: jopt.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, end_value=-0.5),
        ValueError,
        "jopt.warmup_cosine_decay_schedule:",
        "end_value must be in [0, 1]",
        "got -0.5",
    ),
    _row(
        "warmup_cosine_end_value_with_zero_peak",
        lambda: jopt.warmup_cosine_decay_schedule(0.0, 0.0, 10, 100, end_value=0.5),
        ValueError,
        "jopt.warmup_cosine_decay_schedule:",
        "end_value must be in [0, 0] (between 0 and peak_value=0.0), got 0.5",
    ),
    _row(
        "warmup_cosine_nan_init_value",
        lambda: jopt.warmup_cosine_decay_schedule(math.nan, 1.0, 10, 100),
        ValueError,
        "jopt.warmup_cosine_decay_schedule:",
        "init_value must be a finite number, got nan",
    ),
    _row(
        "warmup_cosine_include_warmup_not_a_bool",
        lambda: jopt.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, decay_steps_include_warmup=1),
        TypeError,
        "jopt.warmup_cosine_decay_schedule:",
        "decay_steps_include_warmup must be True or False, got 1",
    ),
    _row(
        "warmup_exponential_growth_without_end_value",
        lambda: jopt.warmup_exponential_decay_schedule(0.0, 1.0, 10, 100, 1.5),
        ValueError,
        "jopt.warmup_exponential_decay_schedule:",
        "decay_rate must be in (0, 1] without end_value, got 1.5",
    ),
    _row(
        "warmup_exponential_growth_from_a_negative_peak",
        lambda: jopt.warmup_exponential_decay_schedule(0.0, -1.0, 10, 100, 1.5, end_value=2.0),
        ValueError,
        "jopt.warmup_exponential_decay_schedule:",
        "peak_value must be >= 0 with decay_rate=1.5 > 1, got -1.0",
    ),
    _row(
        "warmup_exponential_end_value_below_zero",
        lambda: jopt.warmup_exponential_decay_schedule(0.0, 1.0, 10, 100, 0.5, end_value=-1.0),
        ValueError,
        "jopt.warmup_exponential_decay_schedule:",
        "end_value=-1.0 is never reached from peak_value=1.0 with decay_rate=0.5",
        "a floor in [0, peak_value]",
    ),
    _row(
        "warmup_exponential_negative_transition_begin",
        lambda: jopt.warmup_exponential_decay_schedule(0.0, 1.0, 10, 100, 0.5, -1),
        ValueError,
        "jopt.warmup_exponential_decay_schedule:",
        "transition_begin must be an integer >= 0, got -1",
    ),
    _row(
        "warmup_exponential_include_warmup_not_a_bool",
        lambda: jopt.warmup_exponential_decay_schedule(
            0.0, 1.0, 10, 100, 0.5, decay_steps_include_warmup="yes"
        ),
        TypeError,
        "jopt.warmup_exponential_decay_schedule:",
        "decay_steps_include_warmup must be True or False, got 'yes'",
    ),
    _row(
        "warmup_constant_nan_peak_value",
        lambda: jopt.warmup_constant_schedule(0.0, math.nan, 10),
        ValueError,
        "jopt.warmup_constant_schedule:",
        "peak_value must be a finite number, got nan",
    ),
    _row(
        "with_warmup_infinite_init_value",
        lambda: jopt.with_warmup(_ok, 10, math.inf),
        ValueError,
        "jopt.with_warmup:",
        "init_value must be a finite number, got inf",
    ),
    _row(
        "with_warmup_include_warmup_not_a_bool",
        lambda: jopt.with_warmup(_ok, 10, decay_steps_include_warmup=None),
        TypeError,
        "jopt.with_warmup:",
        "decay_steps_include_warmup must be True or False, got None",
    ),
    # -- Keras twins: the same ranges under Keras' names ----------------------------------------
    _row(
        "keras_exponential_decay_rate_above_one",
        lambda: jopt.keras.ExponentialDecay(0.1, 10, 1.3),
        ValueError,
        "jopt.keras.ExponentialDecay:",
        "decay_rate must be in (0, 1], got 1.3",
    ),
    _row(
        "keras_cosine_alpha_above_one",
        lambda: jopt.keras.CosineDecay(0.1, 10, alpha=2.0),
        ValueError,
        "jopt.keras.CosineDecay:",
        "alpha must be in [0, 1], got 2.0",
    ),
    _row(
        "keras_cosine_negative_alpha_with_warmup",
        lambda: jopt.keras.CosineDecay(0.1, 10, alpha=-0.5, warmup_target=1.0, warmup_steps=5),
        ValueError,
        "jopt.keras.CosineDecay:",
        "alpha must be in [0, 1], got -0.5",
    ),
    _row(
        "keras_restarts_negative_alpha",
        lambda: jopt.keras.CosineDecayRestarts(0.1, 10, alpha=-1.0),
        ValueError,
        "jopt.keras.CosineDecayRestarts:",
        "alpha must be in [0, 1], got -1.0",
    ),
    _row(
        "keras_restarts_m_mul_above_one",
        lambda: jopt.keras.CosineDecayRestarts(0.1, 10, m_mul=2.0),
        ValueError,
        "jopt.keras.CosineDecayRestarts:",
        "m_mul must be in [0, 1], got 2.0",
    ),
    # -- pct_start ------------------------------------------------------------------------------
    _row(
        "one_cycle_pct_start_zero",
        lambda: jopt.one_cycle_schedule(100, 1.0, pct_start=0.0),
        ValueError,
        "jopt.one_cycle_schedule:",
        "pct_start must be in (0, 1), got 0.0",
    ),
    _row(
        "one_cycle_pct_start_one",
        lambda: jopt.one_cycle_schedule(100, 1.0, pct_start=1.0),
        ValueError,
        "jopt.one_cycle_schedule:",
        "pct_start must be in (0, 1), got 1.0",
    ),
    _row(
        "one_cycle_momentum_pct_start_above_one",
        lambda: jopt.one_cycle_momentum(100, pct_start=1.5),
        ValueError,
        "jopt.one_cycle_momentum:",
        "pct_start must be in (0, 1), got 1.5",
    ),
    _row(
        "one_cycle_empty_first_phase",
        lambda: jopt.one_cycle_schedule(10, 1.0, pct_start=0.05),
        ValueError,
        "jopt.one_cycle_schedule:",
        "pct_start=0.05 leaves an empty phase in total_steps=10",
    ),
    # -- choices --------------------------------------------------------------------------------
    _row(
        "cyclic_unknown_mode",
        lambda: jopt.cyclic_schedule(0.1, 1.0, mode="triangle"),
        ValueError,
        "jopt.cyclic_schedule:",
        "mode must be one of 'triangular', 'triangular2', 'exp_range', got 'triangle'",
    ),
    _row(
        "one_cycle_unknown_anneal_strategy",
        lambda: jopt.one_cycle_schedule(100, 1.0, anneal_strategy="exp"),
        ValueError,
        "jopt.one_cycle_schedule:",
        "anneal_strategy must be one of 'cos', 'linear', got 'exp'",
    ),
    _row(
        "piecewise_constant_unknown_switch",
        lambda: jopt.piecewise_constant([3], [1.0, 0.5], switch="before"),
        ValueError,
        "jopt.piecewise_constant:",
        "switch must be one of 'at', 'after', got 'before'",
    ),
    _row(
        "with_warmup_unknown_shape",
        lambda: jopt.with_warmup(_ok, 10, shape="quadratic"),
        ValueError,
        "jopt.with_warmup:",
        "shape must be one of 'linear', 'cosine', got 'quadratic'",
    ),
    _row(
        "piecewise_interpolate_unknown_type",
        lambda: jopt.piecewise_interpolate_schedule("cubic", 1.0, {10: 0.5}),
        ValueError,
        "jopt.piecewise_interpolate_schedule:",
        "interpolate_type must be one of 'linear', 'cosine', got 'cubic'",
    ),
    _row(
        "exponential_staircase_not_a_bool",
        lambda: jopt.exponential_decay(1.0, 10, 0.5, staircase="yes"),
        TypeError,
        "jopt.exponential_decay:",
        "staircase must be True or False, got 'yes'",
    ),
    # -- schedules that are not callable ------------------------------------------------------
    _row(
        "join_non_callable_schedule",
        lambda: jopt.join_schedules([_ok, 0.5], [10]),
        TypeError,
        "jopt.join_schedules:",
        "schedules[1] must be callable, got 0.5",
    ),
    _row(
        "multiply_non_callable_schedule",
        lambda: jopt.multiply_schedules(_ok, "cosine"),
        TypeError,
        "jopt.multiply_schedules:",
        "schedules[1] must be callable, got 'cosine'",
    ),
    _row(
        "with_warmup_non_callable_schedule",
        lambda: jopt.with_warmup(1e-3, 10),
        TypeError,
        "jopt.with_warmup:",
        "schedule must be callable, got 0.001",
    ),
    # -- warmup counted in the decay ------------------------------------------------------------
    _row(
        "warmup_cosine_decay_steps_equal_warmup",
        lambda: jopt.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10),
        ValueError,
        "jopt.warmup_cosine_decay_schedule:",
        "decay_steps=10 must exceed warmup_steps=10",
        "decay_steps_include_warmup=True",
    ),
    _row(
        "warmup_cosine_decay_steps_below_warmup",
        lambda: jopt.warmup_cosine_decay_schedule(0.0, 1.0, 10, 5),
        ValueError,
        "jopt.warmup_cosine_decay_schedule:",
        "decay_steps=5 must exceed warmup_steps=10",
    ),
]


@pytest.mark.parametrize("call, error, pattern", ROWS)
def test_bad_schedule_argument_raises_naming_function_argument_and_value(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# The ends of the narrowed ranges: accepted, and finite at step 0, 10**6 and 2**31 - 1.
EDGES = {
    "exponential_rate_one_is_constant": lambda: jopt.exponential_decay(0.5, 10, 1.0),
    "exponential_growth_capped_from_zero": lambda: jopt.exponential_decay(
        0.0, 10, 2.0, 0, False, 1.0
    ),
    "exponential_floor_zero": lambda: jopt.exponential_decay(1.0, 10, 0.5, end_value=0.0),
    "exponential_floor_at_init_value": lambda: jopt.exponential_decay(1.0, 10, 0.5, end_value=1.0),
    "exponential_ceiling_at_init_value": lambda: jopt.exponential_decay(
        1.0, 10, 3.0, 0, False, 1.0
    ),
    "step_gamma_one": lambda: jopt.step_decay(1.0, 10, 1.0),
    "multistep_gamma_one": lambda: jopt.multistep_decay(1.0, [3], 1.0),
    "cosine_alpha_zero": lambda: jopt.cosine_decay_schedule(1.0, 10, 0.0),
    "cosine_alpha_one": lambda: jopt.cosine_decay_schedule(1.0, 10, 1.0),
    "restarts_m_mul_zero_alpha_one": lambda: jopt.cosine_decay_restarts(1.0, 10, 1.0, 0.0, 1.0),
    "restarts_m_mul_one": lambda: jopt.cosine_decay_restarts(1.0, 10, 2.0, 1.0, 0.0),
    "warmup_cosine_end_at_peak": lambda: jopt.warmup_cosine_decay_schedule(0.0, 1.0, 2, 10, 1.0),
    "warmup_cosine_negative_peak_and_end": lambda: jopt.warmup_cosine_decay_schedule(
        0.0, -1.0, 2, 10, -0.5
    ),
    "warmup_exponential_capped_growth": lambda: jopt.warmup_exponential_decay_schedule(
        0.0, 1.0, 2, 10, 1.5, end_value=2.0
    ),
    "keras_exponential_rate_one": lambda: jopt.keras.ExponentialDecay(0.1, 10, 1.0),
    "keras_cosine_alpha_one": lambda: jopt.keras.CosineDecay(0.1, 10, alpha=1.0),
    "keras_restarts_m_mul_and_alpha_one": lambda: jopt.keras.CosineDecayRestarts(
        0.1, 10, m_mul=1.0, alpha=1.0
    ),
}


def test_the_ends_of_the_narrowed_ranges_are_accepted_and_finite():
    steps = jnp.asarray([0, 10**6, 2**31 - 1], jnp.int32)
    values = jax.jit(lambda s: {n: jax.vmap(make())(s) for n, make in EDGES.items()})(steps)
    for name, got in values.items():
        assert np.all(np.isfinite(np.asarray(got))), (name, got)


def test_warmup_longer_than_decay_is_fine_when_decay_steps_exclude_the_warmup():
    schedule = jopt.warmup_cosine_decay_schedule(
        0.0, 1.0, 10, 5, 0.1, decay_steps_include_warmup=False
    )
    assert float(schedule(15)) == pytest.approx(0.1)


def test_optax_silently_makes_a_constant_schedule_where_jopt_raises():
    # optax 0.2.8: transition_steps <= 0 logs a message and returns constant_schedule(init_value).
    constant = optax.exponential_decay(1.0, 0, 0.5)
    assert [float(constant(step)) for step in (0, 10, 10**6)] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r"jopt\.exponential_decay: transition_steps .* got 0"):
        jopt.exponential_decay(1.0, 0, 0.5)
