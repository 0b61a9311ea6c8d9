"""jopt's states read and wrap as optax's do.

- `optax.tree.get(state, "count")` finds exactly one value in the state of every jopt
  optimizer (every registry example and every jopt.torch / jopt.keras golden case, plain SGD
  included), and it is the number of optimizer steps taken (one per update; one per k updates
  with Keras' gradient_accumulation_steps=k). optax's own adam keeps one `count`; jopt's
  learning-rate, weight-decay and clipping blocks call theirs `schedule_count`.
- `optax.MultiSteps` wraps every jopt optimizer (optax's `test_gradient_accumulation`: the first
  mini-step gives zero updates, jitted, in bfloat16 and float32), and a wrapped optimizer takes
  one step per k mini-steps with the mean of their gradients: the trajectory of `MultiSteps(tx,
  k)` over 4k mini-steps is `tx`'s over 4 steps on the means, and it is optax's `MultiSteps`
  trajectory bitwise where jopt's optimizer is optax's bitwise (these two on one optimizer per
  kind of state, `helpers.MACHINERY_CASES`). `jopt.current_lr` and `jopt.set_hparams` reach the
  optimizer inside the wrapper.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests import conventions, helpers
from tests.test_optax_agreement import NOT_BITWISE

K = 4
TWIN_CASES = [
    (framework, case)
    for framework in ("torch", "keras")
    for case in conventions.load(framework).cases
]


def _twin(framework: str, case) -> optax.GradientTransformation:
    module = getattr(jopt, framework)
    return conventions.build(module, framework, case, case.lr)


def _counts(state) -> list:
    return [value for _, value in optax.tree_utils.tree_get_all_with_path(state, "count")]


def _assert_one_count(tx, params, updates_taken: int, per_step: int = 1) -> None:
    """One `count` after `updates_taken` updates: the optimizer steps taken, one per
    `per_step` updates (Keras' gradient_accumulation_steps)."""
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    for _ in range(updates_taken):
        _, state = tx.update(grads, state, params)
    assert len(_counts(state)) == 1, _counts(state)
    assert int(optax.tree.get(state, "count")) == updates_taken // per_step


@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_every_optimizer_state_holds_one_count_and_it_counts_updates(case):
    _assert_one_count(case.build(), {"w": jnp.ones(3), "b": jnp.zeros(())}, 2)


@pytest.mark.parametrize(("framework", "case"), TWIN_CASES, ids=lambda x: getattr(x, "id", x))
def test_every_framework_twin_state_holds_one_count(framework, case):
    per_step = case.kwargs.get("gradient_accumulation_steps", 1)
    _assert_one_count(_twin(framework, case), {"w": jnp.ones(3)}, 2 * per_step, per_step)


def test_plain_sgd_keeps_its_count_in_the_learning_rate_block():
    """optax.sgd(constant) keeps no count at all; jopt's always has one to read."""
    for tx in (jopt.sgd(0.1), jopt.torch.SGD(0.1), jopt.keras.SGD(0.1, clipnorm=1.0)):
        _assert_one_count(tx, jnp.ones(2), 3)


def test_chaining_with_optax_blocks_keeps_optax_count_unique():
    tx = optax.chain(
        optax.scale_by_adam(),
        jopt.clip_by_global_norm(1.0),
        jopt.add_decayed_weights(0.1),
        jopt.scale_by_learning_rate(optax.cosine_decay_schedule(0.1, 10)),
    )
    _assert_one_count(tx, jnp.ones(2), 2)


# -- optax.MultiSteps ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
@pytest.mark.parametrize("case", helpers.FIRST_CASES, ids=repr)
def test_multi_steps_first_mini_step_gives_zero_updates(case, dtype):
    """optax's `test_gradient_accumulation`, pointed at every jopt optimizer."""
    tx = optax.MultiSteps(case.build(), every_k_schedule=K)
    params = jnp.array([1.0, 2.0], dtype=dtype)
    grads = jax.grad(lambda x: jnp.sum(x**2))(params)
    updates, _ = jax.jit(lambda g, p: tx.update(g, tx.init(p), p))(grads, params)
    chex.assert_trees_all_equal(updates, jnp.zeros_like(grads))


# A fixed quadratic with a tanh term, and a different perturbation of its gradient on each
# mini-batch, so that the mean of k gradients is not any one of them.
TARGET = jnp.linspace(-1.0, 2.0, 6)
CURVATURE = jnp.linspace(0.5, 3.0, 6)


def _gradient(params, i):
    noise = jnp.sin(jnp.arange(params.size, dtype=params.dtype) * (i + 1.0))
    return CURVATURE.astype(params.dtype) * (params - TARGET.astype(params.dtype)) + 0.1 * (
        jnp.tanh(params) + noise
    )


def _welford_mean(grads):
    """optax.MultiSteps' running mean: acc + (g - acc) / (n + 1)."""
    return functools.reduce(lambda acc, ng: acc + (ng[1] - acc) / (ng[0] + 1), enumerate(grads),
                            jnp.zeros_like(grads[0]))  # fmt: skip


@functools.partial(jax.jit, static_argnums=(0, 1, 3))
def _run(tx, wrapped: bool, params, unrolled: bool = False):
    """4 optimizer steps: through MultiSteps over 4k mini-steps (`wrapped`), or on the means of
    each k mini-batch gradients. Returns the params after each optimizer step.

    The mini-steps run in a scan (one copy of the update to compile), or `unrolled` into k
    copies: XLA compiles jopt's and optax's updates to the same bits only that way."""
    if wrapped:  # optax accumulates in float32 unless told (even for float64 params)
        tx = optax.MultiSteps(tx, K, accumulator_dtype=params.dtype)

    def mini_step(carry, i):
        params, state = carry
        updates, state = tx.update(_gradient(params, i), state, params)
        return (optax.apply_updates(params, updates), state), None

    def step(carry, block):
        params, state = carry
        if wrapped and unrolled:
            for i in block:
                (params, state), _ = mini_step((params, state), i)
        elif wrapped:
            (params, state), _ = jax.lax.scan(mini_step, (params, state), block)
        else:
            mean = _welford_mean([_gradient(params, i) for i in block])
            updates, state = tx.update(mean, state, params)
            params = optax.apply_updates(params, updates)
        return (params, state), params

    blocks = jnp.arange(4 * K).reshape(4, K)
    return jax.lax.scan(step, (params, tx.init(params)), blocks)


@pytest.mark.parametrize("case", helpers.MACHINERY_CASES, ids=repr)
def test_multi_steps_steps_the_optimizer_on_the_mean_of_k_gradients(case):
    with jax.enable_x64(True):
        tx, params = case.build(), jnp.linspace(0.0, 1.0, 6, dtype=jnp.float64)
        (_, wrapped_state), wrapped = _run(tx, True, params)
        (_, state), plain = _run(tx, False, params)
        np.testing.assert_allclose(wrapped, plain, rtol=1e-13, atol=1e-15)
        assert int(wrapped_state.gradient_step) == 4
        np.testing.assert_allclose(
            jopt.current_lr(wrapped_state.inner_opt_state), jopt.current_lr(state)
        )


@pytest.mark.parametrize("case", helpers.MACHINERY_OPTAX_CASES, ids=repr)
def test_multi_steps_of_jopt_is_multi_steps_of_optax(case):
    params = jnp.linspace(0.0, 1.0, 6, dtype=jnp.float32)
    (_, _), ours = _run(case.build(), True, params, True)
    (_, _), theirs = _run(case.build_optax(), True, params, True)
    tolerance = NOT_BITWISE.get((case.id, "float32"))
    if tolerance is None:
        chex.assert_trees_all_equal(ours, theirs)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=tolerance)


def test_hyperparameters_are_set_through_the_wrapper():
    tx = optax.MultiSteps(jopt.adam(0.1), K)
    state = jopt.set_hparams(tx.init(jnp.ones(2)), learning_rate=0.01, b1=0.5)
    assert float(jopt.current_lr(state)) == pytest.approx(0.01)
    assert float(jopt.get_hparams(state)["b1"]) == 0.5
