"""AdaBelief: Adam whose second moment is the variance of the gradient around its EMA, the
"belief" in the current direction (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes
by the Belief in Observed Gradients").

    m = b1 * m + (1 - b1) * g                       m_hat = m / (1 - b1**t)
    s = b2 * s + (1 - b2) * (g - m)**2 + eps_root   s_hat = s / (1 - b2**t)
    update = m_hat / (sqrt(s_hat) + eps)

`eps_root` is added to s at every step, inside the stored moment, as in the paper's Algorithm 2
and optax (whose defaults, eps = eps_root = 1e-16, are the paper's). A small gradient that
agrees with its running mean gives a small s and a large step; a noisy one, a small step. With
`nesterov`, the first moment is NAdam's, as `optax.adabelief(nesterov=True)`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import (
    B1,
    B2,
    EPS,
    EPS_ROOT,
    NESTEROV,
    _debiased_first_moments,
    _first_moments,
)
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate

SCALE_BY_BELIEF = Spec(B1, B2, EPS, EPS_ROOT, NESTEROV)
ADABELIEF = Spec(LEARNING_RATE, B1, B2, EPS, EPS_ROOT, NESTEROV)


class ScaleByBeliefState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # first moment m
    nu: optax.Updates  # the belief s: EMA of (g - m)**2, eps_root included
    hparams: HParams  # b1, b2, eps, eps_root


@errors.public("jopt.scale_by_belief")
def scale_by_belief(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    *,
    nesterov: bool = False,
    mu_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by AdaBelief's moments; a drop-in for `optax.scale_by_belief`.

    Args:
      b1: decay rate of the first moment, in [0, 1). Paper default 0.9.
      b2: decay rate of the belief, in [0, 1). Paper default 0.999.
      eps: added to the root of s_hat, >= 0. Paper default 1e-16.
      eps_root: added to s at every step, >= 0. Paper default 1e-16.
      nesterov: NAdam's Nesterov-corrected first moment.
      mu_dtype: dtype of the first moment (default: the params' dtype).
    """
    fn = errors.current_function()
    bound = SCALE_BY_BELIEF.bind(fn, b1=b1, b2=b2, eps=eps, eps_root=eps_root, nesterov=nesterov)
    mu_dtype = validation.check_dtype(fn, "mu_dtype", mu_dtype)

    def buffers(params):
        return {"mu": base.zeros_like(params, mu_dtype), "nu": base.zeros_like(params)}

    def step(updates, state, hp, count, params):
        mu = _first_moments(updates, state.mu, hp)

        def belief(g, m, s):
            dt = base.wider(g.dtype, m.dtype, s.dtype)
            error = g.astype(dt) - m.astype(dt)
            s = tree_math.moment(error, s, hp["b2"], hp.complement("b2"), 2)
            return s + hp["eps_root"].astype(s.dtype)

        nu = jax.tree.map(belief, updates, mu, state.nu)
        m_hat = _debiased_first_moments(mu, updates, hp, count, bound["nesterov"])
        correction = tree_math.bias_correction(hp["b2"], count)

        def leaf(m, s, g):
            s_hat = tree_math.debias(s, correction)
            dt = base.wider(m.dtype, s_hat.dtype)
            root = jnp.sqrt(s_hat.astype(dt)) + hp["eps"].astype(dt)
            return (m.astype(dt) / root).astype(g.dtype)

        return jax.tree.map(leaf, m_hat, nu, updates), {"mu": mu, "nu": nu}

    return stateful_transform(bound, ScaleByBeliefState, buffers, step, matches="mu")


@errors.public("jopt.adabelief")
def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """AdaBelief (Zhuang et al. 2020); a drop-in for `optax.adabelief`.

    m = b1 m + (1 - b1) g;   s = b2 s + (1 - b2) (g - m)**2 + eps_root
    theta -= lr * m_hat / (sqrt(s_hat) + eps),  x_hat = x / (1 - b**t)
    """
    return stateful.chain(
        scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )
