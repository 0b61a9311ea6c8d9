"""keras.optimizers.schedules as jopt schedules: same names, arguments and numbers (Keras 3).

Keras evaluates a schedule at the optimizer's `iterations` (0 at the first update), as jopt does.
Arguments are checked here, under Keras' names, before the jopt schedule is built; the ranges
are Keras' (`decay_steps > 0`), narrowed to jopt's where Keras takes nonsense silently: NaN or
infinite numbers, negative `warmup_steps`, non-positive `power`, `t_mul < 1`, and the rules of
the jopt schedules underneath. Keras 3.15 accepts, and jopt rejects:

- ExponentialDecay `decay_rate` outside (0, 1]: above 1 the rate grows without bound (Keras has
  no end value to cap it; float32 overflows to inf after a few thousand steps). For a capped
  growth use `jopt.exponential_decay(..., end_value=ceiling)`.
- CosineDecay and CosineDecayRestarts `alpha` outside [0, 1]: below 0 the learning rate ends
  negative, above 1 the decay rises.
- CosineDecayRestarts `m_mul` outside [0, 1]: above 1 the peaks grow without bound.
"""

from __future__ import annotations

from collections.abc import Sequence

from jopt._src import errors, validation
from jopt._src.schedules import compose, decay, restarts, warmup
from jopt._src.schedules.schedule import Schedule

_FINITE = validation.ANY_FINITE


def _initial(fn: str, initial_learning_rate: float) -> float:
    return validation.check_number(fn, "initial_learning_rate", initial_learning_rate, _FINITE)


@errors.public("jopt.keras.ExponentialDecay")
def ExponentialDecay(  # noqa: N802 - Keras' name
    initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> Schedule:
    """`initial_learning_rate * decay_rate ** (step / decay_steps)` (floored with staircase).

    decay_rate must be in (0, 1] (Keras takes any rate; above 1 it grows without bound).
    """
    fn = errors.current_function()
    initial = _initial(fn, initial_learning_rate)
    decay_steps = validation.check_int(fn, "decay_steps", decay_steps, 1)
    decay_rate = validation.check_number(fn, "decay_rate", decay_rate, decay.FACTOR)
    staircase = validation.check_bool(fn, "staircase", staircase)
    return decay.exponential_decay(initial, decay_steps, decay_rate, 0, staircase)


@errors.public("jopt.keras.PiecewiseConstantDecay")
def PiecewiseConstantDecay(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:  # noqa: N802
    """`values[i]` for `boundaries[i-1] < step <= boundaries[i]`: changes one step after torch."""
    fn = errors.current_function()
    boundaries = validation.check_increasing(fn, "boundaries", boundaries)
    try:
        values = tuple(values)
    except TypeError as e:
        raise validation.wrong_type(fn, "values", values, "a sequence of numbers") from e
    values = tuple(
        validation.check_number(fn, f"values[{i}]", v, _FINITE) for i, v in enumerate(values)
    )
    validation.require(
        fn,
        len(values) == len(boundaries) + 1,
        f"values must have one more element than boundaries, got {len(values)} values and "
        f"{len(boundaries)} boundaries.",
        argument="values",
        value=values,
    )
    return compose.piecewise_constant(boundaries, values, switch="after")


@errors.public("jopt.keras.PolynomialDecay")
def PolynomialDecay(  # noqa: N802
    initial_learning_rate: float,
    decay_steps: int,
    end_learning_rate: float = 0.0001,
    power: float = 1.0,
    cycle: bool = False,
) -> Schedule:
    """Polynomial decay to end_learning_rate; with `cycle`, the horizon grows by decay_steps."""
    fn = errors.current_function()
    initial = _initial(fn, initial_learning_rate)
    decay_steps = validation.check_int(fn, "decay_steps", decay_steps, 1)
    end = validation.check_number(fn, "end_learning_rate", end_learning_rate, _FINITE)
    power = validation.check_number(fn, "power", power, validation.POSITIVE)
    cycle = validation.check_bool(fn, "cycle", cycle)
    return decay.polynomial_schedule(initial, end, power, decay_steps, cycle=cycle)


@errors.public("jopt.keras.InverseTimeDecay")
def InverseTimeDecay(  # noqa: N802
    initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> Schedule:
    """`initial_learning_rate / (1 + decay_rate * step / decay_steps)`."""
    fn = errors.current_function()
    initial = _initial(fn, initial_learning_rate)
    decay_steps = validation.check_int(fn, "decay_steps", decay_steps, 1)
    decay_rate = validation.check_number(fn, "decay_rate", decay_rate, validation.NON_NEGATIVE)
    staircase = validation.check_bool(fn, "staircase", staircase)
    return decay.inverse_time_decay(initial, decay_steps, decay_rate, staircase)


@errors.public("jopt.keras.CosineDecay")
def CosineDecay(  # noqa: N802
    initial_learning_rate: float,
    decay_steps: int,
    alpha: float = 0.0,
    warmup_target: float | None = None,
    warmup_steps: int = 0,
) -> Schedule:
    """Cosine decay, after an optional linear warmup from initial_learning_rate to warmup_target.

    `decay_steps` excludes the warmup (Keras' convention, `decay_steps_include_warmup=False`;
    optax's includes it). Without warmup_target there is no warmup and warmup_steps is unused,
    as in Keras. alpha must be in [0, 1] (Keras takes any).
    """
    fn = errors.current_function()
    initial = _initial(fn, initial_learning_rate)
    decay_steps = validation.check_int(fn, "decay_steps", decay_steps, 1)
    alpha = validation.check_number(fn, "alpha", alpha, validation.UNIT)
    target = validation.check_optional_number(fn, "warmup_target", warmup_target, _FINITE)
    warmup_steps = validation.check_int(fn, "warmup_steps", warmup_steps)
    if target is None:
        return decay.cosine_decay_schedule(initial, decay_steps, alpha)
    return warmup.with_warmup(
        decay.cosine_decay_schedule(target, decay_steps, alpha),
        warmup_steps,
        initial,
        decay_steps_include_warmup=False,
    )


@errors.public("jopt.keras.CosineDecayRestarts")
def CosineDecayRestarts(  # noqa: N802
    initial_learning_rate: float,
    first_decay_steps: int,
    t_mul: float = 2.0,
    m_mul: float = 1.0,
    alpha: float = 0.0,
) -> Schedule:
    """SGDR: cosine cycles growing by t_mul, peaks shrinking by m_mul, floor alpha * initial.

    t_mul must be >= 1, m_mul and alpha in [0, 1] (Keras takes any t_mul, m_mul and alpha).
    """
    fn = errors.current_function()
    initial = _initial(fn, initial_learning_rate)
    first = validation.check_int(fn, "first_decay_steps", first_decay_steps, 1)
    t_mul = validation.check_number(fn, "t_mul", t_mul, validation.Range(1.0))
    m_mul = validation.check_number(fn, "m_mul", m_mul, validation.UNIT)
    alpha = validation.check_number(fn, "alpha", alpha, validation.UNIT)
    return restarts.cosine_decay_restarts(initial, first, t_mul, m_mul, alpha)
