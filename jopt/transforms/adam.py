"""Adam's moment estimates, and the variants that share them: NAdam, AMSGrad, Adamax.

Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization"):

    m = b1 * m + (1 - b1) * g            m_hat = m / (1 - b1**t)
    v = b2 * v + (1 - b2) * g**2         v_hat = v / (1 - b2**t)
    update = m_hat / (sqrt(v_hat + eps_root) + eps)

NAdam (Dozat 2016), as optax: m_hat = b1 * m / (1 - b1**(t+1)) + (1 - b1) * g / (1 - b1**t).

AMSGrad (Reddi et al. 2018, "On the Convergence of Adam and Beyond") keeps the running maximum of
the second moment. torch and Keras take it over the raw v and bias-correct afterwards
(`max_of="raw"`, the default here); optax takes it over the bias-corrected v_hat
(`max_of="corrected"`). They differ by up to 0.14 in parameters over 25 steps.

Adamax (Kingma & Ba 2015, sec. 7.1): u = max(b2 * u, |g| + eps), update = m_hat / u.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt import base, tree_math, validation
from jopt.hparams import HParams, Spec

MAX_OF = ("raw", "corrected")


class ScaleByAdamState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # first moment m
    nu: optax.Updates  # second moment v (Adamax: the infinity norm u)
    hparams: HParams  # b1, b2, eps, eps_root


class ScaleByAmsgradState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # first moment m
    nu: optax.Updates  # second moment v
    nu_max: optax.Updates  # running max of v (max_of="raw") or of v_hat ("corrected")
    hparams: HParams  # b1, b2, eps, eps_root


def _adam_spec(owner, b1, b2, eps, eps_root=None, derived=None) -> Spec:
    values = {
        "b1": validation.check_number_or_schedule(owner, "b1", b1, validation.DECAY),
        "b2": validation.check_number_or_schedule(owner, "b2", b2, validation.DECAY),
        "eps": validation.check_number(owner, "eps", eps, validation.NON_NEGATIVE),
    }
    if eps_root is not None:
        values["eps_root"] = validation.check_number(
            owner, "eps_root", eps_root, validation.NON_NEGATIVE
        )
    ranges = {
        "b1": validation.DECAY,
        "b2": validation.DECAY,
        "eps": validation.NON_NEGATIVE,
        "eps_root": validation.NON_NEGATIVE,
    }
    return Spec(owner, values, ranges, decays=("b1", "b2"), derived=derived)


def _first_moments(updates, state_mu, hp):
    return jax.tree.map(
        lambda g, m: tree_math.moment(g, m, hp["b1"], hp.complement("b1"), 1), updates, state_mu
    )


def _second_moments(updates, state_nu, hp):
    return jax.tree.map(
        lambda g, v: tree_math.moment(g, v, hp["b2"], hp.complement("b2"), 2), updates, state_nu
    )


def _debiased_first_moments(mu, updates, hp, count, nesterov):
    """m_hat = m / (1 - b1**t), or NAdam's b1 m / (1 - b1**(t+1)) + (1 - b1) g / (1 - b1**t)."""
    correction = tree_math.bias_correction(hp["b1"], count)
    if not nesterov:
        return jax.tree.map(lambda m: tree_math.debias(m, correction), mu)
    ahead = tree_math.bias_correction(hp["b1"], base.increment(count))

    def leaf(m, g):
        g_hat, m_ahead = tree_math.debias(g, correction), tree_math.debias(m, ahead)
        return tree_math.moment(g_hat, m_ahead, hp["b1"], hp.complement("b1"))

    return jax.tree.map(leaf, mu, updates)


def _normalize(m_hat, v_hat, hp, like):
    """`m_hat / (sqrt(v_hat + eps_root) + eps)`, returned in the dtype of `like`'s leaves."""

    def leaf(m, v, g):
        dt = base.wider(m.dtype, v.dtype)
        root = jnp.sqrt(v.astype(dt) + hp["eps_root"].astype(dt))
        return (m.astype(dt) / (root + hp["eps"].astype(dt))).astype(g.dtype)

    return jax.tree.map(leaf, m_hat, v_hat, like)


