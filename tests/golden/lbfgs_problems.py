"""The losses of the L-BFGS fixtures, written once for torch and for jax.numpy (`xp`).

Each problem is `(start, loss)`: the start as a list of float64 arrays (torch's parameter order,
jopt's list leaves) and `loss(xp, params) -> scalar`, the same operations in both frameworks so
that their gradients (by autograd) agree to rounding.

- rosenbrock: the extended Rosenbrock function in 4 dimensions from (-1.2, 1, -0.5, 0.8), one
  parameter; the canonical test of a line search.
- logistic: L2-regularized logistic regression (16 examples, 4 features, labels from a noisy
  linear rule, not separable), two parameters: weights (4,) and a bias ().
- quadratic: sum a_i (x_i - c_i)^2 / 2 with a in [1, 100], over a (2, 3) matrix and a (2,)
  vector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

L2 = 0.1  # the logistic regression's weight penalty


def _rosenbrock(xp: Any, params: list) -> Any:
    (x,) = params
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _logistic_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((16, 4))
    labels = np.sign(features @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.standard_normal(16))
    return features, labels


def problem(name: str, seed: int = 0) -> tuple[list[np.ndarray], Callable[..., Any]]:
    """`(start, loss)` of the problem `name` (the module docstring); `loss(xp, params)` takes
    params in the dtype to compute in and casts its data to it."""
    if name == "rosenbrock":
        return [np.array([-1.2, 1.0, -0.5, 0.8])], _rosenbrock
    rng = np.random.default_rng(seed)
    if name == "logistic":
        features, labels = _logistic_data(seed)

        def logistic(xp: Any, params: list) -> Any:
            w, b = params
            x, y = (xp.asarray(v, dtype=w.dtype) for v in (features, labels))
            margins = y * (x @ w + b)
            return xp.mean(xp.log1p(xp.exp(-margins))) + 0.5 * L2 * xp.sum(w * w)

        return [rng.standard_normal(4), np.asarray(rng.standard_normal())], logistic
    if name == "quadratic":
        a = [rng.uniform(1.0, 100.0, shape) for shape in ((2, 3), (2,))]
        c = [rng.standard_normal(shape) for shape in ((2, 3), (2,))]

        def quadratic(xp: Any, params: list) -> Any:
            terms = [
                xp.sum(xp.asarray(ai, dtype=p.dtype) * (p - xp.asarray(ci, dtype=p.dtype)) ** 2)
                for p, ai, ci in zip(params, a, c, strict=True)
            ]
            return 0.5 * (terms[0] + terms[1])

        return [ci + rng.uniform(-2.0, 2.0, ci.shape) for ci in c], quadratic
    raise ValueError(f"unknown problem {name!r}")
