"""jopt.torch / jopt.keras schedules against torch and Keras run now, on other arguments.

Skipped where torch or Keras is not installed. torch's values are its optimizer's lr after k
`scheduler.step()` calls; Keras' are the schedule called at step k in float64 (JAX backend, op by
op; see tests/golden/make_schedule_fixtures.py, which computes both). jopt's twins run jitted in
float64 and agree within 1e-9 relative. The arguments differ from the fixtures': unsorted and
repeated milestones, a milestone at 0, gamma = 1 and fast decays (jopt rejects growth, gamma > 1,
which torch and Keras accept), T_max = 1, T_mult = 3, one-cycle phases
ending between steps, cycles of 1 step, three-scheduler sequences and chains, Keras' PolynomialDecay
cycling with power 0.5 and a boundary at 0.

ReduceLROnPlateau: fresh seeded metric sequences (one with a NaN, which counts as no improvement)
under settings the fixtures lack (threshold 0, patience 0 with cooldown 1, min_lr above lr's
reach, factor 0.9), in all four mode / threshold_mode pairs; jopt (x64) gives torch's lr exactly.
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np
import pytest

from tests.golden import make_schedule_fixtures as make
from tests.schedules import twins

# (id, class, base lr, kwargs, last step)
TORCH = [
    ("StepLR_gamma_1", "StepLR", 0.01, {"step_size": 3, "gamma": 1.0}, 40),
    ("MultiStepLR_unsorted", "MultiStepLR", 0.5, {"milestones": [9, 0, 4, 9], "gamma": 0.7}, 30),
    ("ExponentialLR_fast", "ExponentialLR", 0.001, {"gamma": 0.7}, 60),
    ("CosineAnnealingLR_T1", "CosineAnnealingLR", 0.3, {"T_max": 1, "eta_min": 0.01}, 12),
    (
        "CosineAnnealingWarmRestarts_mult3",
        "CosineAnnealingWarmRestarts",
        0.2,
        {"T_0": 2, "T_mult": 3, "eta_min": 0.01},
        90,
    ),
    (
        "OneCycleLR_fractional_phases",
        "OneCycleLR",
        None,
        {
            "max_lr": 0.8,
            "total_steps": 23,
            "pct_start": 0.37,
            "anneal_strategy": "cos",
            "three_phase": True,
            "div_factor": 4.0,
            "final_div_factor": 50.0,
            "base_momentum": 0.7,
            "max_momentum": 0.9,
        },
        22,
    ),
    (
        "OneCycleLR_epochs",
        "OneCycleLR",
        None,
        {"max_lr": 0.05, "epochs": 3, "steps_per_epoch": 7, "anneal_strategy": "linear"},
        20,
    ),
    (
        "CyclicLR_one_step_up",
        "CyclicLR",
        None,
        {
            "base_lr": 0.1,
            "max_lr": 0.2,
            "step_size_up": 1,
            "step_size_down": 3,
            "mode": "triangular2",
        },
        40,
    ),
    (
        "CyclicLR_exp_range_asymmetric",
        "CyclicLR",
        None,
        {
            "base_lr": 0.001,
            "max_lr": 0.01,
            "step_size_up": 7,
            "step_size_down": 2,
            "mode": "exp_range",
            "gamma": 0.9,
        },
        50,
    ),
    (
        "LinearLR_down",
        "LinearLR",
        0.2,
        {"start_factor": 0.9, "end_factor": 0.05, "total_iters": 7},
        12,
    ),
    ("PolynomialLR_cube", "PolynomialLR", 0.4, {"total_iters": 9, "power": 3.0}, 14),
    ("ConstantLR_one_iter", "ConstantLR", 0.3, {"factor": 0.1, "total_iters": 1}, 5),
    (
        "SequentialLR_three",
        "SequentialLR",
        0.2,
        {
            "schedulers": [
                {"class": "ConstantLR", "kwargs": {"factor": 0.5, "total_iters": 10}},
                {"class": "ExponentialLR", "kwargs": {"gamma": 0.8}},
                {"class": "StepLR", "kwargs": {"step_size": 4, "gamma": 0.5}},
            ],
            "milestones": [3, 9],
        },
        30,
    ),
    (
        "ChainedScheduler_three",
        "ChainedScheduler",
        0.2,
        {
            "schedulers": [
                {"class": "LinearLR", "kwargs": {"start_factor": 0.2, "total_iters": 4}},
                {"class": "MultiStepLR", "kwargs": {"milestones": [3, 8], "gamma": 0.5}},
                {"class": "PolynomialLR", "kwargs": {"total_iters": 12, "power": 0.7}},
            ]
        },
        20,
    ),
]

# (id, class, kwargs, last step)
KERAS = [
    (
        "ExponentialDecay_fast",
        "ExponentialDecay",
        {"initial_learning_rate": 0.01, "decay_steps": 4, "decay_rate": 0.3},
        20,
    ),
    (
        "PiecewiseConstantDecay_zero_boundary",
        "PiecewiseConstantDecay",
        {"boundaries": [0, 3, 10], "values": [0.5, 0.4, 0.3, 0.05]},
        14,
    ),
    (
        "PolynomialDecay_cycle_sqrt",
        "PolynomialDecay",
        {
            "initial_learning_rate": 0.3,
            "decay_steps": 6,
            "end_learning_rate": 0.01,
            "power": 0.5,
            "cycle": True,
        },
        20,
    ),
    (
        "InverseTimeDecay_staircase",
        "InverseTimeDecay",
        {"initial_learning_rate": 0.2, "decay_steps": 3, "decay_rate": 2.0, "staircase": True},
        14,
    ),
    (
        "CosineDecay_warmup_down",
        "CosineDecay",
        {
            "initial_learning_rate": 0.5,
            "decay_steps": 6,
            "alpha": 0.2,
            "warmup_target": 0.3,
            "warmup_steps": 4,
        },
        16,
    ),
    (
        "CosineDecayRestarts_tmul3",
        "CosineDecayRestarts",
        {
            "initial_learning_rate": 0.2,
            "first_decay_steps": 2,
            "t_mul": 3.0,
            "m_mul": 0.7,
            "alpha": 0.05,
        },
        30,
    ),
]


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip(f"needs Keras' JAX backend, got {keras.backend.backend()!r}")
    return keras


@functools.cache
def _jopt_values() -> dict:
    """Every case's jopt twin in float64 (name -> lr, name + "/momentum" -> momentum), one jit."""
    with jax.enable_x64(True):
        schedules = {}
        cases = [("torch", *c) for c in TORCH] + [
            ("keras", c[0], c[1], None, *c[2:]) for c in KERAS
        ]
        for framework, name, cls, lr, kwargs, _ in cases:
            schedule = twins.twin(framework, cls, lr, kwargs)
            schedules[name] = schedule
            if getattr(schedule, "momentum", None) is not None:
                schedules[name + "/momentum"] = schedule.momentum
        return twins.evaluate_all(schedules, 1 + max(c[-1] for c in cases))