def scale_by_adam(
    b1: float | validation.Schedule = 0.9,
    b2: float | validation.Schedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
    owner: str = "jopt.scale_by_adam",
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by Adam's bias-corrected moments; a drop-in for `optax.scale_by_adam`.

    Args:
      b1: decay rate of the first moment, in [0, 1). Paper default 0.9.
      b2: decay rate of the second moment, in [0, 1). Paper default 0.999.
      eps: added to the root of v_hat, >= 0. Paper default 1e-8.
      eps_root: added to v_hat inside the root, >= 0 (useful to differentiate through).
      mu_dtype: dtype of the first moment (default: the params' dtype).
      nesterov: NAdam's Nesterov-corrected first moment.
      nu_dtype: dtype of the second moment (default: the params' dtype).
      owner: the public name reported in errors.
    """
    spec = _adam_spec(owner, b1, b2, eps, eps_root)
    nesterov = validation.check_bool(owner, "nesterov", nesterov)
    mu_dtype = validation.check_dtype(owner, "mu_dtype", mu_dtype)
    nu_dtype = validation.check_dtype(owner, "nu_dtype", nu_dtype)

    def init_fn(params):
        return ScaleByAdamState(
            count=base.zero_count(),
            mu=base.zeros_like(params, mu_dtype),
            nu=base.zeros_like(params, nu_dtype),
            hparams=spec.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        base.check_tree(owner, updates, state.mu, "first moment")
        hp = spec.resolve(state.hparams, state.count)
        mu = _first_moments(updates, state.mu, hp)
        nu = _second_moments(updates, state.nu, hp)
        count = base.increment(state.count)
        m_hat = _debiased_first_moments(mu, updates, hp, count, nesterov)
        correction2 = tree_math.bias_correction(hp["b2"], count)
        v_hat = jax.tree.map(lambda v: tree_math.debias(v, correction2), nu)
        out = _normalize(m_hat, v_hat, hp, updates)
        new_state = ScaleByAdamState(
            count, base.cast_like(mu, state.mu), base.cast_like(nu, state.nu), hp
        )
        return out, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def scale_by_amsgrad(
    b1: float | validation.Schedule = 0.9,
    b2: float | validation.Schedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    max_of: str = "raw",
    owner: str = "jopt.scale_by_amsgrad",
) -> optax.GradientTransformationExtraArgs:
    """AMSGrad: Adam with the running maximum of the second moment.

    Args:
      b1, b2, eps, eps_root, mu_dtype: as `scale_by_adam`.
      bias_correction_mu: divide m by `1 - b1**t`.
      bias_correction_nu: divide the second moment by `1 - b2**t`.
      max_of: "raw" (torch, Keras; default) keeps `max(v)` and bias-corrects it afterwards;
        "corrected" (optax) keeps `max(v_hat)`. Warning: optax's default is "corrected".
      owner: the public name reported in errors.
    """
    spec = _adam_spec(owner, b1, b2, eps, eps_root)
    mu_dtype = validation.check_dtype(owner, "mu_dtype", mu_dtype)
    bias_correction_mu = validation.check_bool(owner, "bias_correction_mu", bias_correction_mu)
    bias_correction_nu = validation.check_bool(owner, "bias_correction_nu", bias_correction_nu)
    max_of = validation.check_choice(owner, "max_of", max_of, MAX_OF)

    def init_fn(params):
        return ScaleByAmsgradState(
            count=base.zero_count(),
            mu=base.zeros_like(params, mu_dtype),
            nu=base.zeros_like(params),
            nu_max=base.zeros_like(params),
            hparams=spec.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        base.check_tree(owner, updates, state.mu, "first moment")
        hp = spec.resolve(state.hparams, state.count)
        mu = _first_moments(updates, state.mu, hp)
        nu = _second_moments(updates, state.nu, hp)
        count = base.increment(state.count)
        m_hat = mu
        if bias_correction_mu:
            correction1 = tree_math.bias_correction(hp["b1"], count)
            m_hat = jax.tree.map(lambda m: tree_math.debias(m, correction1), mu)
        correction2 = tree_math.bias_correction(hp["b2"], count)

        def corrected(v):
            return tree_math.debias(v, correction2) if bias_correction_nu else v

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
        out = _normalize(m_hat, v_hat, hp, updates)
        new_state = ScaleByAmsgradState(
            count,
            base.cast_like(mu, state.mu),
            base.cast_like(nu, state.nu),
            base.cast_like(nu_max, state.nu_max),
            hp,
        )
        return out, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def scale_by_adamax(
    b1: float | validation.Schedule = 0.9,
    b2: float | validation.Schedule = 0.999,
    eps: float = 1e-8,
    *,
    owner: str = "jopt.scale_by_adamax",
) -> optax.GradientTransformationExtraArgs:
    """Adamax, Adam with the infinity norm; a drop-in for `optax.scale_by_adamax`.

    m = b1 m + (1 - b1) g;  u = max(b2 u, |g| + eps);  update = m / (1 - b1**t) / u
    """
    spec = _adam_spec(owner, b1, b2, eps)

    def init_fn(params):
        return ScaleByAdamState(
            base.zero_count(), base.zeros_like(params), base.zeros_like(params), spec.init()
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        base.check_tree(owner, updates, state.mu, "first moment")
        hp = spec.resolve(state.hparams, state.count)
        count = base.increment(state.count)
        mu = _first_moments(updates, state.mu, hp)

        def infinity_norm(g, u):
            dt = base.wider(g.dtype, u.dtype)
            return jnp.maximum(
                jnp.abs(g.astype(dt)) + hp["eps"].astype(dt), hp["b2"].astype(dt) * u.astype(dt)
            )

        nu = jax.tree.map(infinity_norm, updates, state.nu)
        correction1 = tree_math.bias_correction(hp["b1"], count)
        out = jax.tree.map(
            lambda m, u, g: (tree_math.debias(m, correction1) / u).astype(g.dtype),
            mu,
            nu,
            updates,
        )
        new_state = ScaleByAdamState(
            count, base.cast_like(mu, state.mu), base.cast_like(nu, state.nu), hp
        )
        return out, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
