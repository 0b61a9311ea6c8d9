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


def constant(value: float) -> jax.Array:
    return jnp.asarray(value, float_dtype())


def cosine_anneal(start: Any, end: Any, fraction: Any) -> jax.Array:
    """`end + (start - end) * (1 + cos(pi * fraction)) / 2`: start at 0, end at 1."""
    return end + (start - end) * (1 + jnp.cos(jnp.pi * fraction)) / 2


def linear_anneal(start: Any, end: Any, fraction: Any) -> jax.Array:
    """`start + (end - start) * fraction`: start at 0, end at 1."""
    return start + (end - start) * fraction
