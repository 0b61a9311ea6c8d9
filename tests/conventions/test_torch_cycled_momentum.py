"""jopt.torch optimizers under a OneCycleLR or CyclicLR that cycles their momentum, as torch's.

torch's OneCycleLR and CyclicLR (cycle_momentum=True) overwrite the optimizer's momentum (SGD,
RMSprop) or betas[0] (Adam and its variants) at every step; a jopt.torch optimizer given
`lr=jopt.torch.OneCycleLR(...)` or `CyclicLR(...)` must do the same with the schedule's
`.momentum`. Checked against `tests/golden/cycled_momentum.{json,npz}` (made by
`python -m tests.golden.make_cycled_momentum_fixtures` with the real torch; read here without
it): the momentum torch used at each step is the jopt.torch schedule's, and each case's jopt.torch
twin, built with the jopt.torch scheduler itself, reproduces every recorded iterate:
|x - x_torch| <= 1e-10 * max(1, |x_torch|) in float64, 1e-5 * max(1, |x_torch|) in float32.
Where torch is installed, other cases (seeds, shapes, hyperparameters) run against it live.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import jax
import numpy as np
import pytest

import jopt
from tests import conventions, helpers
from tests.golden import make_cycled_momentum_fixtures as gen
from tests.golden import make_optimizer_fixtures
from tests.golden.make_cycled_momentum_fixtures import Case, cyclic, one_cycle

FIXTURE = Path(__file__).resolve().parents[1] / "golden" / "cycled_momentum"
SCHEDULERS = {"OneCycleLR": jopt.torch.OneCycleLR, "CyclicLR": jopt.torch.CyclicLR}


@functools.cache
def golden() -> tuple[dict, dict[str, np.ndarray]]:
    manifest = json.loads(FIXTURE.with_suffix(".json").read_text())
    with np.load(FIXTURE.with_suffix(".npz")) as data:
        return manifest, dict(data)


def scheduler(case: Case, **changes):
    """The jopt.torch twin of the case's torch scheduler."""
    spec = {**case.schedule, **changes}
    return SCHEDULERS[spec.pop("name")](**spec)


def run_twin(case: Case, dtype: str, prob, shapes, steps: int, every: int, **changes):
    """The case's jopt.torch optimizer with its jopt.torch scheduler as `lr`: the iterates at
    steps 0, every, 2 every, ... as a (k, n) float64 array."""
    with jax.enable_x64(dtype == "float64"):
        start, grad = conventions.quadratic(prob, shapes, dtype, case.grad_sign)
        tx = conventions.build(jopt.torch, "torch", case, scheduler(case, **changes))
        trajectory, _ = helpers.run_jopt(tx, grad, start, steps)
        return helpers.flat_trajectory(trajectory)[::every]


def schedule_values(schedule, steps: int) -> np.ndarray:
    with jax.enable_x64(True):
        return np.asarray(jax.vmap(schedule)(np.arange(steps)))


def problem(seed: int) -> dict[str, np.ndarray]:
    _, arrays = golden()
    return {k: arrays[f"problem{seed}/{k}"] for k in ("a", "c", "x0")}


# -- the fixture ------------------------------------------------------------------------------


def test_fixture_holds_the_generators_current_cases():
    manifest, _ = golden()
    remake = "remake it: python -m tests.golden.make_cycled_momentum_fixtures"
    want = json.loads(json.dumps([dataclasses.asdict(case) for case in gen.CASES]))
    assert manifest["cases"] == want, f"not the generator's cases: {remake}"
    assert (manifest["steps"], manifest["every"]) == (gen.STEPS, gen.EVERY), remake
    assert tuple(tuple(s) for s in manifest["shapes"]) == gen.SHAPES, remake


def test_fixture_covers_sgd_rmsprop_adam_adamw_both_schedulers_and_their_modes():
    optimizers = {"SGD", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "RAdam"}
    assert {case.optimizer for case in gen.CASES} == optimizers
    for name in ("SGD", "RMSprop", "Adam", "AdamW"):
        used = {case.schedule["name"] for case in gen.CASES if case.optimizer == name}
        assert used == set(SCHEDULERS), name
    one_cycle_modes = {
        (case.schedule.get("anneal_strategy", "cos"), case.schedule.get("three_phase", False))
        for case in gen.CASES
        if case.schedule["name"] == "OneCycleLR"
    }
    assert {("cos", False), ("linear", True), ("linear", False)} <= one_cycle_modes
    cyclic_modes = {
        case.schedule.get("mode", "triangular")
        for case in gen.CASES
        if case.schedule["name"] == "CyclicLR"
    }
    assert cyclic_modes == {"triangular", "triangular2", "exp_range"}
    # SGD and RMSprop with no momentum of their own: torch's schedulers give them one.
    assert {case.optimizer for case in gen.CASES if case.kwargs.get("momentum", 0) == 0} >= {
        "SGD",
        "RMSprop",
    }


