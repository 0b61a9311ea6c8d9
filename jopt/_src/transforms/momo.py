"""MoMo and MoMo-Adam (Schaipp et al. 2023, "MoMo: Momentum Models for Adaptive Learning Rates",
Algorithms 1 and 2): SGD with momentum, or Adam, whose step size is capped by a Polyak-type step
from a model of the loss built from moving averages of the losses, gradients and <g, x>.

MoMo, with x the params, f the loss, g its gradient, beta in [0, 1), alpha the learning rate,
lambda the weight decay and f_* a lower bound on the loss (`lower_bound`):

    f_bar = beta f_bar + (1 - beta) f              (beta = 0 at the first step: the averages
    d     = beta d     + (1 - beta) g               start at their first samples)
    gamma = beta gamma + (1 - beta) <g, x>
    h     = (1 + alpha lambda) (f_bar - f_* - gamma) + <d, x>
    tau   = min(alpha, max(h, 0) / ||d||**2)        (tau = 0 where ||d||**2 <= 2.2e-16)

MoMo-Adam: the averages with b1 from zero (no special first step), v = b2 v + (1 - b2) g**2, the
preconditioner D = eps + sqrt(v / (1 - b2**t)), rho = 1 - b1**t, and

    h     = (1 + alpha lambda) (f_bar - rho f_* - gamma) + <d, x>
    tau   = min(alpha / rho, max(h, 0) / <d, d / D>),  the direction d / D instead of d.

The step, where `form` chooses how the weight decay enters:

- `form="optax"` (default, `optax.contrib.momo` / `momo_adam` 0.2.8 bitwise without weight
  decay): x = x / (1 + alpha lambda) - tau d.
- `form="paper"` (the paper's proximal step, and the authors' code): x = (x - tau d) /
  (1 + alpha lambda). The two agree when lambda = 0.

`adapt_lower_bound=True` estimates f_* on the fly (the paper's MoMo*, Section 5): before the step,
if h_0 = (1 + alpha lambda)(f_bar - gamma) + <d, x> < (1 + alpha lambda) rho f_*, then
f_* = max(h_0 / (2 rho (1 + alpha lambda)), lower_bound); after it, f_* = max((f_bar + <d, x> -
gamma - tau ||d||**2 / 2) / rho, lower_bound) (rho = 1 for MoMo; ||d||**2 = <d, d / D> for
MoMo-Adam). The estimate is the state's `lb`; `lower_bound` (in the hyperparameters) is its start
and floor.

`update` needs the loss and the params: `update(grads, state, params, value=loss)`.
With weight decay, optax computes 1 + alpha lambda from Python floats in float64; here it is
computed in the hyperparameters' dtype (float32 by default), which can differ by a rounding.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, tree_math
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Flag, Float, Spec
from jopt._src.transforms.adam import B1, B2, EPS
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.loss_value import sq_norm, value_transform, vdot
from jopt._src.transforms.polyak import TINY
from jopt._src.transforms.regularization import WEIGHT_DECAY
from jopt._src.validation import ANY_FINITE, DECAY

BETA = Float("beta", DECAY)
LOWER_BOUND = Float("lower_bound", ANY_FINITE)
ADAPT_LOWER_BOUND = Flag("adapt_lower_bound")
FORM = Choice("form", ("optax", "paper"))
MOMO = Spec(LEARNING_RATE, BETA, LOWER_BOUND, WEIGHT_DECAY, ADAPT_LOWER_BOUND, FORM)
MOMO_ADAM = Spec(LEARNING_RATE, B1, B2, EPS, LOWER_BOUND, WEIGHT_DECAY, ADAPT_LOWER_BOUND, FORM)


class MomoState(NamedTuple):
    """optax's `MomoState`, with the hyperparameters."""

    exp_avg: optax.Updates  # d, the EMA of the gradients
    barf: jax.Array  # f_bar, the EMA of the losses
    gamma: jax.Array  # gamma, the EMA of <g, x>
    lb: jax.Array  # the lower bound f_* in use (estimated with adapt_lower_bound)
    count: jax.Array  # steps taken, int32, saturating
    hparams: HParams  # learning_rate, beta, lower_bound, weight_decay


