"""NumPy float64 references of the catalogue's modern family (`jopt/_src/catalogue/modern.py`),
written from the papers; same calling convention as `tests/reference/optimizers.py`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tests.reference.optimizers import GradFn, LearningRate, _grad, _lr, _start

Scheduled = float | Callable[[int], float]  # a number, or a function of the count t - 1


def _at(value: Scheduled, t: int) -> float:
    """A hyperparameter at the update with 1-based step count `t` (a schedule gets t - 1)."""
    return _lr(value, t)


def run_adopt(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.9999,
    eps: float = 1e-6,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Scheduled | None = None,
) -> list[np.ndarray]:
    """ADOPT (Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any beta2 with the
    Optimal Rate"), in its final, clipped form (`use_clipping=False`: the original one).

    The first gradient only initializes v (the parameters do not move); then, with k = 1, 2, ...
    the updates after it::

        v_0 = g_0^2;   m_0 = 0
        x   = clip(g_k / max(sqrt(v_{k-1}), eps), c_k),   c_k = k^(1/4)   (or clip_value_fn(k))
        m_k = b1 * m_{k-1} + (1 - b1) * x
        theta_k = theta_{k-1} - lr * m_k        (nesterov, optax's: b1 * m_k + (1 - b1) * x)
        v_k = b2 * v_{k-1} + (1 - b2) * g_k^2

    The learning rate of the update with 1-based count t is lr(t - 1), as everywhere here.
    """
    x = _start(x0)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        if t == 1:
            v = g * g
            xs.append(x.copy())
            continue
        k = t - 1
        normalized = g / np.maximum(np.sqrt(v), eps)
        if use_clipping:
            c = k**0.25 if clip_value_fn is None else _at(clip_value_fn, t)
            normalized = np.clip(normalized, -c, c)
        m = b1 * m + (1.0 - b1) * normalized
        step = b1 * m + (1.0 - b1) * normalized if nesterov else m
        x = x - lr * step
        v = b2 * v + (1.0 - b2) * g * g
        xs.append(x.copy())
    return xs


def run_ademamix(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    b3: Scheduled = 0.9999,
    alpha: Scheduled = 5.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
) -> list[np.ndarray]:
    """AdEMAMix (Pagliardini et al. 2024, "The AdEMAMix Optimizer: Better, Faster, Older"),
    Algorithm 1 (eps_root, optax's, is 0 in the paper). `b3` and `alpha` may be schedules of the
    count t - 1 of earlier updates (the paper's warm-ups).

    ::

        m1_t = b1 * m1_{t-1} + (1 - b1) * g        m1^ = m1_t / (1 - b1^t)
        m2_t = b3 * m2_{t-1} + (1 - b3) * g        (no bias correction)
        nu_t = b2 * nu_{t-1} + (1 - b2) * g^2      nu^ = nu_t / (1 - b2^t)
        x_t  = x_{t-1} - lr * ((m1^ + alpha * m2_t) / (sqrt(nu^ + eps_root) + eps)
                               + weight_decay * x_{t-1})
    """
    x = _start(x0)
    m1 = np.zeros_like(x)
    m2 = np.zeros_like(x)
    nu = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        b3_t, alpha_t = _at(b3, t), _at(alpha, t)
        g = _grad(grad_fn, x)
        m1 = b1 * m1 + (1.0 - b1) * g
        m2 = b3_t * m2 + (1.0 - b3_t) * g
        nu = b2 * nu + (1.0 - b2) * g * g
        m1_hat = m1 / (1.0 - b1**t)
        nu_hat = nu / (1.0 - b2**t)
        u = (m1_hat + alpha_t * m2) / (np.sqrt(nu_hat + eps_root) + eps)
        x = x - lr * (u + weight_decay * x)
        xs.append(x.copy())
    return xs


def run_optimistic_gradient_descent(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    alpha: float = 1.0,
    beta: float = 1.0,
    previous_init: str = "current",
) -> list[np.ndarray]:
    """Optimistic gradient descent (Mokhtari et al. 2020, "A Unified Analysis of Extra-gradient
    and Optimistic Gradient Methods for Saddle Point Problems: Proximal Point Approach", the
    generalized OGD; Daskalakis et al. 2018's OMD is alpha = beta = 1)::

        x_t = x_{t-1} - lr * ((alpha + beta) * g_t - beta * g_{t-1})

    with g_0 = g_1 (Mokhtari et al.'s x_{-1} = x_0; `previous_init="current"`) or g_0 = 0
    (`previous_init="zero"`).
    """
    x = _start(x0)
    previous = None if previous_init == "current" else np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        if previous is None:
            previous = g
        x = x - lr * ((alpha + beta) * g - beta * previous)
        previous = g
        xs.append(x.copy())
    return xs


def run_optimistic_adam(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    optimism: float | None = None,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    nesterov: bool = True,
    previous_init: str = "current",
) -> list[np.ndarray]:
    """Optimistic Adam (Daskalakis et al. 2018, "Training GANs with Optimism", Algorithm 1, whose
    optimism is the learning rate: `optimism=None`)::

        m_t = b1 * m_{t-1} + (1 - b1) * g;     m^ = m_t / (1 - b1^t)
        v_t = b2 * v_{t-1} + (1 - b2) * g^2;   v^ = v_t / (1 - b2^t)
        r_t = m^ / (sqrt(v^ + eps_root) + eps)
        x_t = x_{t-1} - ((lr + optimism) * r_t - optimism * r_{t-1})

    The paper's m^ is Adam's (`nesterov=False`) and its r_0 is 0 (`previous_init="zero"`);
    optax's defaults take NAdam's m^ = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t) and
    r_0 = r_1.
    """
    x = _start(x0)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    previous = None if previous_init == "current" else np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        o = lr if optimism is None else optimism
        g = _grad(grad_fn, x)
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g * g
        if nesterov:
            m_hat = b1 * m / (1.0 - b1 ** (t + 1)) + (1.0 - b1) * g / (1.0 - b1**t)
        else:
            m_hat = m / (1.0 - b1**t)
        r = m_hat / (np.sqrt(v / (1.0 - b2**t) + eps_root) + eps)
        if previous is None:
            previous = r
        x = x - ((lr + o) * r - o * previous)
        previous = r
        xs.append(x.copy())
    return xs