@pytest.mark.parametrize("case", TORCH, ids=[c[0] for c in TORCH])
def test_torch_scheduler_matches_jopt_twin(torch, case):
    name, cls, lr, kwargs, last = case
    # OneCycleLR and CyclicLR set the optimizer's lr themselves.
    want = make.torch_schedule(cls, 0.1 if lr is None else lr, kwargs, last)
    got = _jopt_values()
    twins.assert_close(got[name][: last + 1], want["values"], 1e-9, what=f"{name} lr")
    if want["momentum"] is not None:
        got_momentum = got[name + "/momentum"][: last + 1]
        twins.assert_close(got_momentum, want["momentum"], 1e-9, what=f"{name} momentum")


@pytest.mark.parametrize("case", KERAS, ids=[c[0] for c in KERAS])
def test_keras_schedule_matches_jopt_twin(keras, case):
    name, cls, kwargs, last = case
    want = make.keras_schedule(cls, kwargs, last)
    twins.assert_close(_jopt_values()[name][: last + 1], want, 1e-9, what=name)


def _sequences():
    rng = np.random.default_rng(7)
    k = np.arange(40)
    with_nan = 2 - 0.03 * k + 0.05 * rng.standard_normal(40)
    with_nan[[6, 25]] = np.nan
    return {
        "random_walk": np.cumsum(rng.standard_normal(40)) * 0.1,
        "negative_steps": -np.repeat(np.arange(8, dtype=float), 5) * 0.3 - 1,
        "with_nan": with_nan,
        "saturating_accuracy": np.minimum(0.5 + 0.02 * k, 0.8) + 0.001 * (k % 3),
    }


SETTINGS = {
    "min_rel_threshold0": {"threshold": 0.0, "patience": 1, "factor": 0.5},
    "min_abs_patience0_cooldown1": {
        "threshold_mode": "abs",
        "threshold": 0.01,
        "patience": 0,
        "cooldown": 1,
        "factor": 0.9,
    },
    "max_rel_min_lr": {"mode": "max", "threshold": 0.01, "patience": 1, "min_lr": 0.06},
    "max_abs": {"mode": "max", "threshold_mode": "abs", "threshold": 0.005, "patience": 2},
}


def test_reduce_on_plateau_matches_torch_on_fresh_sequences(torch):
    sequences = _sequences()
    cases = [
        {"id": f"{s}/{q}", "sequence": q, "lr": 0.1, "kwargs": kw}
        for s, kw in SETTINGS.items()
        for q in sequences
    ]
    with jax.enable_x64(True):
        got = twins.run_plateau(cases, sequences)
    reduced = 0
    for case, (_, lrs, _) in zip(cases, got, strict=True):
        metrics = [float(v) for v in sequences[case["sequence"]]]
        want = make.torch_plateau(0.1, case["kwargs"], metrics)
        np.testing.assert_array_equal(lrs, want, err_msg=case["id"])
        reduced += want[-1] < 0.1
    assert reduced >= len(cases) // 2  # the settings do bite
