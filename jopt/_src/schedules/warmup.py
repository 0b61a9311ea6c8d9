"""Warmup in front of any schedule, and the warmup + decay schedules people know.

    with_warmup(schedule, warmup_steps, init_value, shape, decay_steps_include_warmup)
        step < warmup_steps:  from init_value up to the value where the schedule picks up,
                              linearly or along a half cosine
        afterwards:           schedule(step - warmup_steps)   decay_steps_include_warmup=False
                              schedule(step)                  decay_steps_include_warmup=True

Whether the schedule after a warmup counts the warmup's steps differs between libraries, and here
it is one keyword, `decay_steps_include_warmup`, on all three warmup functions:

- False: the schedule's clock starts at 0 at the end of the warmup; its step counts
  (decay_steps, transition_begin, stairs) exclude the warmup. Keras' CosineDecay(warmup_steps=...)
  and optax's warmup_exponential_decay_schedule (a `join_schedules`) do this. The default of
  `with_warmup` and `warmup_exponential_decay_schedule`.
- True: the schedule's step counts include the warmup, counted from step 0. For `with_warmup`
  and `warmup_exponential_decay_schedule` the schedule's clock runs from step 0 and the warmup
  covers its first warmup_steps steps; for `warmup_cosine_decay_schedule` the cosine starts at
  peak_value at the end of the warmup and ends at step decay_steps (it lasts decay_steps -
  warmup_steps), as optax's warmup_cosine_decay_schedule does. The default of
  `warmup_cosine_decay_schedule`.

Each default keeps the numbers of the optax function of the same name.
"""

from __future__ import annotations

import jax.numpy as jnp

from jopt._src import errors, validation
from jopt._src.base import ScheduleFn
from jopt._src.schedules.decay import (
    check_exponential_bounds,
    cosine_decay_schedule,
    exponential_decay,
)
from jopt._src.schedules.schedule import (
    Schedule,
    as_float,
    cosine_anneal,
    linear_anneal,
    make_schedule,
    refuse_momentum_cycles,
)

SHAPES = ("linear", "cosine")


@errors.public("jopt.with_warmup")
def with_warmup(
    schedule: ScheduleFn,
    warmup_steps: int,
    init_value: float = 0.0,
    *,
    shape: str = "linear",
    decay_steps_include_warmup: bool = False,
) -> Schedule:
    """Prepends a warmup from `init_value` to `schedule`, continuous where the schedule picks up.

        step < W:   ramp from init_value to target, fraction step / W
        step >= W:  schedule(step - W)   target = schedule(0)   (decay_steps_include_warmup=False)
                    schedule(step)       target = schedule(W)   (decay_steps_include_warmup=True)

    with W = warmup_steps; the ramp is `init + (target - init) * fraction` ("linear") or
    `init + (target - init) * (1 - cos(pi * fraction)) / 2` ("cosine").

    Args:
      schedule: the schedule after the warmup.
      warmup_steps: the length of the warmup (0: no warmup, `schedule` itself). A schedule that
        cycles the momentum (torch's OneCycleLR, CyclicLR) cannot be warmed up.
      init_value: the value at step 0.
      shape: "linear", or "cosine" (a half cosine from init_value up to the target).
      decay_steps_include_warmup: False (the default): `schedule`'s clock starts at 0 at the end
        of the warmup, so its step counts exclude the warmup (Keras' CosineDecay with
        warmup_steps, optax's join_schedules). True: `schedule` runs on the global step from 0,
        its step counts include the warmup, and the warmup replaces its first warmup_steps
        values (the ramp ends at schedule(warmup_steps)).
    """
    fn = errors.current_function()
    validation.check_callable(fn, "schedule", schedule)
    warmup_steps = validation.check_int(fn, "warmup_steps", warmup_steps)
    init_value = validation.check_number(fn, "init_value", init_value, validation.ANY_FINITE)
    shape = validation.check_choice(fn, "shape", shape, SHAPES)
    include = validation.check_bool(fn, "decay_steps_include_warmup", decay_steps_include_warmup)
    if warmup_steps == 0:
        return schedule if isinstance(schedule, Schedule) else make_schedule(schedule)
    refuse_momentum_cycles(fn, {"schedule": schedule}, "a warmed-up schedule")
    # The schedule's step at the end of the warmup, and how far its clock lags the global step.
    pickup, offset = (warmup_steps, 0) if include else (0, warmup_steps)

    def warmed(step):
        step = jnp.asarray(step)
        target = schedule(jnp.full_like(step, pickup))
        fraction = jnp.minimum(as_float(step) / warmup_steps, 1)
        if shape == "linear":
            ramp = linear_anneal(init_value, target, fraction)
        else:
            ramp = cosine_anneal(target, init_value, 1 - fraction)
        after = schedule(jnp.maximum(step - offset, 0)) if offset else schedule(step)
        return jnp.where(step < warmup_steps, ramp, after)

    return make_schedule(warmed)


