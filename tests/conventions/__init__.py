"""Tests of jopt.torch and jopt.keras against the real torch.optim and keras.optimizers.

The shared machinery lives here: loading the golden fixtures of `tests/golden/optimizers/`
(made by `python -m tests.golden.make_optimizer_fixtures`, read here without torch or keras),
building a case's jopt twin, running it, and comparing trajectories at every recorded step. The
live tests use the same twins and comparison on problems drawn at test time.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tests import helpers
from tests.golden import make_optimizer_fixtures as gen

FIXTURES = Path(__file__).resolve().parents[1] / "golden" / "optimizers"
DTYPES = ("float64", "float32")
# |x_jopt - x_framework| <= TOLERANCE[dtype] * max(1, |x_framework|), at every recorded step.
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


@dataclasses.dataclass(frozen=True)
class GoldenCase:
    """One recorded run of a torch or Keras optimizer (see the generator for the fields)."""

    framework: str  # "torch" or "keras"
    id: str
    optimizer: str  # the constructor's name, the same in the framework and in jopt.<framework>
    lr: float
    kwargs: dict[str, Any]
    schedule: dict[str, Any] | None  # None: constant learning rate
    seed: int
    grad_sign: float

    def __repr__(self) -> str:  # readable pytest ids
        return self.id


@dataclasses.dataclass(frozen=True)
class Golden:
    """A framework's fixtures: the manifest, its cases, and the recorded arrays."""

    manifest: dict[str, Any]
    cases: tuple[GoldenCase, ...]
    arrays: dict[str, np.ndarray]

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(s) for s in self.manifest["shapes"])

    def iterates(self, case: GoldenCase, dtype: str) -> np.ndarray:
        """(steps // every + 1, n): the recorded iterates, step 0 first."""
        return self.arrays[f"{case.id}/{dtype}/iterates"].astype(np.float64)

    def learning_rates(self, case: GoldenCase, dtype: str) -> np.ndarray:
        """(steps,) float64: the learning rate the framework used at each step. Stored once if
        both dtypes used the same rates, else per dtype (Keras' float32 schedules, jitted, can
        round differently with x64 on)."""
        key = f"{case.id}/{dtype}/lr"
        return self.arrays[key if key in self.arrays else f"{case.id}/lr"].astype(np.float64)

    def amplification(self, case: GoldenCase, dtype: str) -> float:
        """How much the framework amplified a perturbation of its start (see the generator)."""
        return self.manifest["amplification"][case.id][dtype]

    def problem(self, seed: int) -> dict[str, np.ndarray]:
        return {k: self.arrays[f"problem{seed}/{k}"] for k in ("a", "c", "x0")}


@functools.cache
def load(framework: str) -> Golden:
    manifest = json.loads((FIXTURES / f"{framework}.json").read_text())
    with np.load(FIXTURES / f"{framework}.npz") as data:
        arrays = dict(data)
    cases = tuple(GoldenCase(framework, **raw) for raw in manifest["cases"])
    return Golden(manifest, cases, arrays)


def split(vec: np.ndarray, shapes) -> list[np.ndarray]:
    """A flat vector -> arrays of `shapes` (row-major, in order)."""
    sizes = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
    return [part.reshape(shape) for part, shape in zip(np.split(vec, sizes), shapes, strict=True)]


def quadratic(prob: dict[str, np.ndarray], shapes, dtype, grad_sign: float = 1.0):
    """The generator's problem in JAX: (start params, `grad(params) = sign * a * (x - c)`)."""
    a, c, x0 = ([jnp.asarray(x, dtype) for x in split(prob[k], shapes)] for k in ("a", "c", "x0"))

    def grad(params):
        gs = tuple(ai * (p - ci) for p, ai, ci in zip(params, a, c, strict=True))
        return tuple(-g for g in gs) if grad_sign < 0 else gs

    return tuple(x0), grad


def table_schedule(values: np.ndarray, dtype):
    """A schedule that looks the learning rate up: `count -> values[count]`."""
    table = jnp.asarray(values, dtype)
    return lambda count: table[count]


def build(module, framework: str, case, learning_rate):
    """The jopt.torch / jopt.keras twin of `case`, with `learning_rate` (a number or schedule)."""
    kwargs = dict(case.kwargs)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    lr_name = "lr" if framework == "torch" else "learning_rate"
    return getattr(module, case.optimizer)(**{lr_name: learning_rate}, **kwargs)