def test_fixture_trajectories_do_not_amplify_rounding_differences():
    manifest, _ = golden()
    assert manifest["max_amplification"] == conventions.MAX_AMPLIFICATION
    too_large = [
        f"{case_id} ({dtype}): {amp}"
        for case_id, by_dtype in manifest["amplification"].items()
        for dtype, amp in by_dtype.items()
        if not amp <= conventions.MAX_AMPLIFICATION[dtype]
    ]
    assert not too_large, too_large


@pytest.mark.parametrize("case", gen.CASES, ids=lambda case: case.id)
def test_recorded_learning_rates_and_momenta_are_the_jopt_torch_schedulers(case):
    _, arrays = golden()
    schedule = scheduler(case)
    assert schedule.momentum is not None
    for field, values in (("lr", schedule), ("momentum", schedule.momentum)):
        want = arrays[f"{case.id}/{field}"]
        got = schedule_values(values, len(want))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=field)


@pytest.mark.parametrize("dtype", conventions.DTYPES)
@pytest.mark.parametrize("case", gen.CASES, ids=lambda case: case.id)
def test_trajectory_matches_torch(case, dtype):
    _, arrays = golden()
    got = run_twin(case, dtype, problem(case.seed), gen.SHAPES, gen.STEPS, gen.EVERY)
    want = arrays[f"{case.id}/{dtype}/iterates"].astype(np.float64)
    conventions.assert_trajectories_match(got, want, dtype, f"torch {case.id}")


def test_the_fixture_tells_cycled_momentum_from_none():
    """Without the cycled momentum (cycle_momentum=False), the twins miss torch by far more
    than the tolerance: the comparison above would catch a momentum left out or ignored."""
    _, arrays = golden()
    for case in (gen.CASES[0], gen.CASES[5]):  # SGD without momentum of its own, and Adam
        got = run_twin(
            case, "float64", problem(case.seed), gen.SHAPES, gen.STEPS, gen.EVERY,
            cycle_momentum=False,
        )  # fmt: skip
        want = arrays[f"{case.id}/float64/iterates"]
        assert np.max(np.abs(got - want)) > 1e-3, case.id


# -- construction -----------------------------------------------------------------------------

WITH_MOMENTUM = ("SGD", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "RAdam")


@pytest.mark.parametrize("name", WITH_MOMENTUM)
def test_the_given_momentum_is_ignored_under_a_cycling_lr(name):
    """torch's schedulers overwrite momentum / betas[0]: two values give the same steps."""
    lr = jopt.torch.OneCycleLR(0.05, total_steps=20)
    arg = "betas" if name not in ("SGD", "RMSprop") else "momentum"
    values = ((0.5, 0.999), (0.0, 0.999)) if arg == "betas" else (0.5, 0.0)
    params = (np.linspace(-1.0, 1.0, 5, dtype=np.float32),)

    def grad(p):
        return tuple(2.0 * x - 0.3 for x in p)

    runs = [
        helpers.run_jopt(getattr(jopt.torch, name)(lr=lr, **{arg: v}), grad, params, 20)
        for v in values
    ]
    np.testing.assert_array_equal(*(helpers.flat_trajectory(t) for t, _ in runs))
    # The state holds the cycled value used at the last step, as torch's param group does.
    held = jopt.get_hparams(runs[0][1])["momentum" if arg == "momentum" else "b1"]
    np.testing.assert_allclose(held, lr.momentum(19), rtol=1e-6)


