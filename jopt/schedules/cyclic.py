"""One-cycle and cyclic schedules, for learning rates and (inversely) for momentum.

one_cycle_schedule (Smith & Topin 2019, "Super-Convergence"), step for step as torch's OneCycleLR:
    from max_value / div_factor up to max_value over the first pct_start of total_steps, then down
    to max_value / (div_factor * final_div_factor); with three_phase, back to the start value
    first. Phase i ends at step `pct_start * total_steps - 1` (torch); optax's
    cosine_onecycle_schedule peaks one step later.

cyclic_schedule (Smith 2017, "Cyclical Learning Rates for Training Neural Networks"), as torch's
CyclicLR: a triangle between base_value and max_value, with the amplitude kept ("triangular"),
halved every cycle ("triangular2") or scaled by gamma**step ("exp_range").

The momentum variants move the other way (high momentum while the learning rate is low), as
torch's cycle_momentum; pass them as the momentum or b1 of any optimizer.
"""

from __future__ import annotations

import jax.numpy as jnp

from jopt import validation
from jopt.schedules._base import (
    Schedule,
    as_float,
    constant,
    cosine_anneal,
    divmod_steps,
    linear_anneal,
)
from jopt.schedules.compose import piecewise_interpolate_schedule

ANNEAL = {"cos": cosine_anneal, "linear": linear_anneal}
CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


def _one_cycle_phases(fn, total_steps, pct_start, three_phase):
    total_steps = validation.check_int(fn, "total_steps", total_steps, 2)
    pct_start = validation.check_number(
        fn, "pct_start", pct_start, validation.Range(0.0, 1.0, lo_open=True, hi_open=True)
    )
    three_phase = validation.check_bool(fn, "three_phase", three_phase)
    if three_phase:
        ends = (pct_start * total_steps - 1, 2 * pct_start * total_steps - 2, total_steps - 1)
    else:
        ends = (pct_start * total_steps - 1, total_steps - 1)
    validation.require(
        fn,
        all(b > a for a, b in zip((0, *ends), ends, strict=False)),
        f"pct_start={pct_start} leaves an empty phase in total_steps={total_steps}.",
    )
    return total_steps, ends


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

    return schedule


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
    """
    fn = "jopt.one_cycle_schedule"
    max_value = validation.check_number(fn, "max_value", max_value, validation.NON_NEGATIVE)
    div_factor = validation.check_number(fn, "div_factor", div_factor, validation.POSITIVE)
    final_div = validation.check_number(
        fn, "final_div_factor", final_div_factor, validation.POSITIVE
    )
    initial = max_value / div_factor
    levels = (initial, max_value, initial, initial / final_div)
    return _one_cycle(fn, total_steps, pct_start, anneal_strategy, three_phase, levels)


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
    """
    fn = "jopt.one_cycle_momentum"
    base = validation.check_number(fn, "base_momentum", base_momentum, validation.DECAY)
    peak = validation.check_number(fn, "max_momentum", max_momentum, validation.DECAY)
    validation.require(
        fn, base <= peak, f"base_momentum={base} must not exceed max_momentum={peak}."
    )
    levels = (peak, base, peak, peak)
    return _one_cycle(fn, total_steps, pct_start, anneal_strategy, three_phase, levels)


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


def _amplitude(fn, mode, gamma):
    mode = validation.check_choice(fn, "mode", mode, CYCLIC_MODES)
    gamma = validation.check_number(fn, "gamma", gamma, validation.POSITIVE)

    def scale(cycle, step):
        if mode == "triangular":
            return jnp.ones_like(cycle)
        if mode == "triangular2":
            return 1 / 2 ** (cycle - 1)
        return constant(gamma) ** as_float(step)

    return scale


def cyclic_schedule(
    base_value: float,
    max_value: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> Schedule:
    """A triangle wave between base_value and max_value, as torch's CyclicLR (same numbers)."""
    fn = "jopt.cyclic_schedule"
    base = validation.check_number(fn, "base_value", base_value, validation.NON_NEGATIVE)
    peak = validation.check_number(fn, "max_value", max_value, validation.NON_NEGATIVE)
    position = _triangle(fn, step_size_up, step_size_down)
    amplitude = _amplitude(fn, mode, gamma)

    def schedule(step):
        cycle, factor = position(step)
        return base + (peak - base) * factor * amplitude(cycle, step)

    return schedule


def cyclic_momentum(
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> Schedule:
    """The momentum that goes with `cyclic_schedule` (torch's cycle_momentum=True): inverse."""
    fn = "jopt.cyclic_momentum"
    base = validation.check_number(fn, "base_momentum", base_momentum, validation.DECAY)
    peak = validation.check_number(fn, "max_momentum", max_momentum, validation.DECAY)
    position = _triangle(fn, step_size_up, step_size_down)
    amplitude = _amplitude(fn, mode, gamma)

    def schedule(step):
        cycle, factor = position(step)
        return peak - (peak - base) * factor * amplitude(cycle, step)

    return schedule


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """optax's cosine one-cycle (a drop-in, same numbers): peaks at step pct_start * steps.

    torch's OneCycleLR peaks one step earlier: use `one_cycle_schedule` to match it.
    """
    fn = "jopt.cosine_onecycle_schedule"
    transition_steps = validation.check_int(fn, "transition_steps", transition_steps, 1)
    peak_value = validation.check_number(fn, "peak_value", peak_value, validation.NON_NEGATIVE)
    # pct_start = 1 would give both boundaries the same step (the peak is never reached); optax
    # accepts it silently.
    pct_start = validation.check_number(
        fn, "pct_start", pct_start, validation.Range(0.0, 1.0, lo_open=True, hi_open=True)
    )
    div_factor = validation.check_number(fn, "div_factor", div_factor, validation.POSITIVE)
    final_div_factor = validation.check_number(
        fn, "final_div_factor", final_div_factor, validation.POSITIVE
    )
    return piecewise_interpolate_schedule(
        "cosine",
        peak_value / div_factor,
        {
            int(pct_start * transition_steps): div_factor,
            transition_steps: 1.0 / (div_factor * final_div_factor),
        },
    )
