"""Gradient trees that disagree with the state raise errors with the key path, never broadcast.

For every optimizer in `tests/helpers.CASES`, with a state built for params of shapes (3,) and
(2, 4):
- gradients whose first leaf has shape (3, 1) raise a `ValueError` naming the key path `[0]` and
  both shapes, eagerly and under `jit` (the check runs at trace time);
- a dict of params given gradients without the key 'b' raises a `ValueError` naming `['b']`;
- weight decay given float16 gradients for float32 params raises a `TypeError` naming the path;
  so does every optimizer, since the learning-rate scaling that ends each chain checks the
  gradients against the params whenever `update` is given them;
- transforms that keep no per-parameter state (the learning-rate scaling, clipping, and chains of
  them such as plain SGD) check the gradients against the params the same way: shapes, missing
  and extra leaves, dtypes;
- optimizers without weight decay update without params (`params=None`), with the same result;
  those with weight decay say that they need them;
- integer parameters (at init) and float0 gradients (`jax.grad(allow_int=True)`, at update)
  raise a `TypeError` naming the key path, and the recipe the message gives (optax's
  multi_transform with set_to_zero for the integer leaves) works;
- one optimizer's state given to another raises a `ValueError` naming the optimizer and what the
  state is, unless the two states are the same tree (Adam's and NAdam's: the same moments and
  hyperparameters, interchangeable by design).

Why check: optax broadcasts. Its adam, given (3, 1) gradients for a (3,) state, silently returns
a (3, 3) update (`test_optax_broadcasts_where_jopt_raises` shows it), and `apply_updates` then
turns a (3,) parameter into a (3, 3) one.
"""

from __future__ import annotations

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests import helpers

PARAMS = (jnp.arange(3.0), jnp.ones((2, 4)))
GRADS = (jnp.full((3,), 0.5), jnp.full((2, 4), -0.25))
COLUMN_GRADS = (jnp.full((3, 1), 0.5), GRADS[1])  # first leaf (3, 1) instead of (3,)

CASES = [pytest.param(case, id=case.id) for case in helpers.CASES]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("case", CASES)
def test_gradient_shape_mismatch_raises_with_key_path_and_both_shapes(case, jit):
    tx = case.build()
    state = tx.init(PARAMS)
    update = jax.jit(tx.update) if jit else tx.update
    message = r"\[0\].*\(3, 1\).*\(3,\)"
    with pytest.raises(ValueError, match=message):
        update(COLUMN_GRADS, state, PARAMS)


@pytest.mark.parametrize("case", CASES)
def test_missing_gradient_key_raises_naming_it(case):
    params = {"w": jnp.ones(3), "b": jnp.zeros(())}
    tx = case.build()
    state = tx.init(params)
    with pytest.raises(ValueError, match=re.escape("['b']")):
        tx.update({"w": jnp.ones(3)}, state, params)


@pytest.mark.parametrize("case", CASES)
def test_extra_gradient_key_raises_naming_it(case):
    params = {"w": jnp.ones(3)}
    tx = case.build()
    state = tx.init(params)
    with pytest.raises(ValueError, match=re.escape("['extra']")):
        tx.update({"w": jnp.ones(3), "extra": jnp.ones(2)}, state, params)


WEIGHT_DECAY = [
    *(pytest.param(case.build, id=case.id) for case in helpers.CASES if case.uses_params),
    pytest.param(lambda: jopt.add_decayed_weights(1e-2), id="add_decayed_weights"),
    pytest.param(lambda: jopt.add_l1_penalty(1e-2), id="add_l1_penalty"),
    pytest.param(lambda: jopt.adamw(1e-3, mask=(True, False)), id="adamw_masked"),
    pytest.param(lambda: jopt.momentum_lr_inside(0.1, weight_decay=1e-2), id="momentum_lr_inside"),
]


@pytest.mark.parametrize("build", WEIGHT_DECAY)
def test_weight_decay_rejects_gradients_of_another_dtype_naming_the_path(build):
    tx = build()
    state = tx.init(PARAMS)
    half_grads = jax.tree.map(lambda g: g.astype(jnp.float16), GRADS)
    with pytest.raises(TypeError, match=r"\[0\].*float16.*float32"):
        tx.update(half_grads, state, PARAMS)


@pytest.mark.parametrize("case", CASES)
def test_gradients_of_another_dtype_than_the_params_raise_naming_the_path(case):
    tx = case.build()
    state = tx.init(PARAMS)
    half_grads = jax.tree.map(lambda g: g.astype(jnp.float16), GRADS)
    with pytest.raises(TypeError, match=r"\[0\].*float16.*float32"):
        tx.update(half_grads, state, PARAMS)


# Transforms without per-parameter state: only `params` tells them what the gradients should be.
STATELESS = [
    pytest.param(lambda: jopt.scale_by_learning_rate(0.1), id="scale_by_learning_rate"),
    pytest.param(lambda: jopt.clip(1.0), id="clip"),
    pytest.param(lambda: jopt.clip_by_global_norm(1.0), id="clip_by_global_norm"),
    pytest.param(lambda: jopt.clip_by_leaf_norm(1.0), id="clip_by_leaf_norm"),
    pytest.param(
        lambda: optax.chain(optax.clip(1.0), jopt.scale_by_learning_rate(0.1)),
        id="optax_clip_then_learning_rate",
    ),
]
MISMATCHES = [
    pytest.param(COLUMN_GRADS, ValueError, r"\[0\].*\(3, 1\).*\(3,\)", id="shape"),
    pytest.param(GRADS[:1], ValueError, r"missing from the gradients: \[1\]", id="missing_leaf"),
    pytest.param((*GRADS, jnp.ones(2)), ValueError, r"not in the params: \[2\]", id="extra_leaf"),
    pytest.param(
        jax.tree.map(lambda g: g.astype(jnp.float16), GRADS),
        TypeError,
        r"\[0\].*float16.*float32",
        id="dtype",
    ),
]


