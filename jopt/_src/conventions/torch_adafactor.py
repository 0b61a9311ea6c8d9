"""torch.optim.Adafactor's step (torch 2.5+), the block of `jopt.torch.Adafactor`.

torch's Adafactor is Shazeer & Stern's (2018, "Adafactor: Adaptive Learning Rates with Sublinear
Memory Cost") in a form of its own, which `jopt.adafactor` (optax's) does not take. Per leaf,
with t = 1 at the first step and w = t ** -decay_rate (torch's `beta2_decay` = -decay_rate):

    rho = min(lr, 1 / sqrt(t));   alpha = max(eps2, rms(theta)) * rho     (theta before decay)
    theta = theta * (1 - lr * weight_decay)
    a leaf of two axes or more (the last two factored, whatever their sizes):
        R = lerp(R, mean_last(g**2), w);   C = lerp(C, mean_second_last(g**2), w)
        V = R C / max(mean(R), eps1)
    any other leaf:  V = lerp(V, g**2, w)
    u = g / sqrt(max(V, eps1**2));   theta = theta - alpha * u / max(1, rms(u) / d)

`lerp(a, b, w)` is torch's: `a + w (b - a)` for w < 0.5, else `b - (b - a)(1 - w)`. Where the
paper and optax add eps1 to g**2, torch clamps V (and mean(R)) from below: the two agree but on
gradients of eps1's size. eps1 None is the machine epsilon of the leaf's dtype (torch takes the
first parameter's for all). The learning rate only caps rho and scales the weight decay: the step
is relative to rms(theta), as in the paper. Complex parameters are refused, as torch does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adafactor import CLIPPING_THRESHOLD, DECAY_RATE, EPS2
from jopt._src.transforms.adam import EPS
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.regularization import WEIGHT_DECAY

TORCH_ADAFACTOR = Spec(
    LEARNING_RATE, DECAY_RATE, EPS.as_optional(), EPS2, CLIPPING_THRESHOLD, WEIGHT_DECAY
)


class TorchAdafactorState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    row: optax.Updates  # per leaf of 2+ axes: R, its last axis of size 1; else a (1,) zero
    col: optax.Updates  # per leaf of 2+ axes: C, its second-last axis of size 1; else a (1,) zero
    v: optax.Updates  # per leaf of fewer axes: V; else a (1,) zero
    hparams: HParams  # learning_rate, decay_rate, eps (if given), eps2, clipping_threshold,
    # weight_decay


def _lerp(a: jax.Array, b: jax.Array, w: jax.Array) -> jax.Array:
    """torch's `a.lerp(b, w)` for a scalar weight w."""
    return jnp.where(w < 0.5, a + w * (b - a), b - (b - a) * (1 - w))


def _rms(x: jax.Array) -> jax.Array:
    """torch's `x.norm(2) / x.numel() ** 0.5`."""
    return jnp.sqrt(jnp.sum(x * x)) / jnp.sqrt(jnp.asarray(x.size, x.dtype))


def _check_real(fn: str, params: Any) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if jnp.iscomplexobj(leaf):
            where = jax.tree_util.keystr(path) or "<root>"
            raise TypeError(
                f"{fn}: the parameter at {where} is complex ({jnp.result_type(leaf)}): torch's "
                "Adafactor does not support complex parameters. Optimize the real and imaginary "
                "parts as separate real parameters."
            )


def scale_by_torch_adafactor(
    lr: ScalarOrSchedule,
    decay_rate: float,
    eps1: float | None,
    eps2: float,
    d: float,
    weight_decay: float,
) -> optax.GradientTransformationExtraArgs:
    """torch's Adafactor step (the module docstring), the whole update: arguments checked by
    `jopt.torch.Adafactor` (its errors name it)."""
    fn = errors.current_function()
    values = {"learning_rate": lr, "decay_rate": decay_rate, "eps": eps1, "eps2": eps2}
    bound = TORCH_ADAFACTOR.bind(fn, **values, clipping_threshold=d, weight_decay=weight_decay)

    def buffers(params):
        _check_real(fn, params)

        def leaf(p):
            shape, dtype = jnp.shape(p), jnp.result_type(p)
            none = jnp.zeros((1,), dtype)
            if len(shape) < 2:
                return none, none, jnp.zeros(shape, dtype)
            row = jnp.zeros(shape[:-1] + (1,), dtype)
            col = jnp.zeros(shape[:-2] + (1,) + shape[-1:], dtype)
            return row, col, none

        results = jax.tree.map(leaf, params)
        row, col, v = jax.tree.transpose(
            jax.tree.structure(params), jax.tree.structure((0, 0, 0)), results
        )
        return {"row": row, "col": col, "v": v}

    def step(updates, state, hp, count, params):
        t = count.astype(hp["learning_rate"].dtype)
        lr = hp["learning_rate"]
        weight = t ** -hp["decay_rate"]
        rho = jnp.minimum(lr, 1 / t**0.5)
        shrink = 1 - lr * hp["weight_decay"]

        def leaf(g, p, row, col, v):
            dt = base.wider(g.dtype, p.dtype, v.dtype)
            g, old = g.astype(dt), p.astype(dt)
            eps1 = hp["eps"] if "eps" in hp else jnp.finfo(p.dtype).eps
            eps1 = jnp.asarray(eps1).astype(dt)
            w = weight.astype(dt)
            alpha = jnp.maximum(hp["eps2"].astype(dt), _rms(old)) * rho.astype(dt)
            if g.ndim > 1:
                row_mean = jnp.square(jnp.sqrt(jnp.sum(g * g, -1, keepdims=True))) / g.shape[-1]
                col_mean = jnp.square(jnp.sqrt(jnp.sum(g * g, -2, keepdims=True))) / g.shape[-2]
                row = _lerp(row.astype(dt), row_mean, w)
                col = _lerp(col.astype(dt), col_mean, w)
                var = row * col / jnp.maximum(jnp.mean(row, -2, keepdims=True), eps1)
            else:
                v = _lerp(v.astype(dt), g * g, w)
                var = v
            u = jax.lax.rsqrt(jnp.maximum(var, eps1 * eps1)) * g
            clip = jnp.maximum(1, _rms(u) / hp["clipping_threshold"].astype(dt))
            new = old * shrink.astype(dt) + u * (-alpha / clip)
            return new - old, row, col, v

        results = jax.tree.map(leaf, updates, params, state.row, state.col, state.v)
        out, row, col, v = jax.tree.transpose(
            jax.tree.structure(updates), jax.tree.structure((0, 0, 0, 0)), results
        )
        return out, {"row": row, "col": col, "v": v}

    return stateful_transform(bound, TorchAdafactorState, buffers, step, needs_params=True)
