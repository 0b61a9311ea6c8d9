"""Reduce the learning rate when a metric stops improving, inside jit.

`reduce_on_plateau(tx, ...)` wraps any optimizer whose state holds one constant learning rate
(every jopt optimizer does). Pass the monitored metric as `update(..., value=metric)` (optax's
extra-argument convention) whenever it is measured, for example only at evaluation steps; updates
without `value` leave the controller as it is. The rule is torch's ReduceLROnPlateau, step for step:

    improved = metric < best * (1 - threshold)   (mode "min", threshold_mode "rel")
               metric < best - threshold         ("min", "abs"); mirrored for mode "max"
    bad = 0 if improved else bad + 1;  in cooldown: cooldown -= 1 and bad = 0
    if bad > patience:  lr = max(lr * factor, min_lr)  (if that lowers it by more than eps),
                        cooldown = cooldown_steps, bad = 0

The reduced learning rate is written into the wrapped optimizer's state, so `jopt.current_lr`
shows it, and it applies from the update that received the metric on. Unlike optax 0.2.8's
contrib.reduce_on_plateau, it lowers the learning rate itself (min_lr is in learning-rate units),
supports mode "max" and absolute thresholds, and works with negative metrics.

Metrics are compared in the default float dtype. With `jax_enable_x64` (float64, as torch's
Python floats) every decision is torch's; in float32 a metric within rounding of the threshold
(`best - threshold` for decimal metrics and thresholds, say) may be judged the other way.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import errors, hparam_access
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
    min_lr: float = 0.0,
    mode: str = "min",
    eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """Wraps `tx`, lowering its learning rate by `factor` when `value` plateaus.

    Args:
      tx: the optimizer; its state must hold exactly one learning rate, a number (not a schedule).
      factor: the multiplier applied at each reduction, in (0, 1).
      patience: metrics without improvement tolerated before a reduction.
      threshold: the margin a metric must beat the best by to count as an improvement.
      threshold_mode: "rel" (a fraction of the best) or "abs".
      cooldown: metrics ignored after a reduction.
      min_lr: the learning rate is never lowered below this.
      mode: "min" (a loss) or "max" (an accuracy).
      eps: reductions smaller than this are skipped (torch's eps).
    """
    fn = errors.current_function()
    check_transform(fn, "tx", tx)
    bound = REDUCE_ON_PLATEAU.bind(
        fn,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        min_lr=min_lr,
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
        try:
            hparam_access.set_hparams(inner, learning_rate=hparam_access.current_lr(inner))
        except ValueError as e:
            raise errors.ArgumentError(
                fn,
                "the wrapped optimizer must hold one learning rate given as a number (not a "
                f"schedule): {e}",
                argument="tx",
            ) from e
        zero = jnp.zeros([], jnp.int32)
        best = jnp.asarray(sign * jnp.inf, default_float())
        return ReduceOnPlateauState(inner, best, zero, zero, zero, bound.init())

    def control(state, metric):
        hp = state.hparams
        metric = jnp.asarray(metric, state.best.dtype)
        better = improved(metric, state.best, hp["threshold"].astype(state.best.dtype))
        best = jnp.where(better, metric, state.best)
        bad = jnp.where(better, 0, state.num_bad_evaluations + 1)
        in_cooldown = state.cooldown_counter > 0
        cooldown_left = jnp.where(in_cooldown, state.cooldown_counter - 1, state.cooldown_counter)
        bad = jnp.where(in_cooldown, 0, bad)
        lr = hparam_access.current_lr(state.inner_state)
        lowered = jnp.maximum(lr * hp["factor"].astype(lr.dtype), hp["min_lr"].astype(lr.dtype))
        reduce = (bad > hp["patience"]) & (lr - lowered > hp["eps"].astype(lr.dtype))
        triggered = bad > hp["patience"]
        inner = hparam_access.set_hparams(
            state.inner_state, learning_rate=jnp.where(reduce, lowered, lr)
        )
        return ReduceOnPlateauState(
            inner_state=inner,
            best=best,
            num_bad_evaluations=jnp.where(triggered, 0, bad).astype(jnp.int32),
            cooldown_counter=jnp.where(triggered, hp["cooldown"], cooldown_left).astype(jnp.int32),
            num_reductions=state.num_reductions + reduce.astype(jnp.int32),
            hparams=hp,
        )

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        if value is not None:
            if jnp.shape(value) != ():
                raise ValueError(f"{fn}: value must be a scalar, got shape {jnp.shape(value)}.")
            state = control(state, value)
            extra_args["value"] = value
        updates, inner = tx.update(updates, state.inner_state, params, **extra_args)
        return updates, state._replace(inner_state=inner)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
