"""One-cycle and cyclic schedules (`jopt.schedules`) against closed-form tables and optax.

- one_cycle_schedule / one_cycle_momentum follow torch's OneCycleLR phase by phase (phase i ends
  at step `pct_start * total_steps - 1`, cosine or linear, two or three phases), and
  cyclic_schedule / cyclic_momentum are torch's CyclicLR triangle (triangular, triangular2,
  exp_range, or a custom scale_fn of the cycle number or of the step count, which replaces mode),
  written here as `p / up` rising and `(up + down - p) / down` falling, p = step mod
  (up + down). Tables hold step 0, 1, each phase end +- 1, past the end, and the saturated step
  2**31 - 1 (one-cycle: its final value; triangular2, exp_range and decaying scale_fns:
  base_value; triangular, which has no limit: finite and in [base, max]); the cyclic tables also
  hold steps 10**6 + p, where
  float32 keeps the position p in the cycle only if it is computed from the step count. float32 by
  default, float64 under x64, Python int or int32 steps, jit and vmap.
- `one_cycle_schedule` peaks at step pct_start * total_steps - 1 (torch); optax's
  `cosine_onecycle_schedule`, and jopt's drop-in for it, one step later. The drop-in agrees with
  optax 0.2.8 to 1e-6.
- Arguments outside the ranges where the shapes hold raise at construction, naming the function,
  the argument, the value and the range: a start above the peak (base_value > max_value,
  base_momentum > max_momentum, div_factor < 1), an end above the start (final_div_factor < 1),
  a growing exp_range amplitude (gamma > 1), empty phases, a scale_fn that is not a traceable
  function of one scalar; the edges of each range are accepted.
- With hypothesis: the one-cycle learning rate rises, then falls (momentum: falls, then rises);
  the cyclic learning rate falls for step_size_down steps and (triangular, triangular2) rises
  for step_size_up, its peaks never growing (triangular2, exp_range shrink them); the cyclic
  momentum mirrors it.
"""

from __future__ import annotations

import math
import re

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


def _inverse(x):
    return 1 / x


def _decay_per_100(t):
    return 1 / (1 + t / 100)


