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

from jopt._src import base, errors, per_leaf, tree_math
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.validation import NON_NEGATIVE, POSITIVE

CLIP = Spec(Float("max_delta", NON_NEGATIVE, schedulable=True))
CLIP_BY_GLOBAL_NORM = Spec(Float("max_norm", NON_NEGATIVE, schedulable=True))
CLIP_BY_LEAF_NORM = Spec(Float("max_norm", POSITIVE, schedulable=True))


class ClipState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    hparams: HParams  # max_delta (clip) or max_norm (clip_by_leaf_norm)


class ClipByGlobalNormState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    global_norm: jax.Array  # the norm of the last updates, measured before clipping (float32)
    hparams: HParams  # max_norm


def _no_buffers(params: Any) -> dict[str, Any]:
    return {}


@errors.public("jopt.clip")
def clip(max_delta: ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
    """Clips every element to [-max_delta, max_delta]; a drop-in for `optax.clip`."""
    bound = CLIP.bind(errors.current_function(), max_delta=max_delta)

    def step(updates, state, hp, count, params):
        def leaf(g):
            limit = hp["max_delta"].astype(g.dtype)
            return jnp.clip(g, -limit, limit)

        return jax.tree.map(leaf, updates), {}

    return stateful_transform(bound, ClipState, _no_buffers, step)


@errors.public("jopt.clip_by_global_norm")
def clip_by_global_norm(max_norm: ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
    """Rescales updates so that their global L2 norm is at most `max_norm`.

    A drop-in for `optax.clip_by_global_norm` (Pascanu et al. 2013) that also keeps the measured
    norm in its state. Updates with a norm <= max_norm pass unchanged, bit for bit.
    """
    bound = CLIP_BY_GLOBAL_NORM.bind(errors.current_function(), max_norm=max_norm)

    def buffers(params):
        return {"global_norm": jnp.zeros([], jnp.float32)}

    def step(updates, state, hp, count, params):
        norm = tree_math.global_norm(updates)
        limit = hp["max_norm"].astype(norm.dtype)
        clipped = norm > limit

        def leaf(g):
            dt = base.wider(g.dtype, norm.dtype)
            scaled = (g.astype(dt) / norm.astype(dt) * limit.astype(dt)).astype(g.dtype)
            return jnp.where(clipped, scaled, g)

        return jax.tree.map(leaf, updates), {"global_norm": norm}

    return stateful_transform(bound, ClipByGlobalNormState, buffers, step)


@errors.public("jopt.clip_by_leaf_norm")
def clip_by_leaf_norm(max_norm: ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
    """Rescales each leaf separately so that its L2 norm is at most `max_norm` (Keras' clipnorm).

    g = g * max_norm / max(||g||, max_norm)     for every leaf (tensor) on its own
    """
    bound = CLIP_BY_LEAF_NORM.bind(errors.current_function(), max_norm=max_norm)

    def step(updates, state, hp, count, params):
        def leaf(g):
            dt = base.wider(g.dtype)
            norm = tree_math.global_norm(g).astype(dt)
            limit = hp["max_norm"].astype(dt)
            return (g.astype(dt) * limit / jnp.maximum(norm, limit)).astype(g.dtype)

        return jax.tree.map(leaf, updates), {}

    return per_leaf.declare(
        stateful_transform(bound, ClipState, _no_buffers, step), "a clip of each leaf's norm"
    )


def clipped_norm(state: Any) -> jax.Array:
    """The global norm measured by the (single) `clip_by_global_norm` in `state`."""
    fn, what = "jopt.clipped_norm", "clip_by_global_norm"
    return base.single_state(fn, state, ClipByGlobalNormState, what).global_norm
