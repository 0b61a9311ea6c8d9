"""Fromage, Frobenius matched gradient descent (Bernstein et al. 2020, "On the distance between
two neural networks and the stability of learning", Algorithm 1): each layer steps by a fixed
fraction lr of its own norm, then shrinks back so that its norm does not grow.

    ratio = max(||w||, min_norm) / max(||g||, min_norm)          per leaf
    w = (w - lr * ratio * g) / sqrt(1 + lr**2)

computed as optax does, as an update: `-lr / sqrt(1 + lr**2) * ratio * g + (1 / sqrt(1 + lr**2)
- 1) * w`, both factors computed from the learning rate in float64 and rounded once.

Where optax departs from the paper: the paper's ratio is ||w|| / ||g||, and its code takes a ratio
of 1 where either norm is 0. optax clips both norms at `min_norm` (1e-6), so that a zero layer
steps by 1e-6 / ||g|| * lr * g rather than lr * g. `min_norm=0` is the paper's (jopt's trust
ratio falls back to 1 at zero norms, `trust_ratio.py`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
import optax

from jopt._src import errors, stateful
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.trust_ratio import MIN_NORM, SCALE_BY_TRUST_RATIO, trust_ratio_transform


def _shrink(learning_rate):
    """`1 / sqrt(1 + lr**2)`: what is left of the weights after the step. Python floats where the
    value is concrete (the derived values of the state are computed in float64), as optax."""
    if isinstance(learning_rate, np.floating):
        learning_rate = float(learning_rate)
    return 1 / (1 + learning_rate**2) ** 0.5


def _step_size(learning_rate):
    """`lr / sqrt(1 + lr**2)`, the factor of the ratio-scaled gradient."""
    return _shrink(learning_rate) * learning_rate


def _decay(learning_rate):
    """`1 / sqrt(1 + lr**2) - 1` (< 0), the factor of the weights added to the update."""
    return _shrink(learning_rate) - 1


FROMAGE = Spec(LEARNING_RATE, MIN_NORM)
FROMAGE_STEP = Spec(
    LEARNING_RATE,
    derived={"step_size": ("learning_rate", _step_size), "decay": ("learning_rate", _decay)},
)


class FromageStepState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    hparams: HParams  # learning_rate; with the step size and decay it gives


def _fromage_step(learning_rate: ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
    """`-step_size * u + decay * w`: optax's `scale_by_learning_rate(lr * mult)` then
    `add_decayed_weights(mult - 1)`, the learning rate kept in the state."""
    bound = FROMAGE_STEP.bind(errors.current_function(), learning_rate=learning_rate)

    def step(updates, state, hp, count, params):
        derived = hp.derived
        step_size, decay = -derived["step_size"], derived["decay"]

        def leaf(u, w):
            return step_size.astype(u.dtype) * u + decay.astype(w.dtype) * w

        return jax.tree.map(leaf, updates, params), {}

    return stateful_transform(bound, FromageStepState, lambda params: {}, step, needs_params=True)


@errors.public("jopt.fromage")
def fromage(
    learning_rate: ScalarOrSchedule, min_norm: float = 1e-6
) -> optax.GradientTransformationExtraArgs:
    """Fromage (Bernstein et al. 2020); a drop-in for `optax.fromage`.

        ratio = max(||w||, min_norm) / max(||g||, min_norm)
        theta = (theta - lr * ratio * g) / sqrt(1 + lr**2)       (per leaf)

    Args:
      learning_rate: lr, a number >= 0 or a schedule.
      min_norm: both norms are raised to it, >= 0. optax's 1e-6; 0 is the paper's (ratio 1
        where a norm is 0).
    """
    fn = errors.current_function()
    ratio = SCALE_BY_TRUST_RATIO.bind(fn, min_norm=min_norm)
    return stateful.chain(trust_ratio_transform(ratio), _fromage_step(learning_rate))
