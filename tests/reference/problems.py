"""Small NumPy float64 test problems with closed-form gradients.

Every problem exposes ``value(x)``, ``grad(x)``, ``x0`` (starting point) and ``x_star``
(minimiser), all on flat float64 vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Problem:
    """A smooth test problem on a flat float64 vector."""

    name: str
    value: Callable[[np.ndarray], float]
    grad: Callable[[np.ndarray], np.ndarray]
    x0: np.ndarray
    x_star: np.ndarray
    extras: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StructuredProblem(Problem):
    """A problem on a flat vector that is the concatenation of arrays of ``shapes``."""

    shapes: tuple[tuple[int, ...], ...] = ()

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(s, dtype=np.int64)) for s in self.shapes)

    def split(self, vec: np.ndarray) -> list[np.ndarray]:
        """Flat vector -> list of float64 arrays with ``shapes`` (copies)."""
        vec = np.asarray(vec, dtype=np.float64)
        if vec.shape != (sum(self.sizes),):
            raise ValueError(f"expected a flat vector of size {sum(self.sizes)}, got {vec.shape}")
        out, start = [], 0
        for shape, size in zip(self.shapes, self.sizes, strict=True):
            out.append(vec[start : start + size].reshape(shape).copy())
            start += size
        return out

    def join(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """List of arrays with ``shapes`` -> flat float64 vector."""
        arrays = list(arrays)
        if len(arrays) != len(self.shapes):
            raise ValueError(f"expected {len(self.shapes)} arrays, got {len(arrays)}")
        parts = []
        for shape, a in zip(self.shapes, arrays, strict=True):
            a = np.asarray(a, dtype=np.float64)
            if a.shape != tuple(shape):
                raise ValueError(f"expected shape {tuple(shape)}, got {a.shape}")
            parts.append(a.reshape(-1))
        return np.concatenate(parts) if parts else np.zeros(0)


def _random_orthogonal(dim: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))  # sign fix -> Haar-distributed


def quadratic(dim: int = 5, condition: float = 100.0, seed: int = 0) -> Problem:
    """``f(x) = 0.5 (x - x*)^T A (x - x*)``, ``A = Q diag(eigs) Q^T``.

    Eigenvalues are log-spaced from 1 to ``condition``; ``Q``, ``x*`` and ``x0`` are random
    (from ``seed``). ``grad(x) = A (x - x*)``. ``extras`` holds ``A`` and ``eigs``.
    """
    rng = np.random.default_rng(seed)
    eigs = np.logspace(0.0, np.log10(condition), dim)
    q = _random_orthogonal(dim, rng)
    a = (q * eigs) @ q.T
    a = 0.5 * (a + a.T)
    x_star = rng.standard_normal(dim)
    x0 = rng.standard_normal(dim)

    def value(x: np.ndarray) -> float:
        d = np.asarray(x, dtype=np.float64) - x_star
        return float(0.5 * d @ a @ d)

    def grad(x: np.ndarray) -> np.ndarray:
        return a @ (np.asarray(x, dtype=np.float64) - x_star)

    return Problem("quadratic", value, grad, x0, x_star, {"A": a, "eigs": eigs})


def rosenbrock() -> Problem:
    """``f(x, y) = (1 - x)^2 + 100 (y - x^2)^2``, ``x0 = (-1.2, 1)``, ``x* = (1, 1)``."""

    def value(z: np.ndarray) -> float:
        x, y = np.asarray(z, dtype=np.float64)
        return float((1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2)

    def grad(z: np.ndarray) -> np.ndarray:
        x, y = np.asarray(z, dtype=np.float64)
        return np.array([-2.0 * (1.0 - x) - 400.0 * x * (y - x**2), 200.0 * (y - x**2)])

    return Problem("rosenbrock", value, grad, np.array([-1.2, 1.0]), np.array([1.0, 1.0]))


def _logcosh(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return ax + np.log1p(np.exp(-2.0 * ax)) - np.log(2.0)


# The leaves of the shared suites' problem. A reference sees one flat vector: the ones that keep
# statistics per leaf (NovoGrad, the trust ratios) or per row and column (Adafactor, SM3) cut it
# by these.
SHAPES = ((3,), (2, 4))
SIZES = tuple(int(np.prod(shape)) for shape in SHAPES)


def random_problem(shapes: Sequence[Sequence[int]] = SHAPES, seed: int = 0) -> StructuredProblem:
    """Separable smooth strongly convex problem on the concatenation of ``shapes``.

    ``f(x) = sum_i 0.5 a_i (x_i - c_i)^2 + 0.1 sum_i log(cosh(x_i))`` with per-element
    ``a_i ~ U(0.5, 2)``, ``c_i ~ N(0, 1)`` and ``x0 ~ N(0, 1)``;
    ``grad(x)_i = a_i (x_i - c_i) + 0.1 tanh(x_i)``. ``x_star`` is found by Newton's method.
    Use ``split`` / ``join`` to map between the flat vector and the per-shape arrays.
    """
    shapes = tuple(tuple(int(d) for d in s) for s in shapes)
    n = sum(int(np.prod(s, dtype=np.int64)) for s in shapes)
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, n)
    c = rng.standard_normal(n)
    x0 = rng.standard_normal(n)

    def value(x: np.ndarray) -> float:
        x = np.asarray(x, dtype=np.float64)
        return float(np.sum(0.5 * a * (x - c) ** 2) + 0.1 * np.sum(_logcosh(x)))

    def grad(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return a * (x - c) + 0.1 * np.tanh(x)

    # Element-wise Newton; f'' = a + 0.1 sech^2 >= 0.5, so this converges quickly.
    x_star = c.copy()
    for _ in range(50):
        x_star = x_star - grad(x_star) / (a + 0.1 / np.cosh(x_star) ** 2)

    return StructuredProblem(
        "random_problem", value, grad, x0, x_star, {"a": a, "c": c}, shapes=shapes
    )
