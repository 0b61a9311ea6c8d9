"""Building schedules from pieces: piecewise constant or linear, joined in sequence, multiplied.

piecewise_constant(boundaries, values)      values[i] on the i-th interval between boundaries
piecewise_constant_schedule(init, {b: s})   optax's form: multiply by s from step b on
piecewise_linear(boundaries, values)        linear interpolation through (boundary, value)
join_schedules(schedules, boundaries)       schedule i from boundary i-1 on, counting from 0
multiply_schedules(*schedules)              the product (torch's ChainedScheduler)
per_epoch(schedule, steps_per_epoch)        stepped once per epoch

The combinators keep what their pieces carry besides their values (see `Schedule`): a base
learning rate where the pieces agree on one; a momentum cycle through `per_epoch`, and nowhere
else: a joined, multiplied or warmed-up schedule cannot say which momentum torch would set, so a
piece that cycles the momentum is refused with an error rather than dropped in silence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax.numpy as jnp

from jopt._src import errors, validation
from jopt._src.base import ScheduleFn
from jopt._src.schedules.schedule import (
    Schedule,
    as_float,
    base_lr_of,
    constant,
    cosine_anneal,
    linear_anneal,
    make_schedule,
    momentum_of,
    refuse_momentum_cycles,
)

SWITCH = ("at", "after")


def _check_values(fn: str, values: Sequence[float], count: int) -> tuple[float, ...]:
    values = tuple(
        validation.check_number(fn, f"values[{i}]", v, validation.ANY_FINITE)
        for i, v in enumerate(values)
    )
    validation.require(
        fn,
        len(values) == count,
        f"needs {count} values for {count - 1} boundaries, got {len(values)}.",
        argument="values",
        value=values,
    )
    return values


@errors.public("jopt.piecewise_constant")
def piecewise_constant(
    boundaries: Sequence[int], values: Sequence[float], *, switch: str = "at"
) -> Schedule:
    """`values[i]` between `boundaries[i-1]` and `boundaries[i]`; one more value than boundaries.

    `switch="at"` changes value at the boundary step (torch's MultiStepLR, optax):
    `values[i]` for `boundaries[i-1] <= step < boundaries[i]`. `switch="after"` changes it one
    step later, as Keras' PiecewiseConstantDecay: `boundaries[i-1] < step <= boundaries[i]`.
    """
    fn = errors.current_function()
    switch = validation.check_choice(fn, "switch", switch, SWITCH)
    boundaries = validation.check_increasing(fn, "boundaries", boundaries)
    values = _check_values(fn, values, len(boundaries) + 1)
    marks = jnp.asarray(boundaries, jnp.int32)

    def schedule(step):
        step = jnp.asarray(step)
        passed = jnp.sum(step >= marks if switch == "at" else step > marks)
        # The table is made at call time, in the dtype of that time (float64 under x64).
        return jnp.asarray(values, constant(0).dtype)[passed]

    return make_schedule(schedule)


@errors.public("jopt.piecewise_constant_schedule")
def piecewise_constant_schedule(
    init_value: float, boundaries_and_scales: Mapping[int, float] | None = None
) -> Schedule:
    """optax's form: start at `init_value`, multiply by `scale` from step `boundary` on.

    A drop-in for `optax.piecewise_constant_schedule`.
    """
    fn = errors.current_function()
    init_value = validation.check_number(fn, "init_value", init_value, validation.ANY_FINITE)
    items = sorted((boundaries_and_scales or {}).items())
    boundaries = [b for b, _ in items]
    values = [init_value]
    for i, (_, scale) in enumerate(items):
        scale = validation.check_number(fn, f"scale[{i}]", scale, validation.NON_NEGATIVE)
        values.append(values[-1] * scale)
    return piecewise_constant(boundaries, values, switch="at")


@errors.public("jopt.piecewise_linear")
def piecewise_linear(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    """Linear interpolation through the points `(boundaries[i], values[i])`, constant outside."""
    fn = errors.current_function()
    boundaries = validation.check_increasing(fn, "boundaries", boundaries)
    validation.require(
        fn, len(boundaries) >= 1, "needs at least one boundary.", argument="boundaries"
    )
    values = _check_values(fn, values, len(boundaries))
    return make_schedule(
        lambda step: jnp.interp(
            as_float(step),
            jnp.asarray(boundaries, constant(0).dtype),
            jnp.asarray(values, constant(0).dtype),
        )
    )


def check_schedules(fn: str, name: str, schedules: Sequence[ScheduleFn]) -> tuple:
    """A sequence of schedules (callables), at least one."""
    try:
        schedules = tuple(schedules)
    except TypeError as e:
        raise validation.wrong_type(fn, name, schedules, "a sequence of schedules") from e
    validation.require(fn, len(schedules) >= 1, f"needs at least one {name[:-1]}.", argument=name)
    for i, s in enumerate(schedules):
        validation.check_callable(fn, f"{name}[{i}]", s)
    return schedules


def common_base_lr(schedules: Sequence[ScheduleFn]) -> float | None:
    """The base learning rate all `schedules` carry, or None if they do not agree on one."""
    bases = {base_lr_of(s) for s in schedules}
    return bases.pop() if len(bases) == 1 else None


@errors.public("jopt.join_schedules")
def join_schedules(schedules: Sequence[ScheduleFn], boundaries: Sequence[int]) -> Schedule:
    """`schedules[i]` from `boundaries[i-1]` on, given the steps counted from that boundary.

    A drop-in for `optax.join_schedules`; the step offset is torch's SequentialLR's. The result
    carries the first schedule's base learning rate; a schedule that cycles the momentum is
    refused (torch's SequentialLR leaves the momentum at whatever the last cycling scheduler set,
    its value at construction included, which no step function of the joined clock reproduces).
    """
    fn = errors.current_function()
    schedules = check_schedules(fn, "schedules", schedules)
    boundaries = validation.check_increasing(fn, "boundaries", boundaries)
    validation.require(
        fn,
        len(schedules) == len(boundaries) + 1,
        f"needs one schedule more than boundaries, got {len(schedules)} schedules and "
        f"{len(boundaries)} boundaries.",
        argument="boundaries",
        value=boundaries,
    )
    refuse_momentum_cycles(
        fn, {f"schedules[{i}]": s for i, s in enumerate(schedules)}, "a joined schedule"
    )
    starts = (0, *boundaries)

    def joined(step):
        step = jnp.asarray(step)
        value = schedules[0](step)
        for start, s in zip(starts[1:], schedules[1:], strict=True):
            value = jnp.where(step >= start, s(step - start), value)
        return value

    return make_schedule(joined, base_lr=base_lr_of(schedules[0]))


@errors.public("jopt.multiply_schedules")
def multiply_schedules(*schedules: ScheduleFn) -> Schedule:
    """The product of the schedules' values at each step (torch's ChainedScheduler).

    The result carries the base learning rate its factors share (if they share one); a factor
    that cycles the momentum is refused.
    """
    fn = errors.current_function()
    schedules = check_schedules(fn, "schedules", schedules)
    refuse_momentum_cycles(
        fn, {f"schedules[{i}]": s for i, s in enumerate(schedules)}, "a product of schedules"
    )

    def product(step):
        value = schedules[0](step)
        for s in schedules[1:]:
            value = value * s(step)
        return value

    return make_schedule(product, base_lr=common_base_lr(schedules))


@errors.public("jopt.piecewise_interpolate_schedule")
def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: float,
    boundaries_and_scales: Mapping[int, float] | None = None,
) -> Schedule:
    """Interpolates between accumulated scales; a drop-in for optax's.

    The value is `init_value` at step 0 and `init_value * prod(scales up to b)` at boundary b,
    joined by linear or half-cosine segments, and constant after the last boundary.
    """
    fn = errors.current_function()
    kind = validation.check_choice(fn, "interpolate_type", interpolate_type, ("linear", "cosine"))
    init_value = validation.check_number(fn, "init_value", init_value, validation.ANY_FINITE)
    items = sorted((boundaries_and_scales or {}).items())
    boundaries = validation.check_increasing(fn, "boundaries", [b for b, _ in items])
    values = [init_value]
    for i, (_, scale) in enumerate(items):
        scale = validation.check_number(fn, f"scale[{i}]", scale, validation.NON_NEGATIVE)
        values.append(values[-1] * scale)
    anneal = linear_anneal if kind == "linear" else cosine_anneal
    starts = (0, *boundaries)

    def schedule(step):
        t = as_float(step)
        value = constant(values[-1])
        for i in reversed(range(len(boundaries))):
            lo, hi = starts[i], starts[i + 1]
            segment = anneal(values[i], values[i + 1], (t - lo) / max(hi - lo, 1))
            value = jnp.where(t < hi, segment, value)
        return value

    return make_schedule(schedule)


@errors.public("jopt.per_epoch")
def per_epoch(schedule: ScheduleFn, steps_per_epoch: int) -> Schedule:
    """`schedule(step // steps_per_epoch)`: a schedule stepped once per epoch, as torch's often are.

    torch's lr_scheduler counts `scheduler.step()` calls; a loop that calls it once per epoch of
    `steps_per_epoch` optimizer steps gets `per_epoch(jopt schedule, steps_per_epoch)`. The
    momentum cycle a `jopt.torch` scheduler carries is stepped per epoch too, and its base
    learning rate kept.
    """
    fn = errors.current_function()
    validation.check_callable(fn, "schedule", schedule)
    steps_per_epoch = validation.check_int(fn, "steps_per_epoch", steps_per_epoch, 1)
    momentum = momentum_of(schedule)
    if momentum is not None:
        momentum = per_epoch(momentum, steps_per_epoch)

    def stepped(step):
        return schedule(jnp.asarray(step) // steps_per_epoch)

    return make_schedule(stepped, momentum=momentum, base_lr=base_lr_of(schedule))
