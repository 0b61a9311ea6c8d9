"""Every optimizer family reaches the minimum of two classic problems within a step budget.

float64. One configuration per optimizer (the same for both problems) must bring the iterate to
||x - x*|| < 1e-3 on
  - the ill-conditioned quadratic `tests.reference.problems.quadratic(dim=5, condition=100)`,
  - the Rosenbrock function `tests.reference.problems.rosenbrock()` from (-1.2, 1),
within `budget = ceil(1.5 * measured)` steps, where `measured` is the number of steps it took
when the configuration was chosen (`python benchmarks/convergence_budgets.py` measures them again
and prints this table). A slower optimizer, a wrong sign or a broken schedule fails the test.

Learning rates were picked where the step count varies smoothly with them (a 1% change of the
learning rate moves it by about 1%). Sign-based Lion, RMSProp and Adadelta take steps of a fixed
size near the minimum and need a decaying learning rate to get within 1e-3; `halving(a, n)` is
`jopt.exponential_decay(a, n, 0.5)`, a learning rate a halved every n steps.

| optimizer | hyperparameters | quadratic: steps | budget | rosenbrock: steps | budget |
|---|---|---:|---:|---:|---:|
| sgd | learning_rate=0.0015 | 4668 | 7002 | 11379 | 17069 |
| sgd_momentum | learning_rate=0.001, momentum=0.9 | 638 | 957 | 1580 | 2370 |
| sgd_nesterov | learning_rate=0.001, momentum=0.9, nesterov=True | 644 | 966 | 1620 | 2430 |
| rmsprop | learning_rate=halving(0.01, 1000) | 3475 | 5213 | 6169 | 9254 |
| adam | learning_rate=0.05 | 298 | 447 | 1803 | 2705 |
| adamw | learning_rate=0.05, weight_decay=0.0 | 298 | 447 | 1803 | 2705 |
| nadam | learning_rate=0.05 | 280 | 420 | 1504 | 2256 |
| amsgrad | learning_rate=0.05 | 318 | 477 | 2757 | 4136 |
| adamax | learning_rate=0.1 | 631 | 947 | 3025 | 4538 |
| radam | learning_rate=0.001 | 6371 | 9557 | 10331 | 15497 |
| adagrad | learning_rate=0.5 | 207 | 311 | 8923 | 13385 |
| adadelta | learning_rate=halving(1.0, 1000) | 3067 | 4601 | 6822 | 10233 |
| lion | learning_rate=halving(0.001, 3000), weight_decay=0.0 | 2343 | 3515 | 4869 | 7304 |

Other hyperparameters are the constructors' defaults. adamw and lion run without weight decay:
decay moves the minimum away from x*.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests.reference import problems

TOLERANCE = 1e-3
BUDGET_FACTOR = 1.5


@dataclasses.dataclass(frozen=True)
class Halving:
    """A learning rate `init_value` halved every `half_life` steps (an exponential decay)."""

    init_value: float
    half_life: int

    def __call__(self, count):
        return jopt.exponential_decay(self.init_value, self.half_life, 0.5)(count)

    def __repr__(self) -> str:
        return f"halving({self.init_value}, {self.half_life})"


@dataclasses.dataclass(frozen=True)
class Config:
    """An optimizer configuration and the steps it needed on each problem when it was chosen."""

    name: str
    make: Callable[..., optax.GradientTransformation]
    kwargs: dict[str, Any]
    measured: dict[str, int]  # problem name -> steps to ||x - x*|| < TOLERANCE

    def build(self) -> optax.GradientTransformation:
        return self.make(**self.kwargs)

    def budget(self, problem: str) -> int:
        return math.ceil(BUDGET_FACTOR * self.measured[problem])

    def describe(self) -> str:
        return ", ".join(f"{name}={value!r}" for name, value in self.kwargs.items())

    def __repr__(self) -> str:  # readable pytest ids
        return self.name


def _config(name, make, measured_quadratic, measured_rosenbrock, **kwargs) -> Config:
    measured = {"quadratic": measured_quadratic, "rosenbrock": measured_rosenbrock}
    return Config(name, make, kwargs, measured)


CONFIGS: list[Config] = [
    _config("sgd", jopt.sgd, 4668, 11379, learning_rate=0.0015),
    _config("sgd_momentum", jopt.sgd, 638, 1580, learning_rate=0.001, momentum=0.9),
    _config("sgd_nesterov", jopt.sgd, 644, 1620, learning_rate=0.001, momentum=0.9, nesterov=True),
    _config("rmsprop", jopt.rmsprop, 3475, 6169, learning_rate=Halving(0.01, 1000)),
    _config("adam", jopt.adam, 298, 1803, learning_rate=0.05),
    _config("adamw", jopt.adamw, 298, 1803, learning_rate=0.05, weight_decay=0.0),
    _config("nadam", jopt.nadam, 280, 1504, learning_rate=0.05),
    _config("amsgrad", jopt.amsgrad, 318, 2757, learning_rate=0.05),
    _config("adamax", jopt.adamax, 631, 3025, learning_rate=0.1),
    _config("radam", jopt.radam, 6371, 10331, learning_rate=0.001),
    _config("adagrad", jopt.adagrad, 207, 8923, learning_rate=0.5),
    _config("adadelta", jopt.adadelta, 3067, 6822, learning_rate=Halving(1.0, 1000)),
    _config("lion", jopt.lion, 2343, 4869, learning_rate=Halving(0.001, 3000), weight_decay=0.0),
]
PROBLEMS = ("quadratic", "rosenbrock")


def _problem(name: str):
    """(gradient function, x0, x*) of problem `name` as float64 JAX arrays (call under x64)."""
    if name == "quadratic":
        problem = problems.quadratic(dim=5, condition=100)
        a, x_star = jnp.asarray(problem.extras["A"]), jnp.asarray(problem.x_star)

        def grad(x):
            return a @ (x - x_star)

    elif name == "rosenbrock":
        problem = problems.rosenbrock()

        def grad(z):
            x, y = z[0], z[1]
            return jnp.stack([-2.0 * (1.0 - x) - 400.0 * x * (y - x**2), 200.0 * (y - x**2)])

    else:
        raise ValueError(f"unknown problem {name!r}")
    return grad, jnp.asarray(problem.x0), jnp.asarray(problem.x_star)


def distances(config: Config, problem: str, steps: int) -> np.ndarray:
    """||x_k - x*|| after each of `steps` steps (k = 1..steps), in one jitted float64 scan."""
    with jax.enable_x64(True):
        grad, x0, x_star = _problem(problem)
        tx = config.build()

        def body(carry, _):
            x, state = carry
            updates, state = tx.update(grad(x), state, x)
            x = optax.apply_updates(x, updates)
            return (x, state), jnp.linalg.norm(x - x_star)

        @jax.jit
        def run(x):
            _, d = jax.lax.scan(body, (x, tx.init(x)), None, length=steps)
            return d

        return np.asarray(run(x0))


def steps_to_tolerance(d: np.ndarray) -> int | None:
    """The first step k with ||x_k - x*|| < TOLERANCE, or None."""
    below = np.flatnonzero(d < TOLERANCE)
    return int(below[0]) + 1 if below.size else None


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("config", CONFIGS, ids=repr)
def test_reaches_minimum_within_budget(config, problem):
    budget = config.budget(problem)
    d = distances(config, problem, budget)
    steps = steps_to_tolerance(d)
    assert steps is not None and steps <= budget, (
        f"{config.name} ({config.describe()}) on {problem}: ||x - x*|| did not fall below "
        f"{TOLERANCE} in {budget} steps (measured {config.measured[problem]}); closest "
        f"{np.nanmin(d):.3g}, last {d[-1]:.3g}"
    )