@pytest.mark.parametrize(("grads", "error", "match"), MISMATCHES)
@pytest.mark.parametrize("build", STATELESS)
def test_stateless_transform_checks_the_gradients_against_the_params(build, grads, error, match):
    tx = build()
    state = tx.init(PARAMS)
    with pytest.raises(error, match=match):
        tx.update(grads, state, PARAMS)
    # Without params there is nothing to compare with: the update goes through.
    updates, _ = tx.update(grads, state, None)
    chex.assert_trees_all_equal_shapes_and_dtypes(updates, grads)


@pytest.mark.parametrize("case", [c for c in helpers.CASES if not c.uses_params], ids=repr)
def test_update_without_params_equals_update_with_params(case):
    tx = case.build()
    state = tx.init(PARAMS)
    without, state_without = tx.update(GRADS, state, None)
    with_params, state_with = tx.update(GRADS, state, PARAMS)
    chex.assert_trees_all_equal((without, state_without), (with_params, state_with))
    chex.assert_trees_all_equal_shapes_and_dtypes(without, PARAMS)


@pytest.mark.parametrize("build", WEIGHT_DECAY)
def test_weight_decay_without_params_raises_saying_it_needs_them(build):
    tx = build()
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match="params"):
        tx.update(GRADS, state, None)


def test_optax_broadcasts_where_jopt_raises():
    """The contrast that motivates the checks, run once: optax.adam broadcasts silently.

    A state for a (3,) parameter given (3, 1) gradients: optax returns a (3, 3) update, which
    `apply_updates` adds to the (3,) parameter, making it (3, 3). jopt.adam raises instead.
    """
    params = jnp.zeros(3)
    grads = jnp.ones((3, 1))
    updates, _ = optax.adam(1e-3).update(grads, optax.adam(1e-3).init(params))
    chex.assert_shape(updates, (3, 3))
    chex.assert_shape(optax.apply_updates(params, updates), (3, 3))
    with pytest.raises(ValueError, match=r"gradient at <root> has shape \(3, 1\)"):
        jopt.adam(1e-3).update(grads, jopt.adam(1e-3).init(params))


ONE_PER_OPTIMIZER = list({case.optimizer: case for case in reversed(helpers.CASES)}.values())
PAIRS = [(a, b) for a in ONE_PER_OPTIMIZER for b in ONE_PER_OPTIMIZER if a.optimizer != b.optimizer]


@pytest.mark.parametrize("given, taker", PAIRS, ids=[f"{a.id}->{b.id}" for a, b in PAIRS])
def test_another_optimizers_state_is_refused_naming_the_optimizer_and_the_state(given, taker):
    params = {"w": jnp.ones(3)}
    state = given.build().init(params)
    tx = taker.build()
    if jax.tree.structure(state) == jax.tree.structure(tx.init(params)):
        tx.update(params, state, params)  # the same tree: interchangeable
        return
    with pytest.raises(ValueError, match="this state was not made by") as error:
        tx.update(params, state, params)
    assert str(error.value).startswith(f"jopt.{taker.optimizer}: ")


MIXED = {"w": jnp.array([0.5, -1.0]), "step": jnp.array(3, jnp.int32)}


def _loss(params):
    return jnp.sum(params["w"] ** 2) * params["step"]


@pytest.mark.parametrize("case", ONE_PER_OPTIMIZER, ids=lambda c: c.id)
def test_integer_parameters_and_float0_gradients_are_refused_naming_the_path(case):
    tx = case.build()
    with pytest.raises(TypeError, match=r"the parameter at \['step'\] has dtype int32"):
        tx.init(MIXED)
    floats = {"w": MIXED["w"], "n": jnp.zeros(2)}
    grads = jax.grad(_loss, allow_int=True)(MIXED)
    with pytest.raises(TypeError, match=r"the gradient at \['n'\] has dtype float0"):
        tx.update({"w": grads["w"], "n": grads["step"]}, tx.init(floats), floats)


@pytest.mark.parametrize("case", ONE_PER_OPTIMIZER, ids=lambda c: c.id)
def test_the_recipe_for_integer_leaves_works(case):
    labels = {"w": "float", "step": "int"}
    tx = optax.multi_transform({"float": case.build(), "int": optax.set_to_zero()}, labels)
    grads = jax.grad(_loss, allow_int=True)(MIXED)
    plain = case.build()
    floats = {"w": MIXED["w"]}

    @jax.jit
    def both(grads, state, plain_state):
        return tx.update(grads, state, MIXED)[0], plain.update(
            {"w": grads["w"]}, plain_state, floats
        )[0]

    updates, alone = both(grads, tx.init(MIXED), plain.init(floats))
    np.testing.assert_array_equal(updates["w"], alone["w"])
    assert updates["step"].dtype == jax.dtypes.float0