# Custom scale_fn (torch's scale_fn / scale_mode): s(cycle number from 1) or s(step count). With
# scale_fn, mode and gamma are ignored; the momentum is scaled by the same s.
for _name, _kwargs, _s in [
    ("cycle", {"scale_fn": _inverse}, lambda k: 1 / (k // 10 + 1)),
    (
        "cycle_ignores_mode",
        {"mode": "exp_range", "gamma": 0.5, "scale_fn": _inverse},
        lambda k: 1 / (k // 10 + 1),
    ),
    (
        "iterations",
        {"scale_fn": _decay_per_100, "scale_mode": "iterations"},
        lambda k: 1 / (1 + k / 100),
    ),
    (
        "iterations_jnp",
        {"scale_fn": lambda t: jnp.exp(-t / 50), "scale_mode": "iterations"},
        lambda k: math.exp(-k / 50),
    ),
    ("python_constant", {"scale_fn": lambda x: 0.5}, lambda k: 0.5),
]:
    _steps = [*CYCLIC_STEPS, S]
    TABLES[f"cyclic_scale_fn_{_name}"] = (
        lambda kw=_kwargs: jopt.cyclic_schedule(0.1, 1.0, 4, 6, **kw),
        [(k, 0.1 + 0.9 * triangle(k) * _s(k)) for k in _steps],
    )
    TABLES[f"cyclic_momentum_scale_fn_{_name}"] = (
        lambda kw=_kwargs: jopt.cyclic_momentum(0.8, 0.9, 4, 6, **kw),
        [(k, 0.9 - 0.1 * triangle(k) * _s(k)) for k in _steps],
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


# -- argument ranges -----------------------------------------------------------------------------


def _vector(x):
    return jnp.stack([x, x])


def _bad(id, call, fragment, error=ValueError):
    """`call()` raises `error` with the message "<function>: <fragment>"."""
    return pytest.param(call, error, fragment, id=id)


_cyc, _mom = jopt.cyclic_schedule, jopt.cyclic_momentum
_one, _one_m, _cos = jopt.one_cycle_schedule, jopt.one_cycle_momentum, jopt.cosine_onecycle_schedule

BAD = [
    _bad("cyclic_base_above_max", lambda: _cyc(0.5, 0.1),
         "jopt.cyclic_schedule: base_value=0.5 must not exceed max_value=0.1."),
    _bad("cyclic_base_negative", lambda: _cyc(-0.1, 0.1),
         "jopt.cyclic_schedule: base_value must be >= 0, got -0.1."),
    _bad("cyclic_max_nan", lambda: _cyc(0.1, math.nan),
         "jopt.cyclic_schedule: max_value must be >= 0, got nan."),
    _bad("cyclic_step_size_down_0", lambda: _cyc(0.1, 1.0, 4, 0),
         "jopt.cyclic_schedule: step_size_down must be an integer >= 1, got 0."),
    _bad("cyclic_step_size_up_frac", lambda: _cyc(0.1, 1.0, 2.5),
         "jopt.cyclic_schedule: step_size_up must be an integer >= 1, got 2.5.", TypeError),
    _bad("cyclic_gamma_above_1", lambda: _cyc(0.1, 1.0, mode="exp_range", gamma=1.5),
         "jopt.cyclic_schedule: gamma must be in (0, 1], got 1.5."),
    _bad("cyclic_gamma_0", lambda: _cyc(0.1, 1.0, mode="exp_range", gamma=0.0),
         "jopt.cyclic_schedule: gamma must be in (0, 1], got 0.0."),
    _bad("cyclic_scale_mode", lambda: _cyc(0.1, 1.0, scale_fn=_inverse, scale_mode="cycles"),
         "jopt.cyclic_schedule: scale_mode must be one of 'cycle', 'iterations', got 'cycles'."),
    _bad("cyclic_scale_fn_string", lambda: _cyc(0.1, 1.0, scale_fn="triangular2"),
         "jopt.cyclic_schedule: scale_fn must be None or a function of one number, got "
         "'triangular2'.", TypeError),
    _bad("cyclic_scale_fn_math", lambda: _cyc(0.1, 1.0, scale_fn=math.exp),
         "jopt.cyclic_schedule: scale_fn must be a JAX-traceable function of one scalar array "
         "(jnp, not math); called on a traced float scalar it raised ", TypeError),
    _bad("cyclic_scale_fn_two_arguments", lambda: _cyc(0.1, 1.0, scale_fn=lambda c, t: c),
         "jopt.cyclic_schedule: scale_fn must be a JAX-traceable function of one scalar array",
         TypeError),
    _bad("cyclic_scale_fn_vector", lambda: _cyc(0.1, 1.0, scale_fn=_vector),
         "jopt.cyclic_schedule: scale_fn must return one real scalar, it returned "
         "ShapeDtypeStruct(shape=(2,), dtype=float32) for a scalar input.", TypeError),
    _bad("cyclic_scale_fn_bool", lambda: _cyc(0.1, 1.0, scale_fn=lambda x: x > 1),
         "jopt.cyclic_schedule: scale_fn must return one real scalar", TypeError),
    _bad("cyclic_momentum_base_above_max", lambda: _mom(0.95, 0.85),
         "jopt.cyclic_momentum: base_momentum=0.95 must not exceed max_momentum=0.85."),
    _bad("cyclic_momentum_gamma_above_1", lambda: _mom(0.8, 0.9, mode="exp_range", gamma=2.0),
         "jopt.cyclic_momentum: gamma must be in (0, 1], got 2.0."),
    _bad("cyclic_momentum_scale_mode", lambda: _mom(scale_mode="steps"),
         "jopt.cyclic_momentum: scale_mode must be one of 'cycle', 'iterations', got 'steps'."),
    _bad("one_cycle_div_factor_below_1", lambda: _one(100, 1.0, div_factor=0.5),
         "jopt.one_cycle_schedule: div_factor must be >= 1, got 0.5."),
    _bad("one_cycle_final_div_factor_below_1", lambda: _one(100, 1.0, final_div_factor=0.5),
         "jopt.one_cycle_schedule: final_div_factor must be >= 1, got 0.5."),
    _bad("one_cycle_final_div_factor_0", lambda: _one(100, 1.0, final_div_factor=0),
         "jopt.one_cycle_schedule: final_div_factor must be >= 1, got 0."),
    _bad("one_cycle_max_value_negative", lambda: _one(100, -1.0),
         "jopt.one_cycle_schedule: max_value must be >= 0, got -1.0."),
    _bad("one_cycle_three_phase_str", lambda: _one(100, 1.0, three_phase="yes"),
         "jopt.one_cycle_schedule: three_phase must be True or False, got 'yes'.", TypeError),
    _bad("one_cycle_momentum_empty_third_phase", lambda: _one_m(10, 0.85, 0.95, 0.55,
         three_phase=True),
         "jopt.one_cycle_momentum: pct_start=0.55 leaves an empty phase in total_steps=10."),
    _bad("one_cycle_momentum_max_1", lambda: _one_m(100, 0.85, 1.0),
         "jopt.one_cycle_momentum: max_momentum must be in [0, 1), got 1.0."),
    _bad("cosine_onecycle_div_factor_below_1", lambda: _cos(100, 1.0, div_factor=0.9),
         "jopt.cosine_onecycle_schedule: div_factor must be >= 1, got 0.9."),
    _bad("cosine_onecycle_final_div_factor_below_1",
         lambda: _cos(100, 1.0, final_div_factor=0.1),
         "jopt.cosine_onecycle_schedule: final_div_factor must be >= 1, got 0.1."),
    _bad("cosine_onecycle_empty_rise", lambda: _cos(3, 1.0, 0.3),
         "jopt.cosine_onecycle_schedule: pct_start=0.3 leaves an empty rise in "
         "transition_steps=3 (the peak would be at step int(pct_start * transition_steps) = 0)."),
    _bad("cosine_onecycle_pct_start_1", lambda: _cos(100, 1.0, 1.0),
         "jopt.cosine_onecycle_schedule: pct_start must be in (0, 1), got 1.0."),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "message"), BAD)
def test_argument_outside_its_range_raises_naming_function_argument_and_value(call, error, message):
    with pytest.raises(error, match="^" + re.escape(message)):
        call()


# The edges of each range: flat cycles, a one-cycle starting at its peak and ending at its start.
EDGES = {
    "cyclic_flat": (lambda: _cyc(0.1, 0.1, 1), 0.1),
    "cyclic_zero": (lambda: _cyc(0.0, 0.0), 0.0),
    "cyclic_exp_range_gamma_1": (lambda: _cyc(0.1, 1.0, 4, 6, "exp_range", 1.0), 0.1 + 0.9 * 0.75),
    "cyclic_momentum_flat": (lambda: _mom(0.9, 0.9), 0.9),
    "one_cycle_div_factors_1": (lambda: _one(10, 1.0, 0.3, "linear", 1.0, 1.0), 1.0),
    "one_cycle_momentum_flat": (lambda: _one_m(10, 0.9, 0.9), 0.9),
    "cosine_onecycle_div_factors_1": (lambda: _cos(4, 2.0, 0.25, 1.0, 1.0), 2.0),
}


@pytest.mark.parametrize("name", EDGES)
def test_edges_of_the_ranges_are_accepted(name):
    make, value_at_3 = EDGES[name]
    np.testing.assert_allclose(float(make()(3)), value_at_3, rtol=1e-6)


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
