"""Adafactor and SM3 on trees where what they factor is visible: matrices and a 3-D leaf.

The shared suites run the registry's examples on leaves of shapes (3,) and (2, 4); here:
- Adafactor on a tree of a (16, 8) matrix, a (3, 5, 8) tensor (factored over its two largest
  axes), a vector and a scalar, with momentum and weight decay: optax's trajectory bitwise in
  float32 (without the momentum, within an ulp a step: XLA rounds optax's constants otherwise),
  and the NumPy float64 reference's to 1e-12;
- the state holds n + m numbers for a factored (n, m) leaf, under optax's field names;
- a custom `decay_rate_fn` is called as optax calls it; a step before `decay_offset` is finite
  (optax's is NaN); complex parameters give optax's updates;
- SM3 with eps = 0 is the paper's SM3-II (the reference) on a tree with a 3-D leaf; optax's
  averaged form (b2 < 1) is optax's bitwise; scalar leaves work (optax's fail); complex
  parameters are refused.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests import helpers
from tests.reference import factored

SHAPES = ((16, 8), (3, 5, 8), (8,), ())
ADAFACTOR = {
    "learning_rate": 0.003,
    "min_dim_size_to_factor": 4,
    "momentum": 0.9,
    "dtype_momentum": None,
    "weight_decay_rate": 1e-3,
}


def _problem(shapes=SHAPES, seed: int = 1):
    return helpers.random_problem(seed, shapes)


def _run(tx, grad, params, steps: int):
    """The iterates of `steps` jitted updates, x0 included."""
    return helpers.run_jopt(tx, grad, params, steps)[0]


def _error(got, want: list[np.ndarray]) -> float:
    """The largest |got - want| / max(1, |want|) of a run against a reference's iterates."""
    want = np.stack(want)
    got = helpers.flat_trajectory(got)
    return float((np.abs(got - want) / np.maximum(1.0, np.abs(want))).max())


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
def test_adafactor_on_factored_leaves_is_optax(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        _, grad, start = _problem()
        ours = _run(jopt.adafactor(**ADAFACTOR), grad, start(dtype), 300)
        theirs = _run(optax.adafactor(**ADAFACTOR), grad, start(dtype), 300)
    if dtype == jnp.float64:  # optax's b_t is float32 (test_optax_agreement.NOT_BITWISE)
        chex.assert_trees_all_close(ours, theirs, rtol=1e-7, atol=1e-7)
    else:
        chex.assert_trees_all_equal(ours, theirs)


def test_adafactor_with_weight_decay_and_no_momentum_is_optax_to_an_ulp_a_step():
    # Given optax's Python constants, XLA computes its `lr * u * rms(theta)` as
    # `u * (rms(theta) * lr)` when a weight decay follows directly: one rounding apart.
    _, grad, start = _problem()
    kwargs = {**ADAFACTOR, "momentum": None}
    ours = _run(jopt.adafactor(**kwargs), grad, start(jnp.float32), 300)
    theirs = _run(optax.adafactor(**kwargs), grad, start(jnp.float32), 300)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_adafactor_on_factored_leaves_matches_the_float64_reference():
    problem, grad, start = _problem()
    want = factored.run_adafactor(problem.grad, problem.x0, 300, **ADAFACTOR, shapes=SHAPES)
    with jax.enable_x64(True):
        got = _run(jopt.adafactor(**ADAFACTOR), grad, start(jnp.float64), 300)
    assert _error(got, want) <= 1e-12


def test_adafactor_state_holds_a_row_and_a_column_per_factored_leaf():
    params = {"w": jnp.zeros((128, 256)), "t": jnp.zeros((4, 256, 130)), "b": jnp.zeros(256)}
    state = jopt.adafactor(1e-3).init(params)
    shapes = {k: jax.tree.map(jnp.shape, optax.tree.get(state, k)) for k in ("v_row", "v_col", "v")}
    assert shapes["v_row"] == {"w": (128,), "t": (4, 130), "b": (1,)}
    assert shapes["v_col"] == {"w": (256,), "t": (4, 256), "b": (1,)}
    assert shapes["v"] == {"w": (1,), "t": (1,), "b": (256,)}
    chex.assert_trees_all_equal_shapes_and_dtypes(
        jax.tree.map(jnp.zeros_like, state[0][1:4]), optax.adafactor(1e-3).init(params)[0][1:]
    )


def test_a_custom_decay_rate_fn_is_called_as_optax_calls_it():
    def capped(step, rate):
        return jnp.minimum(0.999, 1.0 - (step + 1.0) ** -rate)

    _, grad, start = _problem()
    params = start(jnp.float32)
    ours = jopt.scale_by_factored_rms(min_dim_size_to_factor=4, decay_rate_fn=capped)
    theirs = optax.scale_by_factored_rms(min_dim_size_to_factor=4, decay_rate_fn=capped)
    ours, theirs = (optax.chain(tx, optax.scale(-0.01)) for tx in (ours, theirs))
    got = _run(ours, grad, params, 50)
    want = _run(theirs, grad, params, 50)
    chex.assert_trees_all_close(got, want, rtol=1e-6, atol=0)


def test_a_step_before_the_decay_offset_counts_as_the_first():
    _, grad, start = _problem()
    params = start(jnp.float32)
    late, first = jopt.adafactor(1e-3, decay_offset=2), jopt.adafactor(1e-3)
    update_late, update_first = jax.jit(late.update), jax.jit(first.update)
    state = late.init(params)
    for _ in range(3):  # b_t = 0 while count <= offset: each update is a first update
        got, state = update_late(grad(params), state, params)
        want, _ = update_first(grad(params), first.init(params), params)
        chex.assert_trees_all_equal(got, want)
        params = optax.apply_updates(params, got)
    tx = optax.adafactor(1e-3, decay_offset=2)
    updates, _ = jax.jit(tx.update)(grad(params), tx.init(params), params)
    assert not all(bool(jnp.all(jnp.isfinite(u))) for u in updates)  # optax's 0**-0.8


def test_adafactor_on_complex_parameters_is_optax():
    params = (jnp.array([[1.0 + 2.0j, -0.5j], [0.3, 2.0 - 1.0j]], jnp.complex64),)
    grads = (jnp.array([[0.2 - 1.0j, 0.4], [-0.3 + 0.1j, 1.0j]], jnp.complex64),)
    kwargs = {"min_dim_size_to_factor": 2, "momentum": 0.9, "dtype_momentum": None}
    ours, theirs = jopt.adafactor(0.01, **kwargs), optax.adafactor(0.01, **kwargs)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for _ in range(3):
        u_ours, s_ours = ours.update(grads, s_ours, params)
        u_theirs, s_theirs = theirs.update(grads, s_theirs, params)
        chex.assert_trees_all_close(u_ours, u_theirs, rtol=1e-6, atol=1e-9)


# -- SM3 -----------------------------------------------------------------------------------------

SM3_SHAPES = ((4, 6), (2, 3, 5), (7,))


def test_sm3_with_eps_zero_is_the_papers_sm3_ii():
    problem, grad, start = _problem(SM3_SHAPES)
    want = factored.run_sm3(problem.grad, problem.x0, 200, 0.5, eps=0.0, shapes=SM3_SHAPES)
    with jax.enable_x64(True):
        got = _run(jopt.sm3(0.5, eps=0.0), grad, start(jnp.float64), 200)
    assert _error(got, want) <= 1e-12


@pytest.mark.parametrize("b2", [1.0, 0.99])
def test_scale_by_sm3_is_optax_bitwise(b2):
    _, grad, start = _problem(SM3_SHAPES)
    params = start(jnp.float32)
    got = _run(optax.chain(jopt.scale_by_sm3(0.9, b2), optax.scale(-0.1)), grad, params, 200)
    want = _run(optax.chain(optax.scale_by_sm3(0.9, b2), optax.scale(-0.1)), grad, params, 200)
    chex.assert_trees_all_equal(got, want)


def test_sm3_takes_scalar_leaves_which_optax_cannot():
    params = {"w": jnp.ones((2, 3)), "s": jnp.array(0.5)}
    tx = jopt.sm3(0.1)
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
    chex.assert_tree_all_finite(updates)
    with pytest.raises(IndexError):
        optax.sm3(0.1).update(params, optax.sm3(0.1).init(params), params)


def test_sm3_refuses_complex_parameters_naming_them():
    params = {"w": jnp.ones(2), "z": jnp.ones(3, jnp.complex64)}
    with pytest.raises(TypeError, match=r"jopt\.sm3: complex parameters at \['z'\]"):
        jopt.sm3(0.1).init(params)
