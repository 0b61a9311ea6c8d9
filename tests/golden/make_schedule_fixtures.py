"""Writes tests/golden/schedules.json: learning rates computed by torch and Keras themselves.

Run from the repository root (needs torch and keras; the tests that read the file need neither):

    .venv/bin/python -m tests.golden.make_schedule_fixtures

Each schedule case records the framework, the class, its constructor arguments, the optimizer's
base learning rate and the values at steps 0..N, past every boundary and well past the end:

- torch: an SGD (momentum 0.9) on one float64 parameter; value k is `param_groups[0]["lr"]` after
  k `scheduler.step()` calls, and, for schedulers that cycle it, `param_groups[0]["momentum"]`.
  torch's schedulers compute with Python floats (float64).
- keras: the schedule object called on steps 0..N, in float64 (`jax_enable_x64`, floatx
  "float64" and 64-bit type promotion, see `_keras_float64`), so the numbers are the formula's
  and not float32 rounding.
- ReduceLROnPlateau (torch): the lr after each `scheduler.step(metric)`, for fixed metric
  sequences (noise, plateaus, negative losses, accuracies, exact decimal stairs) times settings.

Values are written with Python's shortest round-trip repr (nothing rounded), one case per line.
The functions `torch_schedule`, `keras_schedule` and `torch_plateau` are also what the live tests
(tests/schedules/test_live_frameworks.py) call with other arguments; they import torch and keras
only when called.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pathlib
from typing import Any

import numpy as np

PATH = pathlib.Path(__file__).with_name("schedules.json")
SGD_MOMENTUM = 0.9  # the torch optimizer's momentum (overridden by schedulers that cycle it)
CYCLES_MOMENTUM = ("OneCycleLR", "CyclicLR")

# (id, class, base lr, kwargs, last step)
TORCH_CASES: list[tuple[str, str, float, dict[str, Any], int]] = [
    ("StepLR", "StepLR", 0.1, {"step_size": 7, "gamma": 0.5}, 60),
    # Step sizes whose multiples k * n, divided by n the way XLA does it (times 1/n), land just
    # below k: 41 in float32 (steps 41, 82, 164), 49 in float64 (49, 98, 147).
    ("StepLR_41", "StepLR", 0.1, {"step_size": 41, "gamma": 0.9}, 170),
    ("StepLR_49", "StepLR", 0.1, {"step_size": 49, "gamma": 0.9}, 150),
    (
        "MultiStepLR_repeated",
        "MultiStepLR",
        0.1,
        {"milestones": [5, 12, 12, 30], "gamma": 0.3},
        60,
    ),
    ("ExponentialLR", "ExponentialLR", 0.2, {"gamma": 0.95}, 120),
    ("CosineAnnealingLR", "CosineAnnealingLR", 0.1, {"T_max": 20, "eta_min": 0.001}, 60),
    ("CosineAnnealingLR_to_zero", "CosineAnnealingLR", 0.05, {"T_max": 7, "eta_min": 0.0}, 35),
    (
        "CosineAnnealingWarmRestarts_mult1",
        "CosineAnnealingWarmRestarts",
        0.1,
        {"T_0": 10, "T_mult": 1, "eta_min": 0.001},
        60,
    ),
    (
        "CosineAnnealingWarmRestarts_mult2",
        "CosineAnnealingWarmRestarts",
        0.1,
        {"T_0": 5, "T_mult": 2, "eta_min": 0.002},
        160,
    ),
    # Restarts where the same division lands just below a cycle's start: T_0 = 41 (float64: 41,
    # 82, 123, 164; float32: 123), T_0 = 61 with T_mult = 2 (float32: 61, 183).
    (
        "CosineAnnealingWarmRestarts_T0_41",
        "CosineAnnealingWarmRestarts",
        0.1,
        {"T_0": 41, "T_mult": 1, "eta_min": 0.001},
        170,
    ),
    (
        "CosineAnnealingWarmRestarts_T0_61_mult2",
        "CosineAnnealingWarmRestarts",
        0.1,
        {"T_0": 61, "T_mult": 2, "eta_min": 0.0},
        200,
    ),
    (
        "OneCycleLR_cos",
        "OneCycleLR",
        0.1,
        {"max_lr": 0.1, "total_steps": 100, "pct_start": 0.3, "anneal_strategy": "cos"},
        99,
    ),
    (
        "OneCycleLR_linear",
        "OneCycleLR",
        0.1,
        {
            "max_lr": 0.5,
            "total_steps": 37,
            "pct_start": 0.25,
            "anneal_strategy": "linear",
            "div_factor": 10.0,
            "final_div_factor": 100.0,
        },
        36,
    ),
    (
        "OneCycleLR_cos_three_phase",
        "OneCycleLR",
        0.1,
        {
            "max_lr": 0.3,
            "total_steps": 60,
            "pct_start": 0.3,
            "anneal_strategy": "cos",
            "three_phase": True,
            "base_momentum": 0.8,
            "max_momentum": 0.99,
        },
        59,
    ),
    (
        "OneCycleLR_linear_three_phase",
        "OneCycleLR",
        0.1,
        {
            "max_lr": 0.2,
            "total_steps": 45,
            "pct_start": 0.2,
            "anneal_strategy": "linear",
            "three_phase": True,
        },
        44,
    ),
    (
        "CyclicLR_triangular",
        "CyclicLR",
        0.1,
        {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "mode": "triangular"},
        60,
    ),
    (
        "CyclicLR_triangular2",
        "CyclicLR",
        0.1,
        {
            "base_lr": 0.001,
            "max_lr": 0.1,
            "step_size_up": 4,
            "step_size_down": 6,
            "mode": "triangular2",
        },
        80,
    ),
    (
        "CyclicLR_exp_range",
        "CyclicLR",
        0.1,
        {
            "base_lr": 0.01,
            "max_lr": 0.1,
            "step_size_up": 6,
            "mode": "exp_range",
            "gamma": 0.98,
            "base_momentum": 0.85,
            "max_momentum": 0.95,
        },
        120,
    ),
    (
        "LinearLR_warmup",
        "LinearLR",
        0.1,
        {"start_factor": 1 / 3, "end_factor": 1.0, "total_iters": 10},
        30,
    ),
    (
        "LinearLR_decay",
        "LinearLR",
        0.1,
        {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 25},
        40,
    ),
    ("PolynomialLR_power2", "PolynomialLR", 0.1, {"total_iters": 20, "power": 2.0}, 40),
    ("PolynomialLR_sqrt", "PolynomialLR", 0.1, {"total_iters": 15, "power": 0.5}, 30),
    ("ConstantLR", "ConstantLR", 0.1, {"factor": 0.25, "total_iters": 8}, 20),
    (
        "SequentialLR_linear_cosine",
        "SequentialLR",
        0.1,
        {
            "schedulers": [
                {"class": "LinearLR", "kwargs": {"start_factor": 0.1, "total_iters": 5}},
                {"class": "CosineAnnealingLR", "kwargs": {"T_max": 30, "eta_min": 0.001}},
            ],
            "milestones": [5],
        },
        100,
    ),
    (
        "ChainedScheduler_constant_exponential",
        "ChainedScheduler",
        0.1,
        {
            "schedulers": [
                {"class": "ConstantLR", "kwargs": {"factor": 0.5, "total_iters": 6}},
                {"class": "ExponentialLR", "kwargs": {"gamma": 0.9}},
            ]
        },
        30,
    ),
]

# (id, class, kwargs, last step)
KERAS_CASES: list[tuple[str, str, dict[str, Any], int]] = [
    (
        "ExponentialDecay",
        "ExponentialDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.8},
        60,
    ),
    (
        "ExponentialDecay_staircase",
        "ExponentialDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.8, "staircase": True},
        60,
    ),
    (
        "PiecewiseConstantDecay",
        "PiecewiseConstantDecay",
        {"boundaries": [5, 12, 30], "values": [1.0, 0.5, 0.1, 0.01]},
        40,
    ),
    (
        "PolynomialDecay",
        "PolynomialDecay",
        {
            "initial_learning_rate": 0.1,
            "decay_steps": 10,
            "end_learning_rate": 0.001,
            "power": 2.0,
        },
        45,
    ),
    (
        "PolynomialDecay_cycle",
        "PolynomialDecay",
        {
            "initial_learning_rate": 0.1,
            "decay_steps": 10,
            "end_learning_rate": 0.001,
            "power": 2.0,
            "cycle": True,
        },
        45,
    ),
    (
        "InverseTimeDecay",
        "InverseTimeDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5},
        40,
    ),
    (
        "InverseTimeDecay_staircase",
        "InverseTimeDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5, "staircase": True},
        40,
    ),
    (
        "CosineDecay",
        "CosineDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 20, "alpha": 0.05},
        40,
    ),
    (
        "CosineDecay_warmup",
        "CosineDecay",
        {
            "initial_learning_rate": 0.01,
            "decay_steps": 20,
            "alpha": 0.1,
            "warmup_target": 0.1,
            "warmup_steps": 8,
        },
        50,
    ),
    (
        "CosineDecayRestarts",
        "CosineDecayRestarts",
        {
            "initial_learning_rate": 0.1,
            "first_decay_steps": 5,
            "t_mul": 2.0,
            "m_mul": 0.5,
            "alpha": 0.1,
        },
        160,
    ),
    (
        "CosineDecayRestarts_tmul1",
        "CosineDecayRestarts",
        {
            "initial_learning_rate": 0.1,
            "first_decay_steps": 8,
            "t_mul": 1.0,
            "m_mul": 0.8,
            "alpha": 0.0,
        },
        50,
    ),
]


def _plateau_sequences() -> dict[str, list[float]]:
    """Metric sequences of 60 evaluations each (seeded, so the file is reproducible)."""
    rng = np.random.default_rng(20240601)
    k = np.arange(60)
    stairs = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    sequences = {
        # a loss falling ever more slowly under noise
        "noisy_descent": 1 / (1 + 0.1 * k) + 0.02 * rng.standard_normal(60),
        # exact repeats: plateaus broken by drops of various sizes
        "plateaus": np.repeat([5.0, 4.0, 3.99995, 3.5, 3.5, 2.0], 10),
        # a negative loss (a log-likelihood), with noise and a long flat tail
        "negative_noisy": np.concatenate(
            [-1 - 0.05 * k[:30] + 0.01 * rng.standard_normal(30), np.full(30, -2.5)]
        ),
        # a constant negative metric: in rel mode torch counts it as an improvement every time
        "negative_flat": np.full(60, -2.0),
        # an accuracy rising to a noisy plateau (for mode "max")
        "accuracy": 0.9 - 0.4 * np.exp(-k / 8) + 0.005 * rng.standard_normal(60),
        # decimal steps of 0.1, each held for 3, 2 or 1 evaluations: abs threshold 0.1 decides
        # between "improved" and not on float rounding alone
        "decimal_stairs": [v for i, v in enumerate(stairs * 3) for _ in range(1 + i % 3)][:60],
        # spikes and drops across zero
        "across_zero": np.concatenate(
            [np.linspace(0.5, -0.5, 20), 0.3 * np.sin(k[:40]) - 0.5 + 0.1 * (k[:40] % 7 == 0)]
        ),
    }
    return {name: [float(v) for v in values] for name, values in sequences.items()}


# name -> kwargs of ReduceLROnPlateau (torch's defaults where not given)
PLATEAU_SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "min_rel_patience2": {"factor": 0.5, "patience": 2, "threshold": 0.01},
    "min_abs_cooldown": {
        "factor": 0.5,
        "patience": 1,
        "threshold": 0.05,
        "threshold_mode": "abs",
        "cooldown": 3,
    },
    "min_abs_tenth": {"factor": 0.5, "patience": 0, "threshold": 0.1, "threshold_mode": "abs"},
    "min_lr_floor": {"factor": 0.3, "patience": 0, "min_lr": 0.001},
    "large_eps": {"factor": 0.5, "patience": 1, "eps": 0.01},
    "max_rel": {"mode": "max", "factor": 0.5, "patience": 2, "threshold": 0.001},
    "max_abs_cooldown": {
        "mode": "max",
        "factor": 0.2,
        "patience": 1,
        "threshold": 0.02,
        "threshold_mode": "abs",
        "cooldown": 2,
        "min_lr": 1e-4,
    },
}
PLATEAU_LR = 0.1


# -- torch ---------------------------------------------------------------------------------------


def _torch_optimizer(lr: float):
    import torch

    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    return torch.optim.SGD([param], lr=lr, momentum=SGD_MOMENTUM)


def _torch_scheduler(optimizer, cls: str, kwargs: dict[str, Any]):
    from torch.optim import lr_scheduler

    kwargs = dict(kwargs)
    if cls in ("SequentialLR", "ChainedScheduler"):
        kwargs["schedulers"] = [
            _torch_scheduler(optimizer, s["class"], s["kwargs"]) for s in kwargs["schedulers"]
        ]
        if cls == "ChainedScheduler":
            return lr_scheduler.ChainedScheduler(kwargs["schedulers"], optimizer)
    return getattr(lr_scheduler, cls)(optimizer, **kwargs)


def torch_schedule(cls: str, lr: float, kwargs: dict[str, Any], last_step: int) -> dict:
    """torch's lr (and cycled momentum) after 0..last_step `scheduler.step()` calls."""
    import warnings

    optimizer = _torch_optimizer(lr)
    scheduler = _torch_scheduler(optimizer, cls, kwargs)
    group = optimizer.param_groups[0]
    cycles = cls in CYCLES_MOMENTUM and kwargs.get("cycle_momentum", True)
    values, momenta = [], []
    for step in range(last_step + 1):
        if step:
            optimizer.step()  # no gradient: only silences the "scheduler before optimizer" warning
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # SequentialLR's epoch argument
                scheduler.step()
        values.append(float(group["lr"]))
        momenta.append(float(group["momentum"]))
    return {"values": values, "momentum": momenta if cycles else None}