@errors.public("jopt.warmup_constant_schedule")
def warmup_constant_schedule(init_value: float, peak_value: float, warmup_steps: int) -> Schedule:
    """Linear warmup from init_value to peak_value, then constant; as `optax`'s."""
    fn = errors.current_function()
    peak_value = validation.check_number(fn, "peak_value", peak_value, validation.ANY_FINITE)
    return with_warmup(
        lambda step: jnp.full_like(as_float(step), peak_value), warmup_steps, init_value
    )


@errors.public("jopt.warmup_cosine_decay_schedule")
def warmup_cosine_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
    *,
    decay_steps_include_warmup: bool = True,
    warmup_shape: str = "linear",
) -> Schedule:
    """Warmup to `peak_value`, then cosine decay to `end_value`; a drop-in for optax's.

        step < W:  ramp from init_value to peak_value (warmup_shape), fraction step / W
        step >= W: end + (peak - end) * ((1 + cos(pi * min(step - W, T) / T)) / 2) ** exponent

    with W = warmup_steps and T the length of the cosine:

    - decay_steps_include_warmup=True (the default; optax's warmup_cosine_decay_schedule):
      decay_steps counts from step 0 and includes the warmup, T = decay_steps - W, and end_value
      is reached at step decay_steps. decay_steps must exceed warmup_steps.
    - False (Keras' CosineDecay with warmup_steps): the cosine's clock starts at the end of the
      warmup, T = decay_steps, and end_value is reached at step W + decay_steps.

    end_value must lie between 0 and peak_value (the cosine's floor `alpha = end_value /
    peak_value` in [0, 1]; optax takes any end_value, and a peak_value of 0 ignores it).
    """
    fn = errors.current_function()
    peak_value = validation.check_number(fn, "peak_value", peak_value, validation.ANY_FINITE)
    end_value = validation.check_number(fn, "end_value", end_value, validation.ANY_FINITE)
    between = validation.Range(min(0.0, peak_value), max(0.0, peak_value))
    validation.require(
        fn,
        end_value in between,
        f"end_value must be {between.describe()} (between 0 and peak_value={peak_value!r}), "
        f"got {end_value!r}.",
        argument="end_value",
        value=end_value,
    )
    warmup_steps = validation.check_int(fn, "warmup_steps", warmup_steps)
    decay_steps = validation.check_int(fn, "decay_steps", decay_steps, 1)
    include = validation.check_bool(fn, "decay_steps_include_warmup", decay_steps_include_warmup)
    warmup_shape = validation.check_choice(fn, "warmup_shape", warmup_shape, SHAPES)
    cosine_steps = decay_steps - warmup_steps if include else decay_steps
    validation.require(
        fn,
        cosine_steps >= 1,
        f"decay_steps={decay_steps} must exceed warmup_steps={warmup_steps} when it includes "
        "the warmup (decay_steps_include_warmup=True).",
        argument="decay_steps",
        value=decay_steps,
    )
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    decay = cosine_decay_schedule(peak_value, cosine_steps, alpha, exponent)
    # The cosine is built over the steps after the warmup: its clock starts there either way.
    return with_warmup(decay, warmup_steps, init_value, shape=warmup_shape)


@errors.public("jopt.warmup_exponential_decay_schedule")
def warmup_exponential_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
    *,
    decay_steps_include_warmup: bool = False,
) -> Schedule:
    """Linear warmup to `peak_value`, then `exponential_decay`; a drop-in for optax's.

        step < W:  init_value + (target - init_value) * step / W
        step >= W: peak_value * decay_rate ** ((s - transition_begin) / transition_steps),
                   held at peak_value while s < transition_begin, bounded by end_value,

    with W = warmup_steps and s the exponential's clock:

    - decay_steps_include_warmup=False (the default; optax's warmup_exponential_decay_schedule):
      s = step - W starts at 0 at the end of the warmup; transition_begin and the stairs count
      from there, and the ramp ends at target = peak_value.
    - True: s = step, the global step; transition_begin and the stairs (at transition_begin +
      k * transition_steps) count from step 0, the warmup covers the first W steps of the
      exponential, and the ramp ends at the exponential's value at step W: target = peak_value
      when transition_begin >= W (or, with staircase, when W < transition_begin +
      transition_steps), below it otherwise.

    decay_rate and end_value are checked as in `exponential_decay`, with peak_value as the
    start: a decay_rate > 1 needs end_value as a ceiling.
    """
    fn = errors.current_function()
    # exponential_decay calls peak_value its init_value: the checks that involve it come first.
    peak_value = validation.check_number(fn, "peak_value", peak_value, validation.ANY_FINITE)
    decay_rate, end_value = check_exponential_bounds(
        fn, "peak_value", peak_value, decay_rate, end_value
    )
    include = validation.check_bool(fn, "decay_steps_include_warmup", decay_steps_include_warmup)
    decay = exponential_decay(
        peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )
    return with_warmup(decay, warmup_steps, init_value, decay_steps_include_warmup=include)
