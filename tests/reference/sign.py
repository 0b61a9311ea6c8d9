"""NumPy float64 references of the catalogue's sign family (`jopt/_src/catalogue/sign.py`),
written from the papers; same calling convention as `tests/reference/optimizers.py`."""

from __future__ import annotations

import numpy as np

from tests.reference.optimizers import GradFn, LearningRate, _grad, _lr, _start


def run_sign_sgd(
    grad_fn: GradFn, x0: np.ndarray, steps: int, learning_rate: LearningRate
) -> list[np.ndarray]:
    """signSGD (Bernstein et al. 2018, "signSGD: Compressed Optimisation for Non-Convex
    Problems", Algorithm 1).

    ::

        x_t = x_{t-1} - lr * sign(g)        (sign(0) = 0)
    """
    x = _start(x0)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        x = x - _lr(learning_rate, t) * np.sign(_grad(grad_fn, x))
        xs.append(x.copy())
    return xs


def run_signum(
    grad_fn: GradFn, x0: np.ndarray, steps: int, learning_rate: LearningRate, beta: float = 0.9
) -> list[np.ndarray]:
    """Signum (Bernstein et al. 2018, Algorithm 2): signSGD with momentum.

    ::

        m_t = beta * m_{t-1} + (1 - beta) * g
        x_t = x_{t-1} - lr * sign(m_t)
    """
    x = _start(x0)
    m = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        m = beta * m + (1.0 - beta) * _grad(grad_fn, x)
        x = x - _lr(learning_rate, t) * np.sign(m)
        xs.append(x.copy())
    return xs


def run_rprop(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: float,
    eta_minus: float = 0.5,
    eta_plus: float = 1.2,
    min_step_size: float = 1e-6,
    max_step_size: float = 50.0,
    weight_backtracking: bool = False,
    stale_update: bool = False,
) -> list[np.ndarray]:
    """Rprop (Riedmiller & Braun 1993, "A Direct Adaptive Method for Faster Backpropagation
    Learning: The RPROP Algorithm"), per coordinate, with update values Delta starting at
    `learning_rate` and dE/dw_{t-1} = 0 before the first step::

        if dE/dw_{t-1} * dE/dw_t > 0:  Delta = min(Delta * eta_plus, max_step_size)
                                       dw_t = -sign(dE/dw_t) * Delta
        if dE/dw_{t-1} * dE/dw_t < 0:  Delta = max(Delta * eta_minus, min_step_size)
                                       dw_t = -dw_{t-1}   (weight_backtracking: Rprop+)
                                              0           (otherwise: iRprop-, Igel & Hüsken 2000)
                                       dE/dw_t = 0        (no adaptation at the next step)
        if dE/dw_{t-1} * dE/dw_t = 0:  dw_t = -sign(dE/dw_t) * Delta
        w_t = w_{t-1} + dw_t

    `stale_update`: optax 0.2.8 applies the step the previous update computed, `w_t = w_{t-1} +
    s_{t-1}`, where `s_t` is the step above (0 after a sign change) and `s_{t-1}` counts as 0
    where the sign has just changed (s_0 = 0: its first update does not move).
    """
    x = _start(x0)
    delta = np.full_like(x, learning_rate)
    g_prev = np.zeros_like(x)  # dE/dw_{t-1}, zeroed after a sign change
    dw_prev = np.zeros_like(x)  # the step applied at t - 1
    s_prev = np.zeros_like(x)  # stale_update: the step computed at t - 1
    xs = [x.copy()]
    for _ in range(steps):
        g = _grad(grad_fn, x)
        dw = np.zeros_like(x)
        s = np.zeros_like(x)
        for i in range(x.size):
            product = g_prev[i] * g[i]
            if product > 0:
                delta[i] = min(delta[i] * eta_plus, max_step_size)
            elif product < 0:
                delta[i] = max(delta[i] * eta_minus, min_step_size)
            if product < 0:
                dw[i] = -dw_prev[i] if weight_backtracking else 0.0
                g[i] = 0.0
            else:
                dw[i] = -np.sign(g[i]) * delta[i]
                s[i] = dw[i]
            if stale_update:
                dw[i] = 0.0 if product < 0 else s_prev[i]
        x = x + dw
        g_prev, dw_prev, s_prev = g, dw, s
        xs.append(x.copy())
    return xs
