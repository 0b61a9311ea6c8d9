"""Scaling by the learning rate, constant or scheduled, kept in the state.

    update = -learning_rate(t) * g        (flip_sign=True, for descent)

`learning_rate` may be a number or a schedule `count -> value` evaluated at the number of steps
taken before this one (the first step uses `schedule(0)`, as optax and torch do). The value used
is stored in the state, where `jopt.current_lr` reads it and `jopt.set_hparams` changes it.

Given `params`, `update` checks at trace time that the gradients have their structure, shapes and
dtypes: this block ends every optimizer's chain, and is the only check plain SGD gets.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from jopt._src import base, validation
from jopt._src.hparams import HParams, Spec


class ScaleByLearningRateState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    hparams: HParams  # learning_rate


def scale_by_learning_rate(
    learning_rate: float | validation.Schedule,
    *,
    flip_sign: bool = True,
    owner: str = "jopt.scale_by_learning_rate",
) -> optax.GradientTransformationExtraArgs:
    """Multiplies updates by `-learning_rate` (or `+learning_rate` with `flip_sign=False`).

    Args:
      learning_rate: a number >= 0, or a schedule `count -> value`.
      flip_sign: negate, so that adding the updates to the params descends.
      owner: the public name reported in errors (set by the optimizers that use this block).
    """
    learning_rate = validation.check_number_or_schedule(
        owner, "learning_rate", learning_rate, validation.NON_NEGATIVE
    )
    flip_sign = validation.check_bool(owner, "flip_sign", flip_sign)
    spec = Spec(owner, {"learning_rate": learning_rate}, {"learning_rate": validation.NON_NEGATIVE})

    def init_fn(params: Any) -> ScaleByLearningRateState:
        del params
        return ScaleByLearningRateState(count=base.zero_count(), hparams=spec.init())

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        base.check_tree(owner, updates, params, "params", dtypes=True)
        hp = spec.resolve(state.hparams, state.count)
        lr = -hp["learning_rate"] if flip_sign else hp["learning_rate"]
        updates = jax.tree.map(lambda g: lr.astype(g.dtype) * g, updates)
        return updates, ScaleByLearningRateState(count=base.increment(state.count), hparams=hp)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
