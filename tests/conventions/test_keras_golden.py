"""jopt.keras against trajectories recorded from the real keras.optimizers (no Keras needed).

`tests/golden/optimizers/keras.{json,npz}` holds, for every Keras optimizer and its options
(Keras' global `weight_decay`, `clipnorm` / `clipvalue` / `global_clipnorm`), the iterates of
1000 steps on a quadratic in float64 and float32 (every 50th step; Keras 3 on its JAX backend,
each step a jitted `stateless_apply` as in `model.fit`) and the learning rate each step used
(a power of two, or a keras.optimizers.schedules schedule changing every step). Keras keeps the
learning rate in float32 even for float64 variables; jopt gets the same float32 values, so the
float64 comparison is exact up to rounding. Each case's jopt.keras twin, given the same arguments,
must reproduce every recorded iterate:
|x - x_keras| <= 1e-10 * max(1, |x_keras|) in float64, 1e-5 * max(1, |x_keras|) in float32.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jopt
from tests import conventions
from tests.golden import make_optimizer_fixtures as gen

GOLDEN = conventions.load("keras")
CONSTANT = [case for case in GOLDEN.cases if case.schedule is None]
SCHEDULED = [case for case in GOLDEN.cases if case.schedule is not None]
# The jopt.keras twin of each schedule the fixtures use.
SCHEDULES = {
    "ExponentialDecay": jopt.keras.ExponentialDecay,
    "CosineDecay": jopt.keras.CosineDecay,
}
CLIPPING = ("clipnorm", "clipvalue", "global_clipnorm")


def test_fixtures_cover_every_keras_optimizer_and_option():
    optimizers = set(jopt.keras.__all__) - set(SCHEDULES) - {
        "CosineDecayRestarts", "InverseTimeDecay", "PiecewiseConstantDecay", "PolynomialDecay",
        "Muon",  # its fixtures are tests/golden/muon (test_muon_twins.py)
    }  # fmt: skip
    assert {case.optimizer for case in CONSTANT} == optimizers
    assert {case.optimizer for case in SCHEDULED} == optimizers
    with_decay = {case.optimizer for case in GOLDEN.cases if case.kwargs.get("weight_decay")}
    assert with_decay == optimizers
    options = {key for case in GOLDEN.cases for key, value in case.kwargs.items() if value}
    assert {*CLIPPING, "momentum", "nesterov", "centered", "amsgrad"} <= options
    assert {case.schedule["name"] for case in SCHEDULED} == set(SCHEDULES)


def test_fixture_trajectories_do_not_amplify_rounding_differences():
    conventions.assert_well_conditioned(GOLDEN)


def test_fixtures_hold_the_generators_current_cases():
    conventions.assert_made_from_the_generators_cases(GOLDEN, gen.KERAS_CASES)


@pytest.mark.parametrize("dtype", conventions.DTYPES)
@pytest.mark.parametrize("case", GOLDEN.cases, ids=repr)
def test_trajectory_matches_keras(case, dtype):
    got = conventions.run_golden(jopt.keras, GOLDEN, case, dtype)
    want = GOLDEN.iterates(case, dtype)
    conventions.assert_trajectories_match(got, want, dtype, f"keras {case.id}")


@pytest.mark.parametrize("case", SCHEDULED, ids=repr)
def test_recorded_learning_rates_are_the_jopt_keras_schedules(case):
    spec = dict(case.schedule)
    schedule = SCHEDULES[spec.pop("name")](case.lr, **spec)
    with jax.enable_x64(True):
        got = np.asarray(jax.vmap(schedule)(np.arange(GOLDEN.manifest["steps"])))
    for dtype in conventions.DTYPES:
        conventions.assert_keras_learning_rates(got, GOLDEN.learning_rates(case, dtype), case.lr)
