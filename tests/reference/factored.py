"""NumPy float64 references of the catalogue's factored family
(`jopt/_src/catalogue/factored.py`), written from the papers; same calling convention as
`tests/reference/optimizers.py`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tests.reference import problems
from tests.reference.optimizers import GradFn, LearningRate, _grad, _lr, _start

SHAPES = problems.SHAPES  # statistics of each matrix's rows and columns


def _leaves(x: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """The flat vector `x` cut into arrays of `shapes` (views)."""
    sizes = [int(np.prod(s)) for s in shapes]
    if sum(sizes) != x.size:
        raise ValueError(f"shapes {tuple(shapes)} do not add up to the {x.size} coordinates")
    parts = np.split(x, np.cumsum(sizes)[:-1])
    return [part.reshape(shape) for part, shape in zip(parts, shapes, strict=True)]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def run_adafactor(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: float = 0.8,
    decay_offset: int = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: float | None = 1.0,
    momentum: float | None = None,
    dtype_momentum: object = None,
    weight_decay_rate: float | None = None,
    eps: float = 1e-30,
    factored: bool = True,
    eps2: float = 1e-3,
    shapes: Sequence[tuple[int, ...]] = SHAPES,
) -> list[np.ndarray]:
    """Adafactor (Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear
    Memory Cost"), Algorithms 4 (matrices) and 5 (vectors) with update clipping (Section 6) and
    relative step sizes (Section 7); momentum and weight decay as optax adds them.

    For each leaf X of `shapes` (the momentum buffer is kept in float64: `dtype_momentum` is
    ignored), with t the step count and b = 1 - max(t - decay_offset, 1)^(-decay_rate)::

        G2 = G^2 + eps
        factored (at least 2 axes, the second largest >= min_dim_size_to_factor; for a matrix
        the rows and columns, in general its two largest axes a (largest) and b):
            R = b R + (1 - b) sum_a G2,   C = b C + (1 - b) sum_b G2     (row and column sums)
            V = R C / sum_b R                                           (R C / 1^T R)
        otherwise:
            V = b V + (1 - b) G2
        U = G / sqrt(V);   U = U / max(1, RMS(U) / clipping_threshold)     (if a threshold)
        U = rho_t * max(eps2, RMS(X_{t-1})) * U     (rho_t = learning_rate, 1 if None; the
                                                     RMS factor if multiply_by_parameter_scale)
        m = momentum m + (1 - momentum) U;  U = m                        (if momentum)
        X_t = X_{t-1} - U - weight_decay_rate X_{t-1}                   (if weight_decay_rate)
    """
    del dtype_momentum
    x = _start(x0)
    leaves = _leaves(x, shapes)
    axes = []
    for leaf in leaves:
        order = np.argsort(leaf.shape, kind="stable")
        big = factored and leaf.ndim >= 2 and leaf.shape[order[-2]] >= min_dim_size_to_factor
        axes.append((int(order[-1]), int(order[-2])) if big else None)
    rows, cols, full = [], [], []  # R, C of factored leaves; V of the others
    for leaf, ax in zip(leaves, axes, strict=True):
        rows.append(None if ax is None else np.zeros(np.delete(leaf.shape, ax[0])))
        cols.append(None if ax is None else np.zeros(np.delete(leaf.shape, ax[1])))
        full.append(np.zeros_like(leaf))
    m = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        rho = 1.0 if learning_rate is None else _lr(learning_rate, t)
        b = 1.0 - float(max(t - decay_offset, 1)) ** (-decay_rate)
        grads = _leaves(_grad(grad_fn, x), shapes)
        step = []
        for i, (g, xl, ax) in enumerate(zip(grads, _leaves(x, shapes), axes, strict=True)):
            g2 = g**2 + eps
            if ax is None:
                full[i] = b * full[i] + (1.0 - b) * g2
                v = full[i]
            else:
                a, c = ax
                rows[i] = b * rows[i] + (1.0 - b) * np.sum(g2, axis=a)
                cols[i] = b * cols[i] + (1.0 - b) * np.sum(g2, axis=c)
                total = np.sum(rows[i], axis=c if c < a else c - 1, keepdims=True)
                v = np.expand_dims(rows[i] / total, a) * np.expand_dims(cols[i], c)
            u = g / np.sqrt(v)
            if clipping_threshold is not None:
                u = u / max(1.0, _rms(u) / clipping_threshold)
            scale = max(eps2, _rms(xl)) if multiply_by_parameter_scale else 1.0
            step.append((rho * scale * u).reshape(-1))
        u = np.concatenate(step)
        if momentum is not None:
            m = momentum * m + (1.0 - momentum) * u
            u = m
        if weight_decay_rate is not None:
            u = u + weight_decay_rate * x
        x = x - u
        xs.append(x.copy())
    return xs


def run_sm3(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    momentum: float = 0.9,
    eps: float = 1e-8,
    shapes: Sequence[tuple[int, ...]] = SHAPES,
) -> list[np.ndarray]:
    """SM3-II (Anil et al. 2019, "Memory-Efficient Adaptive Optimization", Algorithm 2) with the
    cover of each leaf by its slices along every axis (a matrix: its rows and its columns; a
    vector: its single coordinates, where SM3 is Adagrad), with momentum on the preconditioned
    gradient and eps inside the root, as optax::

        nu(i)  = min over the sets r containing i of mu(r)  +  g(i)^2
        mu(r)  = max over i in r of nu(i)                      (mu starts at 0)
        u(i)   = g(i) / sqrt(nu(i) + eps)   (0 where nu(i) = 0: the paper's 0/0 = 0)
        m      = momentum * m + (1 - momentum) * u
        x_t    = x_{t-1} - lr * m
    """
    x = _start(x0)
    leaves = _leaves(x, shapes)
    mus = [[np.zeros(n) for n in (v.shape if v.ndim >= 2 else (v.size,))] for v in leaves]
    m = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        step = []
        for g, mu in zip(_leaves(_grad(grad_fn, x), shapes), mus, strict=True):
            if g.ndim < 2:
                nu = mu[0].reshape(g.shape) + g**2
                mu[0] = nu.reshape(-1)
            else:
                covers = [
                    np.expand_dims(mu_r, [k for k in range(g.ndim) if k != axis])
                    for axis, mu_r in enumerate(mu)
                ]
                nu = np.minimum.reduce(np.broadcast_arrays(*covers)) + g**2
                for axis in range(g.ndim):
                    others = tuple(k for k in range(g.ndim) if k != axis)
                    mu[axis] = np.max(nu, axis=others)
            safe = np.where(nu > 0, nu, 1.0)
            step.append(np.where(nu > 0, g / np.sqrt(safe + eps), 0.0).reshape(-1))
        m = momentum * m + (1.0 - momentum) * np.concatenate(step)
        x = x - lr * m
        xs.append(x.copy())
    return xs