class MomoAdamState(NamedTuple):
    """optax's `MomoAdamState`, with the hyperparameters."""

    exp_avg: optax.Updates  # d, the EMA of the gradients
    exp_avg_sq: optax.Updates  # v, the EMA of their squares
    barf: jax.Array  # f_bar, the EMA of the losses
    gamma: jax.Array  # gamma, the EMA of <g, x>
    lb: jax.Array  # the lower bound f_* in use (estimated with adapt_lower_bound)
    count: jax.Array  # steps taken, int32, saturating
    hparams: HParams  # learning_rate, b1, b2, eps, lower_bound, weight_decay


def _scalar_dtype(params: Any) -> Any:
    """The dtype of the averaged losses: the params' narrowest (optax's), float32 at least."""
    dtypes = [base.compute_dtype(jnp.result_type(p)) for p in jax.tree.leaves(params)]
    return min(dtypes, key=lambda d: d.itemsize)


def _scalars(params: Any) -> dict[str, jax.Array]:
    """The scalar buffers' start. `lb` is not read before the first step, which takes
    `lower_bound` from the hyperparameters (`_first_lb`): so a state whose lower_bound was set is
    the state built with it."""
    dt = _scalar_dtype(params)
    return {name: jnp.zeros([], dt) for name in ("barf", "gamma", "lb")}  # three buffers


class _Model(NamedTuple):
    """The quantities of one step that the lower bound's estimate and the step read."""

    barf: jax.Array
    gamma: jax.Array
    sq: jax.Array  # ||d||**2 (MoMo) or <d, d / D> (MoMo-Adam)
    iprod: jax.Array  # <d, x>


def _step(model: _Model, hp: HParams, lb: jax.Array, rho: Any, adapt: bool, cap: jax.Array):
    """(tau, the lower bound after the step, 1 + alpha lambda): MoMo's step size from the model
    and the lower bound `lb` before the step, in optax's order of operations. `rho` is MoMo-Adam's
    1 - b1**t (None for MoMo, whose rho is 1), `cap` the largest step (alpha, or alpha / rho)."""
    dt = model.barf.dtype
    alpha = hp["learning_rate"].astype(dt)
    one_plus = 1 + alpha * hp["weight_decay"].astype(dt)
    floor = hp["lower_bound"].astype(dt)
    if adapt:
        # The paper's reset: the model's minimum (lambda-weighted) is below f_*: halve towards it.
        reset = one_plus * (model.barf - model.gamma) + model.iprod
        if rho is None:
            below, halved = reset < one_plus * lb, reset / (2 * one_plus)
        else:
            below, halved = reset < one_plus * rho * lb, reset / (2 * rho * one_plus)
        lb = jnp.where(below, jnp.maximum(halved, floor), lb)
    else:
        lb = floor
    scaled_lb = lb if rho is None else rho * lb
    h = one_plus * (model.barf - scaled_lb - model.gamma) + model.iprod
    t1 = jnp.maximum(h, jnp.zeros_like(h)) / model.sq
    t1 = jnp.where(model.sq <= TINY, jnp.zeros_like(t1), t1)  # no step where d = 0
    tau = jnp.minimum(cap, t1)
    if not adapt:
        return tau, floor, one_plus
    estimate = (model.barf + model.iprod - model.gamma) - 0.5 * tau * model.sq
    return tau, jnp.maximum(estimate if rho is None else estimate / rho, floor), one_plus


def _first_lb(state: Any, hp: HParams, count: jax.Array) -> jax.Array:
    """The lower bound before this step: `lower_bound` at the first step (it may have been set
    since `init`), the estimate kept in the state after."""
    return jnp.where(count == 1, hp["lower_bound"].astype(state.lb.dtype), state.lb)


