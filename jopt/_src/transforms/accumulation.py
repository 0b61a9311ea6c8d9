"""Gradient accumulation: one optimizer step per k micro-batches, on the mean of their gradients.

    every update:   acc = acc + g
    every k-th:     updates, inner = tx.update(acc / k, inner, params);   acc = 0
    the others:     updates = 0;   inner unchanged

With k micro-batches of equal size, the step is the step of the batch they make together (equal
to it in float64 up to the rounding of the sum, `tests/test_accumulation.py`), in 1/k of the
memory. The sum is kept in float32 at least: in bfloat16, whose 8-bit mantissa adds nothing
below 1/256 of the sum, small gradients would be lost (and float64 params keep float64 sums).
The wrapped optimizer counts only the steps it takes: its bias corrections and schedules advance
once per k micro-batches, as Keras' `gradient_accumulation_steps` and optax's `MultiSteps` do.

k is kept in the state (`jopt.set_hparams(state, every_k=...)`, changed at an optimizer step),
with the micro-step counter. Like `skip_nonfinite`, the update always runs `tx` and selects its
result or the old state (no `lax.cond`), so a train step stays one fused program: the optimizer's
arithmetic runs on every micro-batch, a small cost next to the model's forward and backward
passes. Unlike optax's `MultiSteps` (`accumulator_dtype=None` sums bfloat16 gradients in
bfloat16, and float64 ones in float32), the sum's dtype follows each leaf as said above.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, per_leaf, validation
from jopt._src.hparams import HParams
from jopt._src.spec import Int, Spec

ACCUMULATE = Spec(Int("every_k", minimum=1))


class AccumulateState(NamedTuple):
    inner_state: Any  # the wrapped optimizer's state, stepped once per every_k micro-batches
    micro_step: jax.Array  # micro-batches summed since the last optimizer step, int32
    gradient_sum: optax.Updates  # their sum, in float32 at least (float64 for float64 leaves)
    hparams: HParams  # every_k


@errors.public("jopt.accumulate_gradients")
def accumulate_gradients(
    tx: optax.GradientTransformation, every_k: int
) -> optax.GradientTransformationExtraArgs:
    """Wraps `tx` to step once per `every_k` updates, on the mean of their gradients.

    Args:
      tx: the optimizer.
      every_k: micro-batches per optimizer step, an integer >= 1 (1: every update steps).

    Returns:
      A transform whose updates are zero except at every `every_k`-th call.
    """
    fn = errors.current_function()
    validation.check_transform(fn, "tx", tx)
    bound = ACCUMULATE.bind(fn, every_k=every_k)
    tx = optax.with_extra_args_support(tx)

    def init_fn(params):
        gradient_sum = jax.tree.map(
            lambda p: jnp.zeros_like(p, base.compute_dtype(jnp.result_type(p))), params
        )
        zero = jnp.zeros([], jnp.int32)
        return AccumulateState(tx.init(params), zero, gradient_sum, bound.init())

    def update_fn(updates, state, params=None, **extra_args):
        base.check_tree(fn, updates, state.gradient_sum, "state's gradient_sum")
        k = state.hparams["every_k"]
        total = jax.tree.map(lambda s, g: s + g.astype(s.dtype), state.gradient_sum, updates)
        emit = state.micro_step + 1 >= k
        mean = jax.tree.map(lambda s, g: (s / k.astype(s.dtype)).astype(g.dtype), total, updates)
        stepped, inner = tx.update(mean, state.inner_state, params, **extra_args)
        keep = lambda new, old: jnp.where(emit, new, old)  # noqa: E731
        new_state = AccumulateState(
            inner_state=jax.tree.map(keep, inner, state.inner_state),
            micro_step=jnp.where(emit, 0, state.micro_step + 1).astype(jnp.int32),
            gradient_sum=jax.tree.map(lambda s: jnp.where(emit, jnp.zeros_like(s), s), total),
            hparams=state.hparams,
        )
        out = jax.tree.map(lambda u: jnp.where(emit, u, jnp.zeros_like(u)), stepped)
        return out, new_state

    return per_leaf.inherit(optax.GradientTransformationExtraArgs(init_fn, update_fn), tx)
