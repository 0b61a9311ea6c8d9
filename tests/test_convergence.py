"""Every optimizer family reaches the minimum of two classic problems within a step budget.

float64. One configuration per optimizer (the same for both problems) must bring the iterate to
||x - x*|| < 1e-3 on
  - the ill-conditioned quadratic `tests.reference.problems.quadratic(dim=5, condition=100)`,
  - the Rosenbrock function `tests.reference.problems.rosenbrock()` from (-1.2, 1),
within `budget = ceil(1.5 * measured)` steps, where `measured` is the number of steps it took
when the configuration was chosen (`python benchmarks/convergence_budgets.py` measures them again
and prints this table). A slower optimizer, a wrong sign or a broken schedule fails the test.

The configurations are the registry's (`convergence` of each entry in `jopt._src.registry`),
with the steps they took when chosen; `python benchmarks/convergence_budgets.py` prints them
as a table with the budgets. Learning rates were picked where the step count varies smoothly
with them (a 1% change of the learning rate moves it by about 1%). Sign-based Lion, RMSProp and
Adadelta take steps of a fixed size near the minimum and need a decaying learning rate to get
within 1e-3 (`exponential_decay(a, n, 0.5)`: a learning rate a halved every n steps). Other
hyperparameters are the constructors' defaults; adamw, nadamw and lion run without weight
decay, which moves the minimum away from x*.
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

from jopt._src import registry
from tests.reference import problems

TOLERANCE = 1e-3
BUDGET_FACTOR = 1.5


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


# One configuration per registry entry's `convergence` (jopt._src.registry).
CONFIGS: list[Config] = [
    Config(
        config_id,
        entry.factory,
        dict(convergence.kwargs),
        {"quadratic": convergence.quadratic, "rosenbrock": convergence.rosenbrock},
    )
    for entry in registry.OPTIMIZERS.values()
    for config_id, convergence in entry.convergence.items()
]
PROBLEMS = ("quadratic", "rosenbrock")


def _problem(name: str):
    """(loss, gradient function, x0, x*) of problem `name` as float64 JAX arrays (call under
    x64)."""
    if name == "quadratic":
        problem = problems.quadratic(dim=5, condition=100)
        a, x_star = jnp.asarray(problem.extras["A"]), jnp.asarray(problem.x_star)

        def loss(x):
            return 0.5 * (x - x_star) @ a @ (x - x_star)

        def grad(x):
            return a @ (x - x_star)

    elif name == "rosenbrock":
        problem = problems.rosenbrock()

        def loss(z):
            return (1.0 - z[0]) ** 2 + 100.0 * (z[1] - z[0] ** 2) ** 2

        def grad(z):
            x, y = z[0], z[1]
            return jnp.stack([-2.0 * (1.0 - x) - 400.0 * x * (y - x**2), 200.0 * (y - x**2)])

    else:
        raise ValueError(f"unknown problem {name!r}")
    return loss, grad, jnp.asarray(problem.x0), jnp.asarray(problem.x_star)


def distances(config: Config, problem: str, steps: int) -> np.ndarray:
    """||x_k - x*|| after each of `steps` steps (k = 1..steps), in one jitted float64 scan."""
    with jax.enable_x64(True):
        loss, grad, x0, x_star = _problem(problem)
        tx = config.build()

        def body(carry, _):  # with the loss, for the optimizers that read it (others ignore it)
            x, state = carry
            g = grad(x)
            updates, state = tx.update(g, state, x, value=loss(x), grad=g, value_fn=loss)
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