def torch_plateau(lr: float, kwargs: dict[str, Any], metrics: list[float]) -> list[float]:
    """torch's lr after each `ReduceLROnPlateau.step(metric)`."""
    from torch.optim import lr_scheduler

    optimizer = _torch_optimizer(lr)
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
    lrs = []
    for metric in metrics:
        optimizer.step()
        scheduler.step(metric)
        lrs.append(float(optimizer.param_groups[0]["lr"]))
    return lrs


# -- keras ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _keras_float64():
    """Keras (JAX backend) computing in float64, as it does on its TensorFlow backend.

    jax x64 on and floatx "float64" are not enough: on its JAX and torch backends Keras' type
    promotion (`keras.src.backend.common.dtypes.result_type`) turns every float64 result into
    float32, so `ops.cos` of a float64 tensor is float32. For the time of the call that table
    keeps float64 (the TensorFlow backend's rule); the schedules' code runs unchanged.
    """
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax
    import keras
    from keras.src.backend.common import dtypes

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"needs Keras' JAX backend, got {keras.backend.backend()!r}")
    previous = keras.config.floatx()
    narrowed = dtypes.BIT64_TO_BIT32_DTYPE.pop("float64")
    try:
        with jax.enable_x64(True):
            keras.config.set_floatx("float64")
            yield keras
    finally:
        keras.config.set_floatx(previous)
        dtypes.BIT64_TO_BIT32_DTYPE["float64"] = narrowed


