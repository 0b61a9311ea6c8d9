"""What the shared suites cannot see of the orthogonal family (jopt/_src/transforms/muon.py,
noisy_sgd.py).

Muon:
- its options against optax.contrib.muon, bitwise (preconditionings, per-step coefficients,
  adaptive scaling, plain momentum, Adam's own rate, batch axes named by dimension numbers, a
  weight decay mask), and `scale_by_muon` against `optax.contrib.scale_by_muon`;
- with weight_decay = 0 optax's compiled program multiplies by its folded constant -lr * s, jopt
  by -lr after s: an ulp apart, no more;
- Jordan's form (`bias_correction=False`) against the NumPy reference over 1000 steps;
- Newton-Schulz brings every singular value into [0.6, 1.2], as the reference does, for wide,
  tall and batched leaves;
- on a matrix problem (the shared convergence problems are vectors, Adam's part) Muon reaches
  the minimum;
- hyperparameters in the state: Adam's rate follows `learning_rate` unless given;
- parameter groups give chosen matrices to AdamW; refusals name the argument or the leaf.

Noisy SGD:
- at the default eta, in float64 and float32, against the reference drawing the same noise from
  the key (the registry's examples take a tiny eta: see jopt/_src/catalogue/orthogonal.py);
- the key: a seed, a typed or a raw key; its data in the state, split as optax splits it;
- eta is in the state; a key that is not one is refused.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax.contrib import MuonDimensionNumbers

import jopt
from jopt._src.transforms.muon import muon, scale_by_muon
from jopt._src.transforms.newton_schulz import orthogonalize
from jopt._src.transforms.noisy_sgd import noisy_sgd as jopt_noisy_sgd
from tests import helpers
from tests.reference.orthogonal import newton_schulz, run_muon, run_noisy_sgd

STEPS = 20
# Weight decays on: optax leaves a decay of 0 out of its program, and XLA then fuses the rest
# differently (test_zero_weight_decay_differs_from_optax_by_its_folded_constants).
_BASE = {"learning_rate": 0.01, "weight_decay": 0.1, "adam_weight_decay": 0.05}


def _tree(seed: int = 0) -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    return {
        "bias": jnp.asarray(rng.normal(size=(3,)), jnp.float32),
        "kernel": jnp.asarray(rng.normal(size=(3, 5)), jnp.float32),
        "tall": jnp.asarray(rng.normal(size=(5, 2)), jnp.float32),
        "conv": jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32),
    }


def _grad(params):
    return jax.tree.map(lambda p: p - 0.25 + 0.1 * jnp.sin(3.0 * p), params)


def _run(tx, params, steps=STEPS):
    def body(carry, _):
        p, s = carry
        u, s = tx.update(_grad(p), s, p)
        return (optax.apply_updates(p, u), s), p

    return jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), None, length=steps)[1])(params)


_CONV = MuonDimensionNumbers(reduction_axis=1, output_axis=2)  # axis 0: a batch axis
# (options, leaves of _tree): trees on which XLA compiles jopt's and optax's programs to the same
# arithmetic (see test_where_xla_compiles_the_programs_apart_they_agree_to_rounding).
OPTIONS = {
    "defaults": ({}, ("bias", "kernel")),
    "options": (
        {
            "nesterov": False,
            "adaptive": True,
            "ns_steps": 3,
            "consistent_rms": 0.2,
            "adam_learning_rate": 0.003,
            "adam_b1": 0.8,
            "adam_eps_root": 1e-8,
        },
        ("bias", "kernel"),
    ),
    "aol_dion": ({"preconditioning": "aol", "ns_coeffs": "dion"}, ("bias", "kernel")),
    "schatten": ({"preconditioning": "schatten"}, ("bias", "kernel")),
    "spectral_tall": ({"preconditioning": "spectral"}, ("bias", "tall")),
    "batch_axes": (
        {"muon_weight_dimension_numbers": {"bias": None, "conv": _CONV}},
        ("bias", "conv"),
    ),
}


def _leaves(keys):
    full = _tree()
    return {key: full[key] for key in keys}


@pytest.mark.parametrize(("options", "keys"), OPTIONS.values(), ids=OPTIONS.keys())
def test_muon_options_match_optax_bitwise(options, keys):
    kwargs, params = {**_BASE, **options}, _leaves(keys)
    ours = _run(muon(**kwargs), params)
    theirs = _run(optax.contrib.muon(**kwargs), params)
    chex.assert_tree_all_finite(theirs)
    chex.assert_trees_all_equal(ours, theirs)


def test_scale_by_muon_matches_optax_bitwise_and_refuses_vectors():
    params, dims = _leaves(("conv",)), {"conv": _CONV}
    ours = _run(
        optax.chain(scale_by_muon(weight_dimension_numbers=dims), optax.scale(-0.01)), params
    )
    theirs = _run(
        optax.chain(optax.contrib.scale_by_muon(weight_dimension_numbers=dims), optax.scale(-0.01)),
        params,
    )
    chex.assert_trees_all_equal(ours, theirs)
    with pytest.raises(ValueError, match=r"jopt.scale_by_muon: the parameter at \['bias'\] has sh"):
        scale_by_muon().init({"bias": jnp.zeros(3)})


def test_weight_decay_mask_leaves_a_matrix_undecayed_and_adam_leaves_to_adam_weight_decay():
    params = _leaves(("bias", "kernel"))
    masked = muon(0.01, weight_decay=0.1, weight_decay_mask={"bias": False, "kernel": False})
    plain = muon(0.01)
    got, _ = masked.update(_grad(params), masked.init(params), params)
    want, _ = plain.update(_grad(params), plain.init(params), params)
    chex.assert_trees_all_equal(got, want)  # and the mask does not reach Adam's leaves:
    decayed = muon(0.01, adam_weight_decay=0.1, weight_decay_mask={"bias": False, "kernel": True})
    got, _ = decayed.update(_grad(params), decayed.init(params), params)
    assert not np.array_equal(got["bias"], want["bias"])
    np.testing.assert_array_equal(got["kernel"], want["kernel"])


def test_where_xla_compiles_the_programs_apart_they_agree_to_rounding():
    """optax bakes its hyperparameters into the program, jopt reads them from the state: on some
    trees (here two matrices next to Adam's leaves) XLA then rewrites optax's divisions by a
    bias correction into products by its reciprocal, or, with weight_decay = 0 (which optax
    leaves out), folds its constant scale s into the rate, t * (-lr * s), where jopt computes
    -lr * (s * t + 0 * theta). An ulp a step: 1.2e-7 apart after 20 steps."""
    params = _tree()
    ours = _run(muon(0.01), params)
    theirs = _run(optax.contrib.muon(0.01), params)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        assert np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))) <= 5e-7


@pytest.mark.parametrize(("dtype", "tolerance"), [(jnp.float64, 1e-12), (jnp.float32, 1e-5)])
def test_jordans_form_without_bias_correction_matches_the_reference(dtype, tolerance):
    kwargs = {"learning_rate": 0.002, "bias_correction": False, "eps": 1e-7}
    with jax.enable_x64(dtype == jnp.float64):
        problem, grad, start = helpers.random_problem(0)
        trajectory, _ = helpers.run_jopt(muon(**kwargs), grad, start(dtype), 1000)
        got = helpers.flat_trajectory(trajectory)
    want = np.stack(run_muon(problem.grad, problem.x0, 1000, **kwargs))
    assert (np.abs(got - want) / np.maximum(1.0, np.abs(want))).max() <= tolerance
    # The correction changes the Nesterov mix of the first steps, and so the path.
    optax_form = np.stack(run_muon(problem.grad, problem.x0, 1000, 0.002, eps=1e-7))
    assert np.abs(optax_form - want).max() > 1e-6


@pytest.mark.parametrize("shape", [(3, 7), (7, 3), (4, 4)], ids=["wide", "tall", "square"])
def test_newton_schulz_is_the_reference_and_nearly_orthogonalizes(shape):
    rng = np.random.default_rng(sum(shape))
    g = rng.normal(size=shape)
    with jax.enable_x64(True):
        coeffs = jnp.asarray((3.4445, -4.7750, 2.0315), jnp.float64)
        got = np.asarray(
            orthogonalize(jnp.asarray(g), coeffs, 5, "frobenius", 1e-8, MuonDimensionNumbers())
        )
    want = newton_schulz(g, (3.4445, -4.7750, 2.0315), 5, 1e-8)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)
    singular = np.linalg.svd(want, compute_uv=False)
    assert singular.min() > 0.6 and singular.max() < 1.2, singular


def test_batch_axes_are_orthogonalized_one_matrix_at_a_time():
    rng = np.random.default_rng(1)
    g = rng.normal(size=(3, 2, 4))  # (in, batch, out)
    dims = MuonDimensionNumbers(reduction_axis=0, output_axis=2)
    with jax.enable_x64(True):
        coeffs = jnp.asarray((3.4445, -4.7750, 2.0315), jnp.float64)
        got = np.asarray(orthogonalize(jnp.asarray(g), coeffs, 5, "frobenius", 1e-8, dims))
    for b in range(2):
        want = newton_schulz(g[:, b, :], (3.4445, -4.7750, 2.0315), 5, 1e-8)
        np.testing.assert_allclose(got[:, b, :], want, rtol=0, atol=1e-13)


def test_muon_reaches_the_minimum_of_a_matrix_problem():
    """f(W) = |A W - B|^2 / 2, W of shape (6, 4): every leaf a matrix, no Adam. Muon steps by
    lr in spectral norm: a rate halved every 100 steps brings it within 1e-3 of the minimum."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(10, 6)) / np.sqrt(10)
    w_star = rng.normal(size=(6, 4))
    b = a @ w_star
    with jax.enable_x64(True):
        tx = muon(jopt.exponential_decay(0.1, 100, 0.5))

        def grad(w):
            return {"w": jnp.asarray(a).T @ (jnp.asarray(a) @ w["w"] - jnp.asarray(b))}

        trajectory, _ = helpers.run_jopt(tx, grad, {"w": jnp.zeros((6, 4))}, 1500)
        distance = np.linalg.norm(np.asarray(trajectory["w"]) - w_star, axis=(1, 2))
    assert distance[0] > 1.0 and distance[-1] < 1e-3, distance[[0, 500, 1000, -1]]


def test_adams_rate_follows_the_learning_rate_unless_given():
    params = _tree()
    state = muon(0.01).init(params)
    assert set(jopt.get_hparams(state)) == {
        "learning_rate",
        "beta",
        "weight_decay",
        "adam_b1",
        "adam_b2",
        "adam_eps_root",
        "adam_weight_decay",
    }
    # One rate for both, as optax's adam_learning_rate=None: the state is then the one built
    # with that rate, and so are the updates (jitted steps only read the state).
    changed = jopt.set_hparams(state, learning_rate=0.003)
    chex.assert_trees_all_equal(changed, muon(0.003).init(params))
    separate = muon(0.01, adam_learning_rate=0.002).init(params)
    assert float(jopt.get_hparams(separate)["adam_learning_rate"]) == np.float32(0.002)


def test_parameter_groups_give_chosen_matrices_to_adamw():
    params = {"embed": _tree()["kernel"], "hidden": _tree()["tall"]}
    adamw = jopt.adamw(3e-4, weight_decay=0.0)
    tx = jopt.param_groups(
        functools.partial(muon, learning_rate=0.02),
        jopt.Group("adamw", "embed", optimizer=adamw),
    )
    updates, _ = tx.update(_grad(params), tx.init(params), params)
    alone, _ = adamw.update(_grad(params)["embed"], adamw.init(params["embed"]), params["embed"])
    chex.assert_trees_all_close(updates["embed"], alone, rtol=0, atol=0)
    singular = np.linalg.svd(np.asarray(updates["hidden"]) / -0.02, compute_uv=False)
    assert singular.min() > 0.6 and singular.max() < 1.2  # times s = 1: (5, 2) has fan_out < fan_in


REFUSALS = {
    "unknown preset": (
        {"ns_coeffs": "polar"},
        "jopt.muon: ns_coeffs must be one of 'standard', 'dion', got 'polar'.",
    ),
    "coefficient shape": (
        {"ns_coeffs": (1.0, 2.0)},
        "jopt.muon: ns_coeffs must be finite numbers of shape (3,) or (n, 3), got (1.0, 2.0).",
    ),
    "more triples than steps": (
        {"ns_coeffs": "dion", "ns_steps": 3},
        "jopt.muon: ns_coeffs has 5 triples (one per step), more than ns_steps=3: optax refuses "
        "these (its message: 'Not enough coeffs').",
    ),
    "steps": ({"ns_steps": 0}, "jopt.muon: ns_steps must be an integer >= 1, got 0."),
    "beta": ({"beta": 1.0}, "jopt.muon: beta must be in [0, 1), got 1.0."),
    "preconditioning": (
        {"preconditioning": "newton"},
        "jopt.muon: preconditioning must be one of 'frobenius', 'spectral', 'aol', 'schatten', "
        "got 'newton'.",
    ),
}


@pytest.mark.parametrize(("kwargs", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_bad_arguments_are_refused_at_construction(kwargs, message):
    with pytest.raises(jopt.ArgumentError) as raised:
        muon(0.01, **kwargs)
    assert str(raised.value) == message


def test_dimension_numbers_for_a_vector_or_overlapping_axes_are_refused_at_init():
    tx = muon(0.01, muon_weight_dimension_numbers={"b": MuonDimensionNumbers()})
    with pytest.raises(ValueError, match=r"jopt.muon: the parameter at \['b'\] has shape \(3,\)"):
        tx.init({"b": jnp.zeros(3)})
    tx = muon(0.01, muon_weight_dimension_numbers={"w": MuonDimensionNumbers(0, 0)})
    with pytest.raises(ValueError, match="must be non-empty and disjoint"):
        tx.init({"w": jnp.zeros((2, 3))})


# -- noisy SGD ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "bits", "tolerance"),
    [(jnp.float64, 64, 1e-12), (jnp.float32, 32, 1e-5)],
    ids=["float64", "float32"],
)
def test_noisy_sgd_at_the_default_eta_follows_the_reference_drawing_the_same_noise(
    dtype, bits, tolerance
):
    """The reference draws JAX's normals from the key in NumPy (threefry, erfinv): 64-bit ones
    for float64 parameters, 32-bit ones for float32 (see jopt/_src/transforms/noisy_sgd.py)."""
    kwargs = {"learning_rate": 0.01, "eta": 0.01, "key": 3}
    with jax.enable_x64(dtype == jnp.float64):
        problem, grad, start = helpers.random_problem(0)
        trajectory, _ = helpers.run_jopt(jopt_noisy_sgd(**kwargs), grad, start(dtype), 1000)
        got = helpers.flat_trajectory(trajectory)
    want = np.stack(run_noisy_sgd(problem.grad, problem.x0, 1000, noise_bits=bits, **kwargs))
    assert (np.abs(got - want) / np.maximum(1.0, np.abs(want))).max() <= tolerance
    quiet = np.stack(run_noisy_sgd(problem.grad, problem.x0, 1000, 0.01, eta=0.0))
    assert np.abs(quiet - want).max() > 1e-3  # the noise moved it


def test_the_key_may_be_a_seed_a_typed_key_or_a_raw_key_and_lives_in_the_state_as_data():
    params = {"w": jnp.zeros((2, 3))}
    states = [
        jopt_noisy_sgd(0.1, key=key).init(params)
        for key in (5, jax.random.key(5), jax.random.PRNGKey(5))
    ]
    for state in states[1:]:
        chex.assert_trees_all_equal(state, states[0])
    data = states[0][0].rng_key
    assert data.dtype == jnp.uint32 and data.shape == (2,)
    tx = jopt_noisy_sgd(1.0, eta=1.0, gamma=0.0, key=5)
    grads = {"w": jnp.zeros((2, 3))}
    updates, state = tx.update(grads, tx.init(params), params)
    # The key is split into (next key, sample key), the sample key into one key per leaf.
    key, sample = jax.random.split(jax.random.key(5))
    (leaf_key,) = jax.random.split(sample, 1)
    np.testing.assert_array_equal(state[0].rng_key, jax.random.key_data(key))
    np.testing.assert_array_equal(updates["w"], -jax.random.normal(leaf_key, (2, 3)))
    other, _ = tx.update(grads, jopt_noisy_sgd(1.0, eta=1.0, gamma=0.0, key=6).init(params), params)
    assert not np.array_equal(other["w"], updates["w"])


def test_set_hparams_changes_the_noise_variance():
    params = {"w": jnp.zeros(4)}
    tx = jopt_noisy_sgd(1.0, eta=0.01, gamma=0.55)
    state = jopt.set_hparams(tx.init(params), eta=0.04)
    assert set(jopt.get_hparams(state)) == {"learning_rate", "eta", "gamma"}
    got, _ = tx.update({"w": jnp.zeros(4)}, state, params)
    want, _ = tx.update({"w": jnp.zeros(4)}, tx.init(params), params)
    np.testing.assert_allclose(got["w"], 2.0 * want["w"], rtol=1e-6)  # sigma = sqrt(eta)


@pytest.mark.parametrize("key", ["seed", 1.5, True, jnp.zeros(3, jnp.uint32)], ids=repr)
def test_a_key_that_is_neither_a_seed_nor_one_key_is_refused(key):
    with pytest.raises(jopt.ArgumentTypeError) as raised:
        jopt_noisy_sgd(0.1, key=key)
    assert str(raised.value).startswith(
        "jopt.noisy_sgd: key must be an integer seed, a jax.random.key(...) or a "
        "jax.random.PRNGKey(...), got "
    )
    assert raised.value.argument == "key"
