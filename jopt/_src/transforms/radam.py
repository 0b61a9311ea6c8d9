"""Rectified Adam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond"):
the building block and the optimizer.

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

from jopt._src import base, errors, stateful, tree_math
from jopt._src.base import ScalarOrSchedule
from jopt._src.spec import Flag, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import (
    B1,
    B2,
    EPS,
    EPS_ROOT,
    ScaleByAdamState,
    _debiased_first_moments,
    _first_moments,
    _second_moments,
)
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate


def _rho_inf(b2):
    """The maximum length of the approximated simple moving average, 2 / (1 - b2) - 1."""
    return 2 / (1 - b2) - 1


SCALE_BY_RADAM = Spec(
    B1,
    B2,
    EPS,
    EPS_ROOT,
    Float("threshold", in_state=False),
    Flag("nesterov"),
    Flag("eps_hat"),
    derived={"rho_inf": ("b2", _rho_inf)},
)

RADAM = Spec(
    LEARNING_RATE,
    *(SCALE_BY_RADAM[name] for name in ("b1", "b2", "eps", "eps_root", "threshold", "nesterov")),
)


@errors.public("jopt.scale_by_radam")
def scale_by_radam(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
    *,
    nesterov: bool = False,
    eps_hat: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates with RAdam's rectified Adam step; a drop-in for `optax.scale_by_radam`.

    With `eps_hat=True` (torch's RAdam), eps is added to sqrt(v) before the bias correction:
    `r_t * m_hat * sqrt(1 - b2**t) / (sqrt(v + eps_root) + eps)`.
    """
    bound = SCALE_BY_RADAM.bind(
        errors.current_function(),
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        threshold=threshold,
        nesterov=nesterov,
        eps_hat=eps_hat,
    )
    threshold, nesterov, eps_hat = bound["threshold"], bound["nesterov"], bound["eps_hat"]

    def buffers(params):
        return {"mu": base.zeros_like(params), "nu": base.zeros_like(params)}

    def step(updates, state, hp, count, params):
        mu = _first_moments(updates, state.mu, hp)
        nu = _second_moments(updates, state.nu, hp)
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

        return jax.tree.map(leaf, m_hat, nu, updates), {"mu": mu, "nu": nu}

    return stateful_transform(bound, ScaleByAdamState, buffers, step, matches="mu")


@errors.public("jopt.radam")
def radam(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Rectified Adam (Liu et al. 2020); a drop-in for `optax.radam` (threshold 5 as torch)."""
    return stateful.chain(
        scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )
