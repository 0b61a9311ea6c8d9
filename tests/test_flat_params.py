"""Flat params (`jopt.flatten_params`, `jopt.flat_train_step`): the buffers round-trip the tree,
and an elementwise optimizer's steps on the buffers are bitwise its steps on the tree."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from tests import helpers

PARAMS = {
    "layers": [
        {"w": jnp.arange(12.0).reshape(3, 4) / 10, "b": jnp.ones(4)},
        {"w": jnp.linspace(-1.0, 1.0, 8).reshape(4, 2), "b": jnp.zeros(2)},
    ],
    "scale": jnp.asarray(0.5, jnp.bfloat16),
}


def loss_fn(params, x):
    h = x
    for layer in params["layers"]:
        h = jnp.tanh(h @ layer["w"] + layer["b"])
    return jnp.mean((h - 0.3) ** 2) * params["scale"].astype(jnp.float32) ** 2


X = jnp.linspace(-1.0, 1.0, 15).reshape(5, 3)


def test_one_buffer_per_dtype_and_back_to_the_same_tree():
    flat = jopt.flatten_params(PARAMS)
    assert sorted(flat.buffers) == ["bfloat16", "float32"]
    assert flat.buffers["float32"].shape == (12 + 4 + 8 + 2,)
    assert flat.size == 27 and "5 leaves" in repr(flat)
    back = flat.unflatten()
    assert jax.tree.structure(back) == jax.tree.structure(PARAMS)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(PARAMS), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert len(jax.tree.leaves(flat)) == 2  # optimizers see two buffers, not six leaves


# Elementwise updates: the same numbers on buffers as on leaves. XLA compiles the loop over a
# 4-entry leaf and over the 26-entry buffer to different machine code, whose division and square
# root may round an ulp apart: Adam's do here, within an ulp per step.
ELEMENTWISE = ["sgd_momentum", "rmsprop", "adam", "adagrad", "lion"]
ULPS_PER_STEP = {"adam": 1}
STEPS = 5


@pytest.mark.parametrize("case_id", ELEMENTWISE)
def test_flat_steps_are_the_tree_steps_bitwise(case_id):
    case = helpers.CASES_BY_ID[case_id]
    tx = case.build()
    tree_step = jopt.train_step(loss_fn, tx, donate=False)
    flat_step = jopt.flat_train_step(loss_fn, tx, donate=False)
    params, state = PARAMS, tx.init(PARAMS)
    flat = jopt.flatten_params(PARAMS)
    flat_state = tx.init(flat)
    for _ in range(STEPS):
        params, state, loss = tree_step(params, state, X)
        flat, flat_state, flat_loss = flat_step(flat, flat_state, X)
        assert _ulps(loss, flat_loss) <= STEPS * ULPS_PER_STEP.get(case_id, 0)
    for a, b in zip(jax.tree.leaves(flat.unflatten()), jax.tree.leaves(params), strict=True):
        assert a.dtype == b.dtype
        assert _ulps(a, b) <= STEPS * ULPS_PER_STEP.get(case_id, 0), (a, b)


def _ulps(a, b) -> int:
    """The largest distance between `a` and `b` in units in the last place (same-sign values)."""
    a, b = np.asarray(a), np.asarray(b)
    ints = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]
    return int(np.max(np.abs(a.view(ints).astype(np.int64) - b.view(ints).astype(np.int64))))


def test_the_flat_step_donates_and_compiles_once():
    tx = jopt.adamw(1e-2)
    step = jopt.flat_train_step(loss_fn, tx)
    flat = jopt.flatten_params(PARAMS)
    state = tx.init(flat)
    old = flat.buffers["float32"]
    flat, state, _ = step(flat, state, X)
    assert old.is_deleted()
    flat, state, _ = step(flat, state, X)
    assert jax.tree.leaves(state)  # a state of buffers
    assert all(x.ndim <= 1 for x in jax.tree.leaves(state))


def test_the_flat_step_refuses_a_tree_and_names_the_fix():
    tx = jopt.sgd(0.1)
    step = jopt.flat_train_step(loss_fn, tx, donate=False)
    with pytest.raises(TypeError, match=r"takes flat params, jopt.flatten_params\(params\)"):
        step(PARAMS, tx.init(PARAMS), X)


def test_integer_leaves_are_refused_and_empty_trees_too():
    with pytest.raises(TypeError, match=r"jopt.flatten_params: .*\['n'\]"):
        jopt.flatten_params({"w": jnp.ones(2), "n": jnp.ones(2, jnp.int32)})
    with pytest.raises(ValueError, match="params has no leaves"):
        jopt.flatten_params({})