def keras_schedule(cls: str, kwargs: dict[str, Any], last_step: int) -> list[float]:
    """Keras' schedule at steps 0..last_step, computed in float64."""
    import jax

    with _keras_float64() as keras:
        schedule = getattr(keras.optimizers.schedules, cls)(**kwargs)
        # Op by op, in Python: an eager `ops.cond` compiles at every call (minutes), and under
        # `jax.jit` XLA's float64 log lands CosineDecayRestarts one cycle early at some restarts
        # (t_mul 2, first 5: step 35 gives the floor 0.01, not the restart 0.02125); op by op it
        # gives the formula's value, as Keras in float32 (jit or not) does.
        with jax.disable_jit():
            values = [schedule(step) for step in range(last_step + 1)]
        dtypes = {str(np.asarray(v).dtype) for v in values}
        if dtypes != {"float64"}:
            raise RuntimeError(f"Keras {cls} computed in {dtypes}, not float64")
        return [float(np.asarray(v)) for v in values]


# -- the file ------------------------------------------------------------------------------------


def make() -> dict:
    import keras
    import torch

    schedules = []
    for case_id, cls, lr, kwargs, last_step in TORCH_CASES:
        out = torch_schedule(cls, lr, kwargs, last_step)
        case = {"id": f"torch/{case_id}", "framework": "torch", "class": cls, "lr": lr}
        case |= {"kwargs": kwargs, "values": out["values"]}
        if out["momentum"] is not None:
            case["momentum"] = out["momentum"]
        schedules.append(case)
    for case_id, cls, kwargs, last_step in KERAS_CASES:
        values = keras_schedule(cls, kwargs, last_step)
        case = {"id": f"keras/{case_id}", "framework": "keras", "class": cls, "lr": None}
        schedules.append(case | {"kwargs": kwargs, "values": values})

    sequences = _plateau_sequences()
    plateau = [
        {
            "id": f"{setting}/{sequence}",
            "sequence": sequence,
            "lr": PLATEAU_LR,
            "kwargs": PLATEAU_SETTINGS[setting],
            "lrs": torch_plateau(PLATEAU_LR, PLATEAU_SETTINGS[setting], sequences[sequence]),
        }
        for setting, sequence in itertools.product(PLATEAU_SETTINGS, sequences)
    ]
    return {
        "made_by": "tests/golden/make_schedule_fixtures.py",
        "versions": {"torch": torch.__version__, "keras": keras.__version__},
        "schedules": schedules,
        "plateau": {"sequences": sequences, "cases": plateau},
    }


