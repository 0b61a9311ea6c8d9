"""Gradient centralization (Yong et al. 2020, "Gradient Centralization: A New Optimization
Technique for Deep Neural Networks"): the gradient of each unit's weights made zero-mean.

For every leaf with two axes or more, each slice along `keep_axis` (a unit) is centered over
the other axes:

    G[i] = G[i] - mean(G[i])          (one mean per index i of keep_axis)

Vectors and scalars (biases, norm scales) pass unchanged, as in the paper, which centralizes the
weights of convolution and fully connected layers only.

`keep_axis=0` (the default) is optax's `optax.centralize`, bitwise: PyTorch's layouts put the
output unit first ((out, in) and (out, in, kh, kw)), so there each slice is the paper's weight
vector of one output unit. JAX's layouts put it last ((in, out), HWIO): there `keep_axis=-1` is
the paper's form, each output unit's fan-in centered, where optax's default centers each input
over the outputs instead.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
import optax

from jopt._src import base, errors, per_leaf, validation
from jopt._src.hparams import HParams
from jopt._src.spec import Spec
from jopt._src.stateful import stateful_transform

CENTRALIZE = Spec()


class CentralizeState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    hparams: HParams  # none


@errors.public("jopt.centralize")
def centralize(keep_axis: int = 0) -> optax.GradientTransformationExtraArgs:
    """Subtracts from each unit's gradient its mean (see the module docstring); a drop-in for
    `optax.centralize`.

    Args:
      keep_axis: the axis along which the units lie: each slice along it is centered over the
        other axes. 0: optax's (the paper's on PyTorch's layouts); -1: the paper's on JAX's
        (in, out) and HWIO layouts.
    """
    fn = errors.current_function()
    bound = CENTRALIZE.bind(fn)
    if isinstance(keep_axis, bool) or not isinstance(keep_axis, (int, np.integer)):
        raise validation.wrong_type(fn, "keep_axis", keep_axis, "an integer (an axis)")
    keep = int(keep_axis)

    def step(updates, state, hp, count, params):
        def leaf(g):
            if g.ndim <= 1:
                return g
            kept = keep % g.ndim
            others = tuple(axis for axis in range(g.ndim) if axis != kept)
            dt = base.wider(g.dtype)
            wide = g.astype(dt)
            return wide - wide.mean(others, keepdims=True)

        return jax.tree.map(leaf, updates), {}

    return per_leaf.declare(
        stateful_transform(bound, CentralizeState, lambda params: {}, step),
        "the mean of each leaf's gradient",
    )
