"""D-Adaptation for AdamW (Defazio & Mishchenko 2023, "Learning-Rate-Free Learning by
D-Adaptation", Algorithm 4 "Adam D-Adaptation"): Adam whose step size d, a lower bound on the
distance D = ||x0 - x*|| to the solution, is estimated from the gradients seen, and only grows.

With gamma the learning rate (a multiplier of the estimate, 1 by default, or a schedule) and
bc = sqrt(1 - b2**t) / (1 - b1**t) (optax's form; 1 in the paper's), dlr = d * gamma * bc, and
beta3 = sqrt(b2):

    num = dlr * <g, s / (sqrt(v) + eps)>              (s and v before this step's update)
    m = b1 m + (1 - b1) dlr g
    v = b2 v + (1 - b2) g^2
    s = beta3 s + (1 - beta3) dlr g
    r = beta3 r + (1 - beta3) num
    d = max(d, r / ((1 - beta3) ||s||_1))             (d starts at estim_lr0, d0 in the paper)
    x = x - m / (sqrt(v) + eps) - weight_decay * dlr * x

`form="optax"` (default) is `optax.contrib.dadapt_adamw`, bitwise; it is also the authors'
implementation (facebookresearch/dadaptation, `DAdaptAdam(use_bias_correction=True,
decouple=True)`). `form="paper"` is the paper's Algorithm 4 and the authors' default: no bias
correction (bc = 1). The weight decay is the authors' decoupled one (the paper has none); the
inner product uses v and s from before the step, as the authors' code and optax do.

Where optax divides 0 by 0 (a zero gradient at the first steps: r = 0 and ||s||_1 = 0) and
turns d into NaN, jopt keeps d: the estimate is a running maximum, and 0 / 0 brings no evidence.
The step size d is in the state (`estim_lr`, as optax names it); `estim_lr0` is read at the first
update, so that `jopt.set_hparams(state, estim_lr0=...)` before it sets the initial estimate
(until then the state's `estim_lr` is 0, where optax's holds estim_lr0).
Complex parameters are refused (the estimate compares real inner products).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import errors
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms import distance
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.regularization import WEIGHT_DECAY
from jopt._src.validation import DECAY, NON_NEGATIVE, POSITIVE

# Adam's decay rates, numbers (optax takes them as the pair `betas`): the bias correction reads
# them at every step.
B1 = Float("b1", DECAY, complement=True)
B2 = Float("b2", DECAY, complement=True)
EPS = Float("eps", NON_NEGATIVE)
ESTIM_LR0 = Float("estim_lr0", POSITIVE)
FORM = Choice("form", ("optax", "paper"))


def sqrt_of(b2: Any) -> Any:
    """sqrt(b2), as optax computes it from a Python float: `b2 ** 0.5`, rounded once."""
    return b2**0.5


def one_minus_sqrt_of(b2: Any) -> Any:
    """1 - sqrt(b2), rounded once."""
    return 1 - b2**0.5


DADAPT_ADAMW = Spec(
    LEARNING_RATE,
    B1,
    B2,
    EPS,
    ESTIM_LR0,
    WEIGHT_DECAY,
    FORM,
    derived={"sqrt_b2": ("b2", sqrt_of), "1-sqrt_b2": ("b2", one_minus_sqrt_of)},
)


class DAdaptAdamWState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    exp_avg: optax.Updates  # m, the first moment of dlr * g
    exp_avg_sq: optax.Updates  # v, the second moment of g
    grad_sum: optax.Updates  # s, the moving sum of dlr * g
    estim_lr: jax.Array  # d, the distance estimate (0 until the first update)
    numerator_weighted: jax.Array  # r, the moving sum of dlr * <g, s / (sqrt(v) + eps)>
    hparams: HParams  # learning_rate, b1, b2, eps, estim_lr0, weight_decay


def bias_correction(hp: HParams, count: jax.Array, dtype: Any) -> jax.Array:
    """sqrt(1 - b2**t) / (1 - b1**t), in the hyperparameters' dtype, then cast to `dtype`."""
    t = count.astype(hp["b1"].dtype)
    return (((1 - hp["b2"] ** t) ** 0.5) / (1 - hp["b1"] ** t)).astype(dtype)


