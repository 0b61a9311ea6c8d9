"""jopt.torch and jopt.keras against the installed torch and Keras, on problems not in the fixtures.

Runs only where torch (resp. Keras) is installed. The cases differ from the golden fixtures in
problem seed, shapes, hyperparameters and schedules; they are fixed (not redrawn per run) so that
a failure reproduces. Each runs 200 steps with the framework (the generator's runners: torch
in-process, Keras in a subprocess per dtype with KERAS_BACKEND=jax) and with the jopt twin given
the framework's learning rates, and the trajectories must agree at the golden tolerances. The
learning rates themselves must be those of the jopt.torch / jopt.keras schedule twins.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util

import jax
import numpy as np
import pytest

import jopt
from tests import conventions
from tests.golden import make_optimizer_fixtures as gen
from tests.golden.make_optimizer_fixtures import Case

STEPS, EVERY = 200, 10
SHAPES = ((4,), (3, 3))

TORCH_CASES = [
    Case("sgd_dampening_weight_decay_step", "SGD", 0.03,
        {"momentum": 0.7, "dampening": 0.1, "weight_decay": 0.02},
        {"name": "StepLR", "step_size": 30, "gamma": 0.5}, seed=101),
    Case("rmsprop_centered_momentum", "RMSprop", 0.005,
        {"alpha": 0.95, "eps": 1e-3, "momentum": 0.5, "centered": True}, seed=102),
    Case("adam_amsgrad_decoupled_multistep", "Adam", 0.02,
        {"betas": (0.85, 0.995), "amsgrad": True, "weight_decay": 0.03,
         "decoupled_weight_decay": True},
        {"name": "MultiStepLR", "milestones": [50, 120], "gamma": 0.3}, seed=103),
    Case("nadam_maximize_linear", "NAdam", 0.005,
        {"momentum_decay": 0.002, "weight_decay": 0.01, "maximize": True},
        {"name": "LinearLR", "start_factor": 0.2, "total_iters": 40}, seed=104, grad_sign=-1.0),
    Case("radam_decoupled_polynomial", "RAdam", 0.02,
        {"betas": (0.9, 0.995), "weight_decay": 0.05, "decoupled_weight_decay": True},
        {"name": "PolynomialLR", "total_iters": 150, "power": 2.0}, seed=105),
    Case("adagrad_lr_decay_restarts", "Adagrad", 0.05,
        {"lr_decay": 0.01, "initial_accumulator_value": 0.2, "eps": 1e-8},
        {"name": "CosineAnnealingWarmRestarts", "T_0": 40, "T_mult": 2, "eta_min": 1e-3}, seed=106),
]  # fmt: skip
TORCH_SCHEDULERS = {
    "StepLR": jopt.torch.StepLR,
    "MultiStepLR": jopt.torch.MultiStepLR,
    "LinearLR": jopt.torch.LinearLR,
    "PolynomialLR": jopt.torch.PolynomialLR,
    "CosineAnnealingWarmRestarts": jopt.torch.CosineAnnealingWarmRestarts,
}

# Powers of two as learning rates: exact in Keras' float32 learning-rate variable.
KERAS_CASES = [
    Case("sgd_nesterov_clipvalue_inverse_time", "SGD", 2**-5,
        {"momentum": 0.5, "nesterov": True, "clipvalue": 0.3},
        {"name": "InverseTimeDecay", "decay_steps": 50, "decay_rate": 0.5}, seed=201),
    Case("rmsprop_centered_momentum_weight_decay", "RMSprop", 2**-7,
        {"rho": 0.8, "epsilon": 1e-2, "momentum": 0.5, "centered": True, "weight_decay": 0.02},
        seed=202),
    Case("adam_amsgrad_global_clipnorm_polynomial", "Adam", 2**-6,
        {"beta_1": 0.85, "beta_2": 0.99, "amsgrad": True, "global_clipnorm": 0.8},
        {"name": "PolynomialDecay", "decay_steps": 150, "end_learning_rate": 1e-4, "power": 2.0},
        seed=203),
    Case("nadam_weight_decay_clipnorm", "Nadam", 2**-7,
        {"beta_1": 0.95, "weight_decay": 0.01, "clipnorm": 0.7}, seed=204),
    Case("adagrad_restarts", "Adagrad", 2**-4, {"initial_accumulator_value": 0.05, "epsilon": 1e-6},
        {"name": "CosineDecayRestarts", "first_decay_steps": 50, "t_mul": 1.5, "m_mul": 0.8,
         "alpha": 0.05},
        seed=205),
    Case("lion_weight_decay", "Lion", 2**-9, {"beta_1": 0.8, "beta_2": 0.999, "weight_decay": 0.1},
        seed=206),
]  # fmt: skip
KERAS_SCHEDULES = {
    "InverseTimeDecay": jopt.keras.InverseTimeDecay,
    "PolynomialDecay": jopt.keras.PolynomialDecay,
    "CosineDecayRestarts": jopt.keras.CosineDecayRestarts,
}


def _compare(module, framework: str, case: Case, dtype: str, result) -> None:
    prob = gen.problem(case.seed, SHAPES)
    lrs = None if case.schedule is None else result["lr"]
    if lrs is None:
        np.testing.assert_array_equal(result["lr"], case.lr, err_msg=f"{case.id}: recorded lr")
    got = conventions.run_twin(module, framework, case, dtype, prob, SHAPES, STEPS, EVERY, lrs)
    conventions.assert_trajectories_match(got, result["iterates"], dtype, f"{framework} {case.id}")


def _schedule_values(schedule, steps: int) -> np.ndarray:
    with jax.enable_x64(True):
        return np.asarray(jax.vmap(schedule)(np.arange(steps)))


# ------------------------------------------------------------------------------------------- torch


@pytest.fixture(scope="module")
def torch_runs():
    pytest.importorskip("torch")
    return {
        (case.id, dtype): gen.run_torch(case, dtype, STEPS, EVERY, SHAPES)
        for case in TORCH_CASES
        for dtype in conventions.DTYPES
    }


@pytest.mark.parametrize("dtype", conventions.DTYPES)
@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda case: case.id)
def test_trajectory_matches_live_torch(torch_runs, case, dtype):
    _compare(jopt.torch, "torch", case, dtype, torch_runs[case.id, dtype])


@pytest.mark.parametrize("case", [c for c in TORCH_CASES if c.schedule], ids=lambda c: c.id)
def test_live_torch_learning_rates_are_the_jopt_torch_schedulers(torch_runs, case):
    spec = dict(case.schedule)
    schedule = TORCH_SCHEDULERS[spec.pop("name")](case.lr, **spec)
    want = torch_runs[case.id, "float64"]["lr"]
    np.testing.assert_allclose(_schedule_values(schedule, STEPS), want, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(torch_runs[case.id, "float32"]["lr"], want)


# ------------------------------------------------------------------------------------------- keras


@pytest.fixture(scope="module")
def keras_runs():
    # Keras is imported only in the subprocesses (its backend is chosen at import).
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    with concurrent.futures.ThreadPoolExecutor(len(conventions.DTYPES)) as pool:
        futures = {
            dtype: pool.submit(gen.run_keras_subprocess, KERAS_CASES, dtype, STEPS, EVERY, SHAPES)
            for dtype in conventions.DTYPES
        }
        return {
            (case_id, dtype): result
            for dtype, future in futures.items()
            for case_id, result in future.result().items()
        }


@pytest.mark.parametrize("dtype", conventions.DTYPES)
@pytest.mark.parametrize("case", KERAS_CASES, ids=lambda case: case.id)
def test_trajectory_matches_live_keras(keras_runs, case, dtype):
    _compare(jopt.keras, "keras", case, dtype, keras_runs[case.id, dtype])


@pytest.mark.parametrize("case", [c for c in KERAS_CASES if c.schedule], ids=lambda c: c.id)
def test_live_keras_learning_rates_are_the_jopt_keras_schedules(keras_runs, case):
    spec = dict(case.schedule)
    schedule = KERAS_SCHEDULES[spec.pop("name")](case.lr, **spec)
    got = _schedule_values(schedule, STEPS)
    for dtype in conventions.DTYPES:
        conventions.assert_keras_learning_rates(got, keras_runs[case.id, dtype]["lr"], case.lr)
