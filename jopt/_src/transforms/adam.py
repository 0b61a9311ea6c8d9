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

from jopt._src import base, tree_math, validation
from jopt._src.hparams import HParams, Spec

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


def _eps_hat_scale(hp, count):
    """`sqrt(1 - b2**t) / (1 - b1**t)`: both bias corrections moved onto the step size."""
    correction1 = tree_math.bias_correction(hp["b1"], count)
    return jnp.sqrt(tree_math.bias_correction(hp["b2"], count)) / correction1


def _adam_spec(owner, b1, b2, eps, eps_root=None, derived=None, extra=None) -> Spec:
    """Spec of an Adam-like block: b1, b2, eps, [eps_root], `extra` {name: (value, Range)}."""
    ranges = {
        "b1": validation.DECAY,
        "b2": validation.DECAY,
        "eps": validation.NON_NEGATIVE,
        "eps_root": validation.NON_NEGATIVE,
    }
    given = {"b1": b1, "b2": b2, "eps": eps}
    if eps_root is not None:
        given["eps_root"] = eps_root
    for name, (value, allowed) in (extra or {}).items():
        given[name], ranges[name] = value, allowed
    values = {
        name: validation.check_number_or_schedule(owner, name, value, ranges[name])
        if name in ("b1", "b2")
        else validation.check_number(owner, name, value, ranges[name])
        for name, value in given.items()
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


def _normalize(m_hat, v_hat, hp, like, scale=None):
    """`m_hat [* scale] / (sqrt(v_hat + eps_root) + eps)`, in the dtype of `like`'s leaves."""

    def leaf(m, v, g):
        dt = base.wider(m.dtype, v.dtype)
        root = jnp.sqrt(v.astype(dt) + hp["eps_root"].astype(dt))
        m = m.astype(dt) if scale is None else m.astype(dt) * scale.astype(dt)
        return (m / (root + hp["eps"].astype(dt))).astype(g.dtype)

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
    eps_hat: bool = False,
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
      eps_hat: the paper's "epsilon hat" form used by Keras: eps is added to sqrt(v), not to
        sqrt(v_hat), and both bias corrections scale the step instead,
        `update = sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v + eps_root) + eps)`.
      owner: the public name reported in errors.
    """
    spec = _adam_spec(owner, b1, b2, eps, eps_root)
    nesterov = validation.check_bool(owner, "nesterov", nesterov)
    eps_hat = validation.check_bool(owner, "eps_hat", eps_hat)
    validation.require(owner, not (nesterov and eps_hat), "eps_hat is not defined with nesterov.")
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
        if eps_hat:
            out = _normalize(mu, nu, hp, updates, _eps_hat_scale(hp, count))
        else:
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
    eps_hat: bool = False,
    owner: str = "jopt.scale_by_amsgrad",
) -> optax.GradientTransformationExtraArgs:
    """AMSGrad: Adam with the running maximum of the second moment.

    Args:
      b1, b2, eps, eps_root, mu_dtype: as `scale_by_adam`.
      bias_correction_mu: divide m by `1 - b1**t`.
      bias_correction_nu: divide the second moment by `1 - b2**t`.
      max_of: "raw" (torch, Keras; default) keeps `max(v)` and bias-corrects it afterwards;
        "corrected" (optax) keeps `max(v_hat)`. Warning: optax's default is "corrected".
      eps_hat: Keras' "epsilon hat" form (see `scale_by_adam`), with the max of the raw v.
      owner: the public name reported in errors.
    """
    spec = _adam_spec(owner, b1, b2, eps, eps_root)
    mu_dtype = validation.check_dtype(owner, "mu_dtype", mu_dtype)
    bias_correction_mu = validation.check_bool(owner, "bias_correction_mu", bias_correction_mu)
    bias_correction_nu = validation.check_bool(owner, "bias_correction_nu", bias_correction_nu)
    max_of = validation.check_choice(owner, "max_of", max_of, MAX_OF)
    eps_hat = validation.check_bool(owner, "eps_hat", eps_hat)
    validation.require(
        owner,
        not eps_hat or (max_of == "raw" and bias_correction_mu and bias_correction_nu),
        "eps_hat needs max_of='raw' and both bias corrections.",
    )

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
        if eps_hat:
            out = _normalize(mu, nu_max, hp, updates, _eps_hat_scale(hp, count))
        else:
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
    eps_in_max: bool = True,
    owner: str = "jopt.scale_by_adamax",
) -> optax.GradientTransformationExtraArgs:
    """Adamax, Adam with the infinity norm; a drop-in for `optax.scale_by_adamax`.

        m = b1 m + (1 - b1) g;  u = max(b2 u, |g| + eps);  update = m / (1 - b1**t) / u

    With `eps_in_max=False` (Keras): u = max(b2 u, |g|), update = m / (1 - b1**t) / (u + eps).
    """
    spec = _adam_spec(owner, b1, b2, eps)
    eps_in_max = validation.check_bool(owner, "eps_in_max", eps_in_max)

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
            size = jnp.abs(g.astype(dt))
            if eps_in_max:
                size = size + hp["eps"].astype(dt)
            return jnp.maximum(size, hp["b2"].astype(dt) * u.astype(dt))

        nu = jax.tree.map(infinity_norm, updates, state.nu)
        correction1 = tree_math.bias_correction(hp["b1"], count)

        def step(m, u, g):
            u = u if eps_in_max else u + hp["eps"].astype(u.dtype)
            return (tree_math.debias(m, correction1) / u).astype(g.dtype)

        out = jax.tree.map(step, mu, nu, updates)
        new_state = ScaleByAdamState(
            count, base.cast_like(mu, state.mu), base.cast_like(nu, state.nu), hp
        )
        return out, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
