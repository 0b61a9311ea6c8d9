"""NumPy float64 references of the catalogue's schedule-free family
(`jopt/_src/catalogue/schedule_free.py`), written from the papers; same calling convention as
`tests/reference/optimizers.py`.

Schedule-free learning (Defazio et al. 2024, "The Road Less Scheduled", Algorithm 1), with
z_1 = x_1 = y_1 = x0 and, for t = 1, 2, ...::

    g       = grad f(y_t)
    d       = direction(g) + weight_decay * y_t           (SGD: g;  AdamW: see run_*_adamw)
    z_{t+1} = z_t - lr_t d
    max_lr  = max(max_lr, lr'_t)                          (the authors' code: lr_max)
    w_t     = t**r * max_lr**weight_lr_power;   c = w_t / sum_{i<=t} w_i   (0 if the sum is 0)
    x_{t+1} = (1 - c) x_t + c z_{t+1}
    y_{t+1} = (1 - b1) z_{t+1} + b1 x_{t+1}

The trajectory returned is the y's, the params an optimizer hands back; `schedule_free_iterates`
also gives the x's, the points to evaluate at. With lr(k) the learning rate (schedule at k) and
T = warmup_steps (None: no warmup factor):

* form="paper" (Algorithm 1, the authors' reference implementation):
  lr_t = lr'_t = lr(t - 1) * min(1, t / T).
* form="optax" (optax.contrib's): a warmup ramp from 0, read at t - 1 for the step and at t
  for the weight: lr_t = lr(t - 1) * min(t - 1, T) / T, lr'_t = lr(t) * min(t, T) / T.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tests.reference.optimizers import GradFn, LearningRate, _grad, _lr, _start

# direction(g, t) -> (d, factor): the base direction at step t, and a factor of lr_t (AdamW's
# paper form folds its bias correction into the learning rate).
Direction = Callable[[np.ndarray, int], tuple[np.ndarray, float]]


def _warmup(t: int, warmup_steps: int | None, ramp_from_zero: bool) -> float:
    if warmup_steps is None:
        return 1.0
    if ramp_from_zero:
        return min(t, warmup_steps) / warmup_steps
    return min(1.0, t / warmup_steps)


def schedule_free_iterates(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    direction: Direction,
    warmup_steps: int | None = None,
    b1: float = 0.9,
    weight_decay: float | None = None,
    weight_lr_power: float = 2.0,
    r: float = 0.0,
    form: str = "optax",
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """([y_1, ..., y_{steps+1}], [x_1, ...]) of Algorithm 1 (module docstring)."""
    if form not in ("optax", "paper"):
        raise ValueError(f"unknown form {form!r}")
    y = _start(x0)
    z, x = y.copy(), y.copy()
    ys, xs = [y.copy()], [x.copy()]
    max_lr, weight_sum = 0.0, 0.0
    for t in range(1, steps + 1):
        g = _grad(grad_fn, y)
        d, factor = direction(g, t)
        if weight_decay is not None:
            d = d + weight_decay * y
        if form == "paper":
            lr = lr_weight = _lr(learning_rate, t) * _warmup(t, warmup_steps, False) * factor
        else:
            lr = _lr(learning_rate, t) * _warmup(t - 1, warmup_steps, True) * factor
            lr_weight = _lr(learning_rate, t + 1) * _warmup(t, warmup_steps, True) * factor
        z = z - lr * d
        max_lr = max(max_lr, lr_weight)
        weight = t**r * max_lr**weight_lr_power
        weight_sum += weight
        c = weight / weight_sum if weight_sum > 0 else 0.0
        x = (1.0 - c) * x + c * z
        y = (1.0 - b1) * z + b1 * x
        ys.append(y.copy())
        xs.append(x.copy())
    return ys, xs


def run_schedule_free_sgd(
    grad_fn: GradFn, x0: np.ndarray, steps: int, learning_rate: LearningRate, **averaging
) -> list[np.ndarray]:
    """Schedule-free SGD: d = g + weight_decay * y (module docstring), `averaging` the
    arguments of `schedule_free_iterates` (warmup_steps, b1, weight_decay, weight_lr_power, r,
    form). Returns the y's."""
    sgd = lambda g, t: (g, 1.0)  # noqa: E731
    return schedule_free_iterates(grad_fn, x0, steps, learning_rate, sgd, **averaging)[0]


def adamw_direction(b2: float, eps: float, form: str) -> Direction:
    """Schedule-free AdamW's direction, without a first moment (b1 is the interpolation)::

    v_t = b2 v_{t-1} + (1 - b2) g^2
    d   = g / (sqrt(v_t / (1 - b2^t)) + eps)                  (form="optax")
    d   = g / (sqrt(v_t) + eps),  lr_t *= sqrt(1 - b2^t)      (form="paper", Algorithm 1)
    """
    v = None

    def direction(g: np.ndarray, t: int) -> tuple[np.ndarray, float]:
        nonlocal v
        v = (1.0 - b2) * g**2 + (b2 * v if v is not None else 0.0)
        correction = 1.0 - b2**t
        if form == "paper":
            return g / (np.sqrt(v) + eps), float(np.sqrt(correction))
        return g / (np.sqrt(v / correction) + eps), 1.0

    return direction


def run_schedule_free_adamw(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    **averaging,
) -> list[np.ndarray]:
    """Schedule-free AdamW: `adamw_direction` plus weight_decay * y, `averaging` as for SGD.
    Returns the y's."""
    direction = adamw_direction(b2, eps, averaging.get("form", "optax"))
    return schedule_free_iterates(
        grad_fn, x0, steps, learning_rate, direction, weight_decay=weight_decay, **averaging
    )[0]
