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

from jopt._src import base, validation
from jopt._src.hparams import HParams, Spec


class AddTermState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    hparams: HParams  # weight_decay or l1


def _add_term(
    owner: str,
    name: str,
    value: float | validation.Schedule,
    mask: Any,
    term: Callable[[jax.Array], jax.Array],
) -> optax.GradientTransformationExtraArgs:
    value = validation.check_number_or_schedule(owner, name, value, validation.NON_NEGATIVE)
    mask = validation.check_mask(owner, "mask", mask)
    spec = Spec(owner, {name: value}, {name: validation.NON_NEGATIVE})

    def init_fn(params):
        del params
        return AddTermState(base.zero_count(), spec.init())

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(f"{owner}: needs the params: call update(updates, state, params).")
        base.check_tree(owner, updates, params, "params", dtypes=True)
        hp = spec.resolve(state.hparams, state.count)
        coefficient = hp[name]
        new = jax.tree.map(lambda g, p: g + coefficient.astype(g.dtype) * term(p), updates, params)
        return new, AddTermState(base.increment(state.count), hp)

    tx = optax.GradientTransformationExtraArgs(init_fn, update_fn)
    return tx if mask is None else optax.masked(tx, mask)


def add_decayed_weights(
    weight_decay: float | validation.Schedule = 0.0,
    mask: Any = None,
    *,
    owner: str = "jopt.add_decayed_weights",
) -> optax.GradientTransformationExtraArgs:
    """Adds `weight_decay * params` to the updates; a drop-in for `optax.add_decayed_weights`."""
    return _add_term(owner, "weight_decay", weight_decay, mask, lambda p: p)


def add_l1_penalty(
    l1: float | validation.Schedule = 0.0,
    mask: Any = None,
    *,
    owner: str = "jopt.add_l1_penalty",
) -> optax.GradientTransformationExtraArgs:
    """Adds `l1 * sign(params)` to the updates: the (sub)gradient of `l1 * sum |params|`."""
    return _add_term(owner, "l1", l1, mask, jnp.sign)
