"""Layer-wise learning-rate decay as parameter groups (BEiT, ELECTRA fine-tuning).

    lr(leaf) = lr * decay**depth(leaf)        depth 0: the head; num_layers: the deepest layer

Clark et al. (2020), "ELECTRA: Pre-training Text Encoders as Discriminators Rather Than
Generators", and Bao et al. (2022), "BEiT: BERT Pre-Training of Image Transformers", fine-tune
with it: layers near the input, which pre-training shaped most generally, move least.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from jopt._src import errors, validation
from jopt._src.groups import Group
from jopt._src.validation import Range

DECAY = Range(0.0, 1.0, lo_open=True)  # (0, 1]

Depth = Callable[[str, Any], "int | None"]


@errors.public("jopt.layerwise_groups")
def layerwise_groups(depth: Depth, decay: float, num_layers: int) -> list[Group]:
    """Groups "depth0" ... "depth{num_layers}" with `lr_scale = decay**d`, for `param_groups`.

        tx = jopt.param_groups(
            functools.partial(jopt.adamw, learning_rate=1e-4),
            *jopt.layerwise_groups(depth, decay=0.75, num_layers=12),
        )

    Args:
      depth: `(path, leaf) -> d`, the leaf's distance from the output (0 for the head), or None
        to leave the leaf to the groups after these (or the default group).
      decay: the factor per layer, in (0, 1].
      num_layers: the largest depth; a depth outside [0, num_layers] is an error at init.
    """
    fn = errors.current_function()
    depth = validation.check_callable(fn, "depth", depth, "a function (path, leaf) -> int")
    decay = validation.check_number(fn, "decay", decay, DECAY)
    num_layers = validation.check_int(fn, "num_layers", num_layers, 0)
    checked = functools.partial(_checked, fn, depth, num_layers)
    return [
        Group(f"depth{d}", functools.partial(_at_depth, checked, d), lr_scale=decay**d)
        for d in range(num_layers + 1)
    ]


def _checked(fn: str, depth: Depth, num_layers: int, path: str, leaf: Any) -> int | None:
    d = depth(path, leaf)
    if d is not None and (
        isinstance(d, bool) or not isinstance(d, int | np.integer) or not 0 <= d <= num_layers
    ):
        raise ValueError(
            f"{fn}: depth({path!r}) is {d!r}, not an integer in [0, {num_layers}] (num_layers) "
            "or None."
        )
    return d


def _at_depth(depth: Depth, d: int, path: str, leaf: Any) -> bool:
    return depth(path, leaf) == d
