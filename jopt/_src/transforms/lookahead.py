"""Lookahead (Zhang et al. 2019, "Lookahead Optimizer: k steps forward, 1 step back"): a wrapper
that lets any optimizer take k fast steps, then moves slow weights part of the way towards the
fast ones and restarts the fast weights from there.

    fast <- fast + u                                    (the wrapped optimizer's step), k times
    slow <- slow + alpha * (fast - slow);  fast <- slow  (the synchronization, every k-th step)

As `optax.lookahead`, the params are `optax.LookaheadParams(fast=..., slow=...)`: gradients are
taken at `params.fast`, evaluation reads `params.slow`, and `update` returns updates for both,
which must be applied unchanged (`optax.apply_updates`). Both steps are one update:

    d = fast + u - slow
    slow update = alpha * d            if the step synchronizes, else 0
    fast update = u - (1 - alpha) * d  if the step synchronizes, else u

`sync_period` (k) and `slow_step_size` (alpha) are in the state. Where optax multiplies by the
0/1 synchronization flag, jopt selects: an inf or NaN in a step that does not synchronize stays in
the fast weights and is not multiplied into the slow ones (0 * inf is NaN), and `reset_state`
re-initializes the fast optimizer's state without reading the old one. The reset re-initializes
moments and step counts (a schedule inside the fast optimizer restarts, as in optax) but keeps
the hyperparameters the state holds, so values set with `jopt.set_hparams` survive it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, per_leaf, validation
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Int, Spec
from jopt._src.validation import UNIT

LOOKAHEAD = Spec(Int("sync_period", minimum=1), Float("slow_step_size", UNIT, complement=True))


class LookaheadState(NamedTuple):
    fast_state: Any  # the wrapped optimizer's state
    steps_since_sync: jax.Array  # fast steps since the last synchronization, int32
    hparams: HParams  # sync_period, slow_step_size


def _is_hparams(node: Any) -> bool:
    return isinstance(node, HParams)


def _reset(sync: jax.Array, state: Any, fresh: Any) -> Any:
    """`fresh` where `sync`, else `state`; the hyperparameters are always the current ones."""

    def leaf(current, initial):
        if _is_hparams(current):
            return current
        return jnp.where(sync, initial, current)

    return jax.tree.map(leaf, state, fresh, is_leaf=_is_hparams)


@errors.public("jopt.lookahead")
def lookahead(
    fast_optimizer: optax.GradientTransformation,
    sync_period: int,
    slow_step_size: float,
    reset_state: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Lookahead around `fast_optimizer`; a drop-in for `optax.lookahead`.

    Args:
      fast_optimizer: the optimizer of the fast weights.
      sync_period: fast steps between synchronizations (k), an integer >= 1.
      slow_step_size: how far the slow weights move towards the fast ones (alpha), in [0, 1].
        The paper uses k = 5 and alpha = 0.5.
      reset_state: re-initialize the fast optimizer's state at each synchronization.
    """
    fn = errors.current_function()
    validation.check_transform(fn, "fast_optimizer", fast_optimizer)
    bound = LOOKAHEAD.bind(fn, sync_period=sync_period, slow_step_size=slow_step_size)
    reset_state = validation.check_bool(fn, "reset_state", reset_state)
    tx = optax.with_extra_args_support(fast_optimizer)

    def fast_params(params):
        if isinstance(params, optax.LookaheadParams):
            return params.fast
        return params  # as optax: init may be given the fast params alone

    def init_fn(params):
        zero = jnp.zeros([], base.COUNT_DTYPE)
        return LookaheadState(tx.init(fast_params(params)), zero, bound.init())

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(params, optax.LookaheadParams):
            raise TypeError(
                f"{fn}: needs the params as optax.LookaheadParams(fast=..., slow=...) (see "
                f"optax.LookaheadParams.init_synced), got {type(params).__name__}."
            )
        updates, fast_state = tx.update(updates, state.fast_state, params.fast, **extra_args)
        hp = state.hparams
        sync = state.steps_since_sync == hp["sync_period"] - 1

        def slow_step(f, u, s):
            d = f + u - s
            alpha = hp["slow_step_size"].astype(d.dtype)
            return jnp.where(sync, alpha * d, jnp.zeros_like(d)).astype(s.dtype)

        def fast_step(f, u, s):
            d = f + u - s
            keep = hp.complement("slow_step_size").astype(d.dtype)
            return jnp.where(sync, u - keep * d, u).astype(u.dtype)

        out = optax.LookaheadParams(
            fast=jax.tree.map(fast_step, params.fast, updates, params.slow),
            slow=jax.tree.map(slow_step, params.fast, updates, params.slow),
        )
        if reset_state:
            fast_state = _reset(sync, fast_state, tx.init(params.fast))
        steps = (state.steps_since_sync + 1) % hp["sync_period"]
        return out, LookaheadState(fast_state, steps.astype(base.COUNT_DTYPE), hp)

    wrapped = optax.GradientTransformationExtraArgs(init_fn, update_fn)
    return per_leaf.inherit(wrapped, fast_optimizer)
