"""`jopt.torch.CyclicLR` with torch's scale_fn and scale_mode, against torch's CyclicLR run now.

torch's scale_fn replaces mode (and gamma): the amplitude is scaled by `scale_fn(cycle)`, the
cycle number from 1 (scale_mode "cycle"), or by `scale_fn(last_epoch)`, the step count from 0
("iterations"), and the cycled momentum by the same factor. Each case's functions are written with
arithmetic operators only, so that the same function serves torch (Python numbers) and jopt (JAX
arrays). jopt's twin runs jitted in float64 and agrees with torch's lr and momentum within 1e-9
relative at every step. Skipped where torch is not installed; the closed-form tables in
tests/schedules/test_cyclic.py check the same formulas without torch.
"""

from __future__ import annotations

import functools

import jax
import pytest

from tests.golden import make_schedule_fixtures as make
from tests.schedules import twins


def _inverse(cycle):
    return 1 / cycle


def _geometric(cycle):
    return 0.7 ** (cycle - 1)


def _hyperbolic(step):
    return 1 / (1 + step / 30)


def _damped(step):
    return 0.5 * (1 + 0.98**step)


# (id, kwargs of CyclicLR, last step)
CASES = [
    (
        "cycle_inverse",
        {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "scale_fn": _inverse},
        40,
    ),
    (
        "cycle_geometric_asymmetric_ignores_mode",
        {
            "base_lr": 0.05,
            "max_lr": 0.5,
            "step_size_up": 2,
            "step_size_down": 5,
            "mode": "exp_range",
            "gamma": 0.5,
            "scale_fn": _geometric,
            "scale_mode": "cycle",
            "base_momentum": 0.85,
            "max_momentum": 0.95,
        },
        45,
    ),
    (
        "iterations_hyperbolic",
        {
            "base_lr": 0.001,
            "max_lr": 0.01,
            "step_size_up": 4,
            "step_size_down": 1,
            "scale_fn": _hyperbolic,
            "scale_mode": "iterations",
        },
        40,
    ),
    (
        "iterations_damped_ignores_mode",
        {
            "base_lr": 0.0,
            "max_lr": 1.0,
            "step_size_up": 5,
            "mode": "triangular2",
            "scale_fn": _damped,
            "scale_mode": "iterations",
        },
        50,
    ),
]


@functools.cache
def _jopt_values() -> dict:
    """Each case's lr (name) and momentum (name + "/momentum") in float64, one jitted program."""
    with jax.enable_x64(True):
        schedules = {}
        for name, kwargs, _ in CASES:
            schedule = twins.twin("torch", "CyclicLR", None, kwargs)
            schedules[name] = schedule
            schedules[name + "/momentum"] = schedule.momentum
        return twins.evaluate_all(schedules, 1 + max(last for *_, last in CASES))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_scale_fn_matches_torch_for_lr_and_momentum(case):
    pytest.importorskip("torch")
    name, kwargs, last = case
    want = make.torch_schedule("CyclicLR", 0.1, kwargs, last)
    got = _jopt_values()
    twins.assert_close(got[name][: last + 1], want["values"], 1e-9, what=f"{name} lr")
    momentum = got[name + "/momentum"][: last + 1]
    twins.assert_close(momentum, want["momentum"], 1e-9, what=f"{name} momentum")
