"""NumPy float64 reference of Lookahead (Zhang et al. 2019) around SGD with momentum, written
from the paper's Algorithm 1; same calling convention as `tests/reference/optimizers.py`, except
that it returns the slow and the fast weights."""

from __future__ import annotations

import numpy as np

from tests.reference.optimizers import GradFn, LearningRate, _grad, _lr, _start


def run_lookahead_sgd(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    sync_period: int = 5,
    slow_step_size: float = 0.5,
    momentum: float = 0.0,
    reset_state: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Lookahead over SGD with heavy-ball momentum `b = momentum * b + g; x -= lr * b`.

    ::

        for each outer iteration:
            fast = slow
            k times:  fast = fast - lr * b   (the inner optimizer, t counting every inner step)
            slow = slow + slow_step_size * (fast - slow)
            (reset_state: b = 0)

    Returns (slow weights, fast weights) after each inner step: the fast weights are the params
    a training loop holds, the slow ones move at every k-th step.
    """
    slow = _start(x0)
    fast = slow.copy()
    buffer = np.zeros_like(slow)
    slows, fasts = [slow.copy()], [fast.copy()]
    for t in range(1, steps + 1):
        g = _grad(grad_fn, fast)
        buffer = momentum * buffer + g
        fast = fast - _lr(learning_rate, t) * buffer
        if t % sync_period == 0:
            slow = slow + slow_step_size * (fast - slow)
            fast = slow.copy()
            if reset_state:
                buffer = np.zeros_like(buffer)
        slows.append(slow.copy())
        fasts.append(fast.copy())
    return slows, fasts
