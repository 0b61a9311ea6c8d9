"""AMSGrad (Reddi et al. 2018, "On the Convergence of Adam and Beyond"): Adam with the running
maximum of the second moment.

    m, v as Adam's;   v_max = max(v_max, v);   update = m_hat / (sqrt(v_max / (1 - b2**t)) + eps)

torch and Keras take the maximum over the raw v and bias-correct afterwards (`max_of="raw"`, the
default here); optax takes it over the bias-corrected v_hat (`max_of="corrected"`). They differ by
up to 0.14 in parameters over 25 steps.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, fused, fused_rules, stateful, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Flag, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import (
    B1,
    B2,
    EPS,
    EPS_HAT,
    EPS_ROOT,
    _eps_hat_scale,
    _first_moments,
    _normalize,
    _second_moments,
)
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate

MAX_OF = ("raw", "corrected")
SCALE_BY_AMSGRAD = Spec(
    B1,
    B2,
    EPS,
    EPS_ROOT,
    Flag("bias_correction_mu"),
    Flag("bias_correction_nu"),
    Choice("max_of", MAX_OF),
    EPS_HAT,
)
AMSGRAD = Spec(LEARNING_RATE, *(h for h in SCALE_BY_AMSGRAD if h.name != "eps_hat"))


class ScaleByAmsgradState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # first moment m
    nu: optax.Updates  # second moment v
    nu_max: optax.Updates  # running max of v (max_of="raw") or of v_hat ("corrected")
    hparams: HParams  # b1, b2, eps, eps_root


@errors.public("jopt.scale_by_amsgrad")
def scale_by_amsgrad(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    max_of: str = "raw",
    eps_hat: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """AMSGrad: Adam with the running maximum of the second moment.

    Args:
      b1, b2, eps, eps_root, mu_dtype: as `scale_by_adam`.
      bias_correction_mu: divide m by `1 - b1**t`.
      bias_correction_nu: divide the second moment by `1 - b2**t`.
      max_of: "raw" (torch, Keras; default) keeps `max(v)` and bias-corrects it afterwards;
        "corrected" (optax) keeps `max(v_hat)`. Warning: optax's default is "corrected".
      eps_hat: Keras' "epsilon hat" form (see `scale_by_adam`), with the max of the raw v.
    """
    fn = errors.current_function()
    bound = SCALE_BY_AMSGRAD.bind(
        fn,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        bias_correction_mu=bias_correction_mu,
        bias_correction_nu=bias_correction_nu,
        max_of=max_of,
        eps_hat=eps_hat,
    )
    mu_dtype = validation.check_dtype(fn, "mu_dtype", mu_dtype)
    max_of, eps_hat = bound["max_of"], bound["eps_hat"]
    validation.require(
        fn,
        not eps_hat or (max_of == "raw" and bias_correction_mu and bias_correction_nu),
        "eps_hat needs max_of='raw' and both bias corrections.",
        argument="eps_hat",
        value=eps_hat,
    )

    def buffers(params):
        return {
            "mu": base.zeros_like(params, mu_dtype),
            "nu": base.zeros_like(params),
            "nu_max": base.zeros_like(params),
        }

    def step(updates, state, hp, count, params):
        mu = _first_moments(updates, state.mu, hp)
        nu = _second_moments(updates, state.nu, hp)
        m_hat = mu
        if bound["bias_correction_mu"]:
            correction1 = tree_math.bias_correction(hp["b1"], count)
            m_hat = jax.tree.map(lambda m: tree_math.debias(m, correction1), mu)
        correction2 = tree_math.bias_correction(hp["b2"], count)

        def corrected(v):
            return tree_math.debias(v, correction2) if bound["bias_correction_nu"] else v

        if max_of == "raw":
            nu_max = jax.tree.map(
                lambda old, v: jnp.maximum(old.astype(v.dtype), v), state.nu_max, nu
            )
            v_hat = jax.tree.map(corrected, nu_max)
        else:
            nu_max = jax.tree.map(
                lambda old, v: jnp.maximum(old.astype(v.dtype), corrected(v)), state.nu_max, nu
            )
            v_hat = nu_max
        if eps_hat:
            out = _normalize(mu, nu_max, hp, updates, _eps_hat_scale(hp, count))
        else:
            out = _normalize(m_hat, v_hat, hp, updates)
        return out, {"mu": mu, "nu": nu, "nu_max": nu_max}

    return stateful_transform(bound, ScaleByAmsgradState, buffers, step, matches="mu")


@errors.public("jopt.amsgrad")
def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    max_of: str = "raw",
) -> optax.GradientTransformationExtraArgs:
    """AMSGrad (Reddi et al. 2018): Adam with the running maximum of the second moment.

        v_max = max(v_max, v);   theta -= lr * m_hat / (sqrt(v_max / (1 - b2**t) + eps_root) + eps)

    Warning: the default `max_of="raw"` follows torch and Keras and differs from optax's
    `amsgrad`, which keeps the maximum of the bias-corrected v_hat (`max_of="corrected"`).
    """
    tx = stateful.chain(
        scale_by_amsgrad(
            b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu, max_of=max_of
        ),
        scale_by_learning_rate(learning_rate),
    )
    corrected = (bias_correction_mu, bias_correction_nu)
    return fused.declare(tx, fused_rules.adam(False, amsgrad=max_of, corrected=corrected))
