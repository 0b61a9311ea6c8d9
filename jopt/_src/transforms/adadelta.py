"""Adadelta (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method").

E_g  = rho * E_g  + (1 - rho) * g**2
dx   = sqrt(E_dx + eps) / sqrt(E_g + eps) * g
E_dx = rho * E_dx + (1 - rho) * dx**2
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, tree_math, validation
from jopt._src.hparams import HParams, Spec


class ScaleByAdadeltaState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    e_g: optax.Updates  # EMA of squared gradients
    e_x: optax.Updates  # EMA of squared updates
    hparams: HParams  # rho, eps


def scale_by_adadelta(
    rho: float | validation.Schedule = 0.9,
    eps: float = 1e-6,
    *,
    owner: str = "jopt.scale_by_adadelta",
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by Adadelta's ratio of RMS values; a drop-in for optax's."""
    rho = validation.check_number_or_schedule(owner, "rho", rho, validation.DECAY)
    eps = validation.check_number(owner, "eps", eps, validation.NON_NEGATIVE)
    spec = Spec(
        owner,
        {"rho": rho, "eps": eps},
        {"rho": validation.DECAY, "eps": validation.NON_NEGATIVE},
        decays=("rho",),
    )

    def init_fn(params):
        return ScaleByAdadeltaState(
            base.zero_count(), base.zeros_like(params), base.zeros_like(params), spec.init()
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        base.check_tree(owner, updates, state.e_g, "accumulator")
        hp = spec.resolve(state.hparams, state.count)
        rho, c = hp["rho"], hp.complement("rho")
        e_g = jax.tree.map(lambda g, e: tree_math.moment(g, e, rho, c, 2), updates, state.e_g)

        def step(g, eg, ex):
            dt = base.wider(eg.dtype, ex.dtype)
            e = hp["eps"].astype(dt)
            return jnp.sqrt(ex.astype(dt) + e) / jnp.sqrt(eg + e) * g.astype(dt)

        dx = jax.tree.map(step, updates, e_g, state.e_x)
        e_x = jax.tree.map(lambda d, e: tree_math.moment(d, e, rho, c, 2), dx, state.e_x)
        new_state = ScaleByAdadeltaState(
            base.increment(state.count),
            base.cast_like(e_g, state.e_g),
            base.cast_like(e_x, state.e_x),
            hp,
        )
        return base.cast_like(dx, updates), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
