"""What every schedule shares: the step as a float, and results in the default float dtype.

A schedule is a pure function `step -> value`: jit-, vmap- and grad-safe, taking a Python int or
an integer array (the optimizer's step count, which saturates at 2**31 - 1) and returning a
scalar array in the default float dtype (float32; float64 when `jax_enable_x64` is on).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Schedule = Callable[[Any], jax.Array]


def float_dtype():
    return jnp.zeros([]).dtype


def as_float(step: Any) -> jax.Array:
    """The step count as a float array (exact up to 2**24 in float32)."""
    return jnp.asarray(step).astype(float_dtype())


def divmod_steps(step: Any, n: int) -> tuple[jax.Array, jax.Array]:
    """`(floor(step / n), step mod n)` as floats: whole periods of n steps done, and steps since.

    Exact for integer steps, computed in integers. `jnp.floor(step / n)` is not: XLA computes
    `step / n` as `step * (1 / n)` (and its CPU division is not correctly rounded either), so
    `(k * n) / n` can come out just below k and a stair, cycle or restart starts one step late
    (float32: n = 41 at steps 41, 82, 164; float64: n = 49 at 49, 98, 147). Float steps get
    the floor corrected by exact products, which holds up to 2**24 in float32.
    """
    step = jnp.asarray(step)
    if jnp.issubdtype(step.dtype, jnp.integer):
        q, r = jnp.divmod(step, n)
        return q.astype(float_dtype()), r.astype(float_dtype())
    x = step.astype(float_dtype())
    q = jnp.floor(x / n)
    q = jnp.where(q * n > x, q - 1, q)
    q = jnp.where((q + 1) * n <= x, q + 1, q)
    return q, jnp.clip(x - q * n, 0, n)


def constant(value: float) -> jax.Array:
    return jnp.asarray(value, float_dtype())


def cosine_anneal(start: Any, end: Any, fraction: Any) -> jax.Array:
    """`end + (start - end) * (1 + cos(pi * fraction)) / 2`: start at 0, end at 1."""
    return end + (start - end) * (1 + jnp.cos(jnp.pi * fraction)) / 2


def linear_anneal(start: Any, end: Any, fraction: Any) -> jax.Array:
    """`start + (end - start) * fraction`: start at 0, end at 1."""
    return start + (end - start) * fraction
