"""Averages of the params for evaluation, kept in the optimizer state: an exponential moving
average (Polyak averaging with a decay) and stochastic weight averaging.

After every optimizer step, with theta the params that step gives (`params + updates`):

    ema_params:  avg = theta                                   at the first averaged step,
                 avg = decay * avg + (1 - decay) * theta       after it
    swa_params:  avg = avg + (theta - avg) / (n + 1);  n += 1  (an equal-weight running mean)

averaging at steps `start, start + every, ...` (counted from 1). The first averaged step copies
the params, as Keras' `use_ema` and torch's `swa_utils.AveragedModel` do; Keras' form of the EMA
(`momentum * avg + (1 - momentum) * var`), torch's SWA mean. `jopt.averaged_params(state)` reads
the average, to evaluate the model at it; the params themselves train on, unless
`overwrite_every` (Keras' `ema_overwrite_frequency`) makes every such step set them to the
average.

Izmailov et al. (2018), "Averaging Weights Leads to Wider Optima and Better Generalization"
(SWA); Polyak & Juditsky (1992), "Acceleration of stochastic approximation by averaging".

The average is kept in float32 at least: in bfloat16, `(1 - decay) * theta` for decay 0.999 is
below the spacing of the average's values, and the average would never move.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, per_leaf, validation
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Int, Spec
from jopt._src.validation import DECAY

EMA_PARAMS = Spec(
    Float("decay", DECAY, complement=True), Int("start", minimum=1), Int("every", minimum=1)
)
SWA_PARAMS = Spec(Int("start", minimum=1), Int("every", minimum=1))


class AveragedParamsState(NamedTuple):
    inner_state: Any  # the wrapped optimizer's state
    average: optax.Params  # the average of the params, in float32 at least
    steps: jax.Array  # optimizer steps taken, int32, saturating
    num_averaged: jax.Array  # steps averaged into `average`, int32, saturating
    hparams: HParams  # decay (EMA), start, every


@errors.public("jopt.ema_params")
def ema_params(
    tx: optax.GradientTransformation,
    decay: float = 0.99,
    *,
    start: int = 1,
    every: int = 1,
    overwrite_every: int | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Wraps `tx` to keep an exponential moving average of the params (Keras' `use_ema`).

    Args:
      tx: the optimizer.
      decay: the EMA's decay (Keras' `ema_momentum`), in [0, 1).
      start: the first step averaged (the average copies the params there).
      every: average every `every` steps from `start` on.
      overwrite_every: None, or set the params to the average every this many steps (Keras'
        `ema_overwrite_frequency`): a constant of the program.
    """
    return exponential_average(tx, decay, start, every, overwrite_every)


def exponential_average(tx, decay, start, every, overwrite_every, *, keras_calls=None):
    """`ema_params`, or with `keras_calls` (the calls per optimizer step: Keras'
    gradient_accumulation_steps, or 1) Keras' `use_ema` exactly: `1 - decay` computed in the
    average's dtype (in float32, 0.100000024 for 0.9, where `ema_params` uses 0.1 rounded once),
    the average copying the params at every call until the optimizer's first step is taken, and
    `ema_overwrite_frequency` counted in optimizer steps (checked at every call)."""
    fn = errors.current_function()
    bound = EMA_PARAMS.bind(fn, decay=decay, start=start, every=every)
    if overwrite_every is not None:
        overwrite_every = validation.check_int(fn, "overwrite_every", overwrite_every, 1)

    def blend(average, theta, hp, first):
        keep = jnp.where(first, 0.0, hp["decay"]).astype(average.dtype)
        if keras_calls is not None:
            weight = 1 - keep
        else:
            weight = jnp.where(first, 1.0, hp.complement("decay")).astype(average.dtype)
        return keep * average + weight * theta

    return _averaging(fn, tx, bound, blend, overwrite_every, keras_calls=keras_calls)


@errors.public("jopt.swa_params")
def swa_params(
    tx: optax.GradientTransformation, *, start: int = 1, every: int = 1
) -> optax.GradientTransformationExtraArgs:
    """Wraps `tx` to keep the equal-weight mean of the params at steps `start, start + every,
    ...` (torch's `swa_utils.AveragedModel`, updated at those steps)."""
    fn = errors.current_function()
    bound = SWA_PARAMS.bind(fn, start=start, every=every)

    def blend(average, theta, hp, num_averaged):
        return average + (theta - average) / (num_averaged + 1).astype(average.dtype)

    return _averaging(fn, tx, bound, blend, None, equal_weights=True)


def averaged_params(state: Any) -> optax.Params:
    """The average in the (single) `ema_params` or `swa_params` state inside `state`, in the
    dtype it is kept in; cast it to the params' dtypes to evaluate with it."""
    fn, what = "jopt.averaged_params", "ema_params or swa_params"
    return base.single_state(fn, state, AveragedParamsState, what).average


def _averaging(fn, tx, bound, blend, overwrite_every, *, equal_weights=False, keras_calls=None):
    validation.check_transform(fn, "tx", tx)
    tx = optax.with_extra_args_support(tx)

    def init_fn(params):
        average = jax.tree.map(
            lambda p: jnp.array(p, base.compute_dtype(jnp.result_type(p))), params
        )
        zero = jnp.zeros([], base.COUNT_DTYPE)
        return AveragedParamsState(tx.init(params), average, zero, zero, bound.init())

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(f"{fn}: needs the params: call update(updates, state, params).")
        updates, inner = tx.update(updates, state.inner_state, params, **extra_args)
        hp = state.hparams
        steps = base.increment(state.steps)
        averaged = (steps >= hp["start"]) & ((steps - hp["start"]) % hp["every"] == 0)
        if keras_calls is None:
            first, iteration = state.num_averaged == 0, steps
        else:  # Keras' `iterations`: optimizer steps before this call, calls // k
            first = state.steps // keras_calls == 0
            iteration = state.steps // keras_calls + 1
        weight = state.num_averaged if equal_weights else first

        def one(average, p, u):
            theta = optax.apply_updates(p, u).astype(average.dtype)
            return jnp.where(averaged, blend(average, theta, hp, weight), average)

        average = jax.tree.map(one, state.average, params, updates)
        num_averaged = jnp.where(averaged, base.increment(state.num_averaged), state.num_averaged)
        if overwrite_every is not None:
            overwrite = iteration % overwrite_every == 0
            updates = jax.tree.map(
                lambda u, p, a: jnp.where(overwrite, (a - p.astype(a.dtype)).astype(u.dtype), u),
                updates,
                params,
                average,
            )
        return updates, AveragedParamsState(inner, average, steps, num_averaged, hp)

    return per_leaf.inherit(optax.GradientTransformationExtraArgs(init_fn, update_fn), tx)
