"""NumPy float64 references of the catalogue's online family
(`jopt/_src/catalogue/online.py`), written from the papers; same calling convention as
`tests/reference/optimizers.py`."""

from __future__ import annotations

import numpy as np

from tests.reference.optimizers import GradFn, LearningRate, _grad, _lr, _start


def asgd_trajectories(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    l2: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Averaged SGD (Polyak & Juditsky 1992, "Acceleration of Stochastic Approximation by
    Averaging") in the form of Bottou (2012, "Stochastic Gradient Descent Tricks", section 5.3,
    ASGD), for the objective f(w) + l2 / 2 |w|**2, iterations t = 0, 1, ...::

        gamma_t = gamma_0 (1 + l2 gamma_0 t) ** (-alpha)          (Bottou: alpha = 3/4)
        w_{t+1} = (1 - gamma_t l2) w_t - gamma_t g_t
        mu_t = 1 / max(1, t - t0)
        wbar_{t+1} = wbar_t + mu_t (w_{t+1} - wbar_t)

    gamma_0 is the learning rate (a schedule gives gamma_0 at each iteration). Returns the
    iterates [w_0, ..., w_steps] and the averages [w_0, wbar_1, ..., wbar_steps]."""
    w = _start(x0)
    wbar = w.copy()
    ws, averages = [w.copy()], [wbar.copy()]
    for t in range(steps):
        gamma0 = _lr(learning_rate, t + 1)
        gamma = gamma0 * (1.0 + l2 * gamma0 * t) ** (-alpha)
        w = (1.0 - gamma * l2) * w - gamma * _grad(grad_fn, w)
        mu = 1.0 / max(1.0, t - t0)
        wbar = wbar + mu * (w - wbar)
        ws.append(w.copy())
        averages.append(wbar.copy())
    return ws, averages


def run_asgd(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    l2: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
) -> list[np.ndarray]:
    """The iterates of averaged SGD (`asgd_trajectories`; the average does not move them)."""
    return asgd_trajectories(grad_fn, x0, steps, learning_rate, l2, alpha, t0)[0]


def run_ftrl(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    learning_rate_power: float = -0.5,
    initial_accumulator_value: float = 0.1,
    l1: float = 0.0,
    l2: float = 0.0,
    l2_shrinkage: float = 0.0,
    beta: float = 0.0,
) -> list[np.ndarray]:
    """FTRL-Proximal (McMahan et al. 2013, "Ad Click Prediction: a View from the Trenches",
    Algorithm 1), per coordinate i, with alpha the learning rate, lambda_1 = l1, lambda_2 = l2 and
    the extensions of TensorFlow's FTRL: n_i ** q with q = -learning_rate_power (the paper's
    sqrt), n_i starting at initial_accumulator_value, and `l2_shrinkage * w` added to the
    gradient in z. The first iterate is x0 (the paper's w_1 = 0 is the iterate of z = 0)::

        for t = 1, 2, ...:
            g = gradient at w
            sigma_i = ((n_i + g_i**2) ** q - n_i ** q) / alpha
            z_i = z_i + g_i + l2_shrinkage * w_i - sigma_i * w_i
            n_i = n_i + g_i**2
            w_i = 0                                                       if |z_i| <= lambda_1
            w_i = -((beta + n_i ** q) / alpha + lambda_2) ** -1 (z_i - sgn(z_i) lambda_1)  else
    """
    w = _start(x0)
    z = np.zeros_like(w)
    n = np.full_like(w, initial_accumulator_value)
    q = -learning_rate_power
    ws = [w.copy()]
    for t in range(1, steps + 1):
        alpha = _lr(learning_rate, t)
        g = _grad(grad_fn, w)
        new = w.copy()
        for i in range(w.size):
            sigma = ((n[i] + g[i] ** 2) ** q - n[i] ** q) / alpha
            z[i] += g[i] + l2_shrinkage * w[i] - sigma * w[i]
            n[i] += g[i] ** 2
            if abs(z[i]) <= l1:
                new[i] = 0.0
            else:
                new[i] = -(z[i] - np.sign(z[i]) * l1) / ((beta + n[i] ** q) / alpha + l2)
        w = new
        ws.append(w.copy())
    return ws
