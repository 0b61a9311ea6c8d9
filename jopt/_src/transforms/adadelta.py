"""Adadelta (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method"): the building block and
the optimizer.

    E_g  = rho * E_g  + (1 - rho) * g**2
    dx   = sqrt(E_dx + eps) / sqrt(E_g + eps) * g
    E_dx = rho * E_dx + (1 - rho) * dx**2
    theta = theta - learning_rate * dx
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful, tree_math
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY, coupled_weight_decay
from jopt._src.validation import DECAY, NON_NEGATIVE

SCALE_BY_ADADELTA = Spec(
    Float("rho", DECAY, schedulable=True, complement=True), Float("eps", NON_NEGATIVE)
)

ADADELTA = Spec(LEARNING_RATE.as_optional(), *SCALE_BY_ADADELTA, WEIGHT_DECAY.as_optional())


class ScaleByAdadeltaState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    e_g: optax.Updates  # EMA of squared gradients
    e_x: optax.Updates  # EMA of squared updates
    hparams: HParams  # rho, eps


@errors.public("jopt.scale_by_adadelta")
def scale_by_adadelta(
    rho: ScalarOrSchedule = 0.9, eps: float = 1e-6
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by Adadelta's ratio of RMS values; a drop-in for optax's."""
    bound = SCALE_BY_ADADELTA.bind(errors.current_function(), rho=rho, eps=eps)

    def buffers(params):
        return {"e_g": base.zeros_like(params), "e_x": base.zeros_like(params)}

    def step(updates, state, hp, count, params):
        rho, c = hp["rho"], hp.complement("rho")
        e_g = jax.tree.map(lambda g, e: tree_math.moment(g, e, rho, c, 2), updates, state.e_g)

        def delta(g, eg, ex):
            dt = base.wider(eg.dtype, ex.dtype)
            e = hp["eps"].astype(dt)
            return jnp.sqrt(ex.astype(dt) + e) / jnp.sqrt(eg + e) * g.astype(dt)

        dx = jax.tree.map(delta, updates, e_g, state.e_x)
        e_x = jax.tree.map(lambda d, e: tree_math.moment(d, e, rho, c, 2), dx, state.e_x)
        return dx, {"e_g": e_g, "e_x": e_x}

    return stateful_transform(bound, ScaleByAdadeltaState, buffers, step, matches="e_g")


@errors.public("jopt.adadelta")
def adadelta(
    learning_rate: ScalarOrSchedule | None = 1.0,
    rho: ScalarOrSchedule = 0.9,
    eps: float = 1e-6,
    weight_decay: ScalarOrSchedule | None = None,
    weight_decay_mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Adadelta (Zeiler 2012) with coupled weight decay; a drop-in for `optax.adadelta`.

        dx = sqrt(E_dx + eps) / sqrt(E_g + eps) * g;   theta -= lr * dx

    The default learning rate is 1.0 (the paper's and torch's; `None` means 1.0 too). optax
    0.2.8's default `learning_rate=None` leaves the sign unflipped, so its default ascends.
    """
    return stateful.chain(
        *coupled_weight_decay(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(1.0 if learning_rate is None else learning_rate),
    )
