"""NAdam with the momentum schedule of Dozat (2016), as torch's NAdam and Keras' Nadam.

    mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay)),   P_t = mu_1 * ... * mu_t
    m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g**2;   denom = sqrt(v / (1 - b2**t)) + eps
    update = (1 - mu_t) / (1 - P_t) * g / denom + mu_{t+1} / (1 - P_t mu_{t+1}) * m / denom

torch's default momentum_decay is 0.004; Keras' Nadam uses 0.96**t, i.e. momentum_decay = 1.
`jopt.nadam` (optax's form) has no momentum schedule: mu_t = b1 throughout.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams, default_float
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import B1, B2, EPS, _first_moments, _second_moments
from jopt._src.validation import NON_NEGATIVE

SCALE_BY_NADAM = Spec(B1, B2, EPS, Float("momentum_decay", NON_NEGATIVE))


class ScaleByNadamState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # first moment m
    nu: optax.Updates  # second moment v
    mu_product: jax.Array  # P_t, the product of the momentum schedule so far (float32 or wider)
    hparams: HParams  # b1, b2, eps, momentum_decay


@errors.public("jopt.scale_by_nadam")
def scale_by_nadam(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    momentum_decay: float = 4e-3,
    mu_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates with NAdam's scheduled Nesterov momentum (torch's and Keras' NAdam).

    Args:
      b1, b2, eps: as Adam (eps added to the root of the bias-corrected v).
      momentum_decay: psi in mu_t = b1 (1 - 0.96**(t psi) / 2), >= 0 (torch 4e-3, Keras 1).
      mu_dtype: dtype of the first moment (default: the params' dtype).
    """
    fn = errors.current_function()
    bound = SCALE_BY_NADAM.bind(fn, b1=b1, b2=b2, eps=eps, momentum_decay=momentum_decay)
    mu_dtype = validation.check_dtype(fn, "mu_dtype", mu_dtype)

    def buffers(params):
        return {
            "mu": base.zeros_like(params, mu_dtype),
            "nu": base.zeros_like(params),
            "mu_product": jnp.ones([], default_float()),
        }

    def step(updates, state, hp, count, params):
        mu = _first_moments(updates, state.mu, hp)
        nu = _second_moments(updates, state.nu, hp)
        b1, dtype = hp["b1"], hp["b1"].dtype
        t = count.astype(dtype)

        def schedule(step):
            return b1 * (1 - 0.5 * jnp.asarray(0.96, dtype) ** (step * hp["momentum_decay"]))

        mu_t, mu_next = schedule(t), schedule(t + 1)
        product = state.mu_product * mu_t
        grad_weight = (1 - mu_t) / (1 - product)
        moment_weight = mu_next / (1 - product * mu_next)
        correction2 = tree_math.bias_correction(hp["b2"], count)

        def leaf(g, m, v):
            dt = base.wider(m.dtype, v.dtype)
            denom = jnp.sqrt(tree_math.debias(v, correction2).astype(dt)) + hp["eps"].astype(dt)
            g_part = grad_weight.astype(dt) * g.astype(dt) / denom
            m_part = moment_weight.astype(dt) * m.astype(dt) / denom
            return (g_part + m_part).astype(g.dtype)

        out = jax.tree.map(leaf, updates, mu, nu)
        return out, {"mu": mu, "nu": nu, "mu_product": product}

    return stateful_transform(bound, ScaleByNadamState, buffers, step, matches="mu")
