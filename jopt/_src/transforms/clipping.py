"""Gradient clipping, element-wise or by the global norm; the norm is kept for logging.

    clip:                 g = clip(g, -max_delta, max_delta)
    clip_by_global_norm:  g = g * min(1, max_norm / ||g||),   ||g|| over all leaves together

Given `params`, `update` checks that the gradients have their structure, shapes and dtypes.
`clip_by_global_norm` stores the norm it measured (before clipping) in its state, so a training
loop can log it: `jopt.clipped_norm(state)` (optax keeps none; torch's clip_grad_norm_ returns it).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, tree_math, validation
from jopt._src.hparams import HParams, Spec


class ClipState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    hparams: HParams  # max_delta (clip) or max_norm (clip_by_leaf_norm)


class ClipByGlobalNormState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    global_norm: jax.Array  # the norm of the last updates, measured before clipping (float32)
    hparams: HParams  # max_norm


def clip(max_delta: float | validation.Schedule) -> optax.GradientTransformationExtraArgs:
    """Clips every element to [-max_delta, max_delta]; a drop-in for `optax.clip`."""
    owner = "jopt.clip"
    max_delta = validation.check_number_or_schedule(
        owner, "max_delta", max_delta, validation.NON_NEGATIVE
    )
    spec = Spec(owner, {"max_delta": max_delta}, {"max_delta": validation.NON_NEGATIVE})

    def init_fn(params):
        del params
        return ClipState(base.zero_count(), spec.init())

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        base.check_tree(owner, updates, params, "params", dtypes=True)
        hp = spec.resolve(state.hparams, state.count)

        def leaf(g):
            bound = hp["max_delta"].astype(g.dtype)
            return jnp.clip(g, -bound, bound)

        return jax.tree.map(leaf, updates), ClipState(base.increment(state.count), hp)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def clip_by_global_norm(
    max_norm: float | validation.Schedule,
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates so that their global L2 norm is at most `max_norm`.

    A drop-in for `optax.clip_by_global_norm` (Pascanu et al. 2013) that also keeps the measured
    norm in its state. Updates with a norm <= max_norm pass unchanged, bit for bit.
    """
    owner = "jopt.clip_by_global_norm"
    max_norm = validation.check_number_or_schedule(
        owner, "max_norm", max_norm, validation.NON_NEGATIVE
    )
    spec = Spec(owner, {"max_norm": max_norm}, {"max_norm": validation.NON_NEGATIVE})

    def init_fn(params):
        del params
        return ClipByGlobalNormState(base.zero_count(), jnp.zeros([], jnp.float32), spec.init())

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        base.check_tree(owner, updates, params, "params", dtypes=True)
        hp = spec.resolve(state.hparams, state.count)
        norm = tree_math.global_norm(updates)
        limit = hp["max_norm"].astype(norm.dtype)
        clipped = norm > limit

        def leaf(g):
            dt = base.wider(g.dtype, norm.dtype)
            scaled = (g.astype(dt) / norm.astype(dt) * limit.astype(dt)).astype(g.dtype)
            return jnp.where(clipped, scaled, g)

        new_state = ClipByGlobalNormState(base.increment(state.count), norm.astype(jnp.float32), hp)
        return jax.tree.map(leaf, updates), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def clip_by_leaf_norm(
    max_norm: float | validation.Schedule,
) -> optax.GradientTransformationExtraArgs:
    """Rescales each leaf separately so that its L2 norm is at most `max_norm` (Keras' clipnorm).

    g = g * max_norm / max(||g||, max_norm)     for every leaf (tensor) on its own
    """
    owner = "jopt.clip_by_leaf_norm"
    max_norm = validation.check_number_or_schedule(owner, "max_norm", max_norm, validation.POSITIVE)
    spec = Spec(owner, {"max_norm": max_norm}, {"max_norm": validation.POSITIVE})

    def init_fn(params):
        del params
        return ClipState(base.zero_count(), spec.init())

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        base.check_tree(owner, updates, params, "params", dtypes=True)
        hp = spec.resolve(state.hparams, state.count)

        def leaf(g):
            dt = base.wider(g.dtype)
            norm = tree_math.global_norm(g).astype(dt)
            limit = hp["max_norm"].astype(dt)
            return (g.astype(dt) * limit / jnp.maximum(norm, limit)).astype(g.dtype)

        return jax.tree.map(leaf, updates), ClipState(base.increment(state.count), hp)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def clipped_norm(state: Any) -> jax.Array:
    """The global norm measured by the (single) `clip_by_global_norm` in `state`."""
    found = [
        s.global_norm
        for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, ClipByGlobalNormState))
        if isinstance(s, ClipByGlobalNormState)
    ]
    if len(found) != 1:
        raise ValueError(
            f"jopt.clipped_norm: expected one clip_by_global_norm in the state, found {len(found)}."
        )
    return found[0]