def _decayed_step(paper: bool, alpha_lambda: jax.Array, one_plus: jax.Array, tau: jax.Array):
    """`(p, direction) -> update`: optax's x / (1 + alpha lambda) - tau direction, or the paper's
    (x - tau direction) / (1 + alpha lambda), as an update to add to x."""
    shrink = -alpha_lambda / one_plus
    step = tau / one_plus if paper else tau

    def leaf(p, direction):
        dt = base.wider(p.dtype, direction.dtype)
        return shrink.astype(dt) * p.astype(dt) - step.astype(dt) * direction.astype(dt)

    return leaf


@errors.public("jopt.momo")
def momo(
    learning_rate: ScalarOrSchedule = 1.0,
    beta: float = 0.9,
    lower_bound: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    adapt_lower_bound: bool = False,
    *,
    form: str = "optax",
) -> optax.GradientTransformationExtraArgs:
    """MoMo (Schaipp et al. 2023, Algorithm 1): SGD with momentum and the step size
    min(alpha, max(h, 0) / ||d||**2) of a model of the loss (see the module docstring); a drop-in
    for `optax.contrib.momo`. `update` needs `value=` (the loss) and the params.

    Args:
      learning_rate: alpha, the cap on the step size, >= 0, or a schedule. Best chosen large:
        the model's step takes over below it. Default 1.
      beta: the averages' decay rate, in [0, 1). Default 0.9.
      lower_bound: f_*, a lower bound on the loss (0 for most losses). Warning: a bound above
        the loss's minimum stops the iterates short of it.
      weight_decay: lambda, >= 0, or a schedule.
      adapt_lower_bound: estimate f_* on the fly from `lower_bound` up (the paper's MoMo*).
      form: "optax" (default) or "paper": where the weight decay enters (the module docstring).
    """
    fn = errors.current_function()
    bound = MOMO.bind(
        fn,
        learning_rate=learning_rate,
        beta=beta,
        lower_bound=lower_bound,
        weight_decay=weight_decay,
        adapt_lower_bound=adapt_lower_bound,
        form=form,
    )
    adapt, paper = bound["adapt_lower_bound"], bound["form"] == "paper"

    def buffers(params):
        return {"exp_avg": base.zeros_like(params), **_scalars(params)}

    def step(updates, state, hp, count, params, value):
        dt = state.barf.dtype
        # The averages start at their first samples: decay 0 at the first step.
        bt = jnp.where(count == 1, jnp.zeros_like(hp["beta"]), hp["beta"])
        weight = 1 - bt

        def average(old, new):
            wide = base.wider(old.dtype, new.dtype)
            return bt.astype(wide) * old.astype(wide) + weight.astype(wide) * new.astype(wide)

        barf = average(state.barf, value.astype(dt))
        exp_avg = jax.tree.map(average, state.exp_avg, updates)
        gamma = average(state.gamma, vdot(updates, params).astype(dt)).astype(dt)
        model = _Model(barf, gamma, sq_norm(exp_avg).astype(dt), vdot(exp_avg, params).astype(dt))
        alpha = hp["learning_rate"].astype(dt)
        lb = _first_lb(state, hp, count)
        tau, new_lb, one_plus = _step(model, hp, lb, None, adapt, alpha)
        alpha_lambda = alpha * hp["weight_decay"].astype(dt)
        out = jax.tree.map(_decayed_step(paper, alpha_lambda, one_plus, tau), params, exp_avg)
        new = {"exp_avg": exp_avg, "barf": barf, "gamma": gamma, "lb": new_lb}
        return out, new

    return value_transform(
        bound, MomoState, buffers, step, matches=("exp_avg", "params"), needs_params=True
    )


