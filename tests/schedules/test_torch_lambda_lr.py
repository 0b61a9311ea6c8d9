"""`jopt.torch.LambdaLR` and `MultiplicativeLR` against torch: golden values made by torch
(tests/golden/lambda_schedules.json), live runs where torch is installed, and the refusals.

Both ways of calling the user's function are checked: on the host with Python ints (tabulated
up to `total_iters`, as torch calls it) and, for LambdaLR with an arithmetic function, inside
the compiled step on a traced step count.
"""

from __future__ import annotations

import functools
import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt._src.errors import ArgumentError
from tests.golden.lr_lambdas import LAMBDAS, TRACEABLE
from tests.schedules import twins

FIXTURES = pathlib.Path(__file__).parents[1] / "golden" / "lambda_schedules.json"
CASES = json.loads(FIXTURES.read_text())["cases"]


def _id(case) -> str:
    return f"{case['class']}-{case['lr_lambda']}"


def _builds(case) -> dict[str, jopt.Schedule]:
    """The jopt schedules of a case: tabulated, and traced where the function allows it."""
    make = getattr(jopt.torch, case["class"])
    fn = LAMBDAS[case["lr_lambda"]]
    n = len(case["values"]) - 1
    schedules = {"tabulated": make(case["lr"], fn, total_iters=n)}
    if case["class"] == "LambdaLR" and case["lr_lambda"] in TRACEABLE:
        schedules["traced"] = make(case["lr"], fn)
    return schedules


@functools.cache
def _values(x64: bool) -> dict[str, np.ndarray]:
    with jax.enable_x64(x64):
        schedules = {
            f"{_id(case)}/{way}": schedule
            for case in CASES
            for way, schedule in _builds(case).items()
        }
        return twins.evaluate_all(schedules, max(len(c["values"]) for c in CASES) + 5)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_float64_values_are_torchs_within_1e_12_relative(case):
    n = len(case["values"])
    for name, values in _values(True).items():
        if name.startswith(_id(case) + "/"):
            twins.assert_close(values[:n], case["values"], 1e-12, what=name)
            # Past total_iters, the last tabulated value holds (the traced one goes on).
            if name.endswith("/tabulated"):
                np.testing.assert_array_equal(values[n:], values[n - 1])


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_float32_values_are_torchs_within_1e_6_of_the_peak(case):
    n = len(case["values"])
    for name, values in _values(False).items():
        if name.startswith(_id(case) + "/"):
            twins.assert_close(values[:n], case["values"], 0.0, 1e-6, what=name)


def test_the_fixtures_cover_both_classes_and_both_kinds_of_function():
    kinds = {(c["class"], c["lr_lambda"] in TRACEABLE) for c in CASES}
    assert kinds == {(cls, t) for cls in ("LambdaLR", "MultiplicativeLR") for t in (True, False)}


def test_a_schedule_drives_an_optimizer_and_current_lr_reads_it():
    schedule = jopt.torch.MultiplicativeLR(0.1, LAMBDAS["constant"], total_iters=10)
    tx = jopt.torch.SGD(lr=schedule)
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    for _ in range(3):
        _, state = tx.update({"w": jnp.ones(2)}, state, params)
    np.testing.assert_allclose(jopt.current_lr(state), 0.1 * 0.95**2, rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: jopt.torch.LambdaLR(0.1, 0.5), r"lr_lambda must be a function of the step"),
        (
            lambda: jopt.torch.LambdaLR(0.1, LAMBDAS["warmup_then_halving"]),
            r"jnp operations \(jnp\.where, not if\), or give total_iters",
        ),
        (
            lambda: jopt.torch.LambdaLR(0.1, lambda e: jnp.ones(3)),
            r"lr_lambda must return a real scalar",
        ),
        (
            lambda: jopt.torch.LambdaLR(0.1, lambda e: -1.0, total_iters=3),
            r"lr_lambda must return finite numbers >= 0, got -1\.0 at step 0",
        ),
        (
            lambda: jopt.torch.LambdaLR(0.1, lambda e: 1 / (2 - e), total_iters=3),
            r"at 2: division by zero",
        ),
        (
            lambda: jopt.torch.MultiplicativeLR(0.1, LAMBDAS["constant"]),
            r"needs total_iters, the steps of the run",
        ),
        (
            lambda: jopt.torch.MultiplicativeLR(0.1, LAMBDAS["constant"], total_iters=-1),
            r"total_iters must be an integer >= 0, got -1",
        ),
        (lambda: jopt.torch.LambdaLR(-0.1, LAMBDAS["power"]), r"lr must be >= 0, got -0\.1"),
    ],
)
def test_bad_arguments_are_refused_at_construction(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()


# -- live: torch itself, other base rates and lengths ----------------------------------------------


@pytest.mark.parametrize("cls", ["LambdaLR", "MultiplicativeLR"])
@pytest.mark.parametrize("name", sorted(LAMBDAS))
def test_live_torch_agrees_in_float64(cls, name):
    pytest.importorskip("torch")
    from tests.golden.make_lambda_schedule_fixtures import torch_values

    lr, n = 0.37, 45
    want = torch_values(cls, lr, name, n)
    schedule = getattr(jopt.torch, cls)(lr, LAMBDAS[name], total_iters=n)
    with jax.enable_x64(True):
        got = twins.evaluate_all({"s": schedule}, n + 1)["s"]
    twins.assert_close(got, want, 1e-12, what=f"{cls}/{name}")
    assert math.isclose(float(got[-1]), want[-1], rel_tol=1e-12)
