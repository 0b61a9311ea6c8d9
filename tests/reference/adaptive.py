"""NumPy float64 references of the catalogue's adaptive family (`jopt/_src/catalogue/adaptive.py`),
written from the papers; same calling convention as `tests/reference/optimizers.py`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tests.reference import problems
from tests.reference.optimizers import GradFn, LearningRate, _grad, _lr, _start

LEAVES = problems.SIZES  # NovoGrad's second moment is per leaf


def run_yogi(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-3,
    eps_root: float = 0.0,
    initial_accumulator_value: float = 1e-6,
) -> list[np.ndarray]:
    """Yogi (Zaheer et al. 2018, "Adaptive Methods for Nonconvex Optimization", Algorithm 2),
    with Adam's bias corrections, and both moments starting at `initial_accumulator_value`
    (1e-6 in optax).

    ::

        m_0 = v_0 = initial_accumulator_value
        m_t = b1 * m_{t-1} + (1 - b1) * g
        v_t = v_{t-1} - (1 - b2) * sign(v_{t-1} - g^2) * g^2
        x_t = x_{t-1} - lr * (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)
    """
    x = _start(x0)
    m = np.full_like(x, initial_accumulator_value)
    v = np.full_like(x, initial_accumulator_value)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        m = b1 * m + (1.0 - b1) * g
        v = v - (1.0 - b2) * np.sign(v - g**2) * g**2
        m_hat, v_hat = m / (1.0 - b1**t), v / (1.0 - b2**t)
        x = x - lr * m_hat / (np.sqrt(v_hat + eps_root) + eps)
        xs.append(x.copy())
    return xs


def run_adamaxw(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-4,
) -> list[np.ndarray]:
    """AdaMax (Kingma & Ba 2015, section 7.1, eps as optax and torch) with decoupled weight decay
    (Loshchilov & Hutter 2019, the decay multiplied by the learning rate).

    ::

        m_t  = b1 * m_{t-1} + (1 - b1) * g
        u_t  = max(b2 * u_{t-1}, |g| + eps)          (u_0 = 0)
        x_t  = x_{t-1} - lr * ((m_t / (1 - b1^t)) / u_t + weight_decay * x_{t-1})
    """
    x = _start(x0)
    m = np.zeros_like(x)
    u = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        m = b1 * m + (1.0 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        x = x - lr * ((m / (1.0 - b1**t)) / u + weight_decay * x)
        xs.append(x.copy())
    return xs


def run_novograd(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.25,
    eps: float = 1e-6,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
    leaves: Sequence[int] = LEAVES,
) -> list[np.ndarray]:
    """NovoGrad (Ginsburg et al. 2019, "Stochastic Gradient Methods with Layer-wise Adaptive
    Moments for Training of Deep Networks", Algorithm 1), eps as optax.

    The flat vector is the concatenation of layers of sizes `leaves`; for each layer l::

        v_1 = ||g_1||^2;   v_t = b2 * v_{t-1} + (1 - b2) * ||g_t||^2        (a scalar per layer)
        m_t = b1 * m_{t-1} + g_t / (sqrt(v_t + eps_root) + eps) + weight_decay * x_{t-1}
        x_t = x_{t-1} - lr * m_t                                            (m_0 = 0)
    """
    x = _start(x0)
    if sum(leaves) != x.size:
        raise ValueError(f"leaves {tuple(leaves)} do not add up to the {x.size} coordinates")
    ends = np.cumsum(leaves)[:-1]
    m = np.zeros_like(x)
    v = np.zeros(len(leaves))
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        norms = np.array([np.sum(part**2) for part in np.split(g, ends)])
        v = norms if t == 1 else b2 * v + (1.0 - b2) * norms
        root = np.repeat(np.sqrt(v + eps_root) + eps, leaves)
        m = b1 * m + g / root + weight_decay * x
        x = x - lr * m
        xs.append(x.copy())
    return xs


def run_adan(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.98,
    b2: float = 0.92,
    b3: float = 0.99,
    eps: float = 1e-8,
    eps_root: float = 1e-8,
    weight_decay: float = 0.0,
    form: str = "optax",
) -> list[np.ndarray]:
    """Adan (Xie et al. 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
    Deep Models", Algorithm 1), in the paper's notation beta_i = 1 - b_i (the code's decay
    rates b = 0.98, 0.92, 0.99 are the paper's beta = 0.02, 0.08, 0.01).

    `form="paper"`, Algorithm 1 (the moments start at their first samples, no bias
    correction; d_t = g_t - g_{t-1})::

        m_1 = g_1,  v_1 = 0,  n_1 = g_1^2;   v_2 = d_2
        m_t = (1 - beta1) m_{t-1} + beta1 g_t
        v_t = (1 - beta2) v_{t-1} + beta2 d_t                                   (t >= 3)
        n_t = (1 - beta3) n_{t-1} + beta3 (g_t + (1 - beta2) d_t)^2
        x_t = (x_{t-1} - lr (m_t + (1 - beta2) v_t) / (sqrt(n_t + eps_root) + eps))
              / (1 + lr weight_decay)

    `form="optax"`: the moments from 0 with Adam's bias corrections (d_1 = 0), the difference
    weighted by beta2 (= 1 - b2) instead of 1 - beta2, and AdamW's decoupled decay::

        m, v, n as above for every t >= 1, from m_0 = v_0 = n_0 = 0, with beta2 in place of
        1 - beta2 in n;   x^ = x / (1 - (1 - beta)^t)
        x_t = x_{t-1} - lr ((m^ + beta2 v^) / (sqrt(n^ + eps_root) + eps) + weight_decay x_{t-1})
    """
    if form not in ("optax", "paper"):
        raise ValueError(f"unknown form {form!r}")
    beta1, beta2, beta3 = 1.0 - b1, 1.0 - b2, 1.0 - b3
    weight = 1.0 - beta2 if form == "paper" else beta2
    x = _start(x0)
    m, v, n = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    g_prev = None
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        d = np.zeros_like(g) if g_prev is None else g - g_prev
        g_prev = g
        if form == "paper" and t == 1:
            m, v, n = g, np.zeros_like(g), g**2
        else:
            m = (1.0 - beta1) * m + beta1 * g
            v = d if form == "paper" and t == 2 else (1.0 - beta2) * v + beta2 * d
            n = (1.0 - beta3) * n + beta3 * (g + weight * d) ** 2
        if form == "paper":
            step = lr * (m + weight * v) / (np.sqrt(n + eps_root) + eps)
            x = (x - step) / (1.0 + lr * weight_decay)
        else:
            m_hat, v_hat = m / (1.0 - b1**t), v / (1.0 - b2**t)
            n_hat = n / (1.0 - b3**t)
            u = (m_hat + weight * v_hat) / (np.sqrt(n_hat + eps_root) + eps)
            x = x - lr * (u + weight_decay * x)
        xs.append(x.copy())
    return xs
