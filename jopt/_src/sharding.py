"""The shardings of an optimizer's state, from its params' shardings.

Outside jit, `tx.init(params)` makes each buffer shaped like a param (a moment, a trace) on that
param's devices with its sharding (`jnp.zeros_like`). Inside `jax.jit(tx.init)` a buffer of zeros
depends on no input, and XLA places it on one device; give jit the shardings instead:

    init = jax.jit(tx.init, out_shardings=jopt.state_shardings(tx, params))

`state_shardings` matches each leaf of the state to a param by its key path (a state leaf at
`...mu['layer']['w']` belongs to the param at `['layer']['w']`, and so do the 8-bit codes at
`...mu['layer']['w'].codes`) and shape; the other leaves (step counts, hyperparameters, per-leaf
statistics, the 8-bit blocks' scales) are replicated over the params' devices.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec, Sharding

from jopt._src import errors

_CODES = jax.tree_util.GetAttrKey("codes")  # `state_formats.BlockQuantized.codes`


@errors.public("jopt.state_shardings")
def state_shardings(optimizer: optax.GradientTransformation, params: Any) -> Any:
    """A tree of shardings for `optimizer.init(params)` (the module docstring): each buffer
    shaped like a param has that param's sharding, every other leaf is replicated."""
    fn = errors.current_function()
    shapes = jax.eval_shape(optimizer.init, params)
    owned = [
        (path, leaf.shape, _sharding_of(fn, leaf))
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
    ]
    replicated = _replicated([sharding for _, _, sharding in owned])

    def sharding(path, leaf):
        if path and path[-1] == _CODES:  # an 8-bit moment's codes belong to its param
            path = path[:-1]
        for param_path, shape, param_sharding in owned:
            suffix = path[len(path) - len(param_path) :] if param_path else ()
            if leaf.shape == shape and tuple(suffix) == tuple(param_path):
                return param_sharding
        return replicated

    return jax.tree_util.tree_map_with_path(sharding, shapes)


def _sharding_of(fn: str, leaf: Any) -> Sharding:
    sharding = getattr(leaf, "sharding", None)
    if not isinstance(sharding, Sharding):
        raise TypeError(
            f"{fn}: params must be jax.Arrays placed on their devices (jax.device_put), got a "
            f"{type(leaf).__name__}."
        )
    return sharding


def _replicated(shardings: list[Sharding]) -> Sharding:
    """Every device the params use, a whole copy on each."""
    for sharding in shardings:
        if isinstance(sharding, NamedSharding):
            return NamedSharding(sharding.mesh, PartitionSpec())
    devices = sorted({d for s in shardings for d in s.device_set}, key=lambda d: d.id)
    return NamedSharding(Mesh(np.array(devices), ("devices",)), PartitionSpec())
