"""Adaptive gradient clipping, unit-wise (Brock et al. 2021, "High-Performance Large-Scale Image
Recognition Without Normalization", NFNets, section 4.1).

For each unit i of a leaf (the weights into one output unit, one row of the paper's W) with
gradient G_i and parameters W_i:

    G_i = lambda * max(||W_i||, eps) / ||G_i|| * G_i     if ||G_i|| > lambda * max(||W_i||, eps)
    G_i unchanged                                         otherwise

with the Frobenius norm of the unit; `clipping` is lambda (the paper: 0.01 to 0.16, smaller for
larger batches), eps = 1e-3 keeps zero-initialized parameters (biases) from never moving. This
is `optax.adaptive_grad_clip` (bitwise given its clipping as an array, as jopt keeps it; with a
Python float baked in, XLA may reassociate optax's arithmetic, two ulps at most). The units are
optax's, the output units of JAX's layouts by rank: a vector or scalar is one unit; an
(in, out) kernel or an (in, heads, out) projection has one unit per output, its norm over axis
0; an HWIO convolution kernel over axes (0, 1, 2); a DHWIO one over (0, 1, 2, 3). `axis` names
the axes a unit spans otherwise.

`clipping` is in the state (`jopt.set_hparams(state, clipping=...)`); `eps`, the floor of the
parameters' norm, is a constant of the program, so that a state with AGC chained before Adam
holds one `eps` (Adam's). As optax, ||G_i|| is floored at 1e-6 in the division (where it would
not clip anyway).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, per_leaf, tree_math
from jopt._src.base import ScalarOrSchedule
from jopt._src.errors import ArgumentTypeError
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.validation import NON_NEGATIVE, POSITIVE

ADAPTIVE_GRAD_CLIP = Spec(
    Float("clipping", POSITIVE, schedulable=True), Float("eps", NON_NEGATIVE, in_state=False)
)
_DIVISION_FLOOR = 1e-6  # optax's: only keeps ||G_i|| = 0 from dividing (it does not clip there)
# A unit's axes by rank (optax's `unitwise_norm`); vectors and scalars are one unit.
_UNIT_AXES = {2: (0,), 3: (0,), 4: (0, 1, 2), 5: (0, 1, 2, 3)}


class AdaptiveGradClipState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    hparams: HParams  # clipping


def _axes(fn: str, axis: Any) -> tuple[int, ...] | None:
    if axis is None:
        return None
    items = (axis,) if isinstance(axis, int) and not isinstance(axis, bool) else axis
    try:
        items = tuple(items)
    except TypeError:
        items = None
    if items is None or not all(isinstance(a, int) and not isinstance(a, bool) for a in items):
        raise ArgumentTypeError(
            fn,
            f"axis must be None, an integer or a tuple of integers, got {axis!r}.",
            argument="axis",
            value=axis,
            allowed="None, an int or a tuple of ints",
        )
    return items


def unitwise_norm(fn: str, where: str, x: jax.Array, axis: tuple[int, ...] | None) -> jax.Array:
    """The norm of the unit each element belongs to, shaped like `x`."""
    if axis is not None:
        squares = jnp.sum(tree_math.abs_sq(x), axis=axis, keepdims=True)
    elif jnp.squeeze(x).ndim <= 1:
        squares = jnp.sum(tree_math.abs_sq(x), keepdims=True)
    elif x.ndim in _UNIT_AXES:
        squares = jnp.sum(tree_math.abs_sq(x), axis=_UNIT_AXES[x.ndim], keepdims=True)
    else:
        raise ValueError(
            f"{fn}: the parameter at {where} has shape {x.shape}: with {x.ndim} axes it has no "
            "default unit (those of 1 to 5 axes do); give axis= the axes a unit spans."
        )
    return jnp.broadcast_to(jnp.sqrt(squares), x.shape)


@errors.public("jopt.adaptive_grad_clip")
def adaptive_grad_clip(
    clipping: ScalarOrSchedule, eps: float = 1e-3, axis: Any = None
) -> optax.GradientTransformationExtraArgs:
    """Clips each unit's gradient to `clipping` times its parameters' norm (see the module
    docstring); a drop-in for `optax.adaptive_grad_clip`. Needs the params.

    Args:
      clipping: lambda > 0, the largest ratio of a unit's gradient norm to its parameter norm,
        or a schedule. The paper: 0.01 to 0.16.
      eps: the floor of the parameters' norm, >= 0 (a constant of the program). Default 1e-3.
      axis: the axes a unit spans, for every leaf (None: by rank, see the module docstring).
    """
    fn = errors.current_function()
    bound = ADAPTIVE_GRAD_CLIP.bind(fn, clipping=clipping, eps=eps)
    axes = _axes(fn, axis)
    floor = bound["eps"]

    def step(updates, state, hp, count, params):
        def leaf(path, g, p):
            where = jax.tree_util.keystr(path) or "<root>"
            dt = base.wider(g.dtype, p.dtype)
            g_wide, p_wide = g.astype(dt), p.astype(dt)
            g_norm = unitwise_norm(fn, where, g_wide, axes)
            p_norm = unitwise_norm(fn, where, p_wide, axes)
            max_norm = hp["clipping"].astype(p_norm.dtype) * jnp.maximum(p_norm, floor)
            clipped = g_wide * (max_norm / jnp.maximum(g_norm, _DIVISION_FLOOR))
            return jnp.where(g_norm < max_norm, g_wide, clipped)

        return jax.tree_util.tree_map_with_path(leaf, updates, params), {}

    return per_leaf.declare(
        stateful_transform(
            bound, AdaptiveGradClipState, lambda params: {}, step, needs_params=True
        ),
        "unit-wise norms of each leaf",
    )
