"""Rectified Adam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond").

    rho_inf = 2 / (1 - b2) - 1,   rho_t = rho_inf - 2 t b2**t / (1 - b2**t)
    if rho_t >= threshold:
        r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        update = r_t * m_hat / (sqrt(v_hat + eps_root) + eps)
    else:
        update = m_hat        (momentum SGD while the variance estimate is intractable)

The threshold is 5 in optax and torch (the paper's Algorithm 2 uses 4).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, tree_math, validation
from jopt._src.transforms.adam import (
    ScaleByAdamState,
    _adam_spec,
    _debiased_first_moments,
    _first_moments,
    _second_moments,
)


def _rho_inf(b2):
    """The maximum length of the approximated simple moving average, 2 / (1 - b2) - 1."""
    return 2 / (1 - b2) - 1


def scale_by_radam(
    b1: float | validation.Schedule = 0.9,
    b2: float | validation.Schedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
    *,
    nesterov: bool = False,
    eps_hat: bool = False,
    owner: str = "jopt.scale_by_radam",
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates with RAdam's rectified Adam step; a drop-in for `optax.scale_by_radam`.

    With `eps_hat=True` (torch's RAdam), eps is added to sqrt(v) before the bias correction:
    `r_t * m_hat * sqrt(1 - b2**t) / (sqrt(v + eps_root) + eps)`.
    """
    threshold = validation.check_number(owner, "threshold", threshold, validation.ANY_FINITE)
    nesterov = validation.check_bool(owner, "nesterov", nesterov)
    eps_hat = validation.check_bool(owner, "eps_hat", eps_hat)
    spec = _adam_spec(owner, b1, b2, eps, eps_root, derived={"rho_inf": ("b2", _rho_inf)})

    def init_fn(params):
        return ScaleByAdamState(
            base.zero_count(), base.zeros_like(params), base.zeros_like(params), spec.init()
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        base.check_tree(owner, updates, state.mu, "first moment")
        hp = spec.resolve(state.hparams, state.count)
        mu = _first_moments(updates, state.mu, hp)
        nu = _second_moments(updates, state.nu, hp)
        count = base.increment(state.count)
        t = count.astype(hp["b2"].dtype)
        rho_inf = hp.derived["rho_inf"]
        # 1 - b2**t cancels catastrophically in float32 (b2**6 = 0.994): through expm1/log1p of
        # the exactly stored 1 - b2, rho_t is accurate to 1e-5 instead of 3e-3 at t = 6.
        correction2 = -jnp.expm1(t * jnp.log1p(-hp.complement("b2")))
        rho = rho_inf - 2 * t * (1 - correction2) / correction2
        m_hat = _debiased_first_moments(mu, updates, hp, count, nesterov)
        # Guard the root: before the threshold is reached its argument can be negative.
        safe_rho = jnp.where(rho >= threshold, rho, rho_inf)
        r = jnp.sqrt(
            (safe_rho - 4.0)
            * (safe_rho - 2.0)
            * rho_inf
            / ((rho_inf - 4.0) * (rho_inf - 2.0) * safe_rho)
        )

        def leaf(m, v, g):
            dt = base.wider(m.dtype, v.dtype)
            if eps_hat:
                root = jnp.sqrt(v.astype(dt) + hp["eps_root"].astype(dt)) + hp["eps"].astype(dt)
                root = root / jnp.sqrt(correction2).astype(dt)
            else:
                v = tree_math.debias(v, correction2).astype(dt)
                root = jnp.sqrt(v + hp["eps_root"].astype(dt)) + hp["eps"].astype(dt)
            rectified = r.astype(dt) * m.astype(dt) / root
            return jnp.where(rho >= threshold, rectified, m.astype(dt)).astype(g.dtype)

        out = jax.tree.map(leaf, m_hat, nu, updates)
        new_state = ScaleByAdamState(
            count, base.cast_like(mu, state.mu), base.cast_like(nu, state.nu), hp
        )
        return out, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
