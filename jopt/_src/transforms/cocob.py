"""COCOB-Backprop (Orabona & Tommasi 2017, "Training Deep Networks without Learning Rates Through
Coin Betting", Algorithm 2): each coordinate bets a fraction of its "wealth" (its initial
scale plus the reward won so far) on the sign of the sum of its negative gradients, with no
learning rate.

Per coordinate, with g the gradient at w_t and w_1 the params at init:

    L_t      = max(L_{t-1}, |g|)                     (the largest gradient seen; L_0 = eps)
    G_t      = G_{t-1} + |g|                         (the sum of their magnitudes)
    Reward_t = max(Reward_{t-1} - g (w_t - w_1), 0)
    theta_t  = theta_{t-1} - g                       (the sum of the negative gradients)
    w_{t+1}  = w_1 + theta_t / (L_t max(G_t + L_t, alpha L_t)) * (L_t + Reward_t)

The paper starts from L_0 = 0; optax from L_0 = eps (1e-8), so that a coordinate whose
gradients have all been 0 does not divide 0 by 0. `eps=0` is the paper's form. As optax,
`learning_rate` (1 by default) multiplies the gradients before the bet and `weight_decay`
(coupled, 0 by default) adds weight_decay * w to them first: neither is in the paper. The update
returned is w_{t+1} - w_t; `update` needs the params, and `init` the actual initial ones (w_1).
`alpha` (100, the paper's default) and `eps` are in the state; eps, as L_0, is read at the first
update. This is `optax.contrib.cocob`, bitwise. Complex parameters are refused (a bet is on a
sign).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import errors, stateful, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms import distance
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY, add_decayed_weights
from jopt._src.validation import NON_NEGATIVE, POSITIVE

ALPHA = Float("alpha", POSITIVE)
EPS = Float("eps", NON_NEGATIVE)
SCALE_BY_COCOB = Spec(ALPHA, EPS)
COCOB = Spec(LEARNING_RATE, ALPHA, EPS, WEIGHT_DECAY)


class ScaleByCOCOBState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    init_particles: optax.Params  # w_1, the params at init
    cumulative_gradients: optax.Updates  # theta_t, the sum of the negative gradients
    scale: optax.Updates  # L_t, the largest |g| seen (0 before the first update)
    subgradients: optax.Updates  # G_t, the sum of |g|
    reward: optax.Updates  # Reward_t
    hparams: HParams  # alpha, eps


@errors.public("jopt.scale_by_cocob")
def scale_by_cocob(
    alpha: float = 100.0, eps: float = 1e-8
) -> optax.GradientTransformationExtraArgs:
    """COCOB-Backprop's update w_{t+1} - w_t (the module docstring); optax.contrib's
    `scale_by_cocob`. It ends a chain: its updates are the params' moves, not gradients.

    Args:
      alpha: bounds the bet early on, > 0: at most a 1 / alpha fraction of the wealth is bet
        per unit of L_t. Paper default 100.
      eps: L_0, >= 0 (0: the paper's form). Default 1e-8.
    """
    fn = errors.current_function()
    bound = SCALE_BY_COCOB.bind(fn, alpha=alpha, eps=eps)

    def buffers(params):
        distance.check_real(fn, params, "COCOB bets on the sign of each coordinate's gradients.")
        return {
            "init_particles": distance.copy(params),
            "cumulative_gradients": distance.buffers(params),
            "scale": distance.buffers(params),  # eps from the state at the first update
            "subgradients": distance.buffers(params),
            "reward": distance.buffers(params),
        }

    def step(updates, state, hp, count, params):
        def leaf(c, p, p0, theta, scale, total, reward):
            dt = theta.dtype
            c, p, p0 = c.astype(dt), p.astype(dt), p0.astype(dt)
            scale = jnp.maximum(jnp.where(count == 1, hp["eps"].astype(dt), scale), jnp.abs(c))
            total = total + jnp.abs(c)
            reward = jnp.maximum(reward - c * (p - p0), 0)
            theta = theta - c
            bet = theta / (scale * jnp.maximum(total + scale, hp["alpha"].astype(dt) * scale))
            # With eps = 0, a coordinate that has seen only zero gradients bets nothing (not 0/0).
            bet = jnp.where(scale > 0, bet, jnp.zeros_like(bet))
            return -p + (p0 + bet * (scale + reward)), theta, scale, total, reward

        fields = ("cumulative_gradients", "scale", "subgradients", "reward")
        results = jax.tree.map(
            leaf, updates, params, state.init_particles, *(getattr(state, f) for f in fields)
        )
        five = jax.tree.structure((0,) * 5)
        out, *new = jax.tree.transpose(jax.tree.structure(updates), five, results)
        return out, dict(zip(fields, new, strict=True))

    return stateful_transform(
        bound, ScaleByCOCOBState, buffers, step, matches=("scale", "params"), needs_params=True
    )


@errors.public("jopt.cocob")
def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha: float = 100.0,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """COCOB-Backprop (Orabona & Tommasi 2017); a drop-in for `optax.contrib.cocob`.

    Args:
      learning_rate: multiplies the gradients before the bet, >= 0, or a schedule; not in the
        paper (1, the default, is its form).
      alpha: > 0, paper default 100 (see `scale_by_cocob`).
      eps: L_0, >= 0 (0: the paper's form). Default 1e-8.
      weight_decay: the coupled decay >= 0 added to the gradients first (0: none).
      mask: which params the weight decay applies to.
    """
    fn = errors.current_function()
    validation.check_mask(fn, "mask", mask)
    return stateful.chain(
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )
