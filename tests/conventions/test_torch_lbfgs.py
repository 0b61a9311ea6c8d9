"""jopt.torch.LBFGS against the real torch.optim.LBFGS.

Golden (no torch needed): `tests/golden/lbfgs/torch.{json,npz}` holds, for each case of
`make_lbfgs_fixtures`, torch's params after every `step(closure)`, the loss each step returned
and torch's `func_evals` and `n_iter`, in float64 and float32. The twin, one `jopt.train_step`
per step with the case's arguments, must reproduce every iterate and loss
(|x - x_torch| <= TOLERANCE[dtype] * max(1, |x_torch|)) and every count exactly: the same
iterations, line-search trials and early stops. (The cases that reach an optimum to float32's
resolution are recorded in float64 only: see `make_lbfgs_fixtures.Case.float32`.)

Live (where torch is installed): the same on problems and arguments the fixtures do not hold.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from tests import conventions
from tests.golden import make_lbfgs_fixtures as gen
from tests.golden.lbfgs_problems import problem

FIXTURES = Path(__file__).resolve().parents[1] / "golden" / "lbfgs"
MANIFEST = json.loads((FIXTURES / "torch.json").read_text())
with np.load(FIXTURES / "torch.npz") as _data:
    ARRAYS = dict(_data)
CASES = [gen.Case(**raw) for raw in MANIFEST["cases"]]
COUNTS = ("func_evals", "n_iter")


def run_jopt(case: gen.Case, dtype: str, start: list[np.ndarray] | None = None) -> dict:
    """`case` with jopt.torch.LBFGS, in the recorded format (`make_lbfgs_fixtures.run_torch`)."""
    given, loss_fn = problem(case.problem, case.seed)
    start = given if start is None else start
    kwargs = dict(case.kwargs)
    if case.gamma is not None:
        kwargs["lr"] = jopt.torch.ExponentialLR(kwargs.get("lr", 1.0), gamma=case.gamma)
    with jax.enable_x64(dtype == "float64"):
        tx = jopt.torch.LBFGS(**kwargs)
        step = jopt.train_step(lambda params: loss_fn(jnp, params), tx)
        params = [jnp.asarray(x, dtype) for x in start]
        state = tx.init(params)
        record = {"iterates": [_flat(params)], "losses": [], "func_evals": [], "n_iter": []}
        for _ in range(case.steps):
            params, state, loss = step(params, state)
            record["iterates"].append(_flat(params))
            record["losses"].append(float(loss))
            record["func_evals"].append(int(state.func_evals))
            record["n_iter"].append(int(state.n_iter))
    return {name: np.asarray(values) for name, values in record.items()}


def _flat(params) -> np.ndarray:
    return np.concatenate([np.asarray(p, np.float64).ravel() for p in params])


def assert_matches(got: dict, want: dict, dtype: str, what: str) -> None:
    for count in COUNTS:
        np.testing.assert_array_equal(got[count], want[count], err_msg=f"{what}: {count}")
    conventions.assert_trajectories_match(got["iterates"], want["iterates"], dtype, what)
    conventions.assert_trajectories_match(
        got["losses"][:, None], want["losses"][:, None], dtype, f"{what} losses"
    )


def test_fixtures_hold_the_generators_current_cases():
    remake = "remake them: python -m tests.golden.make_lbfgs_fixtures"
    want = json.loads(json.dumps([dataclasses.asdict(case) for case in gen.CASES]))
    assert MANIFEST["cases"] == want, remake
    assert MANIFEST["max_amplification"] == conventions.MAX_AMPLIFICATION, remake


def test_fixture_trajectories_do_not_amplify_rounding_differences():
    too_large = {
        key: amp
        for key, amp in MANIFEST["amplification"].items()
        if not amp <= conventions.MAX_AMPLIFICATION[key.rsplit("/", 1)[1]]
    }
    assert len(MANIFEST["amplification"]) == sum(len(gen.dtypes(case)) for case in CASES)
    assert not too_large, too_large


def test_fixtures_cover_every_argument_and_every_way_a_step_ends():
    arguments = {name for case in CASES for name in case.kwargs}
    assert arguments == set(inspect.signature(jopt.torch.LBFGS).parameters)
    evals = {case.id: ARRAYS[f"{case.id}/float64/func_evals"] for case in CASES}
    # A step at the optimum evaluates once and stops (quadratic_tolerances, logistic_defaults).
    assert any(np.any(np.diff(e) == 1) for e in evals.values())
    # The line search runs out of evaluations (max_eval=3).
    assert np.all(np.diff(evals["rosenbrock_three_evaluations"], prepend=0) >= 3)


@pytest.mark.parametrize(
    ("case", "dtype"),
    [(case, dtype) for case in CASES for dtype in gen.dtypes(case)],
    ids=lambda value: getattr(value, "id", value),
)
def test_trajectory_matches_torch(case, dtype):
    want = {name: ARRAYS[f"{case.id}/{dtype}/{name}"] for name in ("iterates", "losses", *COUNTS)}
    assert_matches(run_jopt(case, dtype), want, dtype, f"torch {case.id}")


LIVE = [
    gen.Case("live_logistic_strong_wolfe", "logistic", 3,
             {"line_search_fn": "strong_wolfe", "history_size": 4, "max_iter": 6}, seed=1),
    gen.Case("live_quadratic_fixed_step", "quadratic", 4,
             {"lr": 0.02, "max_iter": 9, "max_eval": 7, "tolerance_change": 1e-7}, seed=1),
]  # fmt: skip


@pytest.mark.parametrize("case", LIVE, ids=lambda case: case.id)
def test_trajectory_matches_live_torch(case):
    pytest.importorskip("torch")
    want = gen.run_torch(case, "float64", 0.0)
    assert_matches(run_jopt(case, "float64"), want, "float64", f"live torch {case.id}")


def test_set_hparams_gives_the_twin_built_with_those_values_in_the_same_program():
    _, loss_fn = problem("rosenbrock")
    tx = jopt.torch.LBFGS(lr=0.01, max_iter=5, history_size=2)
    new = {"learning_rate": 0.005, "max_iter": 3, "max_eval": 2, "tolerance_change": 1e-3}
    built = jopt.torch.LBFGS(
        lr=0.005, max_iter=3, max_eval=2, tolerance_change=1e-3, history_size=2
    )
    step = jopt.train_step(lambda params: loss_fn(jnp, params), tx, donate=False)
    start = [jnp.asarray([-1.2, 1.0, -0.5, 0.8])]
    params, state = start, jopt.set_hparams(tx.init(start), **new)
    other, other_state = start, built.init(start)
    for _ in range(4):
        params, state, _ = step(params, state)
        other, other_state, _ = step(other, other_state)  # tx's program, built's state
    assert step._cache_size() == 1
    np.testing.assert_array_equal(params[0], other[0])
    assert int(state.func_evals) == int(other_state.func_evals) == 4 * 2


def test_update_without_the_loss_function_says_how_to_call_it():
    tx = jopt.torch.LBFGS()
    params = jnp.ones(3)
    with pytest.raises(ValueError, match=r"jopt.torch.LBFGS: needs the loss and the loss func"):
        tx.update(params, tx.init(params), params, value=jnp.ones([]))


def test_complex_parameters_are_refused_when_the_state_is_made():
    with pytest.raises(TypeError, match=r"LBFGS does not support complex parameters \(at \['z'\]"):
        jopt.torch.LBFGS().init({"w": jnp.ones(2), "z": jnp.ones(2, jnp.complex64)})
