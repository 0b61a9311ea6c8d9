"""ADOPT (Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any beta2 with the
Optimal Rate"): Adam with the gradient normalized by the second moment of the *previous* step,
before the momentum, so that the normalizer does not depend on the current gradient.

    t = 0:   v = g**2                                  (the first update only initializes v)
    t >= 1:  x = clip(g / max(sqrt(v), eps), c(t))     c(t) = t**(1/4), with use_clipping
             m = b1 * m + (1 - b1) * x
             v = b2 * v + (1 - b2) * |g|**2
             update = m                                (nesterov: b1 * m + (1 - b1) * x)

`t` is the number of updates before this one, so the first update returns zero and the clipping
bound grows from c(1) = 1. The clipping is the paper's final, stable form (the default of the
authors' code and of `optax.contrib.adopt`); `use_clipping=False` is the original unclipped
ADOPT. `nesterov` is optax's option (not in the paper): the momentum applied twice.
A complex x is clipped in magnitude, keeping its phase (optax's clip refuses complex numbers).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import default_float
from jopt._src.spec import Flag, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import EPS, NESTEROV, ScaleByAdamState
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.validation import DECAY, NON_NEGATIVE

# No stored complement: optax's ADOPT computes 1 - b in the hyperparameter's own dtype (its b is
# `where(count > 0, b, ...)`), which in float32 is not 1 - b rounded from float64.
B1 = Float("b1", DECAY, schedulable=True)
B2 = Float("b2", DECAY, schedulable=True)
CLIP_VALUE_FN = Float("clip_value_fn", NON_NEGATIVE, schedulable=True).as_optional()
SCALE_BY_ADOPT = Spec(B1, B2, EPS, NESTEROV, Flag("use_clipping"), CLIP_VALUE_FN)
ADOPT = Spec(LEARNING_RATE, *SCALE_BY_ADOPT)


def quarter_power(count: jax.Array) -> jax.Array:
    """`count ** (1/4)`: the paper's clipping bound, in the default float dtype (as optax's
    `lambda x: x**0.25` of the int32 count, without an int-float promotion)."""
    return count.astype(default_float()) ** 0.25


def _clip(x: jax.Array, bound: jax.Array) -> jax.Array:
    """x clipped to [-bound, bound]; a complex x keeps its phase, its magnitude clipped."""
    if not jnp.iscomplexobj(x):
        bound = bound.astype(x.dtype)
        return jnp.clip(x, -bound, bound)
    magnitude = jnp.abs(x)
    bound = bound.astype(magnitude.dtype)
    return jnp.where(magnitude > bound, x * (bound / magnitude).astype(x.dtype), x)


@errors.public("jopt.scale_by_adopt")
def scale_by_adopt(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.9999,
    eps: float = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: ScalarOrSchedule | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by ADOPT; a drop-in for `optax.contrib.scale_by_adopt`.

    Args:
      b1: decay rate of the momentum, in [0, 1). Paper default 0.9.
      b2: decay rate of the second moment, in [0, 1). Paper default 0.9999.
      eps: floor of sqrt(v), >= 0. Paper default 1e-6.
      mu_dtype: dtype of the momentum (default: the params' dtype).
      nesterov: optax's Nesterov momentum, b1 * m + (1 - b1) * x.
      use_clipping: clip the normalized gradient to [-c(t), c(t)] (the paper's stable form).
      clip_value_fn: c(t), a schedule of the count t of earlier updates (optax's argument, e.g.
        `lambda t: t**0.25`) or a number >= 0; None (default): the paper's t**(1/4), computed in
        the program. A given value is kept in the state.
    """
    fn = errors.current_function()
    bound = SCALE_BY_ADOPT.bind(
        fn,
        b1=b1,
        b2=b2,
        eps=eps,
        nesterov=nesterov,
        use_clipping=use_clipping,
        clip_value_fn=clip_value_fn,
    )
    mu_dtype = validation.check_dtype(fn, "mu_dtype", mu_dtype)

    def buffers(params):
        return {"mu": base.zeros_like(params, mu_dtype), "nu": base.zeros_like(params)}

    def step(updates, state, hp, count, params):
        started = state.count > 0  # the update at t = 0 only sets v = g**2
        b1 = jnp.where(started, hp["b1"], jnp.ones_like(hp["b1"]))
        b2 = jnp.where(started, hp["b2"], jnp.zeros_like(hp["b2"]))
        if "clip_value_fn" in hp:
            clip_value = hp["clip_value_fn"]
        else:
            clip_value = quarter_power(state.count)

        def normalized(g, v):
            dt = base.wider(g.dtype, v.dtype)
            x = g.astype(dt) / jnp.maximum(jnp.sqrt(v.astype(dt)), hp["eps"].astype(dt))
            if bound["use_clipping"]:
                x = _clip(x, clip_value)
            # At t = 0, x (divided by the empty v) is multiplied by 1 - b1 = 0: zero it, so
            # that eps = 0 or a huge g cannot make the 0 a NaN.
            return jnp.where(started, x, jnp.zeros_like(x))

        def ema(x, m):
            return tree_math.moment(x, m, b1, 1 - b1)

        xs = jax.tree.map(normalized, updates, state.nu)
        mu = jax.tree.map(ema, xs, state.mu)
        out = jax.tree.map(ema, xs, mu) if bound["nesterov"] else mu
        nu = jax.tree.map(lambda g, v: tree_math.moment(g, v, b2, 1 - b2, 2), updates, state.nu)
        return out, {"mu": mu, "nu": nu}

    return stateful_transform(bound, ScaleByAdamState, buffers, step, matches="mu")


@errors.public("jopt.adopt")
def adopt(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.9999,
    eps: float = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: ScalarOrSchedule | None = None,
) -> optax.GradientTransformationExtraArgs:
    """ADOPT (Taniguchi et al. 2024); a drop-in for `optax.contrib.adopt`.

        x = clip(g / max(sqrt(v_prev), eps), t**(1/4));   m = b1 m + (1 - b1) x
        theta -= lr * m;   v = b2 v + (1 - b2) g**2       (the first update only sets v = g**2)

    `clip_value_fn=None` is optax's default `lambda t: t**0.25`; `use_clipping=False` is the
    original, unclipped ADOPT. See `jopt.scale_by_adopt`.
    """
    return stateful.chain(
        scale_by_adopt(
            b1,
            b2,
            eps,
            mu_dtype,
            nesterov=nesterov,
            use_clipping=use_clipping,
            clip_value_fn=clip_value_fn,
        ),
        scale_by_learning_rate(learning_rate),
    )
