"""Skip steps whose gradients hold a NaN or an infinity, so that they never reach the state.

    finite = all(isfinite(g) for every element of every leaf of g)   [and isfinite(value)]
    finite:      updates, inner_state = tx.update(g, inner_state, params)     (bit for bit)
    not finite:  updates = 0 (typed like the inner updates),  inner_state unchanged

One NaN in one gradient element is enough to poison a run for good: Adam's moments become NaN,
every later update is NaN, and so are the params. `skip_nonfinite(tx)` checks the gradients
before `tx` sees them; a non-finite step leaves the inner state exactly as it was, step count
included, so the next finite step is the step `tx` would have taken had the bad batch never
come (Adam's bias correction, schedules and warmups do not advance on skipped steps). This is what
torch's `GradScaler` (which does not call `optimizer.step()` on an inf/NaN step) and Keras'
`LossScaleOptimizer` do for mixed precision, as a transform of its own.

Counters kept in the state for logging, read with `jopt.skipped_steps(state)` from any state tree:
`consecutive` (skipped steps in a row), `total` (since `init`), `last_skipped`, and
`limit_reached`.

Differences from `optax.apply_if_finite(tx, max_consecutive_errors)`:
- optax gives up after `max_consecutive_errors` skipped steps in a row and applies the next
  non-finite update, which writes NaN into the params and the inner state, irreversibly. This
  wrapper never applies a non-finite update. With `max_consecutive=N`, a run of more than N
  skipped steps in a row sets the sticky flag `limit_reached` instead (a library transform cannot
  raise from inside `jit`, and a host callback would cost a device-to-host sync every step): the
  training loop reads it, with the counters, and decides to stop, restore a checkpoint or lower
  the learning rate. Failing "loudly" by returning NaN on purpose would destroy the params that the
  guard exists to protect, and a checkpoint taken then would be worthless.
- optax checks every leaf of every dtype and builds a stacked array of flags; this wrapper checks
  the floating (and complex) leaves only, so integer or `float0` leaves pass, and also checks the
  loss passed as `value=` (see `check_value`).
- optax's skipped updates are `zeros_like(gradients)`; these are zeros in the dtypes the inner
  transform returns (the params' dtypes for every jopt optimizer), on every step alike.
- optax branches with `lax.cond`; this wrapper always runs `tx` and selects its results or the
  old ones (see `update_fn`), so that a train step stays one fused program without a branch.

Bit for bit means: the wrapped update returns the values `tx.update` returns. Compiled into a
larger program (a `lax.scan` of train steps), XLA on CPUs and GPUs may fuse a multiply and an add
into one fused multiply-add in one program and not in another, so two programs that differ by
any operation, this wrapper included, can round differently in the last bit.

The name says what happens to a non-finite step. It is not `apply_if_finite`, since optax's
function of that name applies non-finite updates after a while and a drop-in with the same name
would silently change that behaviour.

Wrap the whole optimizer, clipping included: `skip_nonfinite(optax.chain(clip_by_global_norm(1.0),
adam(1e-3)))`. A transform outside the wrapper still sees the non-finite gradients (a clipping
block before it would count the step and store a NaN norm).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jopt._src import base, errors, per_leaf, validation

# The counters saturate at this value; a run longer than it cannot be told apart from one more.
_COUNT_MAX = int(np.iinfo(np.dtype(base.COUNT_DTYPE)).max)


class SkipNonfiniteState(NamedTuple):
    inner_state: Any  # the wrapped transform's state; skipped steps leave it untouched
    consecutive: jax.Array  # skipped steps in a row, back to 0 at a finite step; int32, saturating
    total: jax.Array  # skipped steps since init; int32, saturating
    last_skipped: jax.Array  # whether the last update was skipped; bool
    limit_reached: jax.Array  # sticky: `consecutive` exceeded max_consecutive at some step; bool


class SkippedSteps(NamedTuple):
    """What `jopt.skipped_steps` reads from a state; `._asdict()` gives a dict to log."""

    consecutive: jax.Array
    total: jax.Array
    last_skipped: jax.Array
    limit_reached: jax.Array


def all_finite(tree: Any) -> jax.Array:
    """A bool scalar: whether every element of every floating or complex leaf of `tree` is finite.

    Leaves of other dtypes (integers, booleans, `float0` gradients of integer inputs) cannot hold
    a NaN and are not looked at. An empty tree is finite.
    """
    flags = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
    ]
    return functools.reduce(jnp.logical_and, flags, jnp.asarray(True))


def _select(keep: jax.Array, new: jax.Array, old: Any) -> jax.Array:
    """`new` where `keep`, else `old`; both must have the same shape and dtype (no promotion)."""
    return jax.lax.select(jnp.broadcast_to(keep, jnp.shape(new)), new, old)


@errors.public("jopt.skip_nonfinite")
def skip_nonfinite(
    tx: optax.GradientTransformation,
    max_consecutive: int | None = None,
    *,
    check_value: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Wraps `tx` so that a step with a NaN or infinite gradient changes nothing.

    Args:
      tx: the optimizer (any optax transform; extra keyword arguments such as `value=` are
        passed on to it unchanged).
      max_consecutive: None (the default) never raises the flag. An integer N >= 0 sets the sticky
        `limit_reached` flag at the (N+1)-th non-finite step in a row, the step at which
        `optax.apply_if_finite(tx, N)` would apply a NaN update; this wrapper keeps skipping.
        It is a static threshold, not a hyperparameter in the state.
      check_value: also skip the step when the loss passed as `update(..., value=loss)` is not
        finite. Gradients of a NaN loss are almost always NaN too; when they are not (an infinite
        term with zero gradient, a loss clipped after the fact), the step was still computed from
        a broken forward pass, and transforms that read `value` (line searches,
        `jopt.reduce_on_plateau`) would store it. Set False when `value` is a metric unrelated
        to the gradients. Steps without `value` are judged by their gradients alone.

    Returns:
      An `optax.GradientTransformationExtraArgs` with state `SkipNonfiniteState`. Finite steps
      return exactly what `tx` returns (bit for bit); skipped steps return zero updates.
    """
    fn = errors.current_function()
    validation.check_transform(fn, "tx", tx)
    if max_consecutive is not None:
        max_consecutive = validation.check_int(fn, "max_consecutive", max_consecutive, minimum=0)
        validation.require(
            fn,
            max_consecutive < _COUNT_MAX,
            f"max_consecutive must be None or an integer in [0, {_COUNT_MAX - 1}] (skipped steps "
            f"are counted in int32, saturating at {_COUNT_MAX}), got {max_consecutive!r}.",
            argument="max_consecutive",
            value=max_consecutive,
        )
    check_value = validation.check_bool(fn, "check_value", check_value)
    inner = optax.with_extra_args_support(tx)

    def init_fn(params):
        return SkipNonfiniteState(
            inner_state=inner.init(params),
            consecutive=base.zero_count(),
            total=base.zero_count(),
            last_skipped=jnp.asarray(False),
            limit_reached=jnp.asarray(False),
        )

    def update_fn(updates, state, params=None, **extra_args):
        base.check_tree(fn, updates, params, "params", dtypes=True)
        finite = all_finite(updates)
        value = extra_args.get("value")
        if check_value and value is not None:
            finite = finite & all_finite(value)

        # The inner update runs on every step and a select keeps its results or the old ones: no
        # branch, so it fuses with the surrounding step (a `lax.cond` would materialize the
        # updates and, on GPUs, may read the predicate back to the host), and it is what `lax.cond`
        # becomes under `vmap` anyway. A select is exact: a kept value is the inner value, bit
        # for bit, and a NaN computed for a skipped step is dropped, never mixed in.
        new_updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
        new_updates = jax.tree.map(lambda u: _select(finite, u, jnp.zeros_like(u)), new_updates)
        new_inner = jax.tree.map(lambda n, o: _select(finite, n, o), new_inner, state.inner_state)

        consecutive = jnp.where(finite, base.zero_count(), base.increment(state.consecutive))
        limit_reached = state.limit_reached
        if max_consecutive is not None:
            limit_reached = limit_reached | (consecutive > max_consecutive)
        new_state = SkipNonfiniteState(
            inner_state=new_inner,
            consecutive=consecutive,
            total=jnp.where(finite, state.total, base.increment(state.total)),
            last_skipped=jnp.logical_not(finite),
            limit_reached=limit_reached,
        )
        return new_updates, new_state

    return per_leaf.inherit(optax.GradientTransformationExtraArgs(init_fn, update_fn), tx)


def _guards(state: Any) -> list[SkipNonfiniteState]:
    """Every `SkipNonfiniteState` in `state`, those nested in another's inner state included."""
    found = []
    for node in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, SkipNonfiniteState)):
        if isinstance(node, SkipNonfiniteState):
            found += [node, *_guards(node.inner_state)]
    return found


def skipped_steps(state: Any) -> SkippedSteps:
    """The counters of the (single) `skip_nonfinite` in `state`, any optimizer state tree."""
    found = _guards(state)
    if len(found) != 1:
        raise ValueError(
            f"jopt.skipped_steps: expected one skip_nonfinite in the state, found {len(found)}."
        )
    s = found[0]
    return SkippedSteps(s.consecutive, s.total, s.last_skipped, s.limit_reached)
