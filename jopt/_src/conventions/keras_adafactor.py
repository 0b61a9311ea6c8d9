"""keras.optimizers.Adafactor's direction (Keras 3), the block of `jopt.keras.Adafactor`.

Shazeer & Stern's (2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost")
second moments and update clipping as Keras computes them, per leaf, with t = 1 at the first
step and b = 1 - t**-decay_rate (Keras' `beta_2_decay` = -decay_rate):

    G2 = g**2 + epsilon_1
    a leaf of two axes or more (the last two factored, whatever their sizes):
        R = b R + (1 - b) mean_last(G2);   C = b C + (1 - b) mean_second_last(G2)
        V = (R / mean(R)) C
    any other leaf:  V = b V + (1 - b) G2
    u = g / sqrt(V);   u = u / max(1, rms(u) / clip_threshold)
    direction = max(epsilon_2, rms(theta)) * u

`jopt.keras.Adafactor` steps by `min(lr, 1 / sqrt(t))` times it (`keras_decay_first`). The math
is `jopt.adafactor`'s (optax's) but for the axes factored (optax: the two largest, from a size
of 128); the numbers are Keras': its `ops.mean` computes in float32 even for float64 values
(Keras' type promotion of float64 with "float32" gives float32), and so do the means here, so
that a float64 run agrees with Keras' to rounding, not to float32's precision.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors
from jopt._src.hparams import HParams
from jopt._src.spec import Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adafactor import CLIPPING_THRESHOLD, DECAY_RATE, EPS2
from jopt._src.transforms.adam import EPS

KERAS_ADAFACTOR = Spec(DECAY_RATE, EPS, EPS2, CLIPPING_THRESHOLD)


class KerasAdafactorState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    row: optax.Updates  # per leaf of 2+ axes: R (its shape without the last axis); else (1,) 0
    col: optax.Updates  # per leaf of 2+ axes: C (without the second-last axis); else (1,) 0
    v: optax.Updates  # per leaf of fewer axes: V; else a (1,) zero
    hparams: HParams  # decay_rate, eps (epsilon_1), eps2 (epsilon_2), clipping_threshold


def _mean(x: jax.Array, axis=None, keepdims: bool = False) -> jax.Array:
    """Keras' `ops.mean` on the JAX backend: computed in float32, even for float64 values."""
    return jnp.mean(x, axis=axis, keepdims=keepdims, dtype=jnp.float32).astype(x.dtype)


def _rms(x: jax.Array) -> jax.Array:
    return jnp.sqrt(_mean(jnp.square(x)))


def scale_by_keras_adafactor(
    decay_rate: float, epsilon_1: float, epsilon_2: float, clip_threshold: float
) -> optax.GradientTransformationExtraArgs:
    """Keras' Adafactor direction (the module docstring); needs the params. Arguments come
    checked by `jopt.keras.Adafactor` (its errors name it)."""
    bound = KERAS_ADAFACTOR.bind(
        errors.current_function(),
        decay_rate=decay_rate,
        eps=epsilon_1,
        eps2=epsilon_2,
        clipping_threshold=clip_threshold,
    )

    def buffers(params):
        def leaf(p):
            shape, dtype = jnp.shape(p), jnp.result_type(p)
            none = jnp.zeros((1,), dtype)
            if len(shape) < 2:
                return none, none, jnp.zeros(shape, dtype)
            return jnp.zeros(shape[:-1], dtype), jnp.zeros(shape[:-2] + shape[-1:], dtype), none

        results = jax.tree.map(leaf, params)
        three = jax.tree.structure((0, 0, 0))
        row, col, v = jax.tree.transpose(jax.tree.structure(params), three, results)
        return {"row": row, "col": col, "v": v}

    def step(updates, state, hp, count, params):
        def leaf(g, p, row, col, v):
            dt = base.wider(g.dtype, p.dtype, v.dtype)
            g, p = g.astype(dt), p.astype(dt)
            t = count.astype(dt)
            b = 1 - t ** -hp["decay_rate"].astype(dt)
            squares = jnp.square(g) + hp["eps"].astype(dt)
            if g.ndim >= 2:
                row = b * row.astype(dt) + (1 - b) * _mean(squares, -1)
                col = b * col.astype(dt) + (1 - b) * _mean(squares, -2)
                normalized = row / _mean(row, -1, keepdims=True)
                v_hat = jnp.expand_dims(normalized, -1) * jnp.expand_dims(col, -2)
            else:
                v = b * v.astype(dt) + (1 - b) * squares
                v_hat = v
            u = g / jnp.sqrt(v_hat)
            u = u / jnp.maximum(1, _rms(u) / hp["clipping_threshold"].astype(dt))
            return jnp.maximum(hp["eps2"].astype(dt), _rms(p)) * u, row, col, v

        results = jax.tree.map(leaf, updates, params, state.row, state.col, state.v)
        four = jax.tree.structure((0, 0, 0, 0))
        out, row, col, v = jax.tree.transpose(jax.tree.structure(updates), four, results)
        return out, {"row": row, "col": col, "v": v}

    return stateful_transform(bound, KerasAdafactorState, buffers, step, needs_params=True)
