"""Building schedules from pieces: piecewise constant or linear, joined in sequence, multiplied.

piecewise_constant(boundaries, values)      values[i] on the i-th interval between boundaries
piecewise_constant_schedule(init, {b: s})   optax's form: multiply by s from step b on
piecewise_linear(boundaries, values)        linear interpolation through (boundary, value)
join_schedules(schedules, boundaries)       schedule i from boundary i-1 on, counting from 0
multiply_schedules(*schedules)              the product (torch's ChainedScheduler)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax.numpy as jnp

from jopt._src import validation
from jopt._src.schedules._base import Schedule, as_float, constant, cosine_anneal, linear_anneal

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
    )
    return values


def piecewise_constant(
    boundaries: Sequence[int], values: Sequence[float], *, switch: str = "at"
) -> Schedule:
    """`values[i]` between `boundaries[i-1]` and `boundaries[i]`; one more value than boundaries.

    `switch="at"` changes value at the boundary step (torch's MultiStepLR, optax):
    `values[i]` for `boundaries[i-1] <= step < boundaries[i]`. `switch="after"` changes it one
    step later, as Keras' PiecewiseConstantDecay: `boundaries[i-1] < step <= boundaries[i]`.
    """
    fn = "jopt.piecewise_constant"
    switch = validation.check_choice(fn, "switch", switch, SWITCH)
    boundaries = validation.check_increasing(fn, "boundaries", boundaries)
    values = _check_values(fn, values, len(boundaries) + 1)
    marks = jnp.asarray(boundaries, jnp.int32)

    def schedule(step):
        step = jnp.asarray(step)
        passed = jnp.sum(step >= marks if switch == "at" else step > marks)
        # The table is made at call time, in the dtype of that time (float64 under x64).
        return jnp.asarray(values, constant(0).dtype)[passed]

    return schedule


def piecewise_constant_schedule(
    init_value: float, boundaries_and_scales: Mapping[int, float] | None = None
) -> Schedule:
    """optax's form: start at `init_value`, multiply by `scale` from step `boundary` on.

    A drop-in for `optax.piecewise_constant_schedule`.
    """
    fn = "jopt.piecewise_constant_schedule"
    init_value = validation.check_number(fn, "init_value", init_value, validation.ANY_FINITE)
    items = sorted((boundaries_and_scales or {}).items())
    boundaries = [b for b, _ in items]
    values = [init_value]
    for i, (_, scale) in enumerate(items):
        scale = validation.check_number(fn, f"scale[{i}]", scale, validation.NON_NEGATIVE)
        values.append(values[-1] * scale)
    return piecewise_constant(boundaries, values, switch="at")


def piecewise_linear(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    """Linear interpolation through the points `(boundaries[i], values[i])`, constant outside."""
    fn = "jopt.piecewise_linear"
    boundaries = validation.check_increasing(fn, "boundaries", boundaries)
    validation.require(fn, len(boundaries) >= 1, "needs at least one boundary.")
    values = _check_values(fn, values, len(boundaries))
    return lambda step: jnp.interp(
        as_float(step),
        jnp.asarray(boundaries, constant(0).dtype),
        jnp.asarray(values, constant(0).dtype),
    )


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """`schedules[i]` from `boundaries[i-1]` on, given the steps counted from that boundary.

    A drop-in for `optax.join_schedules`; the step offset is torch's SequentialLR's.
    """
    fn = "jopt.join_schedules"
    schedules = tuple(schedules)
    for i, s in enumerate(schedules):
        if not callable(s):
            raise validation.ArgumentTypeError(f"{fn}: schedules[{i}] must be callable, got {s!r}.")
    boundaries = validation.check_increasing(fn, "boundaries", boundaries)
    validation.require(
        fn,
        len(schedules) == len(boundaries) + 1,
        f"needs one schedule more than boundaries, got {len(schedules)} schedules and "
        f"{len(boundaries)} boundaries.",
    )
    starts = (0, *boundaries)

    def schedule(step):
        step = jnp.asarray(step)
        value = schedules[0](step)
        for start, s in zip(starts[1:], schedules[1:], strict=True):
            value = jnp.where(step >= start, s(step - start), value)
        return value

    return schedule


def multiply_schedules(*schedules: Schedule) -> Schedule:
    """The product of the schedules' values at each step (torch's ChainedScheduler)."""
    fn = "jopt.multiply_schedules"
    validation.require(fn, len(schedules) >= 1, "needs at least one schedule.")
    for i, s in enumerate(schedules):
        if not callable(s):
            raise validation.ArgumentTypeError(f"{fn}: schedules[{i}] must be callable, got {s!r}.")

    def schedule(step):
        value = schedules[0](step)
        for s in schedules[1:]:
            value = value * s(step)
        return value

    return schedule


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: float,
    boundaries_and_scales: Mapping[int, float] | None = None,
) -> Schedule:
    """Interpolates between accumulated scales; a drop-in for optax's.

    The value is `init_value` at step 0 and `init_value * prod(scales up to b)` at boundary b,
    joined by linear or half-cosine segments, and constant after the last boundary.
    """
    fn = "jopt.piecewise_interpolate_schedule"
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

    return schedule


def per_epoch(schedule: Schedule, steps_per_epoch: int) -> Schedule:
    """`schedule(step // steps_per_epoch)`: a schedule stepped once per epoch, as torch's often are.

    torch's lr_scheduler counts `scheduler.step()` calls; a loop that calls it once per epoch of
    `steps_per_epoch` optimizer steps gets `per_epoch(jopt schedule, steps_per_epoch)`. The
    momentum schedule a `jopt.torch` scheduler carries (`.momentum`) is stepped per epoch too.
    """
    fn = "jopt.per_epoch"
    if not callable(schedule):
        raise validation.ArgumentTypeError(f"{fn}: schedule must be callable, got {schedule!r}.")
    steps_per_epoch = validation.check_int(fn, "steps_per_epoch", steps_per_epoch, 1)

    def stepped(step):
        return schedule(jnp.asarray(step) // steps_per_epoch)

    if hasattr(schedule, "base_lr"):
        stepped.base_lr = schedule.base_lr
    if getattr(schedule, "momentum", None) is not None:
        stepped.momentum = per_epoch(schedule.momentum, steps_per_epoch)
    return stepped