def run_twin(module, framework: str, case, dtype: str, prob, shapes, steps, every, lrs=None):
    """`steps` jitted steps of `case`'s jopt twin on the problem `prob` (flat a, c, x0); the
    iterates at steps 0, every, 2 every, ... as a (k, n) float64 array. The learning rate is
    `lrs` (the framework's, one per step) as a lookup table, or the constant `case.lr` if None."""
    with jax.enable_x64(dtype == "float64"):
        start, grad = quadratic(prob, shapes, dtype, case.grad_sign)
        lr = case.lr if lrs is None else table_schedule(lrs, dtype)
        trajectory, _ = helpers.run_jopt(build(module, framework, case, lr), grad, start, steps)
        return helpers.flat_trajectory(trajectory)[::every]


def assert_trajectories_match(got: np.ndarray, want: np.ndarray, dtype: str, what: str) -> None:
    """|got - want| <= TOLERANCE[dtype] * max(1, |want|) at every recorded step."""
    assert got.shape == want.shape, f"{what}: shapes {got.shape} != {want.shape}"
    assert np.all(np.isfinite(want)), f"{what}: the fixture is not finite"
    error = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    error = np.where(np.isnan(error), np.inf, error)
    row, col = np.unravel_index(np.argmax(error), error.shape)
    assert error.max() <= TOLERANCE[dtype], (
        f"{what} ({dtype}): relative error {error.max():.3g} at recorded row {row}, "
        f"coordinate {col}: jopt {got[row, col]!r}, framework {want[row, col]!r}"
    )


def run_golden(module, golden: Golden, case: GoldenCase, dtype: str) -> np.ndarray:
    """Runs `case`'s jopt twin over the fixture's steps: with the recorded learning rates as a
    lookup table if the case has a schedule, else with the constant `case.lr` (which the
    framework recorded at every step: checked here)."""
    lrs = golden.learning_rates(case, dtype)
    if case.schedule is None:
        np.testing.assert_array_equal(lrs, case.lr, err_msg=f"{case.id}: recorded lr")
        lrs = None
    steps, every = golden.manifest["steps"], golden.manifest["every"]
    prob = golden.problem(case.seed)
    return run_twin(module, case.framework, case, dtype, prob, golden.shapes, steps, every, lrs)


# The generator refuses fixtures above these (see its docstring); checked here as well, so that
# a fixture whose trajectory amplifies last-bit differences cannot slip in.
MAX_AMPLIFICATION = {"float64": 100.0, "float32": 10.0}


def assert_well_conditioned(golden: Golden) -> None:
    """Every case's recorded amplification is at most MAX_AMPLIFICATION[dtype]."""
    too_large = [
        f"{case.id} ({dtype}): {golden.amplification(case, dtype)}"
        for case in golden.cases
        for dtype in DTYPES
        if not golden.amplification(case, dtype) <= MAX_AMPLIFICATION[dtype]
    ]
    assert not too_large, f"{golden.cases[0].framework} fixtures amplify rounding: {too_large}"


def assert_keras_learning_rates(got: np.ndarray, want: np.ndarray, initial: float) -> None:
    """A jopt.keras schedule evaluated in float64 (`got`) against the rates Keras used (`want`),
    to float32 rounding: a few float32 ulps of the initial rate.

    Keras evaluates a schedule in the dtype its own type promotion gives: float32 without x64;
    with x64, float64 for ExponentialDecay, float32 for CosineDecay, and a mix for
    CosineDecayRestarts. (The trajectory tests use the recorded rates themselves.)
    """
    np.testing.assert_allclose(got, want, rtol=0, atol=5e-7 * initial)


def assert_made_from_the_generators_cases(golden: Golden, cases) -> None:
    """The fixture holds exactly the generator's current cases, steps and shapes: a case edited
    in the generator but not re-run fails here."""
    want = json.loads(json.dumps([dataclasses.asdict(case) for case in cases]))
    remake = "remake it: python -m tests.golden.make_optimizer_fixtures"
    assert golden.manifest["cases"] == want, f"not the generator's cases: {remake}"
    assert (golden.manifest["steps"], golden.manifest["every"]) == (gen.STEPS, gen.EVERY), remake
    assert golden.shapes == gen.SHAPES, remake
    assert golden.manifest["max_amplification"] == MAX_AMPLIFICATION == gen.MAX_AMPLIFICATION
