"""One-cycle and cyclic schedules, for learning rates and (inversely) for momentum.

one_cycle_schedule (Smith & Topin 2019, "Super-Convergence"), step for step as torch's OneCycleLR:
    from max_value / div_factor up to max_value over the first pct_start of total_steps, then down
    to max_value / (div_factor * final_div_factor); with three_phase, back to the start value
    first. Phase i ends at step `pct_start * total_steps - 1` (torch); optax's
    cosine_onecycle_schedule peaks one step later.

cyclic_schedule (Smith 2017, "Cyclical Learning Rates for Training Neural Networks"), as torch's
CyclicLR: a triangle between base_value and max_value, with the amplitude kept ("triangular"),
halved every cycle ("triangular2"), scaled by gamma**step ("exp_range"), or scaled by a function
of the cycle number or of the step count (torch's scale_fn and scale_mode).

The momentum variants move the other way (high momentum while the learning rate is low), as
torch's cycle_momentum; pass them as the momentum or b1 of any optimizer.

Arguments are held to ranges where the schedule keeps its shape, narrower than torch's: the start
of a cycle may not lie above its peak (base_value <= max_value, base_momentum <= max_momentum,
div_factor >= 1), the end of a one-cycle not above its start (final_div_factor >= 1), and the
exp_range amplitude may not grow (gamma in (0, 1]). torch accepts all of these silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt._src import errors, validation
from jopt._src.hparams import default_float
from jopt._src.schedules.compose import piecewise_interpolate_schedule
from jopt._src.schedules.schedule import (
    Schedule,
    as_float,
    constant,
    cosine_anneal,
    divmod_steps,
    linear_anneal,
    make_schedule,
)

ANNEAL = {"cos": cosine_anneal, "linear": linear_anneal}
CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
SCALE_MODES = ("cycle", "iterations")
DIV_FACTOR = validation.Range(1.0)  # no start above the peak, no end above the start
GAMMA = validation.Range(0.0, 1.0, lo_open=True)  # exp_range's amplitude never grows
OPEN_UNIT = validation.Range(0.0, 1.0, lo_open=True, hi_open=True)

# -- checks shared with the jopt.torch twins, which pass their own function and argument names ----


def _ordered(fn, low_name, low, high_name, high, allowed):
    """Checks the two levels of a cycle: each in `allowed`, the low one not above the high one."""
    low = validation.check_number(fn, low_name, low, allowed)
    high = validation.check_number(fn, high_name, high, allowed)
    validation.require(
        fn,
        low <= high,
        f"{low_name}={low} must not exceed {high_name}={high}.",
        argument=low_name,
        value=low,
    )
    return low, high


def _div_factors(fn, div_factor, final_div_factor):
    """Checks div_factor >= 1 (start <= peak) and final_div_factor >= 1 (end <= start)."""
    return (
        validation.check_number(fn, "div_factor", div_factor, DIV_FACTOR),
        validation.check_number(fn, "final_div_factor", final_div_factor, DIV_FACTOR),
    )


def _one_cycle_phases(fn, total_steps, pct_start, three_phase):
    total_steps = validation.check_int(fn, "total_steps", total_steps, 2)
    pct_start = validation.check_number(fn, "pct_start", pct_start, OPEN_UNIT)
    three_phase = validation.check_bool(fn, "three_phase", three_phase)
    if three_phase:
        ends = (pct_start * total_steps - 1, 2 * pct_start * total_steps - 2, total_steps - 1)
    else:
        ends = (pct_start * total_steps - 1, total_steps - 1)
    validation.require(
        fn,
        all(b > a for a, b in zip((0, *ends), ends, strict=False)),
        f"pct_start={pct_start} leaves an empty phase in total_steps={total_steps}.",
        argument="pct_start",
        value=pct_start,
    )
    return total_steps, ends


def _scale_fn(fn, scale_fn):
    """Checks a custom amplitude scale: callable, traceable, one scalar in and one scalar out."""
    if not callable(scale_fn):
        raise errors.ArgumentTypeError(
            fn,
            f"scale_fn must be None or a function of one number, got {scale_fn!r}.",
            argument="scale_fn",
            value=scale_fn,
        )
    try:
        out = jax.eval_shape(scale_fn, jax.ShapeDtypeStruct((), default_float()))
    except Exception as e:  # noqa: BLE001 - any failure to trace is the user's function's
        first_line = (str(e).splitlines() or [""])[0]
        raise errors.ArgumentTypeError(
            fn,
            "scale_fn must be a JAX-traceable function of one scalar array (jnp, not math); "
            f"called on a traced float scalar it raised {type(e).__name__}: {first_line}",
            argument="scale_fn",
            value=scale_fn,
        ) from e
    numeric = isinstance(out, jax.ShapeDtypeStruct) and (
        jnp.issubdtype(out.dtype, jnp.floating) or jnp.issubdtype(out.dtype, jnp.integer)
    )
    if not numeric or out.shape != ():
        raise errors.ArgumentTypeError(
            fn,
            f"scale_fn must return one real scalar, it returned {out!r} for a scalar input.",
            argument="scale_fn",
            value=scale_fn,
        )
    return lambda x: jnp.asarray(scale_fn(x)).astype(default_float())


def _amplitude(fn, mode, gamma, scale_fn, scale_mode):
    """torch's scale_fn as `scale(cycle, step)`: the factor applied to the amplitude.

    The built-in modes are functions of the cycle number (triangular, triangular2) or of the step
    count (exp_range); a custom scale_fn is one of either, as scale_mode says, and replaces mode.
    """
    mode = validation.check_choice(fn, "mode", mode, CYCLIC_MODES)
    gamma = validation.check_number(fn, "gamma", gamma, GAMMA)
    scale_mode = validation.check_choice(fn, "scale_mode", scale_mode, SCALE_MODES)
    if scale_fn is not None:
        custom = _scale_fn(fn, scale_fn)
        if scale_mode == "cycle":
            return lambda cycle, step: custom(cycle)
        return lambda cycle, step: custom(as_float(step))

    def scale(cycle, step):
        if mode == "triangular":
            return jnp.ones_like(cycle)
        if mode == "triangular2":
            return 1 / 2 ** (cycle - 1)
        return constant(gamma) ** as_float(step)

    return scale


# -- one-cycle -----------------------------------------------------------------------------------


def _one_cycle(fn, total_steps, pct_start, anneal_strategy, three_phase, levels):
    """Anneals through `levels` (one more than phases), phase ends as torch computes them."""
    total_steps, ends = _one_cycle_phases(fn, total_steps, pct_start, three_phase)
    anneal = ANNEAL[validation.check_choice(fn, "anneal_strategy", anneal_strategy, tuple(ANNEAL))]
    starts = (0.0, *ends[:-1])
    levels = levels if three_phase else (levels[0], levels[1], levels[3])

    def schedule(step):
        t = jnp.minimum(as_float(step), total_steps - 1)
        value = constant(levels[-1])
        for i in reversed(range(len(ends))):
            fraction = (t - starts[i]) / (ends[i] - starts[i])
            here = anneal(levels[i], levels[i + 1], fraction)
            value = here if i == len(ends) - 1 else jnp.where(t <= ends[i], here, value)
        # The last step holds the final level exactly: a linear anneal's `start + (end - start)`
        # cancels, and in float32 (peak 0.5, final 0.0005) it is 1.3e-5 of the final value off.
        return jnp.where(t >= total_steps - 1, constant(levels[-1]), value)

    return make_schedule(schedule)


@errors.public("jopt.one_cycle_schedule")
def one_cycle_schedule(
    total_steps: int,
    max_value: float,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> Schedule:
    """The one-cycle learning rate, as torch's OneCycleLR (same arguments and numbers).

    Held at its final value past `total_steps - 1` (torch raises there).

    Args:
      total_steps: steps in the cycle, >= 2.
      max_value: the peak, reached at step `pct_start * total_steps - 1`.
      pct_start: the fraction of the steps spent rising, in (0, 1).
      anneal_strategy: "cos" or "linear".
      div_factor: the start is `max_value / div_factor`; >= 1 (torch takes any number).
      final_div_factor: the end is `start / final_div_factor`; >= 1 (torch takes any number).
      three_phase: fall back to the start by step `2 * pct_start * total_steps - 2` first.
    """
    fn = errors.current_function()
    max_value = validation.check_number(fn, "max_value", max_value, validation.NON_NEGATIVE)
    div_factor, final_div = _div_factors(fn, div_factor, final_div_factor)
    initial = max_value / div_factor
    levels = (initial, max_value, initial, initial / final_div)
    return _one_cycle(fn, total_steps, pct_start, anneal_strategy, three_phase, levels)


@errors.public("jopt.one_cycle_momentum")
def one_cycle_momentum(
    total_steps: int,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    three_phase: bool = False,
) -> Schedule:
    """The momentum that goes with `one_cycle_schedule` (torch's cycle_momentum=True).

    From max_momentum down to base_momentum while the learning rate rises, then back up.
    Both in [0, 1), base_momentum <= max_momentum.
    """
    fn = errors.current_function()
    base, peak = _ordered(
        fn, "base_momentum", base_momentum, "max_momentum", max_momentum, validation.DECAY
    )
    levels = (peak, base, peak, peak)
    return _one_cycle(fn, total_steps, pct_start, anneal_strategy, three_phase, levels)


# -- cyclic --------------------------------------------------------------------------------------


def _triangle(fn, step_size_up, step_size_down):
    up = validation.check_int(fn, "step_size_up", step_size_up, 1)
    down = (
        up
        if step_size_down is None
        else validation.check_int(fn, "step_size_down", step_size_down, 1)
    )
    total = up + down

    def position(step):
        """(cycle number from 1, scale factor in [0, 1]) at `step`.

        torch's `x = 1 + t / total - cycle`, `x / ratio` rising and `(x - 1) / (ratio - 1)`
        falling (ratio = up / total), computed from the exact position p = t - total * (cycle - 1)
        in the cycle as `p / up` and `(total - p) / down`: torch's x loses the digits of t / total
        (in float32, 1% of the amplitude by step 10**6) and its cycle can start a step late.
        """
        completed, p = divmod_steps(step, total)
        factor = jnp.where(p <= up, p / up, (total - p) / down)
        return completed + 1, factor

    return position


@errors.public("jopt.cyclic_schedule")
def cyclic_schedule(
    base_value: float,
    max_value: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable[[jax.Array], Any] | None = None,
    scale_mode: str = "cycle",
) -> Schedule:
    """A triangle wave between base_value and max_value, as torch's CyclicLR (same numbers).

    `value(t) = base_value + (max_value - base_value) * h(t) * s`, 0 <= base_value <= max_value.

    With p = t mod (up + down) and the cycle number c = t // (up + down) + 1 (from 1), the
    triangle h(t) is `p / up` rising and `(up + down - p) / down` falling, and s scales the
    amplitude: `scale_fn(c)` (scale_mode "cycle") or `scale_fn(t)` ("iterations"); without
    scale_fn, mode gives s = 1 ("triangular"), `1 / 2 ** (c - 1)` ("triangular2") or `gamma ** t`
    ("exp_range").

    scale_fn receives the cycle number or the step count as a float scalar array and must be
    JAX-traceable (jnp, not math); torch documents values in [0, 1] (nothing checks them).
    "iterations" is the step count from 0, as torch's code computes it (its docstring says
    iterations since the start of the cycle).

    Args:
      base_value, max_value: the levels, >= 0.
      step_size_up, step_size_down: steps rising and falling, >= 1 (down defaults to up).
      mode: "triangular", "triangular2" or "exp_range"; ignored when scale_fn is given.
      gamma: exp_range's decay per step, in (0, 1].
      scale_fn: None, or a function of one scalar returning the amplitude's scale.
      scale_mode: "cycle" or "iterations": what scale_fn is a function of.
    """
    fn = errors.current_function()
    base, peak = _ordered(
        fn, "base_value", base_value, "max_value", max_value, validation.NON_NEGATIVE
    )
    position = _triangle(fn, step_size_up, step_size_down)
    amplitude = _amplitude(fn, mode, gamma, scale_fn, scale_mode)

    def schedule(step):
        cycle, factor = position(step)
        return base + (peak - base) * factor * amplitude(cycle, step)

    return make_schedule(schedule)


@errors.public("jopt.cyclic_momentum")
def cyclic_momentum(
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable[[jax.Array], Any] | None = None,
    scale_mode: str = "cycle",
) -> Schedule:
    """The momentum that goes with `cyclic_schedule` (torch's cycle_momentum=True): inverse.

    `momentum(t) = max_momentum - (max_momentum - base_momentum) * h(t) * s`, the same scale s
    as the learning rate's (torch applies scale_fn to both); 0 <= base <= max < 1.
    h(t), s and the other arguments are `cyclic_schedule`'s.
    """
    fn = errors.current_function()
    base, peak = _ordered(
        fn, "base_momentum", base_momentum, "max_momentum", max_momentum, validation.DECAY
    )
    position = _triangle(fn, step_size_up, step_size_down)
    amplitude = _amplitude(fn, mode, gamma, scale_fn, scale_mode)

    def schedule(step):
        cycle, factor = position(step)
        return peak - (peak - base) * factor * amplitude(cycle, step)

    return make_schedule(schedule)


@errors.public("jopt.cosine_onecycle_schedule")
def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """optax's cosine one-cycle (a drop-in, same numbers): peaks at step pct_start * steps.

    torch's OneCycleLR peaks one step earlier: use `one_cycle_schedule` to match it. Stricter
    than optax: div_factor and final_div_factor >= 1, and the rise holds at least one step
    (`int(pct_start * transition_steps) >= 1`; optax starts at the peak otherwise).
    """
    fn = errors.current_function()
    transition_steps = validation.check_int(fn, "transition_steps", transition_steps, 1)
    peak_value = validation.check_number(fn, "peak_value", peak_value, validation.NON_NEGATIVE)
    # pct_start = 1 would give both boundaries the same step (the peak is never reached).
    pct_start = validation.check_number(fn, "pct_start", pct_start, OPEN_UNIT)
    peak_step = int(pct_start * transition_steps)
    validation.require(
        fn,
        peak_step >= 1,
        f"pct_start={pct_start} leaves an empty rise in transition_steps={transition_steps} "
        f"(the peak would be at step int(pct_start * transition_steps) = 0).",
        argument="pct_start",
        value=pct_start,
    )
    div_factor, final_div_factor = _div_factors(fn, div_factor, final_div_factor)
    return piecewise_interpolate_schedule(
        "cosine",
        peak_value / div_factor,
        {peak_step: div_factor, transition_steps: 1.0 / (div_factor * final_div_factor)},
    )
