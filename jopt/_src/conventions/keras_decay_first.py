"""Keras' step for optimizers whose direction reads the params: the weight decay first, then the
direction at the decayed params, then the learning rate (Keras' `Optimizer.apply`).

Keras applies `weight_decay` to the variables before `update_step`, with the learning rate:

    theta' = theta - theta * weight_decay * lr              (leaves of the mask only)
    theta  = theta' - rate * d(g, theta')                   rate = lr, or `rate(lr, t)`

For an optimizer whose direction d ignores the params this is `jopt.keras`'s usual chain, the
decay added to the update; LAMB's trust ratio and Adafactor's relative step read them, and read
the decayed ones. `decay_first` wraps the direction (an optax transform giving d, the descent
direction at unit learning rate) into that step, keeping the learning rate and the weight decay
in its state (`jopt.current_lr`, `jopt.set_hparams` as with any jopt optimizer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.regularization import WEIGHT_DECAY
from jopt._src.transforms.trust_ratio import leaf_mask

DECAY_FIRST = Spec(LEARNING_RATE, WEIGHT_DECAY.as_optional())
Rate = Callable[[jax.Array, jax.Array], jax.Array]  # (lr, t) -> the step's rate


class DecayFirstState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    direction_state: Any  # the state of the direction's transform
    hparams: HParams  # learning_rate, weight_decay (if given)


def decay_first(
    direction: optax.GradientTransformation,
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule | None,
    mask: Any,
    rate: Rate | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Keras' step around `direction` (the module docstring). `rate(lr, t)`, given the learning
    rate and the step t (1 at the first), is the step's rate (default: lr). Arguments come
    checked (the `jopt.keras` constructor names the errors)."""
    fn = errors.current_function()
    bound = DECAY_FIRST.bind(fn, learning_rate=learning_rate, weight_decay=weight_decay)
    direction = optax.with_extra_args_support(direction)

    def buffers(params):
        return {"direction_state": direction.init(params)}

    def step(updates, state, hp, count, params):
        lr = hp["learning_rate"]
        decays = leaf_mask(mask, params)

        def decay(w, on):
            if not on or "weight_decay" not in hp:
                return w
            dt = base.wider(w.dtype)
            wide = w.astype(dt)
            return (wide - wide * hp["weight_decay"].astype(dt) * lr.astype(dt)).astype(w.dtype)

        decayed = jax.tree.map(decay, params, decays)
        d, inner = direction.update(updates, state.direction_state, decayed)
        step_rate = lr if rate is None else rate(lr, count.astype(lr.dtype))

        def leaf(w, w_decayed, u):
            dt = base.wider(w.dtype, u.dtype)
            new = w_decayed.astype(dt) - step_rate.astype(dt) * u.astype(dt)
            return new - w.astype(dt)

        return jax.tree.map(leaf, params, decayed, d), {"direction_state": inner}

    return stateful_transform(bound, DecayFirstState, buffers, step, needs_params=True)


def inverse_sqrt_cap(lr: jax.Array, t: jax.Array) -> jax.Array:
    """Keras' Adafactor rate: min(lr, 1 / sqrt(t))."""
    return jnp.minimum(lr, 1 / jnp.sqrt(t))


class DecayParamsFirstState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    inner_state: Any  # the wrapped optimizer's state
    hparams: HParams  # weight_decay


def decay_params_first(
    tx: optax.GradientTransformation,
    weight_decay: ScalarOrSchedule,
    mask: Any,
    learning_rate_of: Callable[[Any], jax.Array],
) -> optax.GradientTransformationExtraArgs:
    """Keras' weight decay before `tx`, an optimizer that keeps its learning rate itself
    (schedule-free AdamW): `tx` steps from the decayed params, `learning_rate_of(tx's state)`
    giving the learning rate of the step about to be taken."""
    fn = errors.current_function()
    bound = Spec(WEIGHT_DECAY).bind(fn, weight_decay=weight_decay)
    tx = optax.with_extra_args_support(tx)

    def init_fn(params):
        return DecayParamsFirstState(base.zero_count(), tx.init(params), bound.init())

    def update_fn(updates, state, params=None, **extra_args):
        if type(state) is not DecayParamsFirstState:
            raise stateful.foreign_state(fn, state, "a DecayParamsFirstState")
        if params is None:
            raise ValueError(f"{fn}: needs the params: call update(updates, state, params).")
        hp = bound.resolve(state.hparams, state.schedule_count)
        lr = learning_rate_of(state.inner_state)
        decays = leaf_mask(mask, params)

        def decay(w, on):
            if not on:
                return w
            dt = base.wider(w.dtype)
            wide = w.astype(dt)
            return (wide - wide * hp["weight_decay"].astype(dt) * lr.astype(dt)).astype(w.dtype)

        decayed = jax.tree.map(decay, params, decays)
        inner_updates, inner = tx.update(updates, state.inner_state, decayed, **extra_args)

        def leaf(w, w_decayed, u):
            dt = base.wider(w.dtype, u.dtype)
            return (w_decayed.astype(dt) + u.astype(dt) - w.astype(dt)).astype(u.dtype)

        out = jax.tree.map(leaf, params, decayed, inner_updates)
        return out, DecayParamsFirstState(base.increment(state.schedule_count), inner, hp)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
