"""Decay schedules: constant, step, multi-step, exponential, inverse-time, polynomial, cosine.

Each returns a `jopt.schedules.Schedule`, a pure function `step -> value`. Where optax has the
schedule, the signature is a drop-in for it; the numbers match optax, torch.optim.lr_scheduler and
keras.optimizers.schedules (tests/golden holds fixtures made by the real packages).

Arguments are checked at construction, more strictly than optax 0.2.8, torch and Keras do: step
counts below 1 (optax silently gives a constant schedule), NaN or infinite numbers, and settings
that cannot be meant raise a ValueError: a decay factor above 1 (exponential growth without a
ceiling, a step or multi-step "decay" that rises), a cosine floor `alpha` outside [0, 1] (below
0 the value ends negative, above 1 the "decay" rises), and an `end_value` the schedule never
reaches.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from jopt._src import errors, validation
from jopt._src.schedules.schedule import (
    Schedule,
    as_float,
    constant,
    cosine_anneal,
    divmod_steps,
    make_schedule,
)

_FINITE = validation.ANY_FINITE
FACTOR = validation.Range(0.0, 1.0, lo_open=True)  # a factor that shrinks (or keeps) the value


@errors.public("jopt.constant_schedule")
def constant_schedule(value: float) -> Schedule:
    """`value` at every step."""
    value = validation.check_number("jopt.constant_schedule", "value", value, _FINITE)
    return make_schedule(lambda step: constant(value) + 0 * as_float(step))


@errors.public("jopt.exponential_decay")
def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """Exponential decay; a drop-in for `optax.exponential_decay` (and Keras' ExponentialDecay).

        value = init_value * decay_rate ** ((step - transition_begin) / transition_steps)

    held at `init_value` before `transition_begin`; the exponent is floored with `staircase`;
    `end_value` bounds the result (a floor when decay_rate < 1, a ceiling when >= 1). torch's
    ExponentialLR(gamma) is `exponential_decay(lr, 1, gamma)`, StepLR is `step_decay`.

    Allowed: decay_rate > 0 and finite. With decay_rate < 1 the value shrinks towards 0 and
    `end_value`, if given, is a floor in [0, init_value]. A decay_rate > 1 grows without bound
    (to inf in float32 after a few thousand steps), so it needs `end_value` as a ceiling
    >= init_value, and init_value >= 0 (a negative value would grow towards -inf past the
    ceiling). optax, torch's ExponentialLR and Keras' ExponentialDecay accept growth without
    a ceiling; jopt does not.
    """
    fn = errors.current_function()
    init_value = validation.check_number(fn, "init_value", init_value, _FINITE)
    transition_steps = validation.check_int(fn, "transition_steps", transition_steps, 1)
    decay_rate, end_value = check_exponential_bounds(
        fn, "init_value", init_value, decay_rate, end_value
    )
    transition_begin = validation.check_int(fn, "transition_begin", transition_begin)
    staircase = validation.check_bool(fn, "staircase", staircase)

    def schedule(step):
        elapsed = jnp.maximum(jnp.asarray(step) - transition_begin, 0)
        if staircase:
            exponent, _ = divmod_steps(elapsed, transition_steps)
        else:
            exponent = as_float(elapsed) / transition_steps
        scale = constant(decay_rate) ** exponent
        # A growth overflows to inf, and 0 * inf is NaN: zero stays zero.
        value = init_value * scale if init_value else jnp.zeros_like(scale)
        if end_value is not None:
            bound = jnp.maximum if decay_rate < 1 else jnp.minimum
            value = bound(value, end_value)
        return value

    return make_schedule(schedule)


def check_exponential_bounds(
    fn: str, start_name: str, start: float, decay_rate: float, end_value: float | None
) -> tuple[float, float | None]:
    """Checks the rate and the bound of an exponential starting at `start`; returns them.

    decay_rate > 0 and finite; above 1 only with `end_value` as a ceiling, from start >= 0.
    `end_value` is a floor in [0, start] when decay_rate < 1, a ceiling >= start otherwise.
    `start_name` is the argument that holds `start` in `fn` (init_value, peak_value...).
    """
    decay_rate = validation.check_number(fn, "decay_rate", decay_rate, validation.POSITIVE)
    end_value = validation.check_optional_number(fn, "end_value", end_value, _FINITE)
    if end_value is None:
        validation.require(
            fn,
            decay_rate <= 1,
            f"decay_rate must be in (0, 1] without end_value, got {decay_rate!r}: a rate above "
            "1 grows without bound; give end_value as a ceiling.",
            argument="decay_rate",
            value=decay_rate,
        )
        return decay_rate, None
    if decay_rate < 1:
        reached = 0 <= end_value <= start
        where = f"a floor in [0, {start_name}]"
    else:
        validation.require(
            fn,
            decay_rate == 1 or start >= 0,
            f"{start_name} must be >= 0 with decay_rate={decay_rate!r} > 1, got {start!r}: "
            "a negative value grows towards -inf past the ceiling end_value.",
            argument=start_name,
            value=start,
        )
        reached = end_value >= start
        where = f"a ceiling >= {start_name}"
    validation.require(
        fn,
        reached,
        f"end_value={end_value!r} is never reached from {start_name}={start!r} with "
        f"decay_rate={decay_rate!r}: it must be {where}.",
        argument="end_value",
        value=end_value,
    )
    return decay_rate, end_value


@errors.public("jopt.step_decay")
def step_decay(init_value: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """`init_value * gamma ** floor(step / step_size)`: torch's StepLR.

    gamma must be in (0, 1]: a decay. torch's StepLR also takes gamma > 1, a value that grows
    without bound; for a capped growth use `exponential_decay(init_value, step_size, gamma,
    staircase=True, end_value=ceiling)`.
    """
    fn = errors.current_function()
    validation.check_number(fn, "init_value", init_value, _FINITE)
    gamma = validation.check_number(fn, "gamma", gamma, FACTOR)
    step_size = validation.check_int(fn, "step_size", step_size, 1)
    return exponential_decay(init_value, step_size, gamma, staircase=True)


@errors.public("jopt.multistep_decay")
def multistep_decay(init_value: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    """`init_value * gamma ** (number of milestones <= step)`: torch's MultiStepLR.

    A milestone listed twice applies gamma twice, as in torch. gamma must be in (0, 1]: a
    decay (torch's MultiStepLR also takes gamma > 1); for values that rise at given steps use
    `piecewise_constant`.
    """
    fn = errors.current_function()
    init_value = validation.check_number(fn, "init_value", init_value, _FINITE)
    milestones = validation.check_increasing(fn, "milestones", milestones, strict=False)
    gamma = validation.check_number(fn, "gamma", gamma, FACTOR)
    marks = jnp.asarray(milestones, jnp.int32)

    def schedule(step):
        passed = jnp.sum(jnp.asarray(step) >= marks) if milestones else 0
        return init_value * constant(gamma) ** as_float(passed)

    return make_schedule(schedule)


@errors.public("jopt.inverse_time_decay")
def inverse_time_decay(
    init_value: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> Schedule:
    """`init_value / (1 + decay_rate * step / decay_steps)`: Keras' InverseTimeDecay.

    The ratio `step / decay_steps` is floored with `staircase`.
    """
    fn = errors.current_function()
    init_value = validation.check_number(fn, "init_value", init_value, _FINITE)
    decay_steps = validation.check_int(fn, "decay_steps", decay_steps, 1)
    decay_rate = validation.check_number(fn, "decay_rate", decay_rate, validation.NON_NEGATIVE)
    staircase = validation.check_bool(fn, "staircase", staircase)

    def schedule(step):
        if staircase:
            ratio, _ = divmod_steps(step, decay_steps)
        else:
            ratio = as_float(step) / decay_steps
        return init_value / (1 + decay_rate * ratio)

    return make_schedule(schedule)


@errors.public("jopt.polynomial_schedule")
def polynomial_schedule(
    init_value: float,
    end_value: float,
    power: float,
    transition_steps: int,
    transition_begin: int = 0,
    *,
    cycle: bool = False,
) -> Schedule:
    """Polynomial decay; a drop-in for `optax.polynomial_schedule`, with Keras' `cycle`.

        value = (init_value - end_value) * (1 - t / T) ** power + end_value,
        t = clip(step - transition_begin, 0, T),  T = transition_steps

    With `cycle` (Keras' PolynomialDecay), T grows to the next multiple of transition_steps
    instead of holding at end_value: T = transition_steps * ceil(t / transition_steps).
    torch's PolynomialLR(total_iters, power) is `polynomial_schedule(lr, 0, power, total_iters)`.
    """
    fn = errors.current_function()
    init_value = validation.check_number(fn, "init_value", init_value, _FINITE)
    end_value = validation.check_number(fn, "end_value", end_value, _FINITE)
    power = validation.check_number(fn, "power", power, validation.POSITIVE)
    transition_steps = validation.check_int(fn, "transition_steps", transition_steps, 1)
    transition_begin = validation.check_int(fn, "transition_begin", transition_begin)
    cycle = validation.check_bool(fn, "cycle", cycle)

    def schedule(step):
        elapsed = jnp.maximum(jnp.asarray(step) - transition_begin, 0)
        t = as_float(elapsed)
        if cycle:
            done, since = divmod_steps(elapsed, transition_steps)
            cycles = jnp.where(since > 0, done + 1, done)  # ceil(t / transition_steps)
            horizon = transition_steps * jnp.maximum(cycles, 1)
        else:
            horizon = constant(transition_steps)
            t = jnp.minimum(t, horizon)
        # Not `1 - t / horizon`: XLA divides as `t * (1 / horizon)`, which exceeds 1 at
        # t = horizon, and a negative base to a fractional power is NaN.
        remaining = jnp.clip((horizon - t) / horizon, 0, 1)
        return (init_value - end_value) * remaining**power + end_value

    return make_schedule(schedule)


@errors.public("jopt.linear_schedule")
def linear_schedule(
    init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    """Linear interpolation from init_value to end_value; a drop-in for `optax.linear_schedule`.

    torch's LinearLR(start_factor, end_factor, total_iters) on a base lr is
    `linear_schedule(lr * start_factor, lr * end_factor, total_iters)`.
    """
    return polynomial_schedule(init_value, end_value, 1.0, transition_steps, transition_begin)


@errors.public("jopt.cosine_decay_schedule")
def cosine_decay_schedule(
    init_value: float,
    decay_steps: int,
    alpha: float = 0.0,
    exponent: float = 1.0,
    *,
    periodic: bool = False,
) -> Schedule:
    """Cosine annealing (Loshchilov & Hutter 2017); a drop-in for `optax.cosine_decay_schedule`.

        value = init_value * ((1 - alpha) * c ** exponent + alpha),
        c = (1 + cos(pi * min(step, decay_steps) / decay_steps)) / 2

    Past `decay_steps` the value stays at the floor `alpha * init_value` (optax, Keras). With
    `periodic=True` the step is not clipped and the value rises again, as torch's
    CosineAnnealingLR(T_max, eta_min) does past T_max (alpha = eta_min / lr).

    alpha must be in [0, 1]: below 0 the value ends with the opposite sign of init_value (a
    negative learning rate), above 1 the "decay" rises. optax, torch (eta_min > lr) and Keras
    accept both; jopt does not. exponent must be > 0.
    """
    fn = errors.current_function()
    init_value = validation.check_number(fn, "init_value", init_value, _FINITE)
    decay_steps = validation.check_int(fn, "decay_steps", decay_steps, 1)
    alpha = validation.check_number(fn, "alpha", alpha, validation.UNIT)
    exponent = validation.check_number(fn, "exponent", exponent, validation.POSITIVE)
    periodic = validation.check_bool(fn, "periodic", periodic)

    def schedule(step):
        t = as_float(step)
        if not periodic:
            t = jnp.minimum(t, decay_steps)
        c = cosine_anneal(1.0, 0.0, t / decay_steps)
        return init_value * ((1 - alpha) * c**exponent + alpha)

    return make_schedule(schedule)
