"""What the learning-rate-free methods share (Prodigy, D-Adaptation, DoG, DoWG, COCOB, Mechanic):
the initial point they measure distances from, sums over the whole parameter tree, and the dtype
of their scalar estimates.

The sums run over the leaves in tree order, starting from 0, each leaf reduced first, as optax's
`optax.tree.vdot`, `optax.tree.sum` and `optax.tree.norm` compute them: the trajectories are then
bitwise optax's. Everything runs in `scalar_dtype(params)`: the params' dtype for float32 and
float64 trees (optax's), float32 at least for half-precision ones, where a step-size estimate of
1e-6 times a gradient underflows.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt._src import base, errors, validation


def scalar_dtype(params: Any) -> np.dtype:
    """The dtype of the estimates and of their arithmetic: the widest real dtype of the params,
    float32 at least (a tree of one float dtype: that dtype, as optax)."""
    leaves = jax.tree.leaves(params)
    if not leaves:
        return np.dtype(jnp.zeros([]).dtype)
    return base.wider(*(jnp.finfo(jnp.result_type(leaf)).dtype for leaf in leaves))


def copy(params: Any) -> Any:
    """A fresh copy of the params (never an alias of them, so that donation works)."""
    return jax.tree.map(lambda p: jnp.array(p, copy=True), params)


def buffers(params: Any, value: float = 0.0) -> Any:
    """Per-parameter buffers filled with `value`, in each leaf's arithmetic dtype (float32 at
    least: half-precision moments of d * g, with d ~ 1e-6, underflow)."""
    return jax.tree.map(
        lambda p: jnp.full(jnp.shape(p), value, base.compute_dtype(jnp.result_type(p))), params
    )


def adam_estimate_buffers(params: Any) -> dict[str, Any]:
    """The buffers Prodigy and D-Adaptation share: Adam's two moments, the weighted sum of the
    gradients s, and the scalar estimate d with the numerator of its update (d starts at 0:
    `estim_lr0` is read from the state at the first update)."""
    dtype = scalar_dtype(params)
    return {
        "exp_avg": buffers(params),
        "exp_avg_sq": buffers(params),
        "grad_sum": buffers(params),
        "estim_lr": jnp.zeros([], dtype),
        "numerator_weighted": jnp.zeros([], dtype),
    }


DEFAULT_BETAS = (0.9, 0.999)


def adam_betas(fn: str, betas: Any, b1: Any, b2: Any) -> tuple[Any, Any]:
    """Adam's decay rates: optax's `betas=(b1, b2)` pair if given (None: not), else `b1=`, `b2=`
    (the names of the state and the lab). Both ways at once is refused."""
    if betas is None:
        return b1, b2
    validation.require(
        fn,
        (b1, b2) == DEFAULT_BETAS,
        f"give betas or b1 and b2, not both: got betas={betas!r} and b1={b1!r}, b2={b2!r}.",
        argument="betas",
        value=betas,
    )
    try:
        b1, b2 = betas
    except (TypeError, ValueError) as e:
        raise errors.ArgumentError(
            fn, f"betas must be a pair (b1, b2), got {betas!r}.", argument="betas", value=betas
        ) from e
    return b1, b2


def check_real(fn: str, params: Any, why: str) -> None:
    """Refuses complex parameters, naming the first one's key path and `why`."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if jnp.iscomplexobj(leaf):
            where = jax.tree_util.keystr(path) or "<root>"
            raise TypeError(
                f"{fn}: the parameter at {where} is complex ({jnp.result_type(leaf)}): {why} "
                "Optimize the real and imaginary parts as separate real parameters."
            )


def _total(parts: list[jax.Array]) -> jax.Array:
    total = 0  # as optax: jax.tree.reduce(operator.add, parts, initializer=0)
    for part in parts:
        total = total + part
    return jnp.asarray(total)


def vdot(x: Any, y: Any, dtype: Any) -> jax.Array:
    """sum over leaves of <x, y> (each leaf's `tensordot` at the highest precision), in `dtype`."""
    parts = [
        jnp.tensordot(
            a.astype(dtype), b.astype(dtype), jnp.ndim(a), precision=jax.lax.Precision.HIGHEST
        )
        for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True)
    ]
    return _total(parts).astype(dtype)


def l1_norm(tree: Any, dtype: Any) -> jax.Array:
    """sum over leaves of sum |x|, in `dtype`."""
    return _total([jnp.sum(jnp.abs(leaf.astype(dtype))) for leaf in jax.tree.leaves(tree)]).astype(
        dtype
    )


def squared_norm(tree: Any, dtype: Any) -> jax.Array:
    """sum over leaves of sum |x|^2, in `dtype` (real: |x|^2 of a complex leaf)."""

    def square(leaf):
        if jnp.iscomplexobj(leaf):
            return jnp.square(leaf.real.astype(dtype)) + jnp.square(leaf.imag.astype(dtype))
        return jnp.square(leaf.astype(dtype))

    return _total([jnp.sum(square(leaf)) for leaf in jax.tree.leaves(tree)]).astype(dtype)
