"""Adamax (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", sec. 7.1): Adam with
the infinity norm in place of the second moment.

    m = b1 m + (1 - b1) g;   u = max(b2 u, |g| + eps);   update = m / (1 - b1**t) / u

Keras puts eps outside the max (`eps_in_max=False`): u = max(b2 u, |g|), update = ... / (u + eps).

AdamaxW adds AdamW's decoupled weight decay (Loshchilov & Hutter 2019) to Adamax's update, before
the learning rate scales it: theta -= lr * (m_hat / u + weight_decay * theta).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful, tree_math
from jopt._src.base import ScalarOrSchedule
from jopt._src.spec import Flag, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import B1, B2, EPS, ScaleByAdamState, _first_moments
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY, add_decayed_weights

SCALE_BY_ADAMAX = Spec(B1, B2, EPS, Flag("eps_in_max"))
ADAMAX = Spec(LEARNING_RATE, B1, B2, EPS)
ADAMAXW = Spec(LEARNING_RATE, B1, B2, EPS, WEIGHT_DECAY)


@errors.public("jopt.scale_by_adamax")
def scale_by_adamax(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    *,
    eps_in_max: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Adamax, Adam with the infinity norm; a drop-in for `optax.scale_by_adamax`.

        m = b1 m + (1 - b1) g;  u = max(b2 u, |g| + eps);  update = m / (1 - b1**t) / u

    With `eps_in_max=False` (Keras): u = max(b2 u, |g|), update = m / (1 - b1**t) / (u + eps).
    """
    bound = SCALE_BY_ADAMAX.bind(
        errors.current_function(), b1=b1, b2=b2, eps=eps, eps_in_max=eps_in_max
    )
    eps_in_max = bound["eps_in_max"]

    def buffers(params):
        return {"mu": base.zeros_like(params), "nu": base.zeros_like(params)}

    def step(updates, state, hp, count, params):
        mu = _first_moments(updates, state.mu, hp)

        def infinity_norm(g, u):
            dt = base.wider(g.dtype, u.dtype)
            size = jnp.abs(g.astype(dt))
            if eps_in_max:
                size = size + hp["eps"].astype(dt)
            return jnp.maximum(size, hp["b2"].astype(dt) * u.astype(dt))

        nu = jax.tree.map(infinity_norm, updates, state.nu)
        correction1 = tree_math.bias_correction(hp["b1"], count)

        def leaf(m, u, g):
            u = u if eps_in_max else u + hp["eps"].astype(u.dtype)
            return (tree_math.debias(m, correction1) / u).astype(g.dtype)

        return jax.tree.map(leaf, mu, nu, updates), {"mu": mu, "nu": nu}

    return stateful_transform(bound, ScaleByAdamState, buffers, step, matches="mu")


@errors.public("jopt.adamax")
def adamax(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """Adamax (Kingma & Ba 2015, sec. 7.1); a drop-in for `optax.adamax`.

        u = max(b2 u, |g| + eps);   theta -= lr * m_hat / u

    Keras puts eps outside the max: `max(b2 u, |g|)`, then divides by `u + eps`.
    """
    return stateful.chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


@errors.public("jopt.adamaxw")
def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """AdamaxW, Adamax with decoupled weight decay (Kingma & Ba 2015, sec. 7.1; Loshchilov &
    Hutter 2019); a drop-in for `optax.adamaxw`.

        u = max(b2 u, |g| + eps);   theta -= lr * (m_hat / u + weight_decay * theta)

    The decay is multiplied by the learning rate, as in `jopt.adamw`, optax and torch (the paper's
    schedule multiplier eta_t). `mask`: a tree of bools shaped like the params (or a function
    params -> such a tree) marking the leaves to decay.
    """
    return stateful.chain(
        scale_by_adamax(b1, b2, eps),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