def dumps(fixtures: dict) -> str:
    """The fixtures as JSON with one line per case and per metric sequence (small, diffable)."""

    def block(open_, items, close, indent):
        pad = " " * indent
        return f"{open_}\n" + ",\n".join(pad + item for item in items) + f"\n{pad[:-1]}{close}"

    sequences = fixtures["plateau"]["sequences"]
    plateau = {
        "sequences": block(
            "{", [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in sequences.items()], "}", 3
        ),
        "cases": block("[", map(json.dumps, fixtures["plateau"]["cases"]), "]", 3),
    }
    top = {
        "made_by": json.dumps(fixtures["made_by"]),
        "versions": json.dumps(fixtures["versions"]),
        "schedules": block("[", map(json.dumps, fixtures["schedules"]), "]", 2),
        "plateau": block("{", [f'"{k}": {v}' for k, v in plateau.items()], "}", 2),
    }
    text = block("{", [f'"{k}": {v}' for k, v in top.items()], "}", 1) + "\n"
    assert json.loads(text) == fixtures
    return text


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    fixtures = make()
    PATH.write_text(dumps(fixtures))
    counts = len(fixtures["schedules"]), len(fixtures["plateau"]["cases"])
    size = PATH.stat().st_size
    print(f"wrote {PATH} ({counts[0]} schedules, {counts[1]} plateau cases, {size} bytes)")


if __name__ == "__main__":
    main()
