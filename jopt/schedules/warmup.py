"""Warmup in front of any schedule, and the warmup + decay schedules people know.

    with_warmup(schedule, warmup_steps, init_value, shape)
        step < warmup_steps:  from init_value up to schedule(0), linearly or along a half cosine
        afterwards:           schedule(step - warmup_steps)

Whether a decay's `decay_steps` includes the warmup differs: optax's warmup_cosine_decay_schedule
counts it (the cosine runs for decay_steps - warmup_steps), Keras' CosineDecay(warmup_steps=...)
does not (the cosine runs for decay_steps after the warmup). Here it is an argument,
`decay_steps_include_warmup`, defaulting to optax's choice.
"""

from __future__ import annotations

import jax.numpy as jnp

from jopt import validation
from jopt.schedules._base import Schedule, as_float, cosine_anneal, linear_anneal
from jopt.schedules.decay import cosine_decay_schedule, exponential_decay

SHAPES = ("linear", "cosine")


def with_warmup(
    schedule: Schedule,
    warmup_steps: int,
    init_value: float = 0.0,
    *,
    shape: str = "linear",
    owner: str = "jopt.with_warmup",
) -> Schedule:
    """Prepends a warmup from `init_value` to `schedule(0)`, then runs `schedule` from step 0.

    Args:
      schedule: the schedule after the warmup; it sees the steps counted from the warmup's end.
      warmup_steps: the length of the warmup (0: no warmup).
      init_value: the value at step 0.
      shape: "linear", or "cosine" (a half cosine from init_value up to the target).
      owner: the public name reported in errors (set by the schedules built on this one).
    """
    fn = owner
    if not callable(schedule):
        raise TypeError(f"{fn}: schedule must be callable, got {schedule!r}.")
    warmup_steps = validation.check_int(fn, "warmup_steps", warmup_steps)
    init_value = validation.check_number(fn, "init_value", init_value, validation.ANY_FINITE)
    shape = validation.check_choice(fn, "shape", shape, SHAPES)
    if warmup_steps == 0:
        return schedule

    def warmed(step):
        step = jnp.asarray(step)
        target = schedule(jnp.zeros_like(step))
        fraction = jnp.minimum(as_float(step) / warmup_steps, 1)
        if shape == "linear":
            ramp = linear_anneal(init_value, target, fraction)
        else:
            ramp = cosine_anneal(target, init_value, 1 - fraction)
        after = schedule(jnp.maximum(step - warmup_steps, 0))
        return jnp.where(step < warmup_steps, ramp, after)

    return warmed


def warmup_constant_schedule(init_value: float, peak_value: float, warmup_steps: int) -> Schedule:
    """Linear warmup from init_value to peak_value, then constant; as `optax`'s."""
    fn = "jopt.warmup_constant_schedule"
    peak_value = validation.check_number(fn, "peak_value", peak_value, validation.ANY_FINITE)
    return with_warmup(
        lambda step: jnp.full_like(as_float(step), peak_value), warmup_steps, init_value, owner=fn
    )


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

    With `decay_steps_include_warmup=True` (optax) the cosine lasts `decay_steps - warmup_steps`
    steps and reaches end_value at step `decay_steps`; with False (Keras' CosineDecay with
    warmup_steps) it lasts `decay_steps` steps after the warmup.
    """
    fn = "jopt.warmup_cosine_decay_schedule"
    peak_value = validation.check_number(fn, "peak_value", peak_value, validation.ANY_FINITE)
    end_value = validation.check_number(fn, "end_value", end_value, validation.ANY_FINITE)
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
    )
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    decay = cosine_decay_schedule(peak_value, cosine_steps, alpha, exponent, owner=fn)
    return with_warmup(decay, warmup_steps, init_value, shape=warmup_shape, owner=fn)


def warmup_exponential_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """Linear warmup to `peak_value`, then `exponential_decay`; a drop-in for optax's."""
    fn = "jopt.warmup_exponential_decay_schedule"
    # exponential_decay calls peak_value its init_value: the checks that involve it come first.
    peak_value = validation.check_number(fn, "peak_value", peak_value, validation.ANY_FINITE)
    decay_rate = validation.check_number(fn, "decay_rate", decay_rate, validation.POSITIVE)
    end_value = validation.check_optional_number(fn, "end_value", end_value, validation.ANY_FINITE)
    if end_value is not None:
        validation.require(
            fn,
            (end_value <= peak_value) if decay_rate < 1 else (end_value >= peak_value),
            f"end_value={end_value} is never reached from peak_value={peak_value} with "
            f"decay_rate={decay_rate}.",
        )
    decay = exponential_decay(
        peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value, owner=fn
    )
    return with_warmup(decay, warmup_steps, init_value, owner=fn)
