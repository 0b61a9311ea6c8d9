"""Keras' optimizer-wide options for `jopt.keras`: `use_ema`, `ema_momentum`,
`ema_overwrite_frequency`, `gradient_accumulation_steps`, and `exclude_from_weight_decay`.

    jopt.keras.AdamW(1e-3, use_ema=True, ema_momentum=0.999)         # jopt.ema_params around it
    jopt.keras.SGD(0.1, momentum=0.9, gradient_accumulation_steps=4)  # jopt.accumulate_gradients
    jopt.keras.AdamW(1e-3, exclude_from_weight_decay=["bias", "scale"])

- `use_ema` keeps the EMA of the params in the state (`jopt.averaged_params(state)`), Keras'
  formula (the first step copies the params); `ema_overwrite_frequency=n` sets the params to it
  every n steps.
- `gradient_accumulation_steps=k` steps once per k calls on the mean of their gradients, clipping
  and weight decay applied to the mean, the learning rate and bias corrections counting optimizer
  steps only, as Keras does.
- `exclude_from_weight_decay` is Keras' method `exclude_from_weight_decay(var_names=...)` as an
  argument: a leaf whose key path (`jopt.Group`'s "head/bias") contains one of the names, as a
  regular expression searched in it, gets no weight decay (Keras searches the variable's name).

With both, Keras' rules hold: the EMA is updated at every call, and copies the params until the
first optimizer step; `ema_overwrite_frequency` counts optimizer steps, checked at every call.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import optax

from jopt._src import errors, path_rules, validation
from jopt._src.transforms.accumulation import accumulate_gradients
from jopt._src.transforms.averaging import exponential_average

EMA_MOMENTUM = validation.DECAY
OPTIONS = (
    ("use_ema", False),
    ("ema_momentum", 0.99),
    ("ema_overwrite_frequency", None),
    ("gradient_accumulation_steps", None),
    ("exclude_from_weight_decay", None),
)


def with_keras_options(factory: Callable[..., optax.GradientTransformation]):
    """`factory` (a `jopt.keras` optimizer) with Keras' options, keyword-only."""
    signature = inspect.signature(factory)
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in OPTIONS
    ]

    @functools.wraps(factory)
    def build(
        *args: Any,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        gradient_accumulation_steps: int | None = None,
        exclude_from_weight_decay: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> optax.GradientTransformation:
        fn = errors.current_function()
        use_ema = validation.check_bool(fn, "use_ema", use_ema)
        ema_momentum = validation.check_number(fn, "ema_momentum", ema_momentum, EMA_MOMENTUM)
        if ema_overwrite_frequency is not None:
            ema_overwrite_frequency = validation.check_int(
                fn, "ema_overwrite_frequency", ema_overwrite_frequency, 1
            )
        if gradient_accumulation_steps is not None:
            gradient_accumulation_steps = validation.check_int(
                fn, "gradient_accumulation_steps", gradient_accumulation_steps, 2
            )
        if exclude_from_weight_decay is not None:
            validation.require(
                fn,
                kwargs.get("weight_decay_mask") is None,
                "give exclude_from_weight_decay or weight_decay_mask, not both.",
                argument="exclude_from_weight_decay",
                value=exclude_from_weight_decay,
            )
            kwargs["weight_decay_mask"] = _excluding(fn, exclude_from_weight_decay)
        tx = factory(*args, **kwargs)
        if gradient_accumulation_steps is not None:
            tx = accumulate_gradients(tx, gradient_accumulation_steps)
        if use_ema:
            calls = gradient_accumulation_steps or 1
            tx = exponential_average(
                tx, ema_momentum, 1, 1, ema_overwrite_frequency, keras_calls=calls
            )
        return tx

    build.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *extra]
    )
    return build


def _excluding(fn: str, names: Any) -> Callable[[Any], Any]:
    """The weight-decay mask that leaves out the leaves whose path contains one of `names`."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise errors.ArgumentTypeError(
            fn,
            f"exclude_from_weight_decay must be a non-empty list of names (Keras' var_names), "
            f"got {names!r}.",
            argument="exclude_from_weight_decay",
            value=names,
        )
    if not all(isinstance(n, str) and n for n in names):
        raise errors.ArgumentTypeError(
            fn,
            f"exclude_from_weight_decay must hold non-empty strings, got {names!r}.",
            argument="exclude_from_weight_decay",
            value=names,
        )
    pattern = re.compile("|".join(sorted(set(names))))

    def mask(params: Any) -> Any:
        flat, treedef = jax.tree_util.tree_flatten_with_path(params)
        keep = [pattern.search(path_rules.path_string(path)) is None for path, _ in flat]
        return jax.tree_util.tree_unflatten(treedef, keep)

    return mask
