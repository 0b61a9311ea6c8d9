"""Prodigy (Mishchenko & Defazio 2023, "Prodigy: An Expeditiously Adaptive Parameter-Free
Learner", Algorithm 4 "Prodigy (Adam version)"): D-Adaptation's AdamW (`dadapt.py`) with an
estimate of the distance to the solution that weighs recent gradients more (by d^2) and so grows
faster.

With gamma the learning rate (a multiplier of the estimate, 1 by default, or a schedule),
bc = sqrt(1 - b2**t) / (1 - b1**t) (optax's form; 1 in the paper's), dlr = d * gamma * bc, and
beta3 = sqrt(b2) unless given:

    m = b1 m + (1 - b1) d g
    v = b2 v + (1 - b2) d^2 g^2
    r = beta3 r + (d / d0) dlr <g, x0 - x>
    s = beta3 s + (d / d0) dlr g                (safeguard_warmup: (d / d0) d g)
    d' = max(d, estim_lr_coef * r / ||s||_1)    (d starts at d0 = estim_lr0)
    x = x - dlr m / (sqrt(v) + d' eps) - weight_decay * dlr * x

The paper's r and s carry factors (1 - beta3) and gamma d^2 where these carry d dlr / d0: the
factors common to both cancel in r / ||s||_1, and the estimate is the same.

`form="optax"` (default) is `optax.contrib.prodigy`, bitwise; it is the authors' implementation
(the `prodigyopt` package) with `use_bias_correction=True`. `form="paper"` is Algorithm 4 and the
authors' default: no bias correction (bc = 1), and eps scaled by the estimate d the step was taken
with, not by the new one d' (the step is x - gamma d m / (sqrt(v) + d eps)). The decoupled weight
decay is the authors' (the paper has none).

Where optax divides 0 by 0 (a zero gradient at the first steps: r = 0 and ||s||_1 = 0) and turns
d into NaN, jopt keeps d. The estimate d is in the state (`estim_lr`, optax's name; 0 until the
first update, where optax's holds estim_lr0); `estim_lr0` is read at the first update and divides
at every one. Complex parameters are refused.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import errors
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Flag, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms import distance
from jopt._src.transforms.dadapt import (
    B1,
    B2,
    EPS,
    ESTIM_LR0,
    FORM,
    bias_correction,
    raise_estimate,
    sqrt_of,
    start_estimate,
)
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.regularization import WEIGHT_DECAY
from jopt._src.validation import DECAY, POSITIVE

BETA3 = Float("beta3", DECAY).as_optional()
ESTIM_LR_COEF = Float("estim_lr_coef", POSITIVE)
PRODIGY = Spec(
    LEARNING_RATE,
    B1,
    B2,
    BETA3,
    EPS,
    ESTIM_LR0,
    ESTIM_LR_COEF,
    WEIGHT_DECAY,
    Flag("safeguard_warmup"),
    FORM,
    derived={"sqrt_b2": ("b2", sqrt_of)},
)


class ProdigyState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    exp_avg: optax.Updates  # m, the first moment of d * g
    exp_avg_sq: optax.Updates  # v, the second moment of d * g
    grad_sum: optax.Updates  # s, the weighted moving sum of the gradients
    params0: optax.Params  # x0, the params at init
    estim_lr: jax.Array  # d, the distance estimate (0 until the first update)
    numerator_weighted: jax.Array  # r, the weighted moving sum of <g, x0 - x>
    hparams: HParams  # learning_rate, b1, b2, [beta3], eps, estim_lr0, estim_lr_coef, weight_decay


@errors.public("jopt.prodigy")
def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[float, float] | None = None,
    beta3: float | None = None,
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    estim_lr_coef: float = 1.0,
    weight_decay: ScalarOrSchedule = 0.0,
    safeguard_warmup: bool = False,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    form: str = "optax",
) -> optax.GradientTransformationExtraArgs:
    """Prodigy (Mishchenko & Defazio 2023): AdamW with a learned step size; a drop-in for
    `optax.contrib.prodigy` (its arguments, in its order).

    See the module docstring for the update. Needs the params: `update(g, state, params)`;
    `init` must be given the actual initial params (x0).

    Args:
      learning_rate: gamma >= 0, a multiplier of the estimated step size (1: none), or a
        schedule, e.g. a warmup then a decay from 1 to 0 (the authors' advice).
      betas: Adam's decay rates (b1, b2), each in [0, 1); None (default): b1 and b2.
      beta3: the decay rate of r and s, in [0, 1); None (default): sqrt(b2), following b2.
      eps: added to sqrt(v), scaled by the estimate d, >= 0. Default 1e-8.
      estim_lr0: the initial estimate d0, > 0 (an underestimate: d only grows). Default 1e-6.
      estim_lr_coef: multiplies each new estimate, > 0 (the authors' `d_coef`). Default 1.
      weight_decay: the decoupled decay, >= 0, scaled by d * gamma * bc, or a schedule.
      safeguard_warmup: leave gamma and bc out of s (the authors' advice with a warmup).
      b1, b2: the same rates by name (the state's and the lab's). Defaults 0.9, 0.999.
      form: "optax" (default) or "paper" (no bias correction; eps scaled by the d of the step).
    """
    fn = errors.current_function()
    b1, b2 = distance.adam_betas(fn, betas, b1, b2)
    bound = PRODIGY.bind(
        fn,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        beta3=beta3,
        eps=eps,
        estim_lr0=estim_lr0,
        estim_lr_coef=estim_lr_coef,
        weight_decay=weight_decay,
        safeguard_warmup=safeguard_warmup,
        form=form,
    )
    paper = bound["form"] == "paper"
    safeguard = bound["safeguard_warmup"]

    def buffers(params):
        distance.check_real(fn, params, "Prodigy's estimate takes real inner products.")
        return {**distance.adam_estimate_buffers(params), "params0": distance.copy(params)}

    def step(updates, state, hp, count, params):
        dt = state.estim_lr.dtype
        d = start_estimate(hp, count, state.estim_lr)
        d0 = hp["estim_lr0"].astype(dt)
        dlr = d * hp["learning_rate"].astype(dt)
        if not paper:
            dlr = dlr * bias_correction(hp, count, dt)
        b1, b2, eps = (hp[name].astype(dt) for name in ("b1", "b2", "eps"))
        c1, c2 = hp.complement("b1").astype(dt), hp.complement("b2").astype(dt)
        beta3 = (hp["beta3"] if "beta3" in hp else hp.derived["sqrt_b2"]).astype(dt)
        grads = jax.tree.map(lambda g: g.astype(dt), updates)
        x = jax.tree.map(lambda p: p.astype(dt), params)

        dg = jax.tree.map(lambda g: d * g, grads)
        param_diff = jax.tree.map(lambda p0, p: p0.astype(dt) - p, state.params0, x)
        numerator_acum = distance.vdot(grads, param_diff, dt)
        exp_avg = jax.tree.map(lambda m, u: b1 * m.astype(dt) + c1 * u, state.exp_avg, dg)
        exp_avg_sq = jax.tree.map(lambda v, u: b2 * v.astype(dt) + c2 * u * u, state.exp_avg_sq, dg)
        weight = d if safeguard else dlr
        grad_sum = jax.tree.map(
            lambda s, u: beta3 * s.astype(dt) + weight * u / d0, state.grad_sum, dg
        )
        numerator = beta3 * state.numerator_weighted + (d / d0) * dlr * numerator_acum
        coef = hp["estim_lr_coef"].astype(dt)
        new_d = raise_estimate(d, coef * numerator / distance.l1_norm(grad_sum, dt))
        scaled_eps = (d if paper else new_d) * eps
        decay = hp["weight_decay"].astype(dt)

        def out(m, v, p):
            return -decay * dlr * p - dlr * m / (jnp.sqrt(v) + scaled_eps)

        new = {
            "exp_avg": exp_avg,
            "exp_avg_sq": exp_avg_sq,
            "grad_sum": grad_sum,
            "estim_lr": new_d,
            "numerator_weighted": numerator,
        }
        return jax.tree.map(out, exp_avg, exp_avg_sq, x), new

    return stateful_transform(
        bound, ProdigyState, buffers, step, matches=("exp_avg", "params"), needs_params=True
    )
