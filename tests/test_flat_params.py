"""Flat params (`jopt.flatten_params`, `jopt.flat_train_step`): the buffers round-trip the tree,
an elementwise optimizer's steps on the buffers are bitwise its steps on the tree, and of every
optimizer in the registry, those that compute something over each leaf are refused and the others
compute the tree's numbers on a buffer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt._src import per_leaf
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


# Every optimizer of the registry, two steps on a tree of three leaves and on its buffer: those
# that declare a computation over each leaf are refused by flat_train_step (and do differ here,
# by 6e-4 and more), every other one computes the tree's numbers (global sums in another order:
# 1e-7 apart, measured). noisy_sgd draws its noise per leaf: another stream on one buffer.
PROBE = {
    "w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4),
    "b": jnp.linspace(0.2, 0.8, 4),
    "v": jnp.linspace(-2.0, 0.5, 5),
}
OTHER_NOISE = {"noisy_sgd"}


def _probe_grad(params):
    return jax.tree.map(lambda x: (x - jnp.cos(3.0 * x)) * (1.0 + x * x), params)


def _probe_loss(params):
    return sum(jnp.sum(x * x) for x in jax.tree.leaves(params))


def _two_steps(tx, params, as_tree):
    state = tx.init(params)
    for _ in range(2):
        grads = _probe_grad(as_tree(params))
        if isinstance(params, jopt.FlatParams):
            grads = jopt.flatten_params(grads)
        value = _probe_loss(as_tree(params))
        updates, state = tx.update(
            grads,
            state,
            params,
            value=value,
            grad=grads,
            value_fn=lambda q: _probe_loss(as_tree(q)),
        )
        params = jax.tree.map(jnp.add, params, updates)
    return as_tree(params)


@pytest.mark.parametrize("case", helpers.FIRST_CASES, ids=lambda c: c.id)
def test_per_leaf_optimizers_are_refused_and_the_others_compute_the_trees_numbers(case):
    declared = per_leaf.of(case.make(**case.kwargs))
    tx = case.build()
    tree = _two_steps(tx, PROBE, lambda p: p)
    flat = _two_steps(tx, jopt.flatten_params(PROBE), lambda f: f.unflatten())
    gap = max(
        float(jnp.max(jnp.abs(a - b) / (jnp.abs(b) + 1e-6)))
        for a, b in zip(jax.tree.leaves(flat), jax.tree.leaves(tree), strict=True)
    )
    if declared is None:
        if case.optimizer not in OTHER_NOISE:
            assert gap <= 1e-5, (
                f"{case.id} differs on a buffer ({gap:.3g}): does it reduce per leaf?"
            )
        return
    assert gap > 1e-4, f"{case.id} declares {declared!r} but computes the tree's numbers"
    with pytest.raises(ValueError, match=rf"this optimizer computes {declared}.*jopt.train_step"):
        jopt.flat_train_step(loss_fn, case.make(**case.kwargs))


def test_a_declaration_follows_an_optimizer_into_wrappers_and_chains():
    lamb = jopt.lamb(1e-3)
    for wrapped in (
        jopt.lookahead(lamb, 5, 0.5),
        jopt.skip_nonfinite(lamb),
        jopt.accumulate_gradients(lamb, 2),
        jopt.ema_params(lamb, 0.9),
        jopt.fromage(1e-2),  # a chain with a trust-ratio block
        jopt.param_groups(jopt.adam(1e-3), jopt.Group("frozen", "*/b", frozen=True)),
    ):
        assert per_leaf.of(wrapped) is not None
    assert per_leaf.of(jopt.lookahead(jopt.adam(1e-3), 5, 0.5)) is None
    assert per_leaf.of(jopt.adamw(1e-3)) is None  # a chain of elementwise blocks
    user_chain = optax.chain(jopt.clip_by_global_norm(1.0), jopt.lamb(1e-3))
    assert per_leaf.of(user_chain) is None  # not jopt's: taken as it is (the module docstring)
