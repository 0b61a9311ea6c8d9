"""Shared pieces of every transform: the step counter, tree checks and dtype rules.

The step counter is an int32 array that saturates at its maximum (2**31 - 1) instead of wrapping
to a negative number, which would flip bias corrections and schedules after two billion steps.

Transforms check, at trace time (no run-time cost), that the gradient tree matches the state they
keep for it: same structure and shapes, with the key path of the first mismatch in the error.
Without this check, a (3,) moment and (3, 1) gradients broadcast silently to a (3, 3) update.
Transforms that keep no per-parameter state (the learning-rate scaling, clipping) check the
gradients against `params` instead, structure, shapes and dtypes, whenever `update` is given them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

# A schedule, as hyperparameters take it: any function `step count -> value` (jopt's typed
# `jopt.Schedule`, optax's plain functions, a lambda).
ScheduleFn = Callable[[Any], Any]
ScalarOrSchedule = float | ScheduleFn
Transform = optax.GradientTransformationExtraArgs

COUNT_DTYPE = jnp.int32


def zero_count() -> jax.Array:
    """A fresh step counter."""
    return jnp.zeros([], COUNT_DTYPE)


def increment(count: jax.Array) -> jax.Array:
    """`count + 1`, saturating at the dtype's maximum instead of wrapping."""
    limit = jnp.iinfo(count.dtype).max
    return jnp.where(count < limit, count + jnp.ones_like(count), count)


def compute_dtype(dtype: Any) -> np.dtype:
    """The dtype arithmetic runs in for values stored in `dtype`: at least float32.

    Half-precision parameters keep half-precision state and updates, but their optimizer
    arithmetic (eps, square roots, bias corrections) runs in float32: eps=1e-8 underflows to 0 in
    float16, and `1 / (sqrt(0) + 0)` would turn a zero gradient into an infinite update.
    """
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.itemsize < 4 else dtype


def wider(*dtypes: Any) -> np.dtype:
    """The widest of `dtypes`, at least float32 (no implicit promotion: works in strict mode)."""
    return max((compute_dtype(d) for d in dtypes), key=lambda d: d.itemsize)


def zeros_like(tree: Any, dtype: Any = None) -> Any:
    """Fresh zero buffers shaped like `tree` (never aliases it, so donation works), on the same
    devices with the same sharding as each leaf of `tree` (outside jit; under jit, see
    `jopt.state_shardings`)."""
    return full_like(tree, 0, dtype)


def full_like(tree: Any, value: float, dtype: Any = None) -> Any:
    """Fresh buffers shaped like `tree`, filled with `value`, sharded like its leaves."""
    return jax.tree.map(lambda x: jnp.full_like(x, value, dtype or jnp.result_type(x)), tree)


def cast_like(tree: Any, like: Any) -> Any:
    """Casts each leaf of `tree` to the dtype of the matching leaf of `like`."""
    return jax.tree.map(lambda x, y: x.astype(jnp.result_type(y)), tree, like)


def check_inexact(fn: str, tree: Any, what: str) -> None:
    """Raises a TypeError naming the key path of the first leaf of `tree` that is not a
    floating-point or complex array: integer and boolean parameters, and the float0 gradients
    `jax.grad(allow_int=True)` gives them, are not optimized (an update of an integer is
    truncated or wraps; optax's optimizers subtract, return zeros or fail inside XLA)."""
    if tree is None:
        return
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = jnp.result_type(leaf) if not hasattr(leaf, "dtype") else np.dtype(leaf.dtype)
        if not jnp.issubdtype(dtype, jnp.inexact):
            where = jax.tree_util.keystr(path) or "<root>"
            name = "float0" if dtype == jax.dtypes.float0 else str(dtype)
            raise TypeError(
                f"{fn}: the {what} at {where} has dtype {name}, which an optimizer cannot step: "
                "optimize floating-point (or complex) parameters only, and leave the others out, "
                "e.g. with optax.multi_transform and optax.set_to_zero() for integer leaves."
            )


def check_tree(fn: str, updates: Any, reference: Any, what: str, *, dtypes: bool = False) -> None:
    """Raises if `updates` does not have the structure and shapes (and dtypes) of `reference`.

    Runs at trace time on shapes only. The error names the key path of the first mismatch.
    """
    if updates is None or reference is None:
        return
    u_leaves, u_def = jax.tree_util.tree_flatten_with_path(updates)
    r_leaves, r_def = jax.tree_util.tree_flatten_with_path(reference)
    if u_def != r_def:
        u_paths = {jax.tree_util.keystr(p) for p, _ in u_leaves}
        r_paths = {jax.tree_util.keystr(p) for p, _ in r_leaves}
        missing = sorted(r_paths - u_paths)
        extra = sorted(u_paths - r_paths)
        detail = []
        if missing:
            detail.append(f"missing from the gradients: {', '.join(missing[:5])}")
        if extra:
            detail.append(f"not in the {what}: {', '.join(extra[:5])}")
        if not detail:
            detail.append(f"gradients {u_def} vs {what} {r_def}")
        raise ValueError(f"{fn}: the gradient tree does not match the {what}: {'; '.join(detail)}.")
    for (path, u), (_, r) in zip(u_leaves, r_leaves, strict=True):
        where = jax.tree_util.keystr(path) or "<root>"
        if jnp.shape(u) != jnp.shape(r):
            raise ValueError(
                f"{fn}: gradient at {where} has shape {jnp.shape(u)}, expected {jnp.shape(r)} "
                f"(the shape of the {what} there)."
            )
        if dtypes and jnp.result_type(u) != jnp.result_type(r):
            raise TypeError(
                f"{fn}: gradient at {where} has dtype {jnp.result_type(u)}, expected "
                f"{jnp.result_type(r)} (the dtype of the {what} there)."
            )


def single_state(fn: str, state: Any, state_type: type, what: str) -> Any:
    """The one node of `state_type` in `state` (any optimizer state tree, the reader `fn`'s
    errors naming `what` wraps it); a ValueError if there are none or several."""
    found = [
        node
        for node in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, state_type))
        if isinstance(node, state_type)
    ]
    if len(found) != 1:
        raise ValueError(f"{fn}: expected one {what} in the state, found {len(found)}.")
    return found[0]
