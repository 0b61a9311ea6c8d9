"""Scaling by the learning rate, constant or scheduled, kept in the state.

    update = -learning_rate(t) * g        (flip_sign=True, for descent)

`learning_rate` may be a number or a schedule `count -> value` evaluated at the number of steps
taken before this one (the first step uses `schedule(0)`, as optax and torch do). The value used
is stored in the state, where `jopt.current_lr` reads it and `jopt.set_hparams` changes it.

Given `params`, `update` checks at trace time that the gradients have their structure, shapes and
dtypes: this block ends every optimizer's chain, and is the only check plain SGD gets.
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

LEARNING_RATE = Float("learning_rate", NON_NEGATIVE, schedulable=True)
SCALE_BY_LEARNING_RATE = Spec(LEARNING_RATE, Flag("flip_sign"))


class ScaleByLearningRateState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    hparams: HParams  # learning_rate


@errors.public("jopt.scale_by_learning_rate")
def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
) -> optax.GradientTransformationExtraArgs:
    """Multiplies updates by `-learning_rate` (or `+learning_rate` with `flip_sign=False`).

    Args:
      learning_rate: a number >= 0, or a schedule `count -> value`.
      flip_sign: negate, so that adding the updates to the params descends.
    """
    bound = SCALE_BY_LEARNING_RATE.bind(
        errors.current_function(), learning_rate=learning_rate, flip_sign=flip_sign
    )

    def step(updates, state, hp, count, params):
        lr = -hp["learning_rate"] if bound["flip_sign"] else hp["learning_rate"]
        return jax.tree.map(lambda g: lr.astype(g.dtype) * g, updates), {}

    return stateful_transform(bound, ScaleByLearningRateState, lambda params: {}, step)
