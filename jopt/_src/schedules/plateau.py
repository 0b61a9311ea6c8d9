"""Reduce the learning rate when a metric stops improving, inside jit.

`reduce_on_plateau(tx, ...)` wraps any optimizer whose state holds one learning rate, or one per
parameter group (every jopt optimizer, and `jopt.param_groups` of them). Pass the monitored
metric as `update(..., value=metric)` (optax's extra-argument convention) whenever it is
measured, for example only at evaluation steps; updates without `value` leave the controller as
it is. The rule is torch's ReduceLROnPlateau, step for step:

    improved = metric < best * (1 - threshold)   (mode "min", threshold_mode "rel")
               metric < best - threshold         ("min", "abs"); mirrored for mode "max"
    bad = 0 if improved else bad + 1;  in cooldown: cooldown -= 1 and bad = 0
    if bad > patience:  lr = max(lr * factor, min_lr)  (if that lowers it by more than eps),
                        cooldown = cooldown_steps, bad = 0

Here `lr` is the learning rate the update receiving the metric would use. A constant one is
lowered in the wrapped optimizer's state; a scheduled one keeps following its schedule, scaled by
the state's `lr_scale`, which the reduction lowers: `lr = schedule(t) * lr_scale`, as torch's
recursive schedulers multiply a learning rate ReduceLROnPlateau has lowered (warmup before the
plateau decay, say). `jopt.current_lr` shows the reduced rate and `get_hparams` the scale; the
reduction applies from the update that received the metric on. With parameter groups, every
group is reduced (one metric, one counter), each down to its own `min_lr` if given a list or a
mapping, as torch's `min_lr=[...]`. Unlike optax 0.2.8's
contrib.reduce_on_plateau, it lowers the learning rate itself (min_lr is in learning-rate units),
supports mode "max" and absolute thresholds, and works with negative metrics.

Metrics are compared in the default float dtype. With `jax_enable_x64` (float64, as torch's
Python floats) every decision is torch's; in float32 a metric within rounding of the threshold
(`best - threshold` for decimal metrics and thresholds, say) may be judged the other way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import errors, hparam_access, validation
from jopt._src.hparams import HParams, default_float
from jopt._src.spec import Choice, Float, Int, Spec
from jopt._src.validation import NON_NEGATIVE, Range, check_transform

MODES = ("min", "max")
THRESHOLD_MODES = ("rel", "abs")
FACTOR = Float("factor", Range(0.0, 1.0, lo_open=True, hi_open=True))
REDUCE_ON_PLATEAU = Spec(
    FACTOR,
    Int("patience"),
    Float("threshold", NON_NEGATIVE),
    Choice("threshold_mode", THRESHOLD_MODES),
    Int("cooldown"),
    Float("min_lr", NON_NEGATIVE),
    Choice("mode", MODES),
    Float("eps", NON_NEGATIVE),
)


class ReduceOnPlateauState(NamedTuple):
    inner_state: Any  # the wrapped optimizer's state, holding the learning rate
    best: jax.Array  # the best metric so far (+inf or -inf before the first), default float
    num_bad_evaluations: jax.Array  # metrics since the last improvement, int32
    cooldown_counter: jax.Array  # evaluations left before bad ones count again, int32
    num_reductions: jax.Array  # how often the learning rate was lowered, int32
    hparams: HParams  # factor, patience, threshold, cooldown, min_lr, eps


@errors.public("jopt.reduce_on_plateau")
def reduce_on_plateau(
    tx: optax.GradientTransformation,
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float | Sequence[float] | Mapping[str, float] = 0.0,
    mode: str = "min",
    eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """Wraps `tx`, lowering its learning rate by `factor` when `value` plateaus.

    Args:
      tx: the optimizer; its state must hold one learning rate (per parameter group).
      factor: the multiplier applied at each reduction, in (0, 1).
      patience: metrics without improvement tolerated before a reduction.
      threshold: the margin a metric must beat the best by to count as an improvement.
      threshold_mode: "rel" (a fraction of the best) or "abs".
      cooldown: metrics ignored after a reduction.
      min_lr: the learning rate is never lowered below this; with parameter groups, one number
        for all, or one per group: a mapping by group name, or a list in the order of the
        groups' names sorted (as torch's list, for `jopt.torch`'s numbered groups); per-group
        values are constants of the program, not in the state.
      mode: "min" (a loss) or "max" (an accuracy).
      eps: reductions smaller than this are skipped (torch's eps).
    """
    fn = errors.current_function()
    check_transform(fn, "tx", tx)
    min_lrs = _per_group_min_lr(fn, min_lr)
    bound = REDUCE_ON_PLATEAU.bind(
        fn,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        **({} if min_lrs is not None else {"min_lr": min_lr}),
        mode=mode,
        eps=eps,
    )
    tx = optax.with_extra_args_support(tx)
    threshold_mode, mode = bound["threshold_mode"], bound["mode"]
    sign = 1.0 if mode == "min" else -1.0  # "max" is "min" of the negated metric

    def improved(metric, best, threshold):
        metric, best = sign * metric, sign * best
        if threshold_mode == "rel":
            # torch: a < best * (1 - threshold) in min mode, a > best * (1 + threshold) in max.
            return metric < best * (1 - sign * threshold)
        return metric < best - threshold

    def init_fn(params):
        inner = tx.init(params)
        _learning_rates(fn, inner)
        _min_lrs(fn, min_lrs, inner)
        zero = jnp.zeros([], jnp.int32)
        best = jnp.asarray(sign * jnp.inf, default_float())
        return ReduceOnPlateauState(inner, best, zero, zero, zero, bound.init())

    def control(state, metric, updates, params, extra_args):
        hp = state.hparams
        metric = jnp.asarray(metric, state.best.dtype)
        better = improved(metric, state.best, hp["threshold"].astype(state.best.dtype))
        best = jnp.where(better, metric, state.best)
        bad = jnp.where(better, 0, state.num_bad_evaluations + 1)
        in_cooldown = state.cooldown_counter > 0
        cooldown_left = jnp.where(in_cooldown, state.cooldown_counter - 1, state.cooldown_counter)
        bad = jnp.where(in_cooldown, 0, bad)
        triggered = bad > hp["patience"]
        inner = state.inner_state
        rates = _learning_rates(fn, inner)
        if any(scheduled for _, scheduled in rates.values()):
            # The rate this update will use: a scheduled one is evaluated inside the update, so
            # read it off an update of zeros (under jit, all but that rate is compiled away).
            _, probe = tx.update(jax.tree.map(jnp.zeros_like, updates), inner, params, **extra_args)
            following = _learning_rates(fn, probe)
        lowest = _min_lrs(fn, min_lrs, inner)
        reduced = jnp.zeros([], bool)
        for group, (lr, scheduled) in rates.items():
            if scheduled:
                lr = following[group][0]
            floor = hp["min_lr"] if lowest is None else lowest[group]
            lowered = jnp.maximum(lr * hp["factor"].astype(lr.dtype), jnp.asarray(floor, lr.dtype))
            reduce = triggered & (lr - lowered > hp["eps"].astype(lr.dtype))
            reduced = reduced | reduce
            inner = _lower(inner, group, lr, lowered, reduce, scheduled)
        return ReduceOnPlateauState(
            inner_state=inner,
            best=best,
            num_bad_evaluations=jnp.where(triggered, 0, bad).astype(jnp.int32),
            cooldown_counter=jnp.where(triggered, hp["cooldown"], cooldown_left).astype(jnp.int32),
            num_reductions=state.num_reductions + reduced.astype(jnp.int32),
            hparams=hp,
        )

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        if value is not None:
            if jnp.shape(value) != ():
                raise ValueError(f"{fn}: value must be a scalar, got shape {jnp.shape(value)}.")
            state = control(state, value, updates, params, extra_args)
            extra_args["value"] = value
        updates, inner = tx.update(updates, state.inner_state, params, **extra_args)
        return updates, state._replace(inner_state=inner)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _learning_rates(fn: str, inner: Any) -> dict[str | None, tuple[jax.Array, bool]]:
    """{group (None without groups): (the learning rate used last, whether it is scheduled)};
    an optimizer without one learning rate per group, or with a schedule it cannot scale, is
    refused."""
    try:
        rates = hparam_access.current_lr(inner)
    except ValueError as e:
        raise errors.ArgumentError(
            fn, f"the wrapped optimizer must hold one learning rate (per group): {e}", argument="tx"
        ) from e
    scheduled: dict[str | None, bool] = {}
    for _, node, group in hparam_access.nodes(inner):
        if "learning_rate" in node.meta.scheduled:
            if "lr_scale" not in node:
                raise errors.ArgumentError(
                    fn,
                    "the wrapped optimizer's learning rate follows a schedule it cannot scale "
                    "(its state has no lr_scale, as jopt's optimizers have).",
                    argument="tx",
                )
            scheduled[group] = True
    if not isinstance(rates, dict):
        return {None: (rates, scheduled.get(None, False))}
    return {
        g: (lr, scheduled.get(g, False) or scheduled.get(None, False)) for g, lr in rates.items()
    }


def _lower(inner, group, lr, lowered, reduce, scheduled):
    """`inner` with group's learning rate lowered from `lr` to `lowered` where `reduce`."""
    if not scheduled:
        return hparam_access.set_hparams(
            inner, learning_rate=jnp.where(reduce, lowered, lr), group=group
        )
    hp = hparam_access.get_hparams(inner)
    scale = (hp if group is None else hp[group])["lr_scale"]
    ratio = lowered / jnp.where(reduce, lr, jnp.ones_like(lr))  # lr > 0 wherever it reduces
    return hparam_access.set_hparams(
        inner, lr_scale=jnp.where(reduce, scale * ratio, scale), group=group
    )


def _per_group_min_lr(fn: str, min_lr: Any) -> Sequence[float] | Mapping[str, float] | None:
    """min_lr as a list or mapping (checked), or None for one number (checked by the spec)."""
    if isinstance(min_lr, Mapping):
        return {
            str(k): validation.check_number(fn, f"min_lr[{k!r}]", v, NON_NEGATIVE)
            for k, v in min_lr.items()
        }
    if isinstance(min_lr, list | tuple):
        return [
            validation.check_number(fn, f"min_lr[{i}]", v, NON_NEGATIVE)
            for i, v in enumerate(min_lr)
        ]
    return None


def _min_lrs(fn: str, min_lrs: Any, inner: Any) -> dict[str, float] | None:
    """The per-group floors by group name, checked against the state's groups."""
    if min_lrs is None:
        return None
    groups = hparam_access.groups(inner)
    if groups is None:
        raise errors.ArgumentError(
            fn,
            f"min_lr={min_lrs!r} gives one floor per parameter group, but the wrapped optimizer "
            "has no groups: give one number.",
            argument="min_lr",
            value=min_lrs,
        )
    rated = [g for g in groups if g in hparam_access.current_lr(inner)]
    if isinstance(min_lrs, Mapping):
        if set(min_lrs) != set(rated):
            raise errors.ArgumentError(
                fn,
                f"min_lr names the groups {sorted(min_lrs)}, but the optimizer's groups with a "
                f"learning rate are {rated}: give one for each.",
                argument="min_lr",
                value=dict(min_lrs),
            )
        return dict(min_lrs)
    if len(min_lrs) != len(rated):
        raise errors.ArgumentError(
            fn,
            f"expected {len(rated)} min_lrs, one per parameter group with a learning rate "
            f"({', '.join(rated)}), got {len(min_lrs)}.",
            argument="min_lr",
            value=list(min_lrs),
        )
    return dict(zip(rated, min_lrs, strict=True))
