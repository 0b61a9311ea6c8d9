"""What the transforms that read the loss share: the `value=` keyword of `update`, checked, and
the two tree reductions their step sizes are made of.

optax's convention: the loss at the params is passed as a keyword, `update(grads, state, params,
value=loss)`, where `loss, grads = jax.value_and_grad(loss_fn)(params)`; optax's chains pass it to
every transform. `value_transform` is `stateful.stateful_transform` whose step also receives the
loss, checked at trace time: missing, not a scalar or not real, it is refused with a message that
says how to call `update`.

`sq_norm` and `vdot` are optax's `optax.tree.norm(tree, squared=True)` and `optax.tree.vdot`, in
optax's order of operations (so that step sizes are bitwise optax's), accumulated in the widest
dtype of the leaves and float32 at least (half-precision leaves, mixed dtypes, strict promotion).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jopt._src import base
from jopt._src.spec import Bound
from jopt._src.stateful import stateful_transform

# step(updates, state, hp, count, params, value) -> (updates, {field: new buffer})
ValueStep = Callable[[Any, Any, Any, jax.Array, Any, jax.Array], tuple[Any, Mapping[str, Any]]]


def check_value(fn: str, value: Any) -> jax.Array:
    """The loss given to `update`, as a real scalar array (at trace time: shapes and dtypes)."""
    if value is None:
        raise ValueError(
            f"{fn}: needs the loss at the params: call update(grads, state, params, value=loss), "
            "with loss, grads = jax.value_and_grad(loss_fn)(params)."
        )
    value = jnp.asarray(value)
    if value.shape != ():
        raise ValueError(
            f"{fn}: value must be the loss, a scalar, got an array of shape {value.shape} (a "
            "loss per example? average it first)."
        )
    if not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(f"{fn}: value must be the loss, a real float, got dtype {value.dtype}.")
    return value


def value_transform(
    bound: Bound,
    state_type: type,
    buffers: Callable[[Any], Mapping[str, Any]],
    step: ValueStep,
    *,
    matches: str | tuple[str, ...] = "params",
    needs_params: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """`stateful_transform(bound, state_type, buffers, step, ...)` whose `update` requires
    `value=` (the loss at the params) and passes it to `step` as its last argument."""
    fn = bound.fn

    def read(extra_args):
        return check_value(fn, extra_args.get("value"))

    return keyword_transform(
        bound, state_type, buffers, step, read, matches=matches, needs_params=needs_params
    )


def keyword_transform(
    bound: Bound,
    state_type: type,
    buffers: Callable[[Any], Mapping[str, Any]],
    step: Callable[..., tuple[Any, Mapping[str, Any]]],
    read: Callable[[dict[str, Any]], Any],
    *,
    matches: str | tuple[str, ...] = "params",
    needs_params: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """`stateful_transform(bound, state_type, buffers, step, ...)` whose `step` also receives
    `read(keyword arguments of update)` (checked there, at trace time) as its last argument."""

    def unreachable(updates, state, hp, count, params):
        raise AssertionError("keyword_transform: update always passes its keywords")

    plain = stateful_transform(
        bound, state_type, buffers, unreachable, matches=matches, needs_params=needs_params
    )

    def update_fn(updates, state, params=None, **extra_args):
        given = read(extra_args)

        def with_keywords(updates, state, hp, count, params):
            return step(updates, state, hp, count, params, given)

        # Built at each trace around the keywords read: the transform itself holds no values.
        tx = stateful_transform(
            bound, state_type, buffers, with_keywords, matches=matches, needs_params=needs_params
        )
        return tx.update(updates, state, params)

    return optax.GradientTransformationExtraArgs(plain.init, update_fn)


def real_dtype_of(tree: Any) -> Any:
    """The dtype of real reductions over `tree`: its widest leaf dtype (the real dtype of a
    complex one), float32 at least."""
    dtypes = [jnp.finfo(jnp.result_type(leaf)).dtype for leaf in jax.tree.leaves(tree)]
    return base.wider(*dtypes) if dtypes else base.wider(jnp.float32)


def sq_norm(tree: Any) -> jax.Array:
    """`sum |x|**2` over all leaves (optax.tree.norm(tree, squared=True), same order)."""
    dt = real_dtype_of(tree)
    total = jnp.zeros([], dt)
    for leaf in jax.tree.leaves(tree):
        if not jnp.iscomplexobj(leaf):
            leaf = leaf.astype(dt)
        total = total + jnp.sum(jnp.square(leaf.real) + jnp.square(leaf.imag)).astype(dt)
    return total


def vdot(x: Any, y: Any) -> jax.Array:
    """`sum conj(x) * y` over all leaves (optax.tree.vdot: one tensordot per leaf at the
    highest precision, summed in leaf order)."""
    dots = jax.tree.map(_leaf_vdot, x, y)
    leaves = jax.tree.leaves(dots)
    total = jnp.zeros([], base.wider(*(d.dtype for d in leaves)) if leaves else jnp.float32)
    for d in leaves:
        total = total + d.astype(total.dtype)
    return total


def _leaf_vdot(a: jax.Array, b: jax.Array) -> jax.Array:
    dt = base.wider(a.dtype, b.dtype)
    if jnp.iscomplexobj(a) or jnp.iscomplexobj(b):
        dt = jnp.result_type(a, b)
        a = jnp.conj(a)
    a, b = a.astype(dt), b.astype(dt)
    return jnp.tensordot(a, b, a.ndim, precision=jax.lax.Precision.HIGHEST)