@errors.public("jopt.momo_adam")
def momo_adam(
    learning_rate: ScalarOrSchedule = 1e-2,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    lower_bound: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    adapt_lower_bound: bool = False,
    *,
    form: str = "optax",
) -> optax.GradientTransformationExtraArgs:
    """MoMo-Adam (Schaipp et al. 2023, Algorithm 2): Adam with the step size min(alpha / rho,
    max(h, 0) / <d, d / D>) of a model of the loss (see the module docstring); a drop-in for
    `optax.contrib.momo_adam`. `update` needs `value=` (the loss) and the params.

    Args:
      learning_rate: alpha, >= 0, or a schedule. Default 1e-2.
      b1: decay rate of the averages of the losses, gradients and <g, x>, in [0, 1).
      b2: decay rate of the squared gradients' average, in [0, 1).
      eps: added to the preconditioner sqrt(v / (1 - b2**t)), >= 0.
      lower_bound: f_*, a lower bound on the loss (0 for most losses).
      weight_decay: lambda, >= 0, or a schedule (decoupled, as AdamW's).
      adapt_lower_bound: estimate f_* on the fly from `lower_bound` up (the paper's MoMo*).
      form: "optax" (default) or "paper": where the weight decay enters (the module docstring).
    """
    fn = errors.current_function()
    bound = MOMO_ADAM.bind(
        fn,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        lower_bound=lower_bound,
        weight_decay=weight_decay,
        adapt_lower_bound=adapt_lower_bound,
        form=form,
    )
    adapt, paper = bound["adapt_lower_bound"], bound["form"] == "paper"

    def buffers(params):
        moments = {"exp_avg": base.zeros_like(params), "exp_avg_sq": base.zeros_like(params)}
        return {**moments, **_scalars(params)}

    def step(updates, state, hp, count, params, value):
        dt = state.barf.dtype
        b1, w1 = hp["b1"], hp.complement("b1")
        b2, w2 = hp["b2"], hp.complement("b2")

        def average(old, new):
            wide = base.wider(old.dtype, new.dtype)
            return b1.astype(wide) * old.astype(wide) + w1.astype(wide) * new.astype(wide)

        def squares(old, g):
            wide = base.wider(old.dtype, g.dtype)
            g = g.astype(wide)
            return b2.astype(wide) * old.astype(wide) + w2.astype(wide) * g * g

        barf = average(state.barf, value.astype(dt))
        exp_avg = jax.tree.map(average, state.exp_avg, updates)
        exp_avg_sq = jax.tree.map(squares, state.exp_avg_sq, updates)
        bc2 = tree_math.bias_correction(b2, count).astype(dt)
        bc1 = tree_math.bias_correction(b1, count).astype(dt)

        def precondition(v):
            return hp["eps"].astype(v.dtype) + jnp.sqrt(v / bc2.astype(v.dtype))

        precond = jax.tree.map(precondition, exp_avg_sq)
        weighted = jax.tree.map(lambda m, d: m / d.astype(m.dtype), exp_avg, precond)
        gamma = average(state.gamma, vdot(updates, params).astype(dt)).astype(dt)
        sq = vdot(exp_avg, weighted).astype(dt)
        model = _Model(barf, gamma, sq, vdot(exp_avg, params).astype(dt))
        alpha = hp["learning_rate"].astype(dt)
        lb = _first_lb(state, hp, count)
        tau, new_lb, one_plus = _step(model, hp, lb, bc1, adapt, alpha / bc1)
        alpha_lambda = alpha * hp["weight_decay"].astype(dt)
        direction = jax.tree.map(lambda m, d: tau.astype(m.dtype) * m / d, exp_avg, precond)
        # `_decayed_step` multiplies by tau: give it the direction already scaled, and 1.
        out = jax.tree.map(
            _decayed_step(paper, alpha_lambda, one_plus, jnp.ones_like(tau)), params, direction
        )
        new = {
            "exp_avg": exp_avg,
            "exp_avg_sq": exp_avg_sq,
            "barf": barf,
            "gamma": gamma,
            "lb": new_lb,
        }
        return out, new

    return value_transform(
        bound, MomoAdamState, buffers, step, matches=("exp_avg", "params"), needs_params=True
    )
