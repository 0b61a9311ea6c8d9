"""NumPy float64 references of the catalogue's learning rate free family
(`jopt/_src/catalogue/learning_rate_free.py`), written from the papers; same calling convention as
`tests/reference/optimizers.py`.

Each keeps the papers' own quantities (their (1 - beta) factors, gamma d^2 weights, squared
distances) where the implementations fold them away; the two agree because the factors cancel
in the ratios that estimate the step size. ``learning_rate`` is gamma, a multiplier of the
estimated step (1 in the papers), read at t - 1 as every reference's schedule.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tests.reference.optimizers import GradFn, LearningRate, _grad, _lr, _start


def _raise(d: float, numerator: float, denominator: float) -> float:
    """max(d, numerator / denominator); d when the ratio is 0 / 0 (no evidence yet)."""
    if denominator == 0.0 and numerator == 0.0:
        return d
    return max(d, numerator / denominator)


def run_prodigy(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    beta3: float | None = None,
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    estim_lr_coef: float = 1.0,
    weight_decay: float = 0.0,
    safeguard_warmup: bool = False,
    form: str = "optax",
) -> list[np.ndarray]:
    """Prodigy (Mishchenko & Defazio 2023, "Prodigy: An Expeditiously Adaptive Parameter-Free
    Learner", Algorithm 4, the Adam version), with beta3 = sqrt(b2) unless given, d_0 =
    estim_lr0 and r_0 = s_0 = m_0 = v_0 = 0::

        m_{k+1} = b1 m_k + (1 - b1) d_k g_k
        v_{k+1} = b2 v_k + (1 - b2) d_k^2 g_k^2
        r_{k+1} = beta3 r_k + (1 - beta3) gamma_k d_k^2 <g_k, x_0 - x_k>
        s_{k+1} = beta3 s_k + (1 - beta3) gamma_k d_k^2 g_k
        d_{k+1} = max(d_k, estim_lr_coef * r_{k+1} / ||s_{k+1}||_1)
        x_{k+1} = x_k - gamma_k d_k m_{k+1} / (sqrt(v_{k+1}) + d_k eps) - wd gamma_k d_k x_k

    ``form="paper"`` is that. ``form="optax"`` (the authors' code with its bias correction):
    gamma_k is multiplied by bc = sqrt(1 - b2^(k+1)) / (1 - b1^(k+1)) everywhere, and the step's
    eps is scaled by d_{k+1}. ``safeguard_warmup``: s takes (1 - beta3) d_k^2 g_k, without gamma
    and bc. ``estim_lr_coef`` (the authors' d_coef) and the decoupled weight decay ``wd`` are the
    authors' additions.
    """
    if form not in ("optax", "paper"):
        raise ValueError(f"unknown form {form!r}")
    beta3 = np.sqrt(b2) if beta3 is None else beta3
    x = _start(x0)
    origin = x.copy()
    m, v, s = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    r, d = 0.0, estim_lr0
    xs = [x.copy()]
    for k in range(steps):
        gamma = _lr(learning_rate, k + 1)
        if form == "optax":
            gamma *= np.sqrt(1.0 - b2 ** (k + 1)) / (1.0 - b1 ** (k + 1))
        g = _grad(grad_fn, x)
        m = b1 * m + (1.0 - b1) * d * g
        v = b2 * v + (1.0 - b2) * d**2 * g**2
        r = beta3 * r + (1.0 - beta3) * gamma * d**2 * float(g @ (origin - x))
        s = beta3 * s + (1.0 - beta3) * (1.0 if safeguard_warmup else gamma) * d**2 * g
        d_next = _raise(d, estim_lr_coef * r, float(np.sum(np.abs(s))))
        scale = d_next if form == "optax" else d
        x = x - gamma * d * m / (np.sqrt(v) + scale * eps) - weight_decay * gamma * d * x
        d = d_next
        xs.append(x.copy())
    return xs


def run_dadapt_adamw(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    weight_decay: float = 0.0,
    form: str = "optax",
) -> list[np.ndarray]:
    """Adam with D-Adaptation (Defazio & Mishchenko 2023, "Learning-Rate-Free Learning by
    D-Adaptation", Algorithm 4), with d_0 = estim_lr0, s_0 = m_0 = v_0 = r_0 = 0 and
    A_k = diag(sqrt(v_k) + eps)::

        m_{k+1} = b1 m_k + (1 - b1) d_k gamma_k g_k
        v_{k+1} = b2 v_k + (1 - b2) g_k^2
        x_{k+1} = x_k - A_{k+1}^-1 m_{k+1} - wd d_k gamma_k x_k
        s_{k+1} = sqrt(b2) s_k + (1 - sqrt(b2)) d_k gamma_k g_k
        r_{k+1} = sqrt(b2) r_k + (1 - sqrt(b2)) d_k gamma_k <g_k, A_k^-1 s_k>
        d_{k+1} = max(d_k, r_{k+1} / ((1 - sqrt(b2)) ||s_{k+1}||_1))

    The inner product is weighted by A_k^-1 and taken with s_k, from before this step (the
    authors' implementation). ``form="paper"`` is that; ``form="optax"`` (the authors' code with
    its bias correction) multiplies gamma_k by sqrt(1 - b2^(k+1)) / (1 - b1^(k+1)). The decoupled
    weight decay ``wd`` is the authors' addition.
    """
    if form not in ("optax", "paper"):
        raise ValueError(f"unknown form {form!r}")
    root = np.sqrt(b2)
    x = _start(x0)
    m, v, s = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    r, d = 0.0, estim_lr0
    xs = [x.copy()]
    for k in range(steps):
        gamma = _lr(learning_rate, k + 1)
        if form == "optax":
            gamma *= np.sqrt(1.0 - b2 ** (k + 1)) / (1.0 - b1 ** (k + 1))
        g = _grad(grad_fn, x)
        weighted = float(g @ (s / (np.sqrt(v) + eps)))
        m = b1 * m + (1.0 - b1) * d * gamma * g
        v = b2 * v + (1.0 - b2) * g**2
        x = x - m / (np.sqrt(v) + eps) - weight_decay * d * gamma * x
        s = root * s + (1.0 - root) * d * gamma * g
        r = root * r + (1.0 - root) * d * gamma * weighted
        d = _raise(d, r, (1.0 - root) * float(np.sum(np.abs(s))))
        xs.append(x.copy())
    return xs


def _decayed_grad(grad_fn: GradFn, x: np.ndarray, weight_decay: float | None) -> np.ndarray:
    """The gradient at x, plus weight_decay * x (coupled) unless weight_decay is None."""
    g = _grad(grad_fn, x)
    return g if weight_decay is None else g + weight_decay * x


def run_dog(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate = 1.0,
    init_step: str | tuple[str, float] = "heuristic",
    init_step_value: float | None = None,
    eps: float = 1e-8,
    weight_decay: float | None = None,
) -> list[np.ndarray]:
    """DoG (Ivgi, Hinder & Carmon 2023, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step
    Size Schedule", Algorithm 1), with g_t the gradient (plus weight_decay * x_t, coupled)::

        rbar_t  = max(r_eps, max_{i <= t} ||x_i - x_0||)
        eta_t   = rbar_t / sqrt(sum_{i <= t} ||g_i||^2 + eps)
        x_{t+1} = x_t - gamma_t eta_t g_t

    r_eps = init_step_value * (1 + ||x_0||) ("heuristic", the paper's), init_step_value
    ("distance"), or 0 with eta_0 = init_step_value ("learning_rate"). The paper has eps = 0.
    ``init_step`` may be optax's pair (kind, value); ``init_step_value`` (default 1e-6, or the
    pair's value) replaces the pair's value when given.
    """
    if isinstance(init_step, tuple):
        init_step, pair_value = init_step
        init_step_value = pair_value if init_step_value is None else init_step_value
    init_step_value = 1e-6 if init_step_value is None else init_step_value
    x = _start(x0)
    origin = x.copy()
    rbar = {
        "heuristic": init_step_value * (1.0 + np.linalg.norm(x)),
        "distance": init_step_value,
        "learning_rate": 0.0,
    }[init_step]
    total = 0.0
    xs = [x.copy()]
    for t in range(steps):
        g = _decayed_grad(grad_fn, x, weight_decay)
        rbar = max(rbar, float(np.linalg.norm(x - origin)))
        total += float(g @ g)
        eta = rbar / np.sqrt(total + eps)
        if t == 0 and init_step == "learning_rate":
            eta = init_step_value
        x = x - _lr(learning_rate, t + 1) * eta * g
        xs.append(x.copy())
    return xs


def run_dowg(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate = 1.0,
    init_estim_sq_dist: float | None = None,
    eps: float = 1e-4,
    weight_decay: float | None = None,
) -> list[np.ndarray]:
    """DoWG (Khaled, Mishchenko & Jin 2023, "DoWG Unleashed: An Efficient Universal
    Parameter-Free Gradient Descent Method", Algorithm 1), with g_t the gradient (plus
    weight_decay * x_t, coupled) and rbar_0 = sqrt(init_estim_sq_dist) (None: sqrt(eps))::

        rbar_t  = max(||x_t - x_0||, rbar_{t-1})
        v_t     = v_{t-1} + rbar_t^2 ||g_t||^2
        eta_t   = rbar_t^2 / (sqrt(v_t) + eps)
        x_{t+1} = x_t - gamma_t eta_t g_t

    The paper has eps = 0.
    """
    x = _start(x0)
    origin = x.copy()
    rbar = np.sqrt(eps if init_estim_sq_dist is None else init_estim_sq_dist)
    v = 0.0
    xs = [x.copy()]
    for t in range(steps):
        g = _decayed_grad(grad_fn, x, weight_decay)
        rbar = max(rbar, float(np.linalg.norm(x - origin)))
        v += rbar**2 * float(g @ g)
        x = x - _lr(learning_rate, t + 1) * rbar**2 / (np.sqrt(v) + eps) * g
        xs.append(x.copy())
    return xs


def run_cocob(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate = 1.0,
    alpha: float = 100.0,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> list[np.ndarray]:
    """COCOB-Backprop (Orabona & Tommasi 2017, "Training Deep Networks without Learning Rates
    Through Coin Betting", Algorithm 2), per coordinate i, with the negative stochastic gradient
    c_t = -gamma_t (grad f(w_t) + weight_decay * w_t) (gamma_t and the decay are optax's; the
    paper's gamma is 1) and L_0 = eps (the paper's L_0 is 0), G_0 = Reward_0 = theta_0 = 0::

        L_t      = max(L_{t-1}, |c_t|)
        G_t      = G_{t-1} + |c_t|
        Reward_t = max(Reward_{t-1} + (w_t - w_1) c_t, 0)
        theta_t  = theta_{t-1} + c_t
        w_{t+1}  = w_1 + theta_t / (L_t max(G_t + L_t, alpha L_t)) (L_t + Reward_t)
    """
    w = _start(x0)
    origin = w.copy()
    scale, total = np.full_like(w, eps), np.zeros_like(w)
    reward, theta = np.zeros_like(w), np.zeros_like(w)
    ws = [w.copy()]
    for t in range(1, steps + 1):
        c = -_lr(learning_rate, t) * (_grad(grad_fn, w) + weight_decay * w)
        scale = np.maximum(scale, np.abs(c))
        total = total + np.abs(c)
        reward = np.maximum(reward + (w - origin) * c, 0.0)
        theta = theta + c
        w = origin + theta / (scale * np.maximum(total + scale, alpha * scale)) * (scale + reward)
        ws.append(w.copy())
    return ws


# The update u_t = BASE(g_t, t) of the optimizer Mechanic tunes (t = 1, 2, ...).
Base = Callable[[np.ndarray, int], np.ndarray]


def mechanize_iterates(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    base: Base,
    weight_decay: float = 1e-2,
    eps: float = 1e-8,
    s_init: float = 1e-6,
    num_betas: int = 6,
    form: str = "optax",
) -> list[np.ndarray]:
    """Mechanic (Cutkosky, Defazio & Mehta 2023, "Mechanic: A Learning Rate Tuner", Algorithm 1)
    around `base`, [x_1, ..., x_{steps+1}] (a wrapper, not a registry entry: no `run_<name>`),
    with beta_j = 1 - 0.1^j (j = 1..num_betas), x_ref = x_1, and per beta s_1 = s_init,
    m_0 = v_0 = r_0 = 0. Its memory-efficient form recovers the base's summed updates from the
    iterate, Delta_t = (x_t - x_ref) / (sum_j s_{t,j} + eps)::

        u_t      = BASE(g_t)
        gt_t     = g_t + weight_decay (sum_j s_{t,j}) ||g_t|| x_t / (||x_t|| + eps)
        h_t      = <gt_t, Delta_t>
        m_t      = max(beta m_{t-1}, |h_t| + eps)
        v_t      = beta^2 v_{t-1} + h_t^2
        r_t      = max(0, beta r_{t-1} - s_t h_t)
        W_t      = s_init / num_betas * m_t + r_t
        s_{t+1}  = W_t / (sqrt(v_t) + eps)
        x_{t+1}  = x_ref + (sum_j s_{t+1,j}) (Delta_t + u_t)

    ``form="optax"`` clips h_t to [-m_{t-1}, m_{t-1}] in the reward's update (r_t), a later
    addition of the authors that optax marks as not in the paper; ``form="paper"`` does not.
    """
    if form not in ("optax", "paper"):
        raise ValueError(f"unknown form {form!r}")
    x = _start(x0)
    origin = x.copy()
    betas = np.array([1.0 - 0.1**j for j in range(1, num_betas + 1)])
    s = np.full(num_betas, s_init)
    m, v, r = np.zeros(num_betas), np.zeros(num_betas), np.zeros(num_betas)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        g = _grad(grad_fn, x)
        u = base(g, t)
        total = float(np.sum(s))
        decayed = g + weight_decay * total * np.linalg.norm(g) * x / (np.linalg.norm(x) + eps)
        delta = (x - origin) / (total + eps)
        h = float(decayed @ delta)
        bet = np.clip(h, -m, m) if form == "optax" else h
        m = np.maximum(betas * m, abs(h) + eps)
        v = betas**2 * v + h**2
        r = np.maximum(0.0, betas * r - bet * s)
        s = (s_init / num_betas * m + r) / (np.sqrt(v) + eps)
        x = origin + float(np.sum(s)) * (delta + u)
        xs.append(x.copy())
    return xs
