"""`jopt.train_step`: one jitted step that donates the params and the optimizer state.

- The arrays passed in are deleted by the call (their buffers were given to the outputs), with
  no "donated buffers were not usable" warning, and the steps are bitwise the ones without
  donation, over several steps.
- `has_aux` returns the loss function's auxiliary output; the update gets the loss as `value=`,
  so optax's Polyak step size (which reads it) works, and a plain optax transformation too.
- An array given twice (at two leaves of params and state) is refused with both key paths,
  instead of XLA's "Attempt to donate the same buffer twice"; bad arguments name themselves.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

TARGET = jnp.array([1.0, -2.0, 0.5])


def _loss(params, x):
    return jnp.sum((params["w"] * x - TARGET) ** 2) + jnp.sum(params["b"] ** 2)


def _loss_with_aux(params, x):
    residual = params["w"] * x - TARGET
    return jnp.sum(residual**2) + jnp.sum(params["b"] ** 2), {"residual": residual}


def _params():
    return {"w": jnp.array([0.5, 0.5, 0.5]), "b": jnp.array([0.1, -0.1])}


X = jnp.array([1.0, 2.0, 3.0])


@pytest.mark.filterwarnings("error")  # "Some donated buffers were not usable" would fail it
def test_the_inputs_are_donated_and_the_steps_are_those_without_donation():
    tx = jopt.adam(0.1)
    plain = jopt.train_step(_loss, tx, donate=False)
    donating = jopt.train_step(_loss, tx)
    want_params, want_state = _params(), tx.init(_params())
    params, state = _params(), tx.init(_params())
    for _ in range(3):
        want_params, want_state, want_loss = plain(want_params, want_state, X)
        given = jax.tree.leaves((params, state))
        params, state, loss = donating(params, state, X)
        assert all(leaf.is_deleted() for leaf in given)
        chex.assert_trees_all_equal((params, state, loss), (want_params, want_state, want_loss))
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves((want_params, want_state)))


def test_aux_is_returned_after_the_loss():
    tx = jopt.sgd(0.01)
    params = _params()
    new_params, _, loss, aux = jopt.train_step(_loss_with_aux, tx, has_aux=True)(
        params, tx.init(params), X
    )
    np.testing.assert_allclose(aux["residual"], np.array([0.5, 1.0, 1.5]) - TARGET, rtol=1e-6)
    assert float(loss) == pytest.approx(float(_loss(_params(), X)), rel=1e-6)
    grads = jax.grad(_loss)(_params(), X)
    chex.assert_trees_all_close(
        new_params, jax.tree.map(lambda p, g: p - 0.01 * g, _params(), grads), rtol=1e-6
    )


def test_the_update_gets_the_loss_as_value_so_polyak_steps_work():
    # optax.polyak_sgd reads `value` (and optax.sgd takes no extra arguments at all).
    tx = optax.polyak_sgd(max_learning_rate=1.0)
    params = _params()
    got, _, _ = jopt.train_step(_loss, tx)(params, tx.init(params), X)
    loss, grads = jax.value_and_grad(_loss)(_params(), X)
    updates, _ = tx.update(grads, tx.init(_params()), _params(), value=loss)
    chex.assert_trees_all_close(got, optax.apply_updates(_params(), updates), rtol=1e-6)
    sgd = optax.sgd(0.1)
    chex.assert_tree_all_finite(jopt.train_step(_loss, sgd)(_params(), sgd.init(_params()), X))


def test_an_array_given_twice_is_refused_naming_both_leaves():
    tx = jopt.sgd(0.1, momentum=0.9)
    shared = jnp.array([0.1, -0.1])
    params = {"w": jnp.array([0.5, 0.5, 0.5]), "b": shared}
    state = tx.init(params)
    momentum = state[0]._replace(trace={**state[0].trace, "b": shared})  # b's momentum buffer
    state = (momentum, *state[1:])
    with pytest.raises(ValueError) as error:
        jopt.train_step(_loss, tx)(params, state, X)
    assert str(error.value).startswith(
        "jopt.train_step: params['b'] and opt_state[0].trace['b'] are one array"
    )
    assert "are one array, which cannot be donated twice" in str(error.value)
    assert not shared.is_deleted()  # refused before anything was donated


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match=r"^jopt.train_step: loss_fn must be callable, got 3\."):
        jopt.train_step(3, jopt.sgd(0.1))
    with pytest.raises(TypeError, match=r"optimizer must be an optax.GradientTransformation"):
        jopt.train_step(_loss, jopt.sgd)
