"""jopt transforms are optax transforms (DESIGN.md contracts 1 and 2).

- An optimizer works inside `optax.chain` after optax's clipping, under `optax.MultiSteps`, in a
  jitted train step that donates params and state (all three at once; one optimizer per kind of
  state, `helpers.MACHINERY_CASES`; tests/test_base.py donates every optimizer's state alone).
- Every public transform (of jopt, jopt.torch and jopt.keras, found by its annotation) is an
  `optax.GradientTransformation` whose update accepts (and ignores) the extra keyword arguments
  optax chains pass along (`value=`, `grad=`, `value_fn=`); so does every optimizer in CASES.
- The building blocks that share optax's names agree with optax: clip_by_global_norm (which also
  keeps the measured norm), clip, add_decayed_weights (with masks), ema, trace; add_l1_penalty
  adds l1 * sign(params).
- States can be checkpointed: `jax.eval_shape(tx.init, params)` has the structure of a real state,
  and the structure does not depend on hyperparameter values.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests import helpers

# Arguments without defaults that public transform constructors take, by name.
REQUIRED_ARGUMENTS = {
    "learning_rate": 0.1,
    "max_delta": 1.0,
    "max_norm": 1.0,
    "decay": 0.9,
    "every_k": 2,
    "tx": lambda: jopt.sgd(0.1),  # a transform to wrap, built fresh for each constructor
    "optimizer": lambda: jopt.sgd(0.1),  # the same, under torch's name (ReduceLROnPlateau)
    "fast_optimizer": lambda: jopt.sgd(0.1),  # the same, under optax's name (lookahead)
    "base_optimizer": lambda: jopt.sgd(0.1),  # the same (schedule_free)
    "sync_period": 2,
    "slow_step_size": 0.5,
    "max_linesearch_steps": 15,  # the zoom line search's
    "clipping": 0.1,  # adaptive_grad_clip's
}
# Transforms whose params are not the model's: how they hold them.
HELD_PARAMS = {"jopt.lookahead": optax.LookaheadParams.init_synced}
# Transforms that read `value=` (the loss) rather than ignore it.
READS_VALUE = {"jopt.reduce_on_plateau", "jopt.torch.ReduceLROnPlateau"}
# Transforms that need the loss (`value=`; a line search also `grad=` and `value_fn=`): built here
# to be given `_loss`, whose gradient the tests pass (tests.helpers.with_stand_in_loss).
NEEDS_LOSS = {"jopt.polyak_sgd", "jopt.scale_by_polyak", "jopt.momo", "jopt.momo_adam"}
NEEDS_LOSS |= {"jopt.lbfgs", "jopt.scale_by_zoom_linesearch", "jopt.torch.LBFGS"}
# Transforms whose update is a difference of params, y_new - y (schedule-free, in optax's form):
# eager and jitted (where XLA fuses a * b + c) differ by an ulp of the params, not of the update.
DIFFERENCE_OF_PARAMS = {"jopt.schedule_free", "jopt.schedule_free_sgd", "jopt.schedule_free_adamw"}


def _public_transform_constructors() -> dict[str, Callable[..., Any]]:
    """Every public function of jopt, jopt.torch and jopt.keras annotated to return a transform."""
    found = {}
    for module in (jopt, jopt.torch, jopt.keras):
        for name in module.__all__:
            fn = getattr(module, name)
            if inspect.isfunction(fn):
                returns = inspect.signature(fn).return_annotation
                if "Transform" in (returns if isinstance(returns, str) else repr(returns)):
                    found[f"{module.__name__}.{name}"] = fn
    return found


CONSTRUCTORS = _public_transform_constructors()


def _build(name: str) -> optax.GradientTransformation:
    """The named public transform, built with its defaults and REQUIRED_ARGUMENTS."""
    kwargs = {}
    for p in inspect.signature(CONSTRUCTORS[name]).parameters.values():
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            if p.name not in REQUIRED_ARGUMENTS:
                pytest.fail(f"{name} needs {p.name}: add a typical value to REQUIRED_ARGUMENTS")
            value = REQUIRED_ARGUMENTS[p.name]
            kwargs[p.name] = value() if callable(value) else value
    tx = CONSTRUCTORS[name](**kwargs)
    return helpers.with_stand_in_loss(tx, _loss) if name in NEEDS_LOSS else tx


# Transforms that take matrices only (Muon's orthogonalization, torch's refusal of other ranks).
MATRICES_ONLY = {"jopt.scale_by_muon", "jopt.torch.Muon"}


def _params_for(name: str) -> dict[str, jax.Array]:
    params = _params()
    return {"w": params["w"]} if name in MATRICES_ONLY else params


def _params() -> dict[str, jax.Array]:
    return {
        "b": jnp.asarray([-1.0, 0.0, 2.0], jnp.float32),
        "w": jnp.asarray([[0.5, -2.0], [1.5, 0.25]], jnp.float32),
    }


def _loss(params) -> jax.Array:
    leaves = jax.tree.leaves(params)
    return sum(jnp.sum(0.5 * (p - 0.25) ** 2 + 0.1 * jnp.cos(p)) for p in leaves)


def _grad(params):
    """The gradient of `_loss`, 0.5 * |params - 0.25|**2 + 0.1 * sum(cos(params))."""
    return jax.tree.map(lambda p: p - 0.25 - 0.1 * jnp.sin(p), params)


def _random_grads(steps: int, seed: int = 0) -> list[dict[str, jax.Array]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "b": jnp.asarray(rng.normal(size=3), jnp.float32),
            "w": jnp.asarray(rng.normal(size=(2, 2)), jnp.float32),
        }
        for _ in range(steps)
    ]


def _changed(old, new) -> bool:
    """Whether every leaf of `new` differs from `old` somewhere."""
    return all(
        bool(jnp.any(a != b))
        for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(new), strict=True)
    )


def _train_step(tx):
    def step(params, state):
        updates, state = tx.update(_grad(params), state, params)
        return optax.apply_updates(params, updates), state

    return step


# -- composition with optax ----------------------------------------------------------------------


def test_public_transforms_are_found():
    # Guards the discovery above against an annotation change that would hide them all.
    assert {"jopt.adam", "jopt.clip_by_global_norm", "jopt.trace"} <= set(CONSTRUCTORS)
    assert "jopt.torch.Adam" in CONSTRUCTORS and "jopt.keras.Adam" in CONSTRUCTORS


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_public_transform_keeps_the_optax_contract(name):
    """init and update are pure functions of their arguments: under jit as eagerly, twice the
    same; the updates are shaped and typed like the params, and the new state like the old one
    (so a checkpoint of either restores into the other)."""
    tx, params = _build(name), _params_for(name)
    grads = _grad(params)
    params = HELD_PARAMS.get(name, lambda p: p)(params)
    assert isinstance(tx, optax.GradientTransformation)
    state = tx.init(params)
    chex.assert_trees_all_equal(tx.init(params), state)
    updates, new_state = jax.jit(tx.update)(grads, state, params)
    chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)
    chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)
    chex.assert_tree_all_finite(updates)
    again = jax.jit(tx.update)(grads, state, params)
    chex.assert_trees_all_equal(again, (updates, new_state))
    atol = 1e-6 if name in DIFFERENCE_OF_PARAMS else 1e-7
    chex.assert_trees_all_close(tx.update(grads, state, params), again, rtol=1e-6, atol=atol)


def _extra_args(grads):
    return {"value": jnp.asarray(1.5), "grad": grads, "value_fn": lambda p: jnp.sum(p["w"])}


# The optimizers that read the loss use `value=` (L-BFGS also `grad=` and `value_fn=`).
@pytest.mark.parametrize("case", [c for c in helpers.CASES if not c.reads_value], ids=repr)
def test_optimizer_update_ignores_extra_keyword_arguments(case):
    tx, params = case.build(), _params()
    state, grads = tx.init(params), _grad(params)
    want = tx.update(grads, state, params)
    got = tx.update(grads, state, params, **_extra_args(grads))
    chex.assert_trees_all_equal(got, want)


@pytest.mark.parametrize("name", sorted(set(CONSTRUCTORS) - NEEDS_LOSS))
def test_public_transform_update_ignores_extra_keyword_arguments(name):
    # Called directly: inside optax.chain, a transform without **extra_args would be wrapped.
    tx, params = _build(name), _params_for(name)
    grads = _grad(params)
    params = HELD_PARAMS.get(name, lambda p: p)(params)
    state = tx.init(params)
    extra = _extra_args(grads)
    given = {"value": extra.pop("value")} if name in READS_VALUE else {}
    want = tx.update(grads, state, params, **given)
    got = tx.update(grads, state, params, **given, **extra)
    chex.assert_trees_all_equal(got, want)


@pytest.mark.filterwarnings("error")  # e.g. "Some donated buffers were not usable"
@pytest.mark.parametrize("case", helpers.MACHINERY_CASES, ids=repr)
def test_works_after_optax_clipping_under_multisteps_with_donated_params_and_state(case):
    # The three ways optax users wrap an optimizer, together in one jitted step (one compile per
    # case): after optax's clipping in optax.chain, under optax.MultiSteps (updates applied every
    # second step), and with params and state donated.
    tx = optax.MultiSteps(
        optax.chain(optax.clip_by_global_norm(1.0), case.build()), every_k_schedule=2
    )
    params = _params()
    state = tx.init(params)
    step = jax.jit(_train_step(tx), donate_argnums=(0, 1))
    for k in range(1, 5):
        before = jax.tree.map(np.array, params)  # a copy: a view would keep the buffer alive
        donated = jax.tree.leaves((params, state))
        params, state = step(params, state)
        assert all(leaf.is_deleted() for leaf in donated), f"step {k}"
        chex.assert_tree_all_finite((params, state))
        if k % 2:
            chex.assert_trees_all_equal(params, before)
        else:
            assert _changed(before, params), f"step {k}"


# -- building blocks against optax ---------------------------------------------------------------


def _norm(tree) -> float:
    return float(np.sqrt(sum(np.sum(np.square(np.float64(x))) for x in jax.tree.leaves(tree))))


def test_clip_by_global_norm_rescales_to_max_norm_and_keeps_the_norm():
    grads = _random_grads(1)[0]
    grads = jax.tree.map(lambda g: 5.0 / _norm(grads) * g, grads)  # norm 5 > max_norm 2
    tx = jopt.clip_by_global_norm(2.0)
    clipped, state = tx.update(grads, tx.init(grads))
    np.testing.assert_allclose(jopt.clipped_norm(state), 5.0, rtol=1e-6)
    np.testing.assert_allclose(_norm(clipped), 2.0, rtol=1e-6)
    want, _ = optax.clip_by_global_norm(2.0).update(grads, optax.EmptyState())
    chex.assert_trees_all_close(clipped, want, rtol=1e-6, atol=1e-6)


def test_clip_by_global_norm_passes_small_updates_bitwise():
    grads = _random_grads(1)[0]
    grads = jax.tree.map(lambda g: 0.5 / _norm(grads) * g, grads)  # norm 0.5 < max_norm 2
    tx = jopt.clip_by_global_norm(2.0)
    clipped, state = jax.jit(tx.update)(grads, tx.init(grads))
    chex.assert_trees_all_equal(clipped, grads)
    np.testing.assert_allclose(jopt.clipped_norm(state), 0.5, rtol=1e-6)
    want, _ = optax.clip_by_global_norm(2.0).update(grads, optax.EmptyState())
    chex.assert_trees_all_close(clipped, want, rtol=1e-6, atol=1e-6)


def test_clip_matches_optax_clip():
    grads = jax.tree.map(lambda g: 3.0 * g, _random_grads(1)[0])
    got, _ = jopt.clip(1.5).update(grads, jopt.clip(1.5).init(grads))
    want, _ = optax.clip(1.5).update(grads, optax.EmptyState())
    chex.assert_trees_all_equal(got, want)


@pytest.mark.parametrize(
    "mask",
    [{"b": False, "w": True}, lambda params: jax.tree.map(lambda p: p.ndim > 1, params)],
    ids=["tree", "callable"],
)
def test_add_decayed_weights_decays_masked_leaves_only(mask):
    params, grads = _params(), _random_grads(1)[0]
    tx = jopt.add_decayed_weights(0.1, mask)
    got, _ = tx.update(grads, tx.init(params), params)
    chex.assert_trees_all_equal(got["b"], grads["b"])
    chex.assert_trees_all_close(got["w"], grads["w"] + np.float32(0.1) * params["w"], rtol=1e-7)
    want, _ = optax.add_decayed_weights(0.1, mask).update(
        grads, optax.add_decayed_weights(0.1, mask).init(params), params
    )
    chex.assert_trees_all_equal(got, want)


def test_add_l1_penalty_adds_l1_times_sign_of_params():
    params, grads = _params(), _random_grads(1)[0]  # params["b"] holds a 0: sign 0, no penalty
    tx = jopt.add_l1_penalty(0.25)
    got, _ = tx.update(grads, tx.init(params), params)
    want = jax.tree.map(lambda g, p: g + 0.25 * np.sign(p), grads, params)
    chex.assert_trees_all_close(got, want, rtol=1e-7)
    assert float(got["b"][1]) == float(grads["b"][1])


def _run(tx, grads, *, jit: bool):
    update = jax.jit(tx.update) if jit else tx.update
    state, outputs = tx.init(grads[0]), []
    for g in grads:
        out, state = update(g, state)
        outputs.append(out)
    return outputs


@pytest.mark.parametrize("debias", [True, False])
def test_ema_matches_optax_ema_bitwise(debias):
    grads = _random_grads(20)
    got = _run(jopt.ema(0.9, debias), grads, jit=True)
    want = _run(optax.ema(0.9, debias), grads, jit=True)
    chex.assert_trees_all_equal(got, want)


@pytest.mark.parametrize("nesterov", [True, False])
def test_trace_matches_optax_trace(nesterov):
    grads = _random_grads(20)
    # Op by op, the arithmetic is optax's: bitwise equal.
    got = _run(jopt.trace(0.9, nesterov), grads, jit=False)
    want = _run(optax.trace(0.9, nesterov), grads, jit=False)
    chex.assert_trees_all_equal(got, want)
    # Under jit, XLA on CPU fuses optax's `g + decay * t` into a fused multiply-add, but not
    # jopt's `(1 - dampening) * g + decay * t`: they differ by an ulp or two.
    got = _run(jopt.trace(0.9, nesterov), grads, jit=True)
    want = _run(optax.trace(0.9, nesterov), grads, jit=True)
    chex.assert_trees_all_close(got, want, rtol=1e-6, atol=1e-6)


# -- checkpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_state_restores_against_eval_shape_of_init(case):
    tx, params = case.build(), _params()
    abstract = jax.eval_shape(tx.init, params)
    _, state = tx.update(_grad(params), tx.init(params), params)  # a state worth saving
    assert jax.tree.structure(abstract) == jax.tree.structure(state)
    chex.assert_trees_all_equal_shapes_and_dtypes(abstract, state)
    # Save the leaves as NumPy arrays, restore them into the abstract state's structure.
    saved = [np.asarray(leaf) for leaf in jax.tree.leaves(state)]
    restored = jax.tree.unflatten(jax.tree.structure(abstract), saved)
    chex.assert_trees_all_equal(restored, state)


@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_state_structure_does_not_depend_on_learning_rate(case):
    params = _params()
    rate = "learning_rate" if "learning_rate" in case.kwargs else "max_learning_rate"  # Polyak
    other = {**case.kwargs, rate: 0.5 * case.kwargs.get(rate, 1.0) + 0.125}
    want = jax.eval_shape(case.build().init, params)
    got = jax.eval_shape(case.make(**other).init, params)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    chex.assert_trees_all_equal_shapes_and_dtypes(got, want)


def test_adam_state_structure_does_not_depend_on_hyperparameters():
    params = _params()
    want = jax.eval_shape(jopt.adam(1e-3).init, params)
    got = jax.eval_shape(jopt.adam(0.5, b1=0.5, b2=0.9, eps=1e-3, eps_root=1e-9).init, params)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    chex.assert_trees_all_equal_shapes_and_dtypes(got, want)
