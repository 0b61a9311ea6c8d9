"""SGD with Polyak's step size (Polyak 1987, "Introduction to Optimization"), in its stochastic,
capped form SPS_max (Loizou et al. 2021, "Stochastic Polyak Step-size for SGD: An Adaptive
Learning Rate for Fast Convergence"; Berrada et al. 2020, "Training Neural Networks for and by
Interpolation", ALI-G): the step size that would reach the loss `f_min` if the loss were linear,

    gap   = f(x) - f_min                      ("sps+": max(gap, 0), Garrigos et al. 2023)
    gamma = min(gap / (||g||**2 + eps), max_learning_rate)
    x     = x - gamma * g                     (gamma = 0 where ||g||**2 + eps <= 2.2e-16)

`update` needs the loss: `update(grads, state, params, value=loss)`.

`scaling` (s, a number or a schedule) is where the forms differ:

- `form="optax"` (default, `optax.polyak_sgd` 0.2.8 bitwise): optax chains `sgd(s)` before
  `scale_by_polyak`, so the step size is computed from the scaled gradient s g:
  x = x - s min(gap / (s**2 ||g||**2 + eps), max_learning_rate) g. optax's docstring says
  s min(gap / (||g||**2 + eps), max_learning_rate); the two agree at s = 1 (the default).
- `form="paper"`: SPS_max, gamma = min(s gap / (||g||**2 + eps), max_learning_rate), which is
  Loizou et al.'s gamma = min(gap / (c ||g||**2), gamma_b) with c = 1 / s (their experiments:
  c = 0.2) and gamma_b = max_learning_rate, and ALI-G's with s = 1 and eps = delta.

With f_min above the loss's minimum the steps stop short (gap <= 0: no step with "sps+", a step
uphill with "sps"); below it they overshoot, by up to max_learning_rate.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import errors, stateful
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.loss_value import sq_norm, value_transform
from jopt._src.validation import ANY_FINITE, NON_NEGATIVE

# Where optax's polyak step treats the squared gradient norm as zero: float64's machine epsilon
# (optax's `jnp.finfo(float).eps`), in every dtype.
TINY = float(jnp.finfo(jnp.float64).eps)

F_MIN = Float("f_min", ANY_FINITE)
MAX_LEARNING_RATE = Float("max_learning_rate", NON_NEGATIVE)
EPS = Float("eps", NON_NEGATIVE)
VARIANT = Choice("variant", ("sps", "sps+"))
SCALING = Float("scaling", NON_NEGATIVE, schedulable=True)
FORM = Choice("form", ("optax", "paper"))
SCALE_BY_POLYAK = Spec(F_MIN, MAX_LEARNING_RATE, EPS, VARIANT)
POLYAK_SCALING = Spec(SCALING)
SPS_MAX = Spec(SCALING, F_MIN, MAX_LEARNING_RATE, EPS, VARIANT)
POLYAK_SGD = Spec(MAX_LEARNING_RATE, SCALING, F_MIN, EPS, VARIANT, FORM)


class ScaleByPolyakState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    hparams: HParams  # f_min, max_learning_rate, eps


class PolyakScalingState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating: the optimizer's step count
    hparams: HParams  # scaling (optax form), or scaling, f_min, max_learning_rate, eps (paper)


def _step_size(updates, hp, value, variant: str, scaling=None) -> jax.Array:
    """min(s * gap / (||u||**2 + eps), max_learning_rate), 0 where ||u||**2 + eps <= TINY, in
    the dtype of ||u||**2 (optax's order of operations)."""
    squared = sq_norm(updates)
    dt = squared.dtype
    gap = (value - hp["f_min"].astype(value.dtype)).astype(dt)
    if variant == "sps+":
        gap = jnp.maximum(gap, jnp.zeros_like(gap))
    if scaling is not None:
        gap = scaling.astype(dt) * gap
    denominator = squared + hp["eps"].astype(dt)
    capped = jnp.minimum(gap / denominator, hp["max_learning_rate"].astype(dt))
    return jnp.where(denominator <= TINY, jnp.zeros_like(capped), capped)


@errors.public("jopt.scale_by_polyak")
def scale_by_polyak(
    f_min: float = 0.0,
    max_learning_rate: float = 1.0,
    eps: float = 0.0,
    variant: str = "sps",
) -> optax.GradientTransformationExtraArgs:
    """Multiplies the updates u by Polyak's step size min(gap / (||u||**2 + eps),
    max_learning_rate), gap = value - f_min (max(gap, 0) for "sps+"); a drop-in for
    `optax.scale_by_polyak`. `update` needs `value=`, the loss at the params.

    Args:
      f_min: a lower bound on the loss (its minimum, if known); 0 for models that interpolate
        the data.
      max_learning_rate: the cap on the step size, >= 0.
      eps: added to ||u||**2, >= 0.
      variant: "sps" (the gap as it is) or "sps+" (its positive part, Garrigos et al. 2023).
    """
    bound = SCALE_BY_POLYAK.bind(
        errors.current_function(),
        f_min=f_min,
        max_learning_rate=max_learning_rate,
        eps=eps,
        variant=variant,
    )

    def step(updates, state, hp, count, params, value):
        size = _step_size(updates, hp, value, bound["variant"])
        return jax.tree.map(lambda u: size.astype(u.dtype) * u, updates), {}

    return value_transform(bound, ScaleByPolyakState, lambda params: {}, step)


def _polyak_scaling(scaling: ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
    """The first block of `polyak_sgd`'s optax form: u = -scaling * g (optax's `sgd(scaling)`)."""
    bound = POLYAK_SCALING.bind(errors.current_function(), scaling=scaling)

    def step(updates, state, hp, count, params):
        minus = -hp["scaling"]
        return jax.tree.map(lambda g: minus.astype(g.dtype) * g, updates), {}

    return stateful_transform(bound, PolyakScalingState, lambda params: {}, step)


def _sps_max(
    scaling: ScalarOrSchedule, f_min: float, max_learning_rate: float, eps: float, variant: str
) -> optax.GradientTransformationExtraArgs:
    """`polyak_sgd`'s paper form in one block: u = -min(s gap / (||g||**2 + eps), cap) * g."""
    bound = SPS_MAX.bind(
        errors.current_function(),
        scaling=scaling,
        f_min=f_min,
        max_learning_rate=max_learning_rate,
        eps=eps,
        variant=variant,
    )

    def step(updates, state, hp, count, params, value):
        size = _step_size(updates, hp, value, bound["variant"], scaling=hp["scaling"])
        return jax.tree.map(lambda g: -size.astype(g.dtype) * g, updates), {}

    return value_transform(bound, PolyakScalingState, lambda params: {}, step)


@errors.public("jopt.polyak_sgd")
def polyak_sgd(
    max_learning_rate: float = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: float = 0.0,
    eps: float = 0.0,
    variant: str = "sps",
    *,
    form: str = "optax",
) -> optax.GradientTransformationExtraArgs:
    """SGD with the Polyak step size SPS_max (Loizou et al. 2021; Berrada et al. 2020); a drop-in
    for `optax.polyak_sgd`. `update` needs `value=`, the loss at the params.

        optax:  x = x - s min(gap / (s**2 ||g||**2 + eps), max_learning_rate) g
        paper:  x = x - min(s gap / (||g||**2 + eps), max_learning_rate) g

    with gap = f(x) - f_min (its positive part for "sps+") and s = scaling; no step where the
    denominator is <= 2.2e-16. The two forms agree at s = 1 (see the module docstring).

    Args:
      max_learning_rate: the cap on the step size (the paper's gamma_b), >= 0.
      scaling: s, >= 0, or a schedule: a factor of the step (optax form), of the Polyak ratio
        (paper form, s = 1 / c in Loizou et al.).
      f_min: a lower bound on the loss (its minimum, if known); 0 for models that interpolate
        the data. Warning: a wrong f_min can stall or diverge.
      eps: added to ||g||**2, >= 0.
      variant: "sps" or "sps+" (the positive part of the gap, Garrigos et al. 2023).
      form: "optax" (default, bitwise optax 0.2.8) or "paper" (SPS_max).
    """
    bound = POLYAK_SGD.bind(
        errors.current_function(),
        max_learning_rate=max_learning_rate,
        scaling=scaling,
        f_min=f_min,
        eps=eps,
        variant=variant,
        form=form,
    )
    if bound["form"] == "paper":
        return _sps_max(scaling, f_min, max_learning_rate, eps, variant)
    return stateful.chain(
        _polyak_scaling(scaling),
        scale_by_polyak(f_min=f_min, max_learning_rate=max_learning_rate, eps=eps, variant=variant),
    )
