"""Weight decay and regularization terms added to the updates, with an optional mask.

    add_decayed_weights:  u = u + weight_decay * theta
    add_l1_penalty:       u = u + l1 * sign(theta)        (the gradient of l1 * |theta|)

Whether weight decay is *coupled* (L2 regularization, folded into the gradient before the
adaptive scaling: torch's `weight_decay` for SGD, Adam, RMSprop, Adagrad) or *decoupled*
(Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization": added after it, as AdamW)
depends only on where this block sits in the chain:

    coupled:    chain(add_decayed_weights(wd), scale_by_adam(), scale_by_learning_rate(lr))
    decoupled:  chain(scale_by_adam(), add_decayed_weights(wd), scale_by_learning_rate(lr))

A mask (a tree of bools shaped like the params, or a function params -> such a tree) limits the
term to the leaves marked True, e.g. to leave biases and norm scales undecayed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import errors, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Float, HParam, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.validation import NON_NEGATIVE

WEIGHT_DECAY = Float("weight_decay", NON_NEGATIVE, schedulable=True)
L1 = Float("l1", NON_NEGATIVE, schedulable=True)


class AddTermState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    hparams: HParams  # weight_decay or l1


def _add_term(
    hparam: HParam, value: ScalarOrSchedule, mask: Any, term: Callable[[jax.Array], jax.Array]
) -> optax.GradientTransformationExtraArgs:
    fn = errors.current_function()
    bound = Spec(hparam).bind(fn, **{hparam.name: value})
    mask = validation.check_mask(fn, "mask", mask)

    def step(updates, state, hp, count, params):
        coefficient = hp[hparam.name]
        return jax.tree.map(
            lambda g, p: g + coefficient.astype(g.dtype) * term(p), updates, params
        ), {}

    tx = stateful_transform(bound, AddTermState, lambda params: {}, step, needs_params=True)
    return tx if mask is None else optax.masked(tx, mask)


@errors.public("jopt.add_decayed_weights")
def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0, mask: Any = None
) -> optax.GradientTransformationExtraArgs:
    """Adds `weight_decay * params` to the updates; a drop-in for `optax.add_decayed_weights`."""
    return _add_term(WEIGHT_DECAY, weight_decay, mask, lambda p: p)


@errors.public("jopt.add_l1_penalty")
def add_l1_penalty(
    l1: ScalarOrSchedule = 0.0, mask: Any = None
) -> optax.GradientTransformationExtraArgs:
    """Adds `l1 * sign(params)` to the updates: the (sub)gradient of `l1 * sum |params|`."""
    return _add_term(L1, l1, mask, jnp.sign)


def coupled_weight_decay(
    weight_decay: ScalarOrSchedule | None, mask: Any
) -> list[optax.GradientTransformationExtraArgs]:
    """L2 regularization folded into the gradient, first in a chain; nothing for None.

    `mask` is checked under the optimizers' name for it, `weight_decay_mask`.
    """
    validation.check_mask(errors.current_function(), "weight_decay_mask", mask)
    return [] if weight_decay is None else [add_decayed_weights(weight_decay, mask)]
