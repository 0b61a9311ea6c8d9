"""Scaling by the root of the sum of squared gradients (Adagrad; Duchi et al. 2011).

    acc = acc + g**2                    (acc starts at initial_accumulator_value)
    update = g / sqrt(acc + eps)        (eps_in_sqrt=True: optax, Keras; 0 where acc + eps == 0)
    update = g / (sqrt(acc) + eps)      (eps_in_sqrt=False: torch)

Defaults differ: optax and Keras start the accumulator at 0.1 with eps=1e-7, torch at 0 with
eps=1e-10.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, validation
from jopt._src.hparams import HParams, Spec


class ScaleByRssState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    sum_of_squares: optax.Updates  # the accumulator acc
    hparams: HParams  # eps


def scale_by_rss(
    initial_accumulator_value: float = 0.1,
    eps: float = 1e-7,
    *,
    eps_in_sqrt: bool = True,
    owner: str = "jopt.scale_by_rss",
) -> optax.GradientTransformationExtraArgs:
    """Divides updates by the root of the sum of squares of all past updates (Adagrad).

    A drop-in for `optax.scale_by_rss`; `eps_in_sqrt=False` gives torch's form.
    """
    initial = validation.check_number(
        owner, "initial_accumulator_value", initial_accumulator_value, validation.NON_NEGATIVE
    )
    eps = validation.check_number(owner, "eps", eps, validation.NON_NEGATIVE)
    eps_in_sqrt = validation.check_bool(owner, "eps_in_sqrt", eps_in_sqrt)
    spec = Spec(owner, {"eps": eps}, {"eps": validation.NON_NEGATIVE})

    def init_fn(params):
        return ScaleByRssState(base.zero_count(), base.full_like(params, initial), spec.init())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        base.check_tree(owner, updates, state.sum_of_squares, "accumulator")
        hp = spec.resolve(state.hparams, state.count)

        def accumulate(g, a):
            dt = base.wider(g.dtype, a.dtype)
            return jnp.square(g.astype(dt)) + a.astype(dt)

        acc = jax.tree.map(accumulate, updates, state.sum_of_squares)

        def scale(g, a):
            e = hp["eps"].astype(a.dtype)
            if eps_in_sqrt:
                factor = jnp.where(a + e > 0, jax.lax.rsqrt(a + e), jnp.zeros_like(a))
            else:
                factor = 1 / (jnp.sqrt(a) + e)
            return (factor * g.astype(a.dtype)).astype(g.dtype)

        out = jax.tree.map(scale, updates, acc)
        new_state = ScaleByRssState(
            base.increment(state.count), base.cast_like(acc, state.sum_of_squares), hp
        )
        return out, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
