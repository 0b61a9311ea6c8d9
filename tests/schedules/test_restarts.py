"""Cosine decay with warm restarts (`jopt.cosine_decay_restarts`) against cycles walked one by one.

jopt finds the cycle of a step in closed form (a logarithm, corrected at the boundaries); the
reference here walks the cycles instead: cycle i starts where cycle i-1 ended and lasts
`first_decay_steps * t_mul**i` steps, at peak `m_mul**i`. They agree:

- at step 0, 1, every cycle start +- 1 (integer and fractional starts, t_mul = 1, 1.5 and 2, and
  late boundaries such as step 10230 = 10 * (2**10 - 1)), far past, and at the saturated step
  2**31 - 1, where a decaying peak (m_mul < 1) has reached the floor alpha * init_value and a
  periodic one stays finite and in [alpha * init_value, init_value]; float32 by default, float64
  under x64, Python int or int32 steps, jit and vmap;
- at the starts k * first that XLA's `(k * first) / first` puts just below k under jit (41 in
  float32, 49 in float64) and the t_mul = 2 starts the logarithm put a cycle early (61, 183, 427):
  the restart is on its step;
- with hypothesis: the value never increases within a cycle, nor from one cycle's start to the
  next (m_mul <= 1).
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jopt
from tests.schedules.tables import S, Tables, series

EXAMPLES = settings(max_examples=30, deadline=None)


def cycle_of(step: int, first: int, t_mul: float) -> tuple[int, float, float]:
    """(cycle index, start step, length) of the cycle holding `step`, by walking the cycles."""
    if t_mul == 1.0:
        cycle = step // first
        return cycle, float(cycle * first), float(first)
    cycle, start, length = 0, 0.0, float(first)
    while step >= start + length:
        cycle, start, length = cycle + 1, start + length, length * t_mul
    return cycle, start, length


def sgdr(step, init, first, t_mul=2.0, m_mul=1.0, alpha=0.0) -> float:
    """init * (alpha + (1 - alpha) * m_mul**i * (1 + cos(pi * f)) / 2) in cycle i, fraction f."""
    cycle, start, length = cycle_of(step, first, t_mul)
    fraction = (step - start) / length
    return init * (alpha + (1 - alpha) * m_mul**cycle * (1 + math.cos(math.pi * fraction)) / 2)


# (init_value, first_decay_steps, t_mul, m_mul, alpha) and the steps of the table.
CONFIGS = {
    # Cycles start at 0, 10, 30, 70, 150, ...; peaks halve; floor 0.2.
    "t_mul_2_m_mul_half_alpha": (
        (2.0, 10, 2.0, 0.5, 0.1),
        [0, 1, 9, 10, 11, 29, 30, 31, 69, 70, 71, 149, 150, 151, 1000, 10**6, S],
    ),
    # Late boundaries: 10 * (2**k - 1) for k = 10, 11, 20.
    "t_mul_2_late_boundaries": (
        (1.0, 10, 2.0, 1.0, 0.0),
        [10229, 10230, 10231, 20469, 20470, 20471, 10485749, 10485750, 10485751],
    ),
    # Fractional starts: 0, 10, 25, 47.5, 81.25, 131.875, ...
    "t_mul_1.5": (
        (1.0, 10, 1.5, 1.0, 0.0),
        [0, 1, 9, 10, 11, 24, 25, 26, 47, 48, 81, 82, 131, 132, 1000],
    ),
    # Fixed period 10 (torch's T_mult=1), peaks times 0.8 each cycle.
    "t_mul_1": (
        (1.0, 10, 1.0, 0.8, 0.0),
        [0, 1, 9, 10, 11, 19, 20, 21, 1000, S],
    ),
    "defaults": ((1.0, 7, 2.0, 1.0, 0.0), [0, 1, 6, 7, 8, 20, 21, 22, 49, 1000]),
    # Starts k * first that `(k * first) / first` puts just below k under jit (41: float32,
    # 49: float64), and t_mul = 2 starts 61, 183, 427 that the logarithm put a cycle early.
    "jit_boundaries_41": (
        (1.0, 41, 1.0, 1.0, 0.1),
        [0, 1, 40, 41, 42, 81, 82, 83, 122, 123, 124, 163, 164, 165, 1000, S],
    ),
    "jit_boundaries_49": ((1.0, 49, 1.0, 0.9, 0.0), [0, 1, 48, 49, 50, 97, 98, 99, 245, S]),
    "jit_boundaries_t_mul_2": (
        (1.0, 61, 2.0, 1.0, 0.0),
        [0, 1, 60, 61, 62, 182, 183, 184, 426, 427, 428, 914, 915, 916],
    ),
}


CHECKS = Tables(
    {
        name: (lambda a=args: jopt.cosine_decay_restarts(*a), [(k, sgdr(k, *args)) for k in steps])
        for name, (args, steps) in CONFIGS.items()
    }
)


@pytest.mark.parametrize("name", CONFIGS)
def test_schedule_matches_the_cycles_walked_one_by_one(name):
    CHECKS.check(name)


def test_peaks_decaying_by_m_mul_reach_the_floor_at_the_saturated_step():
    schedule = jopt.cosine_decay_restarts(2.0, 10, 2.0, 0.5, 0.1)
    chex.assert_trees_all_close(jax.jit(schedule)(jnp.int32(S)), jnp.float32(0.2), rtol=1e-6)


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
@pytest.mark.parametrize("t_mul", [1.0, 1.5, 2.0])
def test_periodic_restarts_are_finite_and_in_range_at_the_saturated_step(t_mul, x64):
    with jax.enable_x64(x64):
        got = jax.jit(jopt.cosine_decay_restarts(2.0, 10, t_mul, 1.0, 0.1))(jnp.int32(S))
        chex.assert_tree_all_finite(got)
        assert 0.2 * (1 - 1e-6) <= float(got) <= 2.0 * (1 + 1e-6), float(got)


@EXAMPLES
@given(
    init=st.floats(0.01, 10.0),
    first=st.integers(1, 40),
    t_mul=st.sampled_from([1.0, 1.25, 1.5, 2.0, 3.0]),
    m_mul=st.floats(0.0, 1.0),
    alpha=st.floats(0.0, 1.0),
)
def test_value_never_increases_within_a_cycle_nor_from_peak_to_peak(
    init, first, t_mul, m_mul, alpha
):
    values = series(jopt.cosine_decay_restarts(init, first, t_mul, m_mul, alpha), 400)
    cycles = np.array([cycle_of(k, first, t_mul)[0] for k in range(400)])
    same_cycle = cycles[1:] == cycles[:-1]
    assert np.all(np.diff(values)[same_cycle] <= 0)
    # Cycles starting on a step start at their peak, init * (alpha + (1 - alpha) * m_mul**i).
    starts = [k for k in range(400) if cycle_of(k, first, t_mul)[1] == k]
    assert np.all(np.diff(values[starts]) <= 2 * np.finfo(np.float32).eps * init)
