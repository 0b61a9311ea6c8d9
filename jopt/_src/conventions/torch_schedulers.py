"""torch.optim.lr_scheduler's schedulers as jopt schedules: same arguments, same numbers.

A torch scheduler takes an optimizer and reads its base learning rate; here the base learning
rate is the first argument, and the result is a schedule to pass as `lr` of a `jopt.torch`
optimizer (or any jopt optimizer). `schedule(k)` is the learning rate torch uses after k calls of
`scheduler.step()`; if the loop steps the scheduler once per epoch, wrap it:
`jopt.per_epoch(schedule, steps_per_epoch)`.

Closed forms replace torch's recursive updates (same values to rounding). Each returns a
`jopt.Schedule` carrying its base learning rate (`.base_lr`); OneCycleLR and CyclicLR also carry,
as `.momentum`, the momentum (or beta1) schedule of `cycle_momentum=True`. SequentialLR and
ChainedScheduler refuse a scheduler that cycles the momentum (see `jopt.join_schedules`).

ReduceLROnPlateau is not a schedule but a wrapper of the optimizer, as `jopt.reduce_on_plateau`,
with torch's argument order: the metric goes in as `update(..., value=metric)`.

Arguments are checked here, under torch's names, before the jopt schedule is built; the ranges
are torch's, narrowed where torch takes nonsense silently: NaN or infinite numbers, step counts
or periods below 1, non-positive `power`; `gamma` outside (0, 1] (StepLR, MultiStepLR,
ExponentialLR and CyclicLR's exp_range: a rate that grows without bound); cycles whose start lies
above their peak (CyclicLR's base_lr > max_lr or base_momentum > max_momentum, OneCycleLR's
div_factor < 1) or that end above their start (final_div_factor < 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jopt._src import errors, validation
from jopt._src.base import ScheduleFn
from jopt._src.schedules import compose, cyclic, decay, plateau, restarts
from jopt._src.schedules.schedule import (
    Schedule,
    make_schedule,
    refuse_momentum_cycles,
)

DECAY_FACTOR = validation.Range(0.0, 1.0, lo_open=True)  # gamma: shrinks or keeps the rate


def _base(fn: str, lr: float) -> float:
    return validation.check_number(fn, "lr", lr, validation.NON_NEGATIVE)


def _tagged(
    schedule: ScheduleFn, base_lr: float | None, momentum: Schedule | None = None
) -> Schedule:
    """`schedule` as the torch scheduler being built: its name, its base learning rate (which
    ChainedScheduler divides out) and the momentum cycle it imposes."""
    values = schedule.fn if isinstance(schedule, Schedule) else schedule
    return make_schedule(values, momentum=momentum, base_lr=base_lr)


def _steps(fn: str, name: str, value: int) -> int:
    return validation.check_int(fn, name, value, 1)


def _gamma(fn: str, gamma: float) -> float:
    """A decay factor in (0, 1]: torch also takes gamma > 1, a rate that grows without bound."""
    return validation.check_number(fn, "gamma", gamma, DECAY_FACTOR)


def _fraction(fn: str, lr: float, eta_min: float) -> float:
    eta_min = validation.check_number(fn, "eta_min", eta_min, validation.NON_NEGATIVE)
    validation.require(
        fn,
        eta_min <= lr,
        f"eta_min must be at most lr={lr} (an annealing that rises is refused), got {eta_min}.",
        argument="eta_min",
        value=eta_min,
    )
    return eta_min / lr if lr > 0 else 0.0


@errors.public("jopt.torch.StepLR")
def StepLR(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:  # noqa: N802
    """`lr * gamma ** (t // step_size)`."""
    fn = errors.current_function()
    base = _base(fn, lr)
    step_size = _steps(fn, "step_size", step_size)
    return _tagged(decay.step_decay(base, step_size, _gamma(fn, gamma)), lr)


@errors.public("jopt.torch.MultiStepLR")
def MultiStepLR(lr: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:  # noqa: N802
    """`lr * gamma ** (number of milestones <= t)` (milestones in any order, as torch)."""
    fn = errors.current_function()
    base = _base(fn, lr)
    try:
        marks = tuple(milestones)
    except TypeError as e:
        raise validation.wrong_type(fn, "milestones", milestones, "a sequence of integers") from e
    # In any order, as torch takes them.
    marks = sorted(validation.check_int(fn, f"milestones[{i}]", m) for i, m in enumerate(marks))
    return _tagged(decay.multistep_decay(base, marks, _gamma(fn, gamma)), lr)


@errors.public("jopt.torch.ExponentialLR")
def ExponentialLR(lr: float, gamma: float) -> Schedule:  # noqa: N802
    """`lr * gamma ** t`."""
    fn = errors.current_function()
    return _tagged(decay.exponential_decay(_base(fn, lr), 1, _gamma(fn, gamma)), lr)


@errors.public("jopt.torch.CosineAnnealingLR")
def CosineAnnealingLR(lr: float, T_max: int, eta_min: float = 0.0) -> Schedule:  # noqa: N802, N803
    """`eta_min + (lr - eta_min) (1 + cos(pi t / T_max)) / 2`, periodic past T_max as torch."""
    fn = errors.current_function()
    T_max = _steps(fn, "T_max", T_max)  # noqa: N806
    alpha = _fraction(fn, _base(fn, lr), eta_min)
    return _tagged(decay.cosine_decay_schedule(lr, T_max, alpha, periodic=True), lr)


@errors.public("jopt.torch.CosineAnnealingWarmRestarts")
def CosineAnnealingWarmRestarts(  # noqa: N802
    lr: float,
    T_0: int,  # noqa: N803
    T_mult: int = 1,  # noqa: N803
    eta_min: float = 0.0,
) -> Schedule:
    """SGDR: cosine from lr to eta_min over T_0 steps, restarting with periods times T_mult."""
    fn = errors.current_function()
    T_0 = _steps(fn, "T_0", T_0)  # noqa: N806
    T_mult = validation.check_int(fn, "T_mult", T_mult, 1)  # noqa: N806
    alpha = _fraction(fn, _base(fn, lr), eta_min)
    return _tagged(restarts.cosine_decay_restarts(lr, T_0, float(T_mult), 1.0, alpha), lr)


@errors.public("jopt.torch.OneCycleLR")
def OneCycleLR(  # noqa: N802
    max_lr: float,
    total_steps: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    cycle_momentum: bool = True,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> Schedule:
    """The one-cycle policy; `.momentum` holds the momentum schedule if cycle_momentum.

    div_factor and final_div_factor must be >= 1 (torch takes any number), base_momentum <=
    max_momentum.
    """
    fn = errors.current_function()
    if total_steps is None:
        validation.require(
            fn,
            epochs is not None and steps_per_epoch is not None,
            "give total_steps, or epochs and steps_per_epoch.",
            argument="total_steps",
        )
        total_steps = validation.check_int(fn, "epochs", epochs, 1) * validation.check_int(
            fn, "steps_per_epoch", steps_per_epoch, 1
        )
    validation.check_number(fn, "max_lr", max_lr, validation.NON_NEGATIVE)
    total_steps, _ = cyclic._one_cycle_phases(fn, total_steps, pct_start, three_phase)
    validation.check_choice(fn, "anneal_strategy", anneal_strategy, tuple(cyclic.ANNEAL))
    div_factor, _ = cyclic._div_factors(fn, div_factor, final_div_factor)
    lr = cyclic.one_cycle_schedule(
        total_steps, max_lr, pct_start, anneal_strategy, div_factor, final_div_factor, three_phase
    )
    momentum = None
    if validation.check_bool(fn, "cycle_momentum", cycle_momentum):
        cyclic._ordered(
            fn, "base_momentum", base_momentum, "max_momentum", max_momentum, validation.DECAY
        )
        momentum = cyclic.one_cycle_momentum(
            total_steps, base_momentum, max_momentum, pct_start, anneal_strategy, three_phase
        )
    return _tagged(lr, max_lr / div_factor, momentum)


@errors.public("jopt.torch.CyclicLR")
def CyclicLR(  # noqa: N802
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable[[jax.Array], Any] | None = None,
    scale_mode: str = "cycle",
    cycle_momentum: bool = True,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> Schedule:
    """A triangular cycle between base_lr and max_lr; `.momentum` the inverse cycle.

    scale_fn (a JAX-traceable function of the cycle number, or of the step count with
    scale_mode "iterations") replaces mode and scales both cycles, as in torch; see
    `jopt.cyclic_schedule`. Stricter than torch: base_lr <= max_lr, base_momentum <= max_momentum,
    gamma in (0, 1], mode and scale_mode among their choices even where torch ignores them.
    """
    fn = errors.current_function()
    cyclic._ordered(fn, "base_lr", base_lr, "max_lr", max_lr, validation.NON_NEGATIVE)
    cyclic._triangle(fn, step_size_up, step_size_down)
    cyclic._amplitude(fn, mode, gamma, scale_fn, scale_mode)
    shape = (step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)
    lr = cyclic.cyclic_schedule(base_lr, max_lr, *shape)
    momentum = None
    if validation.check_bool(fn, "cycle_momentum", cycle_momentum):
        cyclic._ordered(
            fn, "base_momentum", base_momentum, "max_momentum", max_momentum, validation.DECAY
        )
        momentum = cyclic.cyclic_momentum(base_momentum, max_momentum, *shape)
    return _tagged(lr, base_lr, momentum)


@errors.public("jopt.torch.LinearLR")
def LinearLR(  # noqa: N802
    lr: float, start_factor: float = 1 / 3, end_factor: float = 1.0, total_iters: int = 5
) -> Schedule:
    """`lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)`."""
    fn = errors.current_function()
    unit = validation.Range(0.0, 1.0, lo_open=True)
    start = validation.check_number(fn, "start_factor", start_factor, unit)
    end = validation.check_number(fn, "end_factor", end_factor, validation.UNIT)
    total_iters = _steps(fn, "total_iters", total_iters)
    return _tagged(decay.linear_schedule(_base(fn, lr) * start, lr * end, total_iters), lr)


@errors.public("jopt.torch.PolynomialLR")
def PolynomialLR(lr: float, total_iters: int = 5, power: float = 1.0) -> Schedule:  # noqa: N802
    """`lr * (1 - min(t, total_iters) / total_iters) ** power`."""
    fn = errors.current_function()
    base = _base(fn, lr)
    total_iters = _steps(fn, "total_iters", total_iters)
    power = validation.check_number(fn, "power", power, validation.POSITIVE)
    return _tagged(decay.polynomial_schedule(base, 0.0, power, total_iters), lr)


@errors.public("jopt.torch.ConstantLR")
def ConstantLR(lr: float, factor: float = 1 / 3, total_iters: int = 5) -> Schedule:  # noqa: N802
    """`lr * factor` for t < total_iters, then `lr`."""
    fn = errors.current_function()
    factor = validation.check_number(fn, "factor", factor, validation.UNIT)
    total_iters = validation.check_int(fn, "total_iters", total_iters)
    return _tagged(compose.piecewise_constant([total_iters], [_base(fn, lr) * factor, lr]), lr)


@errors.public("jopt.torch.SequentialLR")
def SequentialLR(schedulers: Sequence[Schedule], milestones: Sequence[int]) -> Schedule:  # noqa: N802
    """Scheduler i from milestone i-1 on, counting its steps from there."""
    fn = errors.current_function()
    schedulers = compose.check_schedules(fn, "schedulers", schedulers)
    milestones = validation.check_increasing(fn, "milestones", milestones)
    validation.require(
        fn,
        len(schedulers) == len(milestones) + 1,
        f"needs one scheduler more than milestones, got {len(schedulers)} schedulers and "
        f"{len(milestones)} milestones.",
        argument="milestones",
        value=milestones,
    )
    refuse_momentum_cycles(
        fn, {f"schedulers[{i}]": s for i, s in enumerate(schedulers)}, "a SequentialLR"
    )
    return compose.join_schedules(schedulers, milestones)


@errors.public("jopt.torch.ChainedScheduler")
def ChainedScheduler(schedulers: Sequence[Schedule]) -> Schedule:  # noqa: N802
    """The product of multiplicative schedulers on one base learning rate (torch's chaining).

    Each scheduler scales the base learning rate; chaining multiplies their factors:
    `lr * prod(s_i(t) / lr)`. Exact for StepLR, MultiStepLR, ExponentialLR, ConstantLR,
    LinearLR and PolynomialLR, whose torch updates are multiplicative.
    """
    fn = errors.current_function()
    schedulers = compose.check_schedules(fn, "schedulers", schedulers)
    refuse_momentum_cycles(
        fn, {f"schedulers[{i}]": s for i, s in enumerate(schedulers)}, "a ChainedScheduler"
    )
    lr = compose.common_base_lr(schedulers)
    validation.require(
        fn,
        lr is not None,
        "needs jopt.torch schedulers built on the same base learning rate.",
        argument="schedulers",
    )
    validation.require(
        fn, lr > 0, f"needs a base learning rate > 0, got {lr}.", argument="schedulers"
    )
    product = compose.multiply_schedules(*schedulers)
    return _tagged(lambda step: product(step) / jnp.asarray(lr) ** (len(schedulers) - 1), lr)


@errors.public("jopt.torch.ReduceLROnPlateau")
def ReduceLROnPlateau(  # noqa: N802
    optimizer: optax.GradientTransformation,
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float = 0.0,
    eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """torch's ReduceLROnPlateau: `optimizer` wrapped to lower its learning rate on plateaus.

    torch's arguments in torch's order and with its defaults; the rule (in `jopt.reduce_on_plateau`,
    which this builds) is torch's step for step:

        improved = metric < best * (1 - threshold)  (mode "min", threshold_mode "rel"),
                   metric < best - threshold  ("abs"); mirrored for mode "max"
        after more than `patience` metrics without improvement (outside `cooldown`):
        lr = max(lr * factor, min_lr), unless that lowers it by eps or less

    Where torch calls `scheduler.step(metric)`, pass the metric to the update:
    `tx.update(grads, state, params, value=metric)`; updates without `value` leave the controller
    as it is. `optimizer` holds one learning rate, constant or scheduled (a warmup before the
    plateau: the reductions scale the schedule, as torch's recursive schedulers do), or one per
    parameter group (`jopt.param_groups`), each reduced, down to its own min_lr with torch's list
    (in the order of the groups' sorted names) or a mapping by group name. Stricter than torch:
    factor in (0, 1) (torch takes factor <= 0), patience, cooldown, threshold, min_lr and
    eps >= 0.
    """
    fn = errors.current_function()
    validation.check_transform(fn, "optimizer", optimizer, " (a jopt optimizer)")
    # torch's arguments in torch's order, against jopt.reduce_on_plateau's declarations (a list
    # or mapping of min_lrs, one per parameter group, is checked there).
    per_group = isinstance(min_lr, (list, tuple, dict))
    plateau.REDUCE_ON_PLATEAU.check(
        fn,
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        **({} if per_group else {"min_lr": min_lr}),
        eps=eps,
    )
    return plateau.reduce_on_plateau(
        optimizer, factor, patience, threshold, threshold_mode, cooldown, min_lr, mode, eps
    )