@pytest.mark.parametrize("name", ["Adagrad", "Adadelta"])
@pytest.mark.parametrize("schedule", ["OneCycleLR", "CyclicLR"])
def test_optimizers_without_momentum_refuse_a_cycling_lr_as_torch(name, schedule):
    make = SCHEDULERS[schedule]
    args = (0.1,) if schedule == "OneCycleLR" else (0.01, 0.1)
    kwargs = {"total_steps": 100} if schedule == "OneCycleLR" else {}
    message = (
        f"jopt.torch.{name}: lr cycles the momentum (a OneCycleLR or CyclicLR with "
        f"cycle_momentum=True), but {name} has neither momentum nor betas"
    )
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        getattr(jopt.torch, name)(lr=make(*args, **kwargs))
    # cycle_momentum=False: the schedule cycles the learning rate only, and is accepted.
    assert callable(getattr(jopt.torch, name)(lr=make(*args, cycle_momentum=False, **kwargs)).init)


def test_torch_refuses_a_cycling_scheduler_on_adagrad_and_adadelta():
    torch = pytest.importorskip("torch")
    for name in ("Adagrad", "Adadelta"):
        optimizer = getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(2))])
        with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
            torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.1, total_steps=100)


def test_a_schedule_as_momentum_points_to_the_cycling_schedulers():
    with pytest.raises(TypeError, match="pass jopt.torch.OneCycleLR or jopt.torch.CyclicLR"):
        jopt.torch.SGD(lr=0.1, momentum=jopt.torch.OneCycleLR(0.1, total_steps=10).momentum)


# -- live -------------------------------------------------------------------------------------

LIVE_STEPS, LIVE_EVERY = 200, 10
LIVE_SHAPES = ((4,), (3, 3))
LIVE_CASES = [
    Case("sgd_momentum_onecycle_cos_three_phase", "SGD", 0.04, {"momentum": 0.5},
        one_cycle(0.04, three_phase=True, pct_start=0.2), seed=301),
    Case("sgd_momentum0_dampening_cyclic_exp_range", "SGD", 0.04,
        {"dampening": 0.3, "weight_decay": 0.02},
        cyclic(0.004, 0.04, step_size_up=15, step_size_down=25, mode="exp_range", gamma=0.998,
               base_momentum=0.75, max_momentum=0.95), seed=302),
    Case("sgd_nesterov_onecycle_linear", "SGD", 0.04, {"momentum": 0.9, "nesterov": True},
        one_cycle(0.04, anneal_strategy="linear", base_momentum=0.8), seed=303),
    Case("rmsprop_momentum0_onecycle_linear_three_phase", "RMSprop", 0.01,
        {"alpha": 0.9, "eps": 1e-2, "weight_decay": 0.01},
        one_cycle(0.01, anneal_strategy="linear", three_phase=True), seed=304),
    Case("adam_decoupled_cyclic_triangular", "Adam", 0.01,
        {"betas": (0.5, 0.99), "weight_decay": 0.02, "decoupled_weight_decay": True},
        cyclic(0.002, 0.015, step_size_up=35, base_momentum=0.75, max_momentum=0.92), seed=306),
    Case("adamw_amsgrad_onecycle_cos", "AdamW", 0.01, {"amsgrad": True, "weight_decay": 0.1},
        one_cycle(0.015, pct_start=0.35, base_momentum=0.8, max_momentum=0.9), seed=308),
]  # fmt: skip


@pytest.fixture(scope="module")
def torch_runs():
    pytest.importorskip("torch")
    return {
        (case.id, dtype): gen.run_torch(case, dtype, LIVE_STEPS, LIVE_EVERY, LIVE_SHAPES)
        for case in LIVE_CASES
        for dtype in conventions.DTYPES
    }


@pytest.mark.parametrize("dtype", conventions.DTYPES)
@pytest.mark.parametrize("case", LIVE_CASES, ids=lambda case: case.id)
def test_trajectory_matches_live_torch(torch_runs, case, dtype):
    result = torch_runs[case.id, dtype]
    schedule = scheduler(case)
    for field, values in (("lr", schedule), ("momentum", schedule.momentum)):
        got = schedule_values(values, LIVE_STEPS)
        np.testing.assert_allclose(got, result[field], rtol=1e-12, atol=1e-15, err_msg=field)
    prob = make_optimizer_fixtures.problem(case.seed, LIVE_SHAPES)
    got = run_twin(case, dtype, prob, LIVE_SHAPES, LIVE_STEPS, LIVE_EVERY)
    conventions.assert_trajectories_match(got, result["iterates"], dtype, f"torch {case.id}")
