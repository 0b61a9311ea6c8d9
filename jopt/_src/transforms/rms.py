"""Scaling by the root mean square of past gradients, and the optimizer built on it: RMSProp
(Tieleman & Hinton 2012), with momentum in the form of `momentum.py`.

    nu = decay * nu + (1 - decay) * g**2                 (nu starts at initial_scale)
    s  = nu - mg**2,  mg = decay * mg + (1 - decay) * g  (centered; Graves 2013)
    s  = s / (1 - decay**t)                              (bias_correction)
    update = g / sqrt(s + eps)     (eps_in_sqrt=True: optax and Keras)
    update = g / (sqrt(s) + eps)   (eps_in_sqrt=False: torch)

The eps conventions differ by up to 1.4e-2 at eps=1e-2; both are named here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, fused, fused_rules, stateful, tree_math
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Flag, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.momentum import MOMENTUM, NESTEROV, momentum_then_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY, coupled_weight_decay
from jopt._src.validation import DECAY, NON_NEGATIVE

EPS = Float("eps", NON_NEGATIVE)
SCALE_BY_RMS = Spec(
    Float("decay", DECAY, schedulable=True, complement=True),
    EPS,
    Float("initial_scale", NON_NEGATIVE, in_state=False),
    Flag("eps_in_sqrt"),
    Flag("bias_correction"),
    Flag("centered"),
)


RMSPROP_MOMENTUM_FORMS = ("lr_inside", "classic")
RMSPROP = Spec(
    LEARNING_RATE,
    *(SCALE_BY_RMS[name] for name in ("decay", "eps", "initial_scale", "eps_in_sqrt", "centered")),
    MOMENTUM.as_optional(),
    NESTEROV,
    SCALE_BY_RMS["bias_correction"],
    Choice("momentum_form", RMSPROP_MOMENTUM_FORMS),
    WEIGHT_DECAY.as_optional(),
)


class ScaleByRmsState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    nu: optax.Updates  # EMA of squared gradients
    mu: optax.Updates | None  # EMA of gradients (centered only, else None)
    hparams: HParams  # decay, eps


@errors.public("jopt.scale_by_rms")
def scale_by_rms(
    decay: ScalarOrSchedule = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    centered: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Divides updates by the root of an EMA of their squares; a drop-in for `optax.scale_by_rms`.

    Args:
      decay: EMA rate of the squared gradients, in [0, 1) (torch calls it alpha).
      eps: added inside the root (`eps_in_sqrt=True`) or to the root (`False`), >= 0.
      initial_scale: initial value of the accumulator nu, >= 0 (TensorFlow 1 used 1.0).
      eps_in_sqrt: where eps goes, see the module docstring.
      bias_correction: divide the EMAs by `1 - decay**t` (as Adam does).
      centered: subtract the square of the EMA of gradients (an estimate of the variance).
    """
    bound = SCALE_BY_RMS.bind(
        errors.current_function(),
        decay=decay,
        eps=eps,
        initial_scale=initial_scale,
        eps_in_sqrt=eps_in_sqrt,
        bias_correction=bias_correction,
        centered=centered,
    )
    centered = bound["centered"]

    def buffers(params):
        return {
            "nu": base.full_like(params, bound["initial_scale"]),
            "mu": base.zeros_like(params) if centered else None,
        }

    def step(updates, state, hp, count, params):
        d, c = hp["decay"], hp.complement("decay")
        nu = jax.tree.map(lambda g, n: tree_math.moment(g, n, d, c, 2), updates, state.nu)
        mu = None
        if centered:
            mu = jax.tree.map(lambda g, m: tree_math.moment(g, m, d, c, 1), updates, state.mu)
        nu_hat, mu_hat = nu, mu
        if bound["bias_correction"]:
            correction = tree_math.bias_correction(d, count)
            nu_hat = jax.tree.map(lambda n: tree_math.debias(n, correction), nu)
            if centered:
                mu_hat = jax.tree.map(lambda m: tree_math.debias(m, correction), mu)

        def scale(g, n, m=None):
            dt = base.wider(g.dtype, n.dtype)
            e = hp["eps"].astype(dt)
            s = n.astype(dt) if m is None else n.astype(dt) - tree_math.abs_sq(m.astype(dt))
            factor = jax.lax.rsqrt(s + e) if bound["eps_in_sqrt"] else 1 / (jnp.sqrt(s) + e)
            return (factor * g.astype(dt)).astype(g.dtype)

        if centered:
            out = jax.tree.map(scale, updates, nu_hat, mu_hat)
        else:
            out = jax.tree.map(scale, updates, nu_hat)
        return out, {"nu": nu, "mu": mu}

    return stateful_transform(bound, ScaleByRmsState, buffers, step, matches="nu")


