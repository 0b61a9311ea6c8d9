"""Which leaves of a tree Muon orthogonalizes, and how: the dimension numbers of `jopt.muon` and
`jopt.scale_by_muon` (see muon.py).

A leaf's plan is its `optax.contrib.MuonDimensionNumbers` (its reduction and output axes; the
others are batch axes) or ADAM_LEAF (it takes Adam's step). Without dimension numbers, a leaf
with two axes is a matrix, (reduction, output) = (0, 1). A leaf of shape (b..., r..., o...) (in
any order of its axes) is orthogonalized as a batch of prod(b) matrices of shape
(prod(r), prod(o)), fan_in = prod(r) and fan_out = prod(o), which also give Muon's scale

    s = sqrt(max(1, fan_out / fan_in))                     (Jordan et al. 2024)
    s = consistent_rms * sqrt(max(fan_in, fan_out))        (Liu et al. 2025)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from optax.contrib import MuonDimensionNumbers


class _Adam:
    """The plan of a leaf that takes Adam's step (not a pytree: one per leaf)."""


ADAM_LEAF = _Adam()
DimensionNumbers = Any  # a tree of MuonDimensionNumbers / None, or a function of the params


def _is_dims(x: Any) -> bool:
    return x is None or isinstance(x, MuonDimensionNumbers)


def _axes(x: jax.Array, dims: MuonDimensionNumbers) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(reduction axes, output axes), non-negative."""

    def normalize(axes):
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        return tuple(int(axis) % x.ndim for axis in axes)

    return normalize(dims.reduction_axis), normalize(dims.output_axis)


def plan(fn: str, tree: Any, dimension_numbers: DimensionNumbers, *, default_adam: bool) -> list:
    """Per leaf of `tree` (in `jax.tree.leaves` order): its MuonDimensionNumbers, or ADAM_LEAF.

    Without dimension numbers, a leaf with two axes is a matrix (0: reduction, 1: output); any
    other leaf goes to Adam, or, without `default_adam` (`scale_by_muon`), is an error."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    if dimension_numbers is None:
        plans = []
        for path, leaf in leaves:
            if jnp.ndim(leaf) == 2:
                plans.append(MuonDimensionNumbers())
            elif default_adam:
                plans.append(ADAM_LEAF)
            else:
                raise ValueError(
                    f"{fn}: the parameter at {jax.tree_util.keystr(path) or '<root>'} has shape "
                    f"{jnp.shape(leaf)}: Muon orthogonalizes matrices. Give "
                    "weight_dimension_numbers (optax.contrib.MuonDimensionNumbers per leaf) to "
                    "orthogonalize other shapes, or use jopt.muon, which gives the leaves that "
                    "are not matrices to Adam."
                )
        return plans
    dims = dimension_numbers(tree) if callable(dimension_numbers) else dimension_numbers
    try:
        spread = jax.tree.map(
            lambda d, sub: jax.tree.map(lambda _: ADAM_LEAF if d is None else d, sub),
            dims,
            tree,
            is_leaf=_is_dims,
        )
    except ValueError as e:
        raise ValueError(
            f"{fn}: the weight dimension numbers must be a tree of MuonDimensionNumbers or None "
            f"shaped like the params (or a prefix of them): {e}"
        ) from e
    plans = jax.tree.leaves(spread, is_leaf=lambda x: isinstance(x, (_Adam, MuonDimensionNumbers)))
    for (path, leaf), dims_of_leaf in zip(leaves, plans, strict=True):
        if isinstance(dims_of_leaf, MuonDimensionNumbers):
            _check_dims(fn, jax.tree_util.keystr(path) or "<root>", leaf, dims_of_leaf)
    return plans


def _check_dims(fn: str, where: str, leaf: Any, dims: MuonDimensionNumbers) -> None:
    if jnp.ndim(leaf) < 2:
        raise ValueError(
            f"{fn}: the parameter at {where} has shape {jnp.shape(leaf)}, but Muon "
            "orthogonalizes leaves of two axes or more: give it None (Adam) in the weight "
            "dimension numbers."
        )
    reduction, output = _axes(leaf, dims)
    if set(reduction) & set(output) or not reduction or not output:
        raise ValueError(
            f"{fn}: the reduction axes {reduction} and output axes {output} of the parameter at "
            f"{where} (shape {jnp.shape(leaf)}) must be non-empty and disjoint, got {dims}."
        )


def unplanned(plans: list) -> Callable[[Any], Any]:
    """`tree -> tree of plans` for a tree with the leaves the plans were made for."""
    return lambda tree: jax.tree.unflatten(jax.tree.structure(tree), plans)


def reshape(x: jax.Array, dims: MuonDimensionNumbers) -> tuple[Callable, Callable]:
    """Functions to and from the (batch, reduction, output) layout of `x`."""
    reduction, output = _axes(x, dims)
    batch = tuple(sorted(set(range(x.ndim)) - set(reduction) - set(output)))
    order = batch + reduction + output
    inverse = tuple(sorted(range(x.ndim), key=lambda i: order[i]))
    sizes = [tuple(x.shape[axis] for axis in axes) for axes in (batch, reduction, output)]
    flat = tuple(math.prod(size) for size in sizes)
    unflat = sizes[0] + sizes[1] + sizes[2]
    return (
        lambda y: y.transpose(order).reshape(flat),
        lambda y: y.reshape(unflat).transpose(inverse),
    )


def shape_scale(x: jax.Array, dims: MuonDimensionNumbers, consistent_rms: Any) -> jax.Array:
    """s: `sqrt(max(1, fan_out / fan_in))` (Jordan), or `consistent_rms * sqrt(max(fan_in,
    fan_out))` (Liu et al.), computed as optax computes it."""
    reduction, output = _axes(x, dims)
    fan_in = math.prod(x.shape[axis] for axis in reduction)
    fan_out = math.prod(x.shape[axis] for axis in output)
    if consistent_rms is None:
        return jnp.sqrt(jnp.maximum(1, fan_out / fan_in))
    return jnp.sqrt(jnp.maximum(fan_in, fan_out)) * consistent_rms
