"""jopt.torch and jopt.keras schedules against the values torch and Keras computed themselves.

tests/golden/schedules.json (written by tests/golden/make_schedule_fixtures.py; neither torch nor
Keras is needed here) holds, per case, the framework's class, its arguments and the learning rate
at steps 0..N, past every boundary and well past the end; for OneCycleLR and CyclicLR also the
momentum they cycle. Each case's jopt twin, built from the same arguments, gives:

- in float64 (x64), every value within 1e-9 relative (torch's recursive updates drift ~1e-14
  from the closed forms; a wrong formula shows at 1e-3 or more), momentum included;
- in float32, every value within 1e-6 of the schedule's largest value (a float32 sum of terms of
  that size is not better: one-cycle's last values, 5e-5 next to a peak of 0.1, carry 2e-9);
- at the saturated step count 2**31 - 1, a finite value: the schedule's limit (StepLR: 0,
  LinearLR: lr * end_factor, OneCycleLR: its final rate, CyclicLR triangular2: base_lr...) or,
  for schedules that never settle (CosineAnnealingLR, triangular cycles), a value in their range.

All run jitted, as an optimizer evaluates them: StepLR with step_size 41 and 49 and warm restarts
with T_0 = 41 and 61 pin the steps where XLA's `(k * n) / n` falls just below k.

The file must hold the cases that pin each convention: every torch scheduler and Keras schedule
jopt reproduces, CosineAnnealingLR past T_max (periodic), CosineAnnealingWarmRestarts with
T_mult > 1, OneCycleLR cos and linear in two and three phases, CyclicLR in its three modes, Keras'
staircase, cycle, warmup and restarts.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from tests.schedules import twins

CASES = twins.fixtures()["schedules"]
IDS = [case["id"] for case in CASES]
S = 2**31 - 1  # the optimizer's step count saturates here (jopt._src.base.increment)


@functools.cache
def _jopt_values(x64: bool) -> dict:
    """Each twin at steps 0..N, then S (id -> values; id + "/momentum" -> momentum)."""
    with jax.enable_x64(x64):
        schedules = {}
        for case in CASES:
            schedule = twins.twin(case["framework"], case["class"], case["lr"], case["kwargs"])
            schedules[case["id"]] = schedule
            if "momentum" in case:
                schedules[case["id"] + "/momentum"] = schedule.momentum
        n = max(len(case["values"]) for case in CASES)
        return twins.evaluate_all(schedules, n, S)


def _check(case, x64, rtol, scale_rtol):
    got = _jopt_values(x64)
    n = len(case["values"])
    twins.assert_close(got[case["id"]][:n], case["values"], rtol, scale_rtol, what=case["id"])
    if "momentum" in case:
        name = case["id"] + "/momentum"
        twins.assert_close(got[name][:n], case["momentum"], rtol, scale_rtol, what=name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float64_values_match_the_framework_within_1e_9_relative(case):
    _check(case, True, 1e-9, 0.0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_values_match_the_framework_within_1e_6_of_the_peak(case):
    _check(case, False, 0.0, 1e-6)


def _has(framework, cls, where=lambda kwargs, last_step: True):
    def check(case):
        return (
            case["framework"] == framework
            and case["class"] == cls
            and where(case["kwargs"], len(case["values"]) - 1)
        )

    return check


def _one_cycle(anneal, three_phase):
    return _has(
        "torch",
        "OneCycleLR",
        lambda kw, _: (
            kw.get("anneal_strategy", "cos") == anneal
            and kw.get("three_phase", False) == three_phase
        ),
    )


REQUIRED = {
    "torch StepLR": _has("torch", "StepLR"),
    "torch MultiStepLR": _has("torch", "MultiStepLR"),
    "torch ExponentialLR": _has("torch", "ExponentialLR"),
    "torch CosineAnnealingLR past T_max": _has(
        "torch", "CosineAnnealingLR", lambda kw, last: last > 2 * kw["T_max"]
    ),
    "torch CosineAnnealingWarmRestarts T_mult>1": _has(
        "torch", "CosineAnnealingWarmRestarts", lambda kw, last: kw["T_mult"] > 1
    ),
    "torch OneCycleLR cos two-phase": _one_cycle("cos", False),
    "torch OneCycleLR cos three-phase": _one_cycle("cos", True),
    "torch OneCycleLR linear two-phase": _one_cycle("linear", False),
    "torch OneCycleLR linear three-phase": _one_cycle("linear", True),
    **{
        f"torch CyclicLR {mode}": _has("torch", "CyclicLR", lambda kw, _, m=mode: kw["mode"] == m)
        for mode in ("triangular", "triangular2", "exp_range")
    },
    "torch LinearLR": _has("torch", "LinearLR"),
    "torch PolynomialLR": _has("torch", "PolynomialLR"),
    "torch ConstantLR": _has("torch", "ConstantLR"),
    "torch SequentialLR": _has("torch", "SequentialLR"),
    "torch ChainedScheduler": _has("torch", "ChainedScheduler"),
    "keras ExponentialDecay staircase": _has(
        "keras", "ExponentialDecay", lambda kw, _: kw.get("staircase", False)
    ),
    "keras PiecewiseConstantDecay": _has("keras", "PiecewiseConstantDecay"),
    "keras PolynomialDecay cycle": _has(
        "keras", "PolynomialDecay", lambda kw, _: kw.get("cycle", False)
    ),
    "keras InverseTimeDecay": _has("keras", "InverseTimeDecay"),
    "keras CosineDecay warmup": _has(
        "keras", "CosineDecay", lambda kw, _: kw.get("warmup_steps", 0) > 0
    ),
    "keras CosineDecayRestarts": _has("keras", "CosineDecayRestarts"),
}


@pytest.mark.parametrize("requirement", REQUIRED)
def test_fixtures_cover_each_convention(requirement):
    assert any(REQUIRED[requirement](case) for case in CASES), f"no fixture for {requirement}"


def test_fixtures_name_their_maker_and_versions():
    data = twins.fixtures()
    assert data["made_by"] == "tests/golden/make_schedule_fixtures.py"
    assert set(data["versions"]) == {"torch", "keras"}
    assert len(set(IDS)) == len(IDS)


# -- far past the end ----------------------------------------------------------------------------


def _between(lo, hi):
    return (min(lo, hi), max(lo, hi))


def _exactly(value):
    return (value, value)


def _torch_limit(cls, lr, kw):
    """(lo, hi) of the lr at step S: the limit, or the range of a schedule that never settles."""
    if cls in ("StepLR", "ExponentialLR", "PolynomialLR", "ChainedScheduler"):
        return _exactly(0.0)  # every fixture's factor decays to 0
    if cls == "MultiStepLR":
        return _exactly(lr * kw["gamma"] ** len(kw["milestones"]))
    if cls in ("CosineAnnealingLR", "CosineAnnealingWarmRestarts", "SequentialLR"):
        return _between(0.0, lr)  # periodic (SequentialLR ends in CosineAnnealingLR)
    if cls == "OneCycleLR":
        div, final = kw.get("div_factor", 25.0), kw.get("final_div_factor", 1e4)
        return _exactly(kw["max_lr"] / div / final)
    if cls == "CyclicLR":
        if kw["mode"] == "triangular":
            return _between(kw["base_lr"], kw["max_lr"])
        return _exactly(kw["base_lr"])  # the amplitude has decayed to 0
    if cls == "LinearLR":
        return _exactly(lr * kw["end_factor"])
    if cls == "ConstantLR":
        return _exactly(lr)
    raise AssertionError(cls)


def _torch_momentum_limit(cls, kw):
    top = kw.get("max_momentum", 0.95 if cls == "OneCycleLR" else 0.9)
    if cls == "CyclicLR" and kw["mode"] == "triangular":
        return _between(kw.get("base_momentum", 0.8), top)
    return _exactly(top)


def _keras_limit(cls, kw):
    init = kw.get("initial_learning_rate")
    if cls == "ExponentialDecay":
        return _exactly(0.0)
    if cls == "PiecewiseConstantDecay":
        return _exactly(kw["values"][-1])
    if cls == "PolynomialDecay":
        end = kw["end_learning_rate"]
        return _between(end, init) if kw.get("cycle") else _exactly(end)
    if cls == "InverseTimeDecay":
        ratio = S // kw["decay_steps"] if kw.get("staircase") else S / kw["decay_steps"]
        return _exactly(init / (1 + kw["decay_rate"] * ratio))
    if cls == "CosineDecay":
        return _exactly(kw["alpha"] * kw.get("warmup_target", init))
    if cls == "CosineDecayRestarts":
        floor = kw["alpha"] * init
        return _exactly(floor) if kw["m_mul"] < 1 else _between(floor, init)
    raise AssertionError(cls)


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_at_the_saturated_step_is_finite_and_the_limit(case, x64):
    got = {name: values[-1] for name, values in _jopt_values(x64).items()}
    cls, kw = case["class"], case["kwargs"]
    if case["framework"] == "torch":
        checks = [(case["id"], _torch_limit(cls, case["lr"], kw))]
        if "momentum" in case:
            checks.append((case["id"] + "/momentum", _torch_momentum_limit(cls, kw)))
    else:
        checks = [(case["id"], _keras_limit(cls, kw))]
    for name, (lo, hi) in checks:
        value = got[name]
        assert np.isfinite(value), name
        slack = 2e-6 * max(abs(lo), abs(hi))
        assert lo - slack <= value <= hi + slack, (name, value, lo, hi)
