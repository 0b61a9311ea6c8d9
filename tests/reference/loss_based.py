"""NumPy float64 references of the catalogue's loss based family
(`jopt/_src/catalogue/loss_based.py`), written from the papers; same calling convention as
`tests/reference/optimizers.py`, plus `value_fn(x)`, the loss, which these methods read."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tests.reference.optimizers import GradFn, LearningRate, _grad, _lr, _start

ValueFn = Callable[[np.ndarray], float]
# Where a squared norm counts as zero (optax's `jnp.finfo(float).eps`, float64's epsilon).
TINY = np.finfo(np.float64).eps


def run_polyak_sgd(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    *,
    value_fn: ValueFn,
    max_learning_rate: float = 1.0,
    scaling: LearningRate = 1.0,
    f_min: float = 0.0,
    eps: float = 0.0,
    variant: str = "sps",
    form: str = "optax",
) -> list[np.ndarray]:
    """SGD with the Polyak step size SPS_max (Loizou et al. 2021, "Stochastic Polyak Step-size
    for SGD", eq. 7; Berrada et al. 2020, ALI-G), gap = f(x) - f_min, its positive part for
    "sps+" (Garrigos et al. 2023), s = scaling(t - 1)::

        paper:  gamma = min(s * gap / (||g||^2 + eps), max_learning_rate)    (c = 1 / s)
        optax:  gamma = s * min(gap / (||s g||^2 + eps), max_learning_rate)  (sgd(s) first)
        gamma = 0 where the denominator is <= 2.2e-16
        x_t = x_{t-1} - gamma * g
    """
    x = _start(x0)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        g = _grad(grad_fn, x)
        s = _lr(scaling, t)
        gap = value_fn(x.copy()) - f_min
        if variant == "sps+":
            gap = max(gap, 0.0)
        if form == "paper":
            denominator = g @ g + eps
            gamma = min(s * gap / denominator, max_learning_rate)
        else:
            denominator = (s * g) @ (s * g) + eps
            gamma = s * min(gap / denominator, max_learning_rate)
        if denominator <= TINY:
            gamma = 0.0
        x = x - gamma * g
        xs.append(x.copy())
    return xs


def _momo_lower_bound(h0, lb, scale, rho, lower_bound):
    """MoMo*'s reset (Schaipp et al. 2023, Section 5): if the model's value h0 is below
    scale * rho * lb, lb = max(h0 / (2 * rho * scale), lower_bound)."""
    if h0 < scale * rho * lb:
        return max(h0 / (2.0 * rho * scale), lower_bound)
    return lb


def _momo_step(x, direction, tau, alpha, weight_decay, form):
    """paper:  x = (x - tau * direction) / (1 + alpha * weight_decay)   (the proximal step)
    optax:  x = x / (1 + alpha * weight_decay) - tau * direction"""
    scale = 1.0 + alpha * weight_decay
    if form == "paper":
        return (x - tau * direction) / scale
    return x / scale - tau * direction


def run_momo(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    *,
    value_fn: ValueFn,
    learning_rate: LearningRate = 1.0,
    beta: float = 0.9,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
    form: str = "optax",
) -> list[np.ndarray]:
    """MoMo (Schaipp et al. 2023, "MoMo: Momentum Models for Adaptive Learning Rates",
    Algorithm 1; weight decay as in its Section 4, MoMo* as in Section 5). The averages start at
    the first samples (f_bar_1 = f(x_0), d_1 = g_1, gamma_1 = <g_1, x_0>)::

        f_bar = beta f_bar + (1 - beta) f(x)
        d     = beta d     + (1 - beta) g
        gamma = beta gamma + (1 - beta) <g, x>
        (MoMo*: reset f_* from h0 = (1 + alpha lambda)(f_bar - gamma) + <d, x>)
        h     = (1 + alpha lambda)(f_bar - f_* - gamma) + <d, x>
        tau   = min(alpha, max(h, 0) / ||d||^2)      (0 where ||d||^2 <= 2.2e-16)
        x     = (x - tau d) / (1 + alpha lambda)      (form "optax": x / (1 + alpha lambda) - tau d)
        (MoMo*: f_* = max(f_bar + <d, x_old> - gamma - tau ||d||^2 / 2, lower_bound))
    """
    x = _start(x0)
    xs = [x.copy()]
    f_bar = gamma = 0.0
    d = np.zeros_like(x)
    lb = lower_bound
    for t in range(1, steps + 1):
        g = _grad(grad_fn, x)
        f = value_fn(x.copy())
        b = 0.0 if t == 1 else beta
        f_bar = b * f_bar + (1.0 - b) * f
        d = b * d + (1.0 - b) * g
        gamma = b * gamma + (1.0 - b) * (g @ x)
        alpha = _lr(learning_rate, t)
        scale = 1.0 + alpha * weight_decay
        norm = d @ d
        if adapt_lower_bound:
            lb = _momo_lower_bound(scale * (f_bar - gamma) + d @ x, lb, scale, 1.0, lower_bound)
        h = scale * (f_bar - lb - gamma) + d @ x
        tau = 0.0 if norm <= TINY else min(alpha, max(h, 0.0) / norm)
        if adapt_lower_bound:
            lb = max(f_bar + d @ x - gamma - 0.5 * tau * norm, lower_bound)
        x = _momo_step(x, d, tau, alpha, weight_decay, form)
        xs.append(x.copy())
    return xs


def run_momo_adam(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    *,
    value_fn: ValueFn,
    learning_rate: LearningRate = 1e-2,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
    form: str = "optax",
) -> list[np.ndarray]:
    """MoMo-Adam (Schaipp et al. 2023, Algorithm 2): MoMo's model in Adam's metric. The
    averages start at zero::

        f_bar = b1 f_bar + (1 - b1) f(x);   d = b1 d + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        gamma = b1 gamma + (1 - b1) <g, x>
        D     = eps + sqrt(v / (1 - b2^t));   rho = 1 - b1^t
        h     = (1 + alpha lambda)(f_bar - rho f_* - gamma) + <d, x>
        tau   = min(alpha / rho, max(h, 0) / <d, d / D>)
        x     = (x - tau d / D) / (1 + alpha lambda)   (form "optax": x / (1 + alpha lambda)
                                                        - tau d / D)
        (MoMo*: f_* reset and estimated as in run_momo, with rho, ||d||^2 -> <d, d / D>)
    """
    x = _start(x0)
    xs = [x.copy()]
    f_bar = gamma = 0.0
    d = np.zeros_like(x)
    v = np.zeros_like(x)
    lb = lower_bound
    for t in range(1, steps + 1):
        g = _grad(grad_fn, x)
        f = value_fn(x.copy())
        f_bar = b1 * f_bar + (1.0 - b1) * f
        d = b1 * d + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g**2
        gamma = b1 * gamma + (1.0 - b1) * (g @ x)
        big_d = eps + np.sqrt(v / (1.0 - b2**t))
        rho = 1.0 - b1**t
        alpha = _lr(learning_rate, t)
        scale = 1.0 + alpha * weight_decay
        norm = d @ (d / big_d)
        if adapt_lower_bound:
            lb = _momo_lower_bound(scale * (f_bar - gamma) + d @ x, lb, scale, rho, lower_bound)
        h = scale * (f_bar - rho * lb - gamma) + d @ x
        tau = 0.0 if norm <= TINY else min(alpha / rho, max(h, 0.0) / norm)
        if adapt_lower_bound:
            lb = max((f_bar + d @ x - gamma - 0.5 * tau * norm) / rho, lower_bound)
        x = _momo_step(x, d / big_d, tau, alpha, weight_decay, form)
        xs.append(x.copy())
    return xs


def run_sam_sgd(
    grad_fn: GradFn, x0: np.ndarray, steps: int, learning_rate: float, rho: float = 0.05
) -> list[np.ndarray]:
    """SAM with SGD as the outer optimizer (Foret et al. 2021, "Sharpness-Aware Minimization for
    Efficiently Improving Generalization", Algorithm 1, p = 2)::

        g     = grad L(x)
        eps   = rho * g / ||g||          (0 where g = 0)
        x_t   = x_{t-1} - lr * grad L(x_{t-1} + eps)
    """
    x = _start(x0)
    xs = [x.copy()]
    for _ in range(steps):
        g = _grad(grad_fn, x)
        norm = np.sqrt(g @ g)
        eps = rho * g / norm if norm > 0 else np.zeros_like(g)
        x = x - learning_rate * _grad(grad_fn, x + eps)
        xs.append(x.copy())
    return xs


def _cubic_minimizer(a, fa, fpa, b, fb, c, fc):
    """The local minimizer of the cubic p(t) = A (t-a)^3 + B (t-a)^2 + fpa (t-a) + fa through
    (b, fb) and (c, fc): a + (-B + sqrt(B^2 - 3 A fpa)) / (3 A), NaN if there is none (Nocedal &
    Wright, Section 3.5, "Interpolation")."""
    db, dc = b - a, c - a
    rb, rc = fb - fa - fpa * db, fc - fa - fpa * dc
    with np.errstate(all="ignore"):
        det = np.float64(db * db * dc * dc * (db - dc))
        big_a = (dc * dc * rb - db * db * rc) / det
        big_b = (db**3 * rc - dc**3 * rb) / det
        return a + (-big_b + np.sqrt(big_b * big_b - 3.0 * big_a * fpa)) / (3.0 * big_a)


def _quadratic_minimizer(a, fa, fpa, b, fb):
    """The minimizer of the quadratic through (a, fa) with slope fpa and (b, fb)."""
    with np.errstate(all="ignore"):
        curvature = np.float64(fb - fa - fpa * (b - a)) / (b - a) ** 2
        return a - fpa / (2.0 * curvature)


def _strong_wolfe_search(
    phi,
    value0: float,
    grad0: np.ndarray,
    slope0: float,
    guess: float,
    max_linesearch_steps: int = 20,
    max_learning_rate: float | None = None,
    tol: float = 0.0,
    increase_factor: float = 2.0,
    slope_rtol: float = 1e-4,
    curv_rtol: float | None = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
):
    """A step size eta along a descent direction satisfying the strong Wolfe conditions
    (Nocedal & Wright 2006, "Numerical Optimization", Algorithm 3.5, bracketing, and 3.6, zoom),
    `phi(eta) -> (f, grad f, slope)` on the line; returns (eta, f, grad f, trials)::

        decrease:   f(eta) <= f(0) + c1 eta f'(0) + tol, or (Hager & Zhang 2006, eq. 23, where
                    f(eta) <= f(0) + c3 |f(0)|)  f'(eta) <= (2 c1 - 1) f'(0) + tol
        curvature:  |f'(eta)| <= c2 |f'(0)| + tol

    3.5: eta_1 = guess, eta_{i+1} = increase_factor * eta_i (capped by max_learning_rate),
    until eta_i fails the decrease condition or f(eta_i) >= f(eta_{i-1}) (bracket [eta_{i-1},
    eta_i]), or f'(eta_i) >= 0 (bracket [eta_i, eta_{i-1}]), or satisfies both conditions.
    3.6: the bracket [lo, hi] (f(lo) < f(hi), the end lo first) shrinks around a trial point,
    the cubic's minimizer through lo (with its slope), hi and the previous end, if it is inside
    the bracket's middle 60%; else the quadratic's through lo and hi, if in the middle 80%;
    else the midpoint. The trial replaces hi if it fails the decrease condition or f >= f(lo);
    else it becomes lo, the old lo becoming hi if f'(trial) (hi - lo) >= 0.
    After max_linesearch_steps trials, or once the bracket is narrower than stepsize_precision
    with a step of sufficient decrease known, the search stops with the best such step (lowest f
    in 3.6, the latest in 3.5), or, if none, the last trial (eta = 0 if it left f's domain).
    """

    def decrease_error(eta, f, slope):
        error = f - value0 - slope_rtol * eta * slope0
        if approx_dec_rtol is not None:
            approximate = slope - (2 * slope_rtol - 1.0) * slope0
            near = f - value0 - approx_dec_rtol * abs(value0)
            error = min(max(approximate, near), error)
        return np.inf if np.isnan(error) else max(error, 0.0)

    def curvature_error(slope):
        if curv_rtol is None:
            return 0.0
        error = abs(slope) - curv_rtol * abs(slope0)
        return np.inf if np.isnan(error) else max(error, 0.0)

    safe = (0.0, value0, grad0)
    previous = (0.0, value0, slope0)
    bracket = None  # (lo, hi, third): (eta, f, f') each; third: (eta, f)
    for trial in range(1, max_linesearch_steps + 1):
        if bracket is None:
            eta = guess if trial == 1 else increase_factor * previous[0]
            capped = max_learning_rate is not None and eta >= max_learning_rate
            if max_learning_rate is not None:
                eta = min(eta, max_learning_rate)
            f, g, slope = phi(eta)
            decrease, curvature = decrease_error(eta, f, slope), curvature_error(slope)
            if decrease <= tol:
                safe = (eta, f, g)
            if max(decrease, curvature) <= tol:
                return eta, f, g, trial
            new = (eta, f, slope)
            if decrease > 0 or (f >= previous[1] and trial > 1):
                bracket = (previous, new, previous[:2])
            elif slope >= 0:
                bracket = (new, previous, new[:2])
            elif capped:
                return eta, f, g, trial
            previous = new
            too_narrow = False
        else:
            lo, hi, third = bracket
            width = abs(hi[0] - lo[0])
            left, right = min(lo[0], hi[0]), max(lo[0], hi[0])
            cubic = _cubic_minimizer(*lo, *hi[:2], *third)
            quadratic = _quadratic_minimizer(*lo, *hi[:2])
            if left + 0.2 * width < cubic < right - 0.2 * width:
                eta = cubic
            elif left + 0.1 * width < quadratic < right - 0.1 * width:
                eta = quadratic
            else:
                eta = (lo[0] + hi[0]) / 2.0
            f, g, slope = phi(eta)
            decrease, curvature = decrease_error(eta, f, slope), curvature_error(slope)
            if decrease <= tol and f < safe[1]:
                safe = (eta, f, g)
            if max(decrease, curvature) <= tol:
                return eta, f, g, trial
            new = (eta, f, slope)
            if decrease > 0 or f >= lo[1]:
                bracket = (lo, new, hi[:2])
            elif slope * (hi[0] - lo[0]) >= 0:
                bracket = (new, lo, hi[:2])
            else:
                bracket = (new, hi, lo[:2])
            too_narrow = width <= stepsize_precision and safe[0] > 0
        if too_narrow or trial == max_linesearch_steps:
            if safe[0] > 0 or np.isinf(decrease):
                return (*safe, trial)
            return eta, f, g, trial
    raise AssertionError("unreachable")


def run_lbfgs(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    *,
    value_fn: ValueFn,
    learning_rate: LearningRate | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    initial_guess_strategy: str = "one",
    trials: list[int] | None = None,
    **line_search,
) -> list[np.ndarray]:
    """L-BFGS (Nocedal 1980; Liu & Nocedal 1989) with a strong Wolfe line search
    (`_strong_wolfe_search`; defaults: optax.lbfgs's, 20 trials from eta = 1).

    With the last m = memory_size pairs s_i = x_{i+1} - x_i, y_i = g_{i+1} - g_i,
    rho_i = 1 / <y_i, s_i> (0 if that is 0), the direction is d = -lr * H g by the two-loop
    recursion (Nocedal & Wright 2006, Algorithm 7.4)::

        q = g;  for i newest to oldest:  a_i = rho_i <s_i, q>;  q -= a_i y_i
        r = gamma q,  gamma = <s, y> / <y, y> of the newest pair (1 if <y, y> = 0; at the first
                      step min(1, 1 / ||g||); 1 throughout without scale_init_precond)
        for i oldest to newest:  b = rho_i <y_i, r>;  r += (a_i - b) s_i
        x_{k+1} = x_k + eta d,   eta from the line search along d (first trial: 1, or with
                  initial_guess_strategy="keep" the last eta), f and g at x_{k+1} from it

    `trials`, if a list, receives the number of trials of each search.
    """
    x = _start(x0)
    xs = [x.copy()]
    f, g = value_fn(x.copy()), _grad(grad_fn, x)
    memory: list[tuple[np.ndarray, np.ndarray, float]] = []
    eta = 1.0
    for t in range(1, steps + 1):
        q, alphas = g.copy(), []
        for s, y, rho in reversed(memory):
            alphas.append(rho * (s @ q))
            q = q - alphas[-1] * y
        if not scale_init_precond:
            gamma = 1.0
        elif not memory:
            gamma = min(1.0, 1.0 / np.sqrt(g @ g))
        else:
            s, y, _ = memory[-1]
            gamma = (s @ y) / (y @ y) if y @ y > 0 else 1.0
        r = gamma * q
        for (s, y, rho), a in zip(memory, reversed(alphas), strict=True):
            r = r + (a - rho * (y @ r)) * s
        lr = 1.0 if learning_rate is None else _lr(learning_rate, t)
        d = -lr * r

        def phi(step, x=x, d=d):
            point = x + step * d
            grad = _grad(grad_fn, point)
            return value_fn(point.copy()), grad, grad @ d

        guess = eta if initial_guess_strategy == "keep" else 1.0
        eta, f_new, g_new, n = _strong_wolfe_search(phi, f, g, g @ d, guess, **line_search)
        if trials is not None:
            trials.append(n)
        x_new = x + eta * d
        s, y = x_new - x, g_new - g
        curvature = y @ s
        memory = [*memory, (s, y, 1.0 / curvature if curvature != 0 else 0.0)][-memory_size:]
        x, f, g = x_new, f_new, g_new
        xs.append(x.copy())
    return xs
