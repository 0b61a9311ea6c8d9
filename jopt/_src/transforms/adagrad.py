"""Scaling by the root of the sum of squared gradients, and the optimizer built on it: Adagrad
(Duchi et al. 2011, "Adaptive Subgradient Methods for Online Learning and Stochastic
Optimization").

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

from jopt._src import base, errors, fused, fused_rules, stateful, tree_math
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Flag, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.validation import NON_NEGATIVE

SCALE_BY_RSS = Spec(
    Float("initial_accumulator_value", NON_NEGATIVE, in_state=False),
    Float("eps", NON_NEGATIVE),
    Flag("eps_in_sqrt"),
)

ADAGRAD = Spec(LEARNING_RATE, *SCALE_BY_RSS)


class ScaleByRssState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    sum_of_squares: optax.Updates  # the accumulator acc
    hparams: HParams  # eps


@errors.public("jopt.scale_by_rss")
def scale_by_rss(
    initial_accumulator_value: float = 0.1, eps: float = 1e-7, *, eps_in_sqrt: bool = True
) -> optax.GradientTransformationExtraArgs:
    """Divides updates by the root of the sum of squares of all past updates (Adagrad).

    A drop-in for `optax.scale_by_rss`; `eps_in_sqrt=False` gives torch's form.
    """
    bound = SCALE_BY_RSS.bind(
        errors.current_function(),
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
        eps_in_sqrt=eps_in_sqrt,
    )

    def buffers(params):
        return {"sum_of_squares": base.full_like(params, bound["initial_accumulator_value"])}

    def step(updates, state, hp, count, params):
        def accumulate(g, a):
            dt = base.wider(g.dtype, a.dtype)
            return tree_math.abs_sq(g.astype(dt)) + a.astype(dt)

        acc = jax.tree.map(accumulate, updates, state.sum_of_squares)

        def scale(g, a):
            e = hp["eps"].astype(a.dtype)
            if bound["eps_in_sqrt"]:
                factor = jnp.where(a + e > 0, jax.lax.rsqrt(a + e), jnp.zeros_like(a))
            else:
                factor = 1 / (jnp.sqrt(a) + e)
            return (factor * g.astype(a.dtype)).astype(g.dtype)

        return jax.tree.map(scale, updates, acc), {"sum_of_squares": acc}

    return stateful_transform(bound, ScaleByRssState, buffers, step, matches="sum_of_squares")


@errors.public("jopt.adagrad")
def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: float = 0.1,
    eps: float = 1e-7,
    *,
    eps_in_sqrt: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Adagrad (Duchi et al. 2011); a drop-in for `optax.adagrad`.

        acc = acc + g**2;   theta -= lr * g / sqrt(acc + eps)

    Warning: torch starts the accumulator at 0 with eps=1e-10 outside the root:
    `jopt.adagrad(lr, 0.0, 1e-10, eps_in_sqrt=False)`.
    """
    tx = stateful.chain(
        scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=eps_in_sqrt),
        scale_by_learning_rate(learning_rate),
    )
    return fused.declare(tx, fused_rules.adagrad(eps_in_sqrt))