@errors.public("jopt.scale_by_stddev")
def scale_by_stddev(
    decay: ScalarOrSchedule = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Centered RMS scaling, `scale_by_rms(centered=True)`; a drop-in for optax's."""
    return scale_by_rms(decay, eps, initial_scale, eps_in_sqrt, bias_correction, centered=True)


@errors.public("jopt.rmsprop")
def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: ScalarOrSchedule = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
    *,
    momentum_form: str = "lr_inside",
    weight_decay: ScalarOrSchedule | None = None,
    weight_decay_mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """RMSProp (Tieleman & Hinton 2012), centered as Graves (2013); a drop-in for `optax.rmsprop`.

        u = g / sqrt(nu + eps)   (eps_in_sqrt=True)   or   g / (sqrt(nu) + eps)   (False)
        then momentum on u: v = mu v - lr u (momentum_form="lr_inside", optax and Keras)
                       or   m = mu m + u;  theta -= lr m ("classic", torch)

    Warning: optax's defaults (decay=0.9, eps inside the root, lr inside the momentum buffer)
    differ from torch's RMSprop (alpha=0.99, eps outside, lr outside): `jopt.rmsprop(lr,
    decay=0.99, eps_in_sqrt=False, momentum_form="classic")` is torch's.

    Args:
      learning_rate: a number >= 0 or a schedule.
      decay: EMA rate of the squared gradients (torch's alpha), in [0, 1).
      eps: >= 0; see eps_in_sqrt.
      initial_scale: initial value of the squared-gradient EMA.
      eps_in_sqrt: eps inside the root (optax, Keras) or outside (torch).
      centered: divide by an estimate of the standard deviation instead of the RMS.
      momentum: mu in [0, 1), a schedule, or None for no momentum.
      nesterov: Nesterov momentum (needs a momentum value).
      bias_correction: divide the EMAs by `1 - decay**t`.
      momentum_form: "lr_inside" (default, optax and Keras) or "classic" (torch).
      weight_decay: coupled L2 coefficient >= 0 (torch's `weight_decay`), a schedule, or None
        (default: no decay block; 0.0 keeps one in the state to set later). Needs params.
      weight_decay_mask: which params to decay.
    """
    tx = stateful.chain(
        *coupled_weight_decay(weight_decay, weight_decay_mask),
        scale_by_rms(decay, eps, initial_scale, eps_in_sqrt, bias_correction, centered=centered),
        *momentum_then_learning_rate(
            learning_rate,
            momentum,
            nesterov,
            momentum_form,
            forms=RMSPROP_MOMENTUM_FORMS,
            keep_count=False,
        ),
    )
    l2 = weight_decay is not None
    fusible = not bias_correction and (weight_decay_mask is None or not l2)
    fusible = fusible and (momentum is None or momentum_form == "lr_inside")
    has_momentum = momentum is not None
    rule = (
        fused_rules.rmsprop(l2, eps_in_sqrt, centered, has_momentum, nesterov) if fusible else None
    )
    return fused.declare(tx, rule)
