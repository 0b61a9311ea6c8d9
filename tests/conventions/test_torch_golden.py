"""jopt.torch against trajectories recorded from the real torch.optim (no torch needed).

`tests/golden/optimizers/torch.{json,npz}` holds, for every torch optimizer and its options, the
iterates of 1000 steps on a quadratic in float64 and float32 (every 50th step) and the learning
rate torch used at each step (constant, or from an lr_scheduler stepped every step). Each case's
jopt.torch twin, given the same arguments (and, under a schedule, torch's learning rates), must
reproduce every recorded iterate:
|x - x_torch| <= 1e-10 * max(1, |x_torch|) in float64, 1e-5 * max(1, |x_torch|) in float32.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jopt
from tests import conventions
from tests.golden import make_optimizer_fixtures as gen

GOLDEN = conventions.load("torch")
CONSTANT = [case for case in GOLDEN.cases if case.schedule is None]
SCHEDULED = [case for case in GOLDEN.cases if case.schedule is not None]
# The jopt.torch twin of each lr_scheduler the fixtures use.
SCHEDULERS = {
    "ExponentialLR": jopt.torch.ExponentialLR,
    "CosineAnnealingLR": jopt.torch.CosineAnnealingLR,
}
NO_WEIGHT_DECAY = {"Rprop"}  # torch's Rprop has no weight_decay argument


def test_fixtures_cover_every_torch_optimizer_with_and_without_a_schedule():
    optimizers = set(jopt.torch.__all__) - set(SCHEDULERS) - {
        "ChainedScheduler", "ConstantLR", "CosineAnnealingWarmRestarts", "CyclicLR", "LambdaLR",
        "LinearLR", "MultiStepLR", "MultiplicativeLR", "OneCycleLR", "PolynomialLR",
        "ReduceLROnPlateau", "SequentialLR", "StepLR",
        "Muon",  # matrices only: its fixtures are tests/golden/muon (test_muon_twins.py)
        "LBFGS",  # reads the loss: its fixtures are tests/golden/lbfgs (test_torch_lbfgs.py)
    }  # fmt: skip
    assert {case.optimizer for case in CONSTANT} == optimizers
    assert {case.optimizer for case in SCHEDULED} == optimizers
    with_decay = {case.optimizer for case in GOLDEN.cases if case.kwargs.get("weight_decay")}
    assert with_decay == optimizers - NO_WEIGHT_DECAY


def test_fixture_trajectories_do_not_amplify_rounding_differences():
    conventions.assert_well_conditioned(GOLDEN)


def test_fixtures_hold_the_generators_current_cases():
    conventions.assert_made_from_the_generators_cases(GOLDEN, gen.TORCH_CASES)


@pytest.mark.parametrize("dtype", conventions.DTYPES)
@pytest.mark.parametrize("case", GOLDEN.cases, ids=repr)
def test_trajectory_matches_torch(case, dtype):
    got = conventions.run_golden(jopt.torch, GOLDEN, case, dtype)
    want = GOLDEN.iterates(case, dtype)
    conventions.assert_trajectories_match(got, want, dtype, f"torch {case.id}")


@pytest.mark.parametrize("case", SCHEDULED, ids=repr)
def test_recorded_learning_rates_are_the_jopt_torch_schedulers(case):
    spec = dict(case.schedule)
    schedule = SCHEDULERS[spec.pop("name")](case.lr, **spec)
    want = GOLDEN.learning_rates(case, "float64")
    with jax.enable_x64(True):
        got = np.asarray(jax.vmap(schedule)(np.arange(len(want))))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15 * case.lr)
    np.testing.assert_array_equal(GOLDEN.learning_rates(case, "float32"), want)
