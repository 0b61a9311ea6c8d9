"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

c = b1 * m + (1 - b1) * g;   update = sign(c);   m = b2 * m + (1 - b2) * g
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, tree_math, validation
from jopt._src.hparams import HParams, Spec


class ScaleByLionState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # momentum m
    hparams: HParams  # b1, b2


def scale_by_lion(
    b1: float | validation.Schedule = 0.9,
    b2: float | validation.Schedule = 0.99,
    mu_dtype: Any = None,
    *,
    owner: str = "jopt.scale_by_lion",
) -> optax.GradientTransformationExtraArgs:
    """Lion's sign update; a drop-in for `optax.scale_by_lion` (its "hard" mode)."""
    b1 = validation.check_number_or_schedule(owner, "b1", b1, validation.DECAY)
    b2 = validation.check_number_or_schedule(owner, "b2", b2, validation.DECAY)
    mu_dtype = validation.check_dtype(owner, "mu_dtype", mu_dtype)
    spec = Spec(
        owner,
        {"b1": b1, "b2": b2},
        {"b1": validation.DECAY, "b2": validation.DECAY},
        decays=("b1", "b2"),
    )

    def init_fn(params):
        return ScaleByLionState(base.zero_count(), base.zeros_like(params, mu_dtype), spec.init())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        base.check_tree(owner, updates, state.mu, "momentum")
        hp = spec.resolve(state.hparams, state.count)
        out = jax.tree.map(
            lambda g, m: jnp.sign(tree_math.moment(g, m, hp["b1"], hp.complement("b1"))).astype(
                g.dtype
            ),
            updates,
            state.mu,
        )
        mu = jax.tree.map(
            lambda g, m: tree_math.moment(g, m, hp["b2"], hp.complement("b2")), updates, state.mu
        )
        new_state = ScaleByLionState(base.increment(state.count), base.cast_like(mu, state.mu), hp)
        return out, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