def start_estimate(hp: HParams, count: jax.Array, estimate: jax.Array) -> jax.Array:
    """The estimate d before this update: estim_lr0 at the first, else the state's."""
    return jnp.where(count == 1, hp["estim_lr0"].astype(estimate.dtype), estimate)


def raise_estimate(d: jax.Array, candidate: jax.Array) -> jax.Array:
    """max(d, candidate), keeping d where the candidate is 0 / 0 (no evidence yet)."""
    return jnp.where(jnp.isnan(candidate), d, jnp.maximum(d, candidate))


@errors.public("jopt.dadapt_adamw")
def dadapt_adamw(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[float, float] | None = None,
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    form: str = "optax",
) -> optax.GradientTransformationExtraArgs:
    """AdamW with its step size found by D-Adaptation (Defazio & Mishchenko 2023); a drop-in for
    `optax.contrib.dadapt_adamw` (its arguments, in its order).

    See the module docstring for the update. Needs the params: `update(g, state, params)`.

    Args:
      learning_rate: gamma >= 0, a multiplier of the estimated step size (1: none), or a
        schedule, e.g. a warmup then a decay from 1 to 0 (the authors' advice).
      betas: Adam's decay rates (b1, b2), each in [0, 1); None (default): b1 and b2.
      eps: added to sqrt(v), >= 0. Default 1e-8.
      estim_lr0: the initial estimate d0 of the distance to the solution, > 0; an
        underestimate: d only grows. Default 1e-6.
      weight_decay: the decoupled decay, >= 0, scaled by d * gamma * bc, or a schedule.
      b1, b2: the same rates by name (the state's and the lab's). Defaults 0.9, 0.999.
      form: "optax" (default, with Adam's bias correction) or "paper" (without).
    """
    fn = errors.current_function()
    b1, b2 = distance.adam_betas(fn, betas, b1, b2)
    bound = DADAPT_ADAMW.bind(
        fn,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        estim_lr0=estim_lr0,
        weight_decay=weight_decay,
        form=form,
    )
    paper = bound["form"] == "paper"

    def buffers(params):
        distance.check_real(fn, params, "D-Adaptation's estimate takes real inner products.")
        return distance.adam_estimate_buffers(params)

    def step(updates, state, hp, count, params):
        dt = state.estim_lr.dtype
        d = start_estimate(hp, count, state.estim_lr)
        dlr = d * hp["learning_rate"].astype(dt)
        if not paper:
            dlr = dlr * bias_correction(hp, count, dt)
        b1, b2, eps = (hp[name].astype(dt) for name in ("b1", "b2", "eps"))
        c1, c2 = hp.complement("b1").astype(dt), hp.complement("b2").astype(dt)
        sb2 = hp.derived["sqrt_b2"].astype(dt)
        csb2 = hp.derived["1-sqrt_b2"].astype(dt)
        grads = jax.tree.map(lambda g: g.astype(dt), updates)

        s_weighted = jax.tree.map(
            lambda s, v: s.astype(dt) / (jnp.sqrt(v.astype(dt)) + eps),
            state.grad_sum,
            state.exp_avg_sq,
        )
        numerator_acum = distance.vdot(grads, s_weighted, dt)
        exp_avg = jax.tree.map(lambda m, g: b1 * m.astype(dt) + c1 * dlr * g, state.exp_avg, grads)
        exp_avg_sq = jax.tree.map(
            lambda v, g: b2 * v.astype(dt) + c2 * g * g, state.exp_avg_sq, grads
        )
        grad_sum = jax.tree.map(
            lambda s, g: sb2 * s.astype(dt) + csb2 * dlr * g, state.grad_sum, grads
        )
        numerator = sb2 * state.numerator_weighted + csb2 * dlr * numerator_acum
        estimate = numerator / (csb2 * distance.l1_norm(grad_sum, dt))
        decay = hp["weight_decay"].astype(dt)

        def out(m, v, p):
            return -decay * dlr * p.astype(dt) - m / (jnp.sqrt(v) + eps)

        new = {
            "exp_avg": exp_avg,
            "exp_avg_sq": exp_avg_sq,
            "grad_sum": grad_sum,
            "estim_lr": raise_estimate(d, estimate),
            "numerator_weighted": numerator,
        }
        return jax.tree.map(out, exp_avg, exp_avg_sq, params), new

    return stateful_transform(
        bound, DAdaptAdamWState, buffers, step, matches=("exp_avg", "params"), needs_params=True
    )
