"""One-cycle and cyclic schedules (`jopt.schedules.cyclic`) against closed-form tables and optax.

- one_cycle_schedule / one_cycle_momentum follow torch's OneCycleLR phase by phase (phase i ends
  at step `pct_start * total_steps - 1`, cosine or linear, two or three phases), and
  cyclic_schedule / cyclic_momentum are torch's CyclicLR triangle (triangular, triangular2,
  exp_range), written here as `p / up` rising and `(up + down - p) / down` falling, p = step mod
  (up + down). Tables hold step 0, 1, each phase end +- 1, past the end, and the saturated step
  2**31 - 1 (one-cycle: its final value; triangular2 and exp_range: base_value; triangular, which
  has no limit: finite and in [base, max]); the cyclic tables also hold steps 10**6 + p, where
  float32 keeps the position p in the cycle only if it is computed from the step count. float32 by
  default, float64 under x64, Python int or int32 steps, jit and vmap.
- `one_cycle_schedule` peaks at step pct_start * total_steps - 1 (torch); optax's
  `cosine_onecycle_schedule`, and jopt's drop-in for it, one step later. The drop-in agrees with
  optax 0.2.8 to 1e-6.
- With hypothesis: the one-cycle learning rate rises, then falls (momentum: falls, then rises);
  the cyclic learning rate falls for step_size_down steps and (triangular, triangular2) rises
  for step_size_up, its peaks never growing (triangular2, exp_range shrink them); the cyclic
  momentum mirrors it.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import jopt
from tests.schedules.tables import S, Tables, assert_agrees_with_optax, series

EXAMPLES = settings(max_examples=30, deadline=None)


# -- one-cycle -----------------------------------------------------------------------------------


def _cos_anneal(start, end, pct):
    """torch's `_annealing_cos`: end + (start - end) / 2 * (cos(pi * pct) + 1)."""
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


def _linear_anneal(start, end, pct):
    return (end - start) * pct + start


def one_cycle(step, total, levels, ends, anneal):
    """torch's OneCycleLR.get_lr: phase i anneals levels[i] -> levels[i+1] until ends[i]."""
    t = min(step, total - 1)  # jopt holds the final value where torch raises
    start = 0.0
    for i, end in enumerate(ends):
        if t <= end or i == len(ends) - 1:
            return anneal(levels[i], levels[i + 1], (t - start) / (end - start))
        start = end
    raise AssertionError("unreachable")


LR = (0.04, 1.0, 4e-6)  # max_value=1 / div_factor=25, 1, then / final_div_factor=1e4
LR_3 = (0.04, 1.0, 0.04, 4e-6)
MOMENTUM = (0.95, 0.85, 0.95)
MOMENTUM_3 = (0.95, 0.85, 0.95, 0.95)
ONE_CYCLE_STEPS = [0, 1, 28, 29, 30, 57, 58, 59, 98, 99, 100, 1000, S]

TABLES = {
    "one_cycle_cos": (
        lambda: jopt.one_cycle_schedule(100, 1.0),
        [(k, one_cycle(k, 100, LR, (29, 99), _cos_anneal)) for k in ONE_CYCLE_STEPS],
    ),
    "one_cycle_linear_three_phase": (
        lambda: jopt.one_cycle_schedule(100, 1.0, 0.3, "linear", three_phase=True),
        [(k, one_cycle(k, 100, LR_3, (29, 58, 99), _linear_anneal)) for k in ONE_CYCLE_STEPS],
    ),
    # Phase ends between steps: 0.25 * 10 - 1 = 1.5.
    "one_cycle_fractional_phase_end": (
        lambda: jopt.one_cycle_schedule(10, 1.0, 0.25, "linear", 10.0, 100.0),
        [
            (k, one_cycle(k, 10, (0.1, 1.0, 0.001), (1.5, 9), _linear_anneal))
            for k in [*range(12), 1000, S]
        ],
    ),
    "one_cycle_momentum_cos": (
        lambda: jopt.one_cycle_momentum(100),
        [(k, one_cycle(k, 100, MOMENTUM, (29, 99), _cos_anneal)) for k in ONE_CYCLE_STEPS],
    ),
    "one_cycle_momentum_linear_three_phase": (
        lambda: jopt.one_cycle_momentum(100, 0.8, 0.9, 0.3, "linear", three_phase=True),
        [
            (k, one_cycle(k, 100, (0.9, 0.8, 0.9, 0.9), (29, 58, 99), _linear_anneal))
            for k in ONE_CYCLE_STEPS
        ],
    ),
}


