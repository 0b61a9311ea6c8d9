"""Scaling by the root mean square of past gradients (RMSProp; Tieleman & Hinton 2012).

    nu = decay * nu + (1 - decay) * g**2                 (nu starts at initial_scale)
    s  = nu - mg**2,  mg = decay * mg + (1 - decay) * g  (centered; Graves 2013)
    s  = s / (1 - decay**t)                              (bias_correction)
    update = g / sqrt(s + eps)     (eps_in_sqrt=True: optax and Keras)
    update = g / (sqrt(s) + eps)   (eps_in_sqrt=False: torch)

The eps conventions differ by up to 1.4e-2 at eps=1e-2; both are named here.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, tree_math, validation
from jopt._src.hparams import HParams, Spec


class ScaleByRmsState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    nu: optax.Updates  # EMA of squared gradients
    mu: optax.Updates | None  # EMA of gradients (centered only, else None)
    hparams: HParams  # decay, eps


def scale_by_rms(
    decay: float | validation.Schedule = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    centered: bool = False,
    owner: str = "jopt.scale_by_rms",
) -> optax.GradientTransformationExtraArgs:
    """Divides updates by the root of an EMA of their squares; a drop-in for `optax.scale_by_rms`.

    Args:
      decay: EMA rate of the squared gradients, in [0, 1) (torch calls it alpha).
      eps: added inside the root (`eps_in_sqrt=True`) or to the root (`False`), >= 0.
      initial_scale: initial value of the accumulator nu, >= 0 (TensorFlow 1 used 1.0).
      eps_in_sqrt: where eps goes, see the module docstring.
      bias_correction: divide the EMAs by `1 - decay**t` (as Adam does).
      centered: subtract the square of the EMA of gradients (an estimate of the variance).
      owner: the public name reported in errors.
    """
    decay = validation.check_number_or_schedule(owner, "decay", decay, validation.DECAY)
    eps = validation.check_number(owner, "eps", eps, validation.NON_NEGATIVE)
    initial_scale = validation.check_number(
        owner, "initial_scale", initial_scale, validation.NON_NEGATIVE
    )
    eps_in_sqrt = validation.check_bool(owner, "eps_in_sqrt", eps_in_sqrt)
    bias_correction = validation.check_bool(owner, "bias_correction", bias_correction)
    centered = validation.check_bool(owner, "centered", centered)
    spec = Spec(
        owner,
        {"decay": decay, "eps": eps},
        {"decay": validation.DECAY, "eps": validation.NON_NEGATIVE},
        decays=("decay",),
    )

    def init_fn(params):
        return ScaleByRmsState(
            count=base.zero_count(),
            nu=base.full_like(params, initial_scale),
            mu=base.zeros_like(params) if centered else None,
            hparams=spec.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        base.check_tree(owner, updates, state.nu, "second-moment accumulator")
        hp = spec.resolve(state.hparams, state.count)
        d, c = hp["decay"], hp.complement("decay")
        count = base.increment(state.count)
        nu = jax.tree.map(lambda g, n: tree_math.moment(g, n, d, c, 2), updates, state.nu)
        mu = (
            jax.tree.map(lambda g, m: tree_math.moment(g, m, d, c, 1), updates, state.mu)
            if centered
            else None
        )
        nu_hat, mu_hat = nu, mu
        if bias_correction:
            correction = tree_math.bias_correction(d, count)
            nu_hat = jax.tree.map(lambda n: tree_math.debias(n, correction), nu)
            if centered:
                mu_hat = jax.tree.map(lambda m: tree_math.debias(m, correction), mu)

        def scale(g, n, m=None):
            dt = base.wider(g.dtype, n.dtype)
            e = hp["eps"].astype(dt)
            s = n.astype(dt) if m is None else n.astype(dt) - jnp.square(m.astype(dt))
            factor = jax.lax.rsqrt(s + e) if eps_in_sqrt else 1 / (jnp.sqrt(s) + e)
            return (factor * g.astype(dt)).astype(g.dtype)

        if centered:
            out = jax.tree.map(scale, updates, nu_hat, mu_hat)
        else:
            out = jax.tree.map(scale, updates, nu_hat)
        new_state = ScaleByRmsState(
            count=count,
            nu=base.cast_like(nu, state.nu),
            mu=base.cast_like(mu, state.mu) if centered else None,
            hparams=hp,
        )
        return out, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def scale_by_stddev(
    decay: float | validation.Schedule = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Centered RMS scaling, `scale_by_rms(centered=True)`; a drop-in for optax's."""
    return scale_by_rms(
        decay,
        eps,
        initial_scale,
        eps_in_sqrt,
        bias_correction,
        centered=True,
        owner="jopt.scale_by_stddev",
    )
