"""Scaling by the learning rate, constant or scheduled, kept in the state.

    update = -learning_rate(t) * g        (flip_sign=True, for descent)

`learning_rate` may be a number or a schedule `count -> value` evaluated at the number of steps
taken before this one (the first step uses `schedule(0)`, as optax and torch do). The value used
is stored in the state, where `jopt.current_lr` reads it and `jopt.set_hparams` changes it.

Given `params`, `update` checks at trace time that the gradients have their structure, shapes and
dtypes: this block ends every optimizer's chain, and is the only check plain SGD gets.

Its step counter is `schedule_count`, so that in `chain(scale_by_adam(), scale_by_learning_rate(
lr))` the only `count` is Adam's, the one `optax.tree.get(state, "count")` finds. In a chain where
no block before it keeps a count (plain SGD), `keep_count=True` names it `count`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from jopt._src import errors
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Flag, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.validation import NON_NEGATIVE

LEARNING_RATE = Float("learning_rate", NON_NEGATIVE, schedulable=True, scale="lr_scale")
SCALE_BY_LEARNING_RATE = Spec(LEARNING_RATE, Flag("flip_sign"), Flag("keep_count"))


class ScaleByLearningRateState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating
    hparams: HParams  # learning_rate


class CountingLearningRateState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating: the optimizer's step count
    hparams: HParams  # learning_rate


@errors.public("jopt.scale_by_learning_rate")
def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule, *, flip_sign: bool = True, keep_count: bool = False
) -> optax.GradientTransformationExtraArgs:
    """Multiplies updates by `-learning_rate` (or `+learning_rate` with `flip_sign=False`).

    Args:
      learning_rate: a number >= 0, or a schedule `count -> value`.
      flip_sign: negate, so that adding the updates to the params descends.
      keep_count: name the step counter `count` (for a chain in which no other block keeps one)
        rather than `schedule_count`.
    """
    bound = SCALE_BY_LEARNING_RATE.bind(
        errors.current_function(),
        learning_rate=learning_rate,
        flip_sign=flip_sign,
        keep_count=keep_count,
    )

    def step(updates, state, hp, count, params):
        lr = -hp["learning_rate"] if bound["flip_sign"] else hp["learning_rate"]
        return jax.tree.map(lambda g: lr.astype(g.dtype) * g, updates), {}

    state_type = CountingLearningRateState if bound["keep_count"] else ScaleByLearningRateState
    return stateful_transform(bound, state_type, lambda params: {}, step)