# -- cyclic --------------------------------------------------------------------------------------


def triangle(step, up=4, down=6):
    """0 at the cycle's start, 1 after `up` steps, back to 0 after `down` more."""
    p = step % (up + down)
    return p / up if p <= up else (up + down - p) / down


def amplitude(step, mode, gamma=1.0, up=4, down=6):
    if mode == "triangular":
        return 1.0
    if mode == "triangular2":
        return 0.5 ** (step // (up + down))
    return gamma**step


# Far out too: at step 10**6 + p, float32 keeps p only if the position in the cycle is computed
# from the step count itself (torch's `1 + t / total - cycle` is 1% of the amplitude off there).
CYCLIC_STEPS = [0, 1, 3, 4, 5, 9, 10, 11, 14, 15, 20, 21, 55, 1000, 10**6 + 3, 10**6 + 7]

for _mode, _gamma, _limit in [("triangular", 1.0, None), ("triangular2", 1.0, 0.1)] + [
    ("exp_range", 0.99, 0.1)
]:
    _rows = [(k, 0.1 + 0.9 * triangle(k) * amplitude(k, _mode, _gamma)) for k in CYCLIC_STEPS] + (
        [(S, _limit)] if _limit is not None else []
    )
    TABLES[f"cyclic_{_mode}"] = (
        lambda m=_mode, g=_gamma: jopt.cyclic_schedule(0.1, 1.0, 4, 6, m, g),
        _rows,
    )
    _momentum_rows = [
        (k, 0.9 - 0.1 * triangle(k) * amplitude(k, _mode, _gamma)) for k in CYCLIC_STEPS
    ] + ([(S, 0.9)] if _limit is not None else [])
    TABLES[f"cyclic_momentum_{_mode}"] = (
        lambda m=_mode, g=_gamma: jopt.cyclic_momentum(0.8, 0.9, 4, 6, m, g),
        _momentum_rows,
    )
TABLES["cyclic_symmetric_default_down"] = (
    lambda: jopt.cyclic_schedule(0.0, 2.0, step_size_up=5),
    [(k, 2.0 * triangle(k, 5, 5)) for k in (0, 1, 4, 5, 6, 9, 10, 11, 15, 1000)],
)


CHECKS = Tables(TABLES)


@pytest.mark.parametrize("name", TABLES)
def test_schedule_matches_its_closed_form_table(name):
    CHECKS.check(name)


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
@pytest.mark.parametrize(
    "make, lo, hi",
    [
        (lambda: jopt.cyclic_schedule(0.1, 1.0, 4, 6), 0.1, 1.0),
        (lambda: jopt.cyclic_momentum(0.8, 0.9, 4, 6), 0.8, 0.9),
    ],
    ids=["cyclic_schedule", "cyclic_momentum"],
)
def test_triangular_cycle_is_finite_and_in_range_at_the_saturated_step(make, lo, hi, x64):
    with jax.enable_x64(x64):
        got = jax.jit(make())(jnp.int32(S))
        chex.assert_tree_all_finite(got)
        assert lo * (1 - 1e-6) <= float(got) <= hi * (1 + 1e-6), float(got)


# -- where the peak sits -------------------------------------------------------------------------


def test_one_cycle_peaks_one_step_before_optax_cosine_onecycle():
    torch_style = series(jopt.one_cycle_schedule(100, 1.0, pct_start=0.3), 100)
    optax_style = series(optax.cosine_onecycle_schedule(100, 1.0, pct_start=0.3), 100)
    drop_in = series(jopt.cosine_onecycle_schedule(100, 1.0, pct_start=0.3), 100)
    assert int(np.argmax(torch_style)) == 29  # pct_start * total_steps - 1
    assert int(np.argmax(optax_style)) == 30  # pct_start * total_steps
    assert int(np.argmax(drop_in)) == 30
    chex.assert_trees_all_close(torch_style[29], optax_style[30], np.float32(1.0), rtol=1e-6)


@pytest.mark.parametrize(
    "args",
    [(100, 1.0), (200, 2.0, 0.25, 10.0, 100.0), (50, 0.5, 0.5, 5.0, 1e3), (7, 1.0, 0.3)],
    ids=repr,
)
def test_cosine_onecycle_drop_in_agrees_with_optax(args):
    assert_agrees_with_optax(
        jopt.cosine_onecycle_schedule(*args), optax.cosine_onecycle_schedule(*args)
    )


# -- monotonicity --------------------------------------------------------------------------------


def assert_monotone(values: np.ndarray, *, rising: bool) -> None:
    """Non-decreasing (rising) or non-increasing, up to 2 float32 ulps of the largest value.

    A linear phase ends at `start + (end - start) * 1`, which float32 may round 1 ulp past `end`
    (0.85 + 0.1 gives 0.95000005): the next phase, starting at `end`, is then 1 ulp lower.
    """
    steps = np.diff(values) if rising else -np.diff(values)
    slack = 2 * np.finfo(np.float32).eps * np.abs(values).max()
    assert steps.min() >= -slack, (steps.argmin(), steps.min())


@EXAMPLES
@given(
    total=st.integers(10, 300),
    pct_start=st.floats(0.05, 0.95),
    anneal=st.sampled_from(["cos", "linear"]),
    div_factor=st.floats(1.5, 100.0),
    final_div_factor=st.floats(1.5, 1e4),
    three_phase=st.booleans(),
)
def test_one_cycle_rises_then_falls_and_its_momentum_falls_then_rises(
    total, pct_start, anneal, div_factor, final_div_factor, three_phase
):
    first_end = pct_start * total - 1
    assume(first_end > 0.5)  # phase 1 holds more than step 0
    assume(not three_phase or total - 1 > 2 * first_end + 0.5)  # phase 3 is not empty
    lr = series(
        jopt.one_cycle_schedule(
            total, 1.0, pct_start, anneal, div_factor, final_div_factor, three_phase
        ),
        301,
    )
    peak = int(np.argmax(lr))
    assert math.floor(first_end) <= peak <= math.ceil(first_end)
    assert_monotone(lr[: peak + 1], rising=True)
    assert_monotone(lr[peak:], rising=False)
    momentum = series(
        jopt.one_cycle_momentum(total, 0.85, 0.95, pct_start, anneal, three_phase), 301
    )
    trough = int(np.argmin(momentum))
    assert math.floor(first_end) <= trough <= math.ceil(first_end)
    assert_monotone(momentum[: trough + 1], rising=False)
    assert_monotone(momentum[trough:], rising=True)


@EXAMPLES
@given(
    up=st.integers(1, 30),
    down=st.integers(1, 30),
    mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
    gamma=st.floats(0.95, 1.0),
)
def test_cycle_rises_then_falls_and_its_peaks_never_grow(up, down, mode, gamma):
    lr = series(jopt.cyclic_schedule(0.1, 1.0, up, down, mode, gamma), 400)
    momentum = series(jopt.cyclic_momentum(0.8, 0.9, up, down, mode, gamma), 400)
    steps = np.arange(399)
    rising = steps % (up + down) < up  # from step k to k + 1 inside the rise
    for values, sign in ((lr, 1), (momentum, -1)):
        diff = sign * np.diff(values)
        slack = 2 * np.finfo(np.float32).eps
        assert np.all(diff[~rising] <= slack)
        # exp_range scales the whole triangle by gamma**step: late in a rise the decay can win.
        if mode != "exp_range":
            assert np.all(diff[rising] >= -slack)
        peaks = sign * values[up :: up + down]
        assert_monotone(peaks, rising=False)
