"""The part every transform shares, written once: its state's step count and hyperparameters,
the checks of the gradient tree, and the casts back to the dtypes the caller gave.

A transform is its state type, its hyperparameters (a `Bound` spec), a function that makes the
state's buffers from the params, and one step:

    def step(updates, state, hp, count, params):  ->  (new updates, {field: new buffer})

`stateful_transform` turns these into an `optax.GradientTransformationExtraArgs` whose

- `init(params)` is `State(count=0, hparams=<the bound values>, **buffers(params))`;
- `update(updates, state, params=None, **extra)`
    1. checks, at trace time, that `updates` has the structure and shapes of the state's buffer
       named by `matches` (the key path of the first mismatch in the error), or, for a
       transform without per-parameter state (`matches="params"`), the structure, shapes and
       dtypes of `params` whenever it is given;
    2. resolves the hyperparameters at the step count (schedules evaluated, `hp`);
    3. calls `step` with `count`, the step count after this update (t = 1 at the first update:
       what bias corrections read; `state.count` is the count before it);
    4. casts the new updates to the dtypes of `updates` and each new buffer to the dtype of the
       old one, and returns them with the state's count incremented (saturating) and `hp`.

The state type is a NamedTuple with the fields `count` and `hparams` and one field per buffer
(`None` for a buffer a configuration does not keep). Blocks that follow another in an optimizer's
chain and keep only hyperparameters (the learning rate, weight decay, clipping) name their counter
`schedule_count` instead, so that an optimizer's state holds one `count`, the field
`optax.tree.get(state, "count")` finds (optax's adam keeps one, in its `ScaleByAdamState`).
Extra keyword arguments (`value=`, `grad=`...) are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import optax

from jopt._src import base, errors, per_leaf
from jopt._src.spec import Bound

Step = Callable[[Any, Any, Any, jax.Array, Any], tuple[Any, Mapping[str, Any]]]

# The names a state's step counter may have (see the module docstring).
COUNTERS = ("count", "schedule_count")


def stateful_transform(
    hparams: Bound,
    state_type: type,
    buffers: Callable[[Any], Mapping[str, Any]],
    step: Step,
    *,
    matches: str | tuple[str, ...] = "params",
    needs_params: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """The transform of `step` (see the module docstring).

    Args:
      hparams: the transform's hyperparameters, bound to its constructor's values (its `fn`
        names the transform in errors).
      state_type: a NamedTuple type with fields `count` (or `schedule_count`), `hparams` and
        the buffers.
      buffers: `params -> {field: initial buffer}` for the state's other fields.
      step: `(updates, state, hp, count, params) -> (updates, {field: new buffer})`.
      matches: the buffer field(s) the gradient tree must match, and/or "params".
      needs_params: raise if `update` is called without params.
    """
    fn = hparams.fn
    checked = (matches,) if isinstance(matches, str) else tuple(matches)
    own_meta = hparams.init().meta
    (counter,) = (name for name in state_type._fields if name in COUNTERS)

    def init_fn(params):
        base.check_inexact(fn, params, "parameter")
        fields = {counter: base.zero_count(), "hparams": hparams.init()}
        return state_type(**fields, **buffers(params))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        base.check_inexact(fn, updates, "gradient")
        if type(state) is not state_type or state.hparams.meta != own_meta:
            raise foreign_state(fn, state, f"a {state_type.__name__} ({_hparams_of(own_meta)})")
        if needs_params and params is None:
            raise ValueError(f"{fn}: needs the params: call update(updates, state, params).")
        for field in checked:
            if field == "params":
                base.check_tree(fn, updates, params, "params", dtypes=True)
            else:
                base.check_tree(fn, updates, getattr(state, field), f"state's {field}")
        before = getattr(state, counter)
        hp = hparams.resolve(state.hparams, before)
        count = base.increment(before)
        out, new = step(updates, state, hp, count, params)
        new = {field: base.cast_like(value, getattr(state, field)) for field, value in new.items()}
        new |= {counter: count, "hparams": hp}
        return base.cast_like(out, updates), state._replace(**new)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def chain(*transforms: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """`optax.chain(*transforms)`, whose update, given a state that is not a chain of as many
    states, names the optimizer being built (`errors.current_function`) instead of failing
    inside optax."""
    fn = errors.current_function()
    inner = optax.chain(*transforms)

    def update_fn(updates, state, params=None, **extra_args):
        if not _is_chain_state(state) or len(state) != len(transforms):
            raise foreign_state(fn, state, f"a chain of {len(transforms)} states")
        return inner.update(updates, state, params, **extra_args)

    chained = optax.GradientTransformationExtraArgs(inner.init, update_fn)
    return per_leaf.inherit(chained, *transforms)


def foreign_state(fn: str, state: Any, expected: str) -> ValueError:
    """The error for a state another optimizer made (or no optimizer state at all)."""
    return ValueError(
        f"{fn}: this state was not made by {fn}'s init: got {describe_state(state)}, where its "
        f"init makes {expected}. Continue an optimizer with the state its own init returned; "
        "to switch optimizers, init the new one."
    )


def describe_state(state: Any) -> str:
    """What a state is, for errors: its type and hyperparameters, or its chain's parts."""
    if _is_chain_state(state):
        parts = ", ".join(type(s).__name__ for s in state)
        return f"a chain of {len(state)} states ({parts})"
    meta = getattr(getattr(state, "hparams", None), "meta", None)
    held = f" ({_hparams_of(meta)})" if meta is not None else ""
    return f"a {type(state).__name__}{held}"


def _is_chain_state(state: Any) -> bool:
    """A chain's state is a plain tuple (a NamedTuple is one transform's state)."""
    return isinstance(state, tuple) and not hasattr(state, "_fields")


def _hparams_of(meta: Any) -> str:
    """`hyperparameters: b1, b2, ...` and the values kept with them (RAdam's rho_inf)."""
    names = ", ".join(meta.names) if meta.names else "none"
    extra = [rule.key for rule in meta.derived if not rule.key.startswith("1-")]
    return f"hyperparameters: {names}" + (f"; with {', '.join(extra)}" if extra else "")
