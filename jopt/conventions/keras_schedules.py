"""keras.optimizers.schedules as jopt schedules: same names, arguments and numbers (Keras 3).

Keras evaluates a schedule at the optimizer's `iterations` (0 at the first update), as jopt does.
"""

from __future__ import annotations

from collections.abc import Sequence

from jopt import validation
from jopt.schedules import compose, decay, restarts, warmup
from jopt.schedules._base import Schedule


def ExponentialDecay(  # noqa: N802 - Keras' name
    initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> Schedule:
    """`initial_learning_rate * decay_rate ** (step / decay_steps)` (floored with staircase)."""
    return decay.exponential_decay(initial_learning_rate, decay_steps, decay_rate, 0, staircase)


def PiecewiseConstantDecay(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:  # noqa: N802
    """`values[i]` for `boundaries[i-1] < step <= boundaries[i]`: changes one step after torch."""
    return compose.piecewise_constant(boundaries, values, switch="after")


def PolynomialDecay(  # noqa: N802
    initial_learning_rate: float,
    decay_steps: int,
    end_learning_rate: float = 0.0001,
    power: float = 1.0,
    cycle: bool = False,
) -> Schedule:
    """Polynomial decay to end_learning_rate; with `cycle`, the horizon grows by decay_steps."""
    return decay.polynomial_schedule(
        initial_learning_rate, end_learning_rate, power, decay_steps, cycle=cycle
    )


def InverseTimeDecay(  # noqa: N802
    initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> Schedule:
    """`initial_learning_rate / (1 + decay_rate * step / decay_steps)`."""
    return decay.inverse_time_decay(initial_learning_rate, decay_steps, decay_rate, staircase)


def CosineDecay(  # noqa: N802
    initial_learning_rate: float,
    decay_steps: int,
    alpha: float = 0.0,
    warmup_target: float | None = None,
    warmup_steps: int = 0,
) -> Schedule:
    """Cosine decay, after an optional linear warmup from initial_learning_rate to warmup_target.

    `decay_steps` excludes the warmup (Keras' convention; optax's includes it).
    """
    fn = "jopt.keras.CosineDecay"
    if warmup_target is None:
        return decay.cosine_decay_schedule(initial_learning_rate, decay_steps, alpha)
    target = validation.check_number(fn, "warmup_target", warmup_target, validation.ANY_FINITE)
    alpha = validation.check_number(fn, "alpha", alpha, validation.ANY_FINITE)
    return warmup.with_warmup(
        decay.cosine_decay_schedule(target, decay_steps, alpha),
        warmup_steps,
        initial_learning_rate,
    )


def CosineDecayRestarts(  # noqa: N802
    initial_learning_rate: float,
    first_decay_steps: int,
    t_mul: float = 2.0,
    m_mul: float = 1.0,
    alpha: float = 0.0,
) -> Schedule:
    """SGDR: cosine cycles growing by t_mul, peaks shrinking by m_mul, floor alpha * initial."""
    return restarts.cosine_decay_restarts(
        initial_learning_rate, first_decay_steps, t_mul, m_mul, alpha
    )
