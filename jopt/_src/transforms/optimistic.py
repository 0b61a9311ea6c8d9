"""Optimistic gradient methods for min-max games: a step along the current gradient plus a
correction by the change since the last one, which damps the cycling of plain gradient descent
ascent around a saddle point.

Optimistic gradient descent (generalized OGD of Mokhtari et al. 2020, "A Unified Analysis of
Extra-gradient and Optimistic Gradient Methods for Saddle Point Problems: Proximal Point
Approach"; alpha = beta = 1 is Daskalakis et al. 2018's OMD, theta -= lr (2 g_t - g_{t-1})):

    u = (alpha + beta) * g_t - beta * g_{t-1}
    theta = theta - lr * u

Optimistic Adam (Daskalakis et al. 2018, "Training GANs with Optimism", Algorithm 1) applies it
to Adam's step r_t = m_hat / (sqrt(v_hat + eps_root) + eps), with alpha = lr and
beta = optimism (the paper: optimism = lr):

    theta = theta - ((lr + optimism) * r_t - optimism * r_{t-1})

The first step has no previous gradient. By default (optax's, since its issue #1082, and
Mokhtari et al.'s x_{-1} = x_0) the current one stands in for it, so the first step is
`alpha * g_1`; `previous_init="zero"` takes it as zero, as Daskalakis et al.'s Algorithm 1
(whose state starts at zero: the first step is `(alpha + beta) * g_1`, twice as long for OMD)
and optax before that fix.

optax's `optimistic_adam` defaults to `nesterov=True` (NAdam's first moment); the paper's is
Adam's, `nesterov=False`. optax 0.2.8 deprecates `optimistic_adam` (for `optimistic_adam_v2`,
same algorithm) and refuses a learning-rate schedule; jopt's takes one (with `optimism=None`,
the optimism follows it).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import B1, B2, EPS, EPS_ROOT, NESTEROV, scale_by_adam
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.validation import NON_NEGATIVE

ALPHA = Float("alpha", NON_NEGATIVE, schedulable=True)
BETA = Float("beta", NON_NEGATIVE, schedulable=True)
OPTIMISM = Float("optimism", NON_NEGATIVE, schedulable=True).as_optional()
PREVIOUS_INIT = Choice("previous_init", ("current", "zero"))
SCALE_BY_OPTIMISTIC_GRADIENT = Spec(ALPHA, BETA, PREVIOUS_INIT)
OPTIMISTIC_GRADIENT_DESCENT = Spec(LEARNING_RATE, ALPHA, BETA, PREVIOUS_INIT)
OPTIMISTIC_ADAM = Spec(LEARNING_RATE, OPTIMISM, B1, B2, EPS, EPS_ROOT, NESTEROV, PREVIOUS_INIT)
_OPTIMISM = Spec(LEARNING_RATE, OPTIMISM, PREVIOUS_INIT)


class ScaleByOptimisticGradientState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating (count == 0: optax's is_initial_step)
    previous_gradient: optax.Updates  # g_{t-1}, the incoming updates of the last step
    hparams: HParams  # alpha, beta


class OptimismState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32 (Adam's block before it keeps the `count`)
    previous_gradient: optax.Updates  # r_{t-1}, Adam's step of the last update
    hparams: HParams  # learning_rate, optimism (None: the learning rate)


def _optimistic(bound, state_type, alpha: str, beta: str, *, descent: bool = False):
    """The transform `u = (a + b) * g_t - b * g_{t-1}`, a and b the hyperparameters named
    `alpha` and `beta` (`beta` absent from the state: it is `alpha`'s value); negated with
    `descent`, where it ends an optimizer's chain and, given params, checks the gradients'
    dtypes against them (as the learning rate's block does in the others)."""

    def buffers(params):
        return {"previous_gradient": base.zeros_like(params)}

    def step(updates, state, hp, count, params):
        a = hp[alpha]
        b = hp[beta] if beta in hp else a
        # a + b in the state's dtype: optax adds its Python floats in float64, so in float32 the
        # two may differ by one rounding where a != b (not for the defaults, nor for b = a).
        weight = a + b

        def leaf(g, previous):
            dt = base.wider(g.dtype, previous.dtype)
            g, previous = g.astype(dt), previous.astype(dt)
            if bound["previous_init"] == "current":  # the first step: g_0 = g_1
                previous = jnp.where(count == 1, g, previous)
            u = weight.astype(dt) * g - b.astype(dt) * previous
            return -u if descent else u

        return jax.tree.map(leaf, updates, state.previous_gradient), {"previous_gradient": updates}

    matches = ("previous_gradient", "params") if descent else "previous_gradient"
    return stateful_transform(bound, state_type, buffers, step, matches=matches)


@errors.public("jopt.scale_by_optimistic_gradient")
def scale_by_optimistic_gradient(
    alpha: ScalarOrSchedule = 1.0,
    beta: ScalarOrSchedule = 1.0,
    *,
    previous_init: str = "current",
) -> optax.GradientTransformationExtraArgs:
    """Generalized optimistic gradients; a drop-in for `optax.scale_by_optimistic_gradient`.

        u = (alpha + beta) * g_t - beta * g_{t-1}

    Args:
      alpha: weight of the current gradient, >= 0 (OMD: 1).
      beta: weight of the correction g_t - g_{t-1} (negative momentum), >= 0 (OMD: 1).
      previous_init: g_0 at the first step: "current" (g_1, optax's) or "zero" (Daskalakis
        et al.'s Algorithm 1, optax's before its issue #1082).
    """
    bound = SCALE_BY_OPTIMISTIC_GRADIENT.bind(
        errors.current_function(), alpha=alpha, beta=beta, previous_init=previous_init
    )
    return _optimistic(bound, ScaleByOptimisticGradientState, "alpha", "beta")


@errors.public("jopt.optimistic_gradient_descent")
def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule,
    alpha: ScalarOrSchedule = 1.0,
    beta: ScalarOrSchedule = 1.0,
    *,
    previous_init: str = "current",
) -> optax.GradientTransformationExtraArgs:
    """Optimistic gradient descent (Mokhtari et al. 2020; Daskalakis et al. 2018); a drop-in for
    `optax.optimistic_gradient_descent`.

        theta -= lr * ((alpha + beta) * g_t - beta * g_{t-1})

    The first step takes g_0 = g_1 (`previous_init="zero"`: g_0 = 0, see the module docstring).
    """
    return stateful.chain(
        scale_by_optimistic_gradient(alpha, beta, previous_init=previous_init),
        scale_by_learning_rate(learning_rate),
    )


@errors.public("jopt.optimistic_adam")
def optimistic_adam(
    learning_rate: ScalarOrSchedule,
    optimism: ScalarOrSchedule | None = None,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    previous_init: str = "current",
) -> optax.GradientTransformationExtraArgs:
    """Optimistic Adam (Daskalakis et al. 2018); a drop-in for `optax.optimistic_adam`.

        r_t = m_hat / (sqrt(v_hat + eps_root) + eps)
        theta -= (lr + optimism) * r_t - optimism * r_{t-1}

    Args:
      learning_rate: lr, a number >= 0 or a schedule.
      optimism: weight of the correction r_t - r_{t-1}, >= 0; None (the paper's): the learning
        rate, which `jopt.set_hparams(state, learning_rate=...)` then changes too.
      b1, b2, eps, eps_root, mu_dtype, nesterov: Adam's (`jopt.scale_by_adam`).
      previous_init: r_0 at the first step: "current" (r_1, optax's) or "zero" (the paper's).

    Warning: optax's default `nesterov=True` is not the paper's Adam step; `nesterov=False,
    previous_init="zero"` is the paper's Algorithm 1.
    """
    fn = errors.current_function()
    bound = _OPTIMISM.bind(
        fn, learning_rate=learning_rate, optimism=optimism, previous_init=previous_init
    )
    return stateful.chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        _optimistic(bound, OptimismState, "learning_rate", "optimism", descent=True),
    )
