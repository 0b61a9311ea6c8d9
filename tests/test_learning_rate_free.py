"""What the shared suites cannot see of the learning-rate-free family (jopt/_src/transforms/
prodigy.py, dadapt.py, dog.py, cocob.py, mechanize.py).

- The defaults (gamma = 1, d0 = 1e-6, r_eps = 1e-6 (1 + ||x0||), rbar_0^2 = eps), which the
  registry's examples leave for reasons given in the catalogue, and optax's other options
  (Prodigy's safeguard_warmup and beta3, DoG's first step given as a learning rate, weight decay)
  are optax.contrib's trajectories, bitwise, over 1000 steps.
- DoG's, DoWG's and COCOB's coupled weight decay against the NumPy references (float64); DoG
  and DoWG on complex parameters, as optax's.
- Where jopt departs from optax: a zero gradient at the first step keeps Prodigy's and
  D-Adaptation's estimate d (optax's becomes NaN).
- Mechanic (`jopt.mechanize`, a wrapper, not a registry entry): bitwise optax.contrib.mechanize
  over 1000 steps around a jopt base; both forms against the reference over the first 50 steps
  (its scale then grows geometrically and the trajectory amplifies rounding: float64 runs of the
  same algorithm part by 1e-1 within 300 steps on this problem); the base's hyperparameters and
  Mechanic's own through get_hparams / set_hparams.
- Refusals of bad arguments, with their messages.
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
from tests.reference import learning_rate_free as reference

STEPS = 1000
DTYPES = {"float32": jnp.float32, "float64": jnp.float64}

# (jopt constructor, optax constructor, dtypes): optax's conventions the examples leave.
OPTAX_TWINS = {
    "prodigy_defaults": (jopt.prodigy, optax.contrib.prodigy, ("float32", "float64")),
    "prodigy_options": (
        lambda: jopt.prodigy(0.5, (0.8, 0.99), 0.99, weight_decay=0.01, safeguard_warmup=True),
        lambda: optax.contrib.prodigy(
            0.5, (0.8, 0.99), 0.99, weight_decay=0.01, safeguard_warmup=True
        ),
        ("float32",),
    ),
    "dadapt_adamw_betas": (
        lambda: jopt.dadapt_adamw(betas=(0.85, 0.995)),
        lambda: optax.contrib.dadapt_adamw(betas=(0.85, 0.995)),
        ("float32",),
    ),
    "dadapt_adamw_defaults": (
        jopt.dadapt_adamw,
        optax.contrib.dadapt_adamw,
        ("float32", "float64"),
    ),
    "dog_learning_rate": (
        lambda: jopt.dog(init_step=("learning_rate", 1e-2), weight_decay=0.01),
        lambda: optax.contrib.dog(init_step=("learning_rate", 1e-2), weight_decay=0.01),
        ("float32",),
    ),
    "dowg_defaults": (jopt.dowg, optax.contrib.dowg, ("float32",)),
    "mechanize_adam": (
        lambda: jopt.mechanize(jopt.adam(1.0)),
        lambda: optax.contrib.mechanize(optax.adam(1.0)),
        ("float32", "float64"),
    ),
    "mechanize_sgd_options": (
        lambda: jopt.mechanize(jopt.sgd(0.5), weight_decay=0.1, eps=1e-6, s_init=1e-4, num_betas=3),
        lambda: optax.contrib.mechanize(
            optax.sgd(0.5), weight_decay=0.1, eps=1e-6, s_init=1e-4, num_betas=3
        ),
        ("float32",),
    ),
}
PAIRS = [(name, dtype) for name, (_, _, dtypes) in OPTAX_TWINS.items() for dtype in dtypes]


@pytest.mark.parametrize(("name", "dtype_name"), PAIRS, ids=[f"{n}-{d}" for n, d in PAIRS])
def test_optax_conventions_the_examples_leave_are_optax_bitwise(name, dtype_name):
    mine, theirs, _ = OPTAX_TWINS[name]
    dtype = DTYPES[dtype_name]
    with jax.enable_x64(dtype == jnp.float64):
        _, grad, start = helpers.random_problem(0)
        params = start(dtype)
        ours, _ = helpers.run_jopt(mine(), grad, params, STEPS)
        want, _ = helpers.run_jopt(theirs(), grad, params, STEPS)
    chex.assert_tree_all_finite(want)
    chex.assert_trees_all_equal(ours, want)


def _against_reference(tx, run, steps: int, tolerance: float, **kwargs) -> np.ndarray:
    """Runs `tx` in float64 and checks it against `run` to `tolerance`; returns the reference."""
    problem = helpers.random_problem(0)[0]
    want = np.stack(run(problem.grad, problem.x0, steps, **kwargs))
    with jax.enable_x64(True):
        _, grad, start = helpers.random_problem(0)
        trajectory, _ = helpers.run_jopt(tx, grad, start(jnp.float64), steps)
        got = helpers.flat_trajectory(trajectory)
    error = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    assert error.max() <= tolerance, f"relative error {error.max():.3g} at step {error.argmax()}"
    return want


COUPLED_DECAY = {
    "dog": (jopt.dog, reference.run_dog, {"init_step": ("distance", 0.1), "eps": 0.0}),
    "dowg": (jopt.dowg, reference.run_dowg, {"init_estim_sq_dist": 0.1}),
    "cocob": (jopt.cocob, reference.run_cocob, {"alpha": 10.0}),
}


@pytest.mark.parametrize("name", COUPLED_DECAY)
def test_coupled_weight_decay_matches_the_reference(name):
    make, run, kwargs = COUPLED_DECAY[name]
    kwargs = {"learning_rate": 1.0, "weight_decay": 0.05, **kwargs}
    want = _against_reference(make(**kwargs), run, 300, 1e-12, **kwargs)
    plain = np.stack(run(*_problem_args(300), **{**kwargs, "weight_decay": 0.0}))
    assert np.abs(plain[-1] - want[-1]).max() > 1e-2  # the decay moved the minimum


def _problem_args(steps: int):
    problem = helpers.random_problem(0)[0]
    return problem.grad, problem.x0, steps


@pytest.mark.parametrize("name", ["prodigy", "dadapt_adamw"])
def test_a_zero_first_gradient_keeps_the_estimate_where_optax_gets_nan(name):
    params = jnp.array([1.0, -2.0, 0.5])
    grads = [jnp.zeros(3), jnp.array([0.3, -0.2, 0.1])]
    tx, theirs = getattr(jopt, name)(), getattr(optax.contrib, name)()
    state, other = tx.init(params), theirs.init(params)
    for g in grads:
        updates, state = tx.update(g, state, params)
        _, other = theirs.update(g, other, params)
        chex.assert_tree_all_finite(updates)
    assert float(state.estim_lr) >= np.float32(1e-6)  # d0 or more, and finite
    assert np.isnan(float(other.estim_lr))


@pytest.mark.parametrize("name", ["dog", "dowg"])
def test_dog_and_dowg_take_complex_parameters_as_optax_does(name):
    target = jnp.asarray(0.5 + 0.5j, jnp.complex64)
    params = jnp.array([1 + 1j, -2 + 0.5j, 0.3 - 1j], jnp.complex64)

    def grad(p):  # optax's convention: the conjugate of jax.grad of |p - target|^2
        return 2 * (p - target)

    ours, _ = helpers.run_jopt(getattr(jopt, name)(), grad, params, 200)
    theirs, _ = helpers.run_jopt(getattr(optax.contrib, name)(), grad, params, 200)
    # Not bitwise for DoG: inside the jitted scan XLA fuses the complex step differently from
    # optax's, an ulp apart from step 55 on (eagerly the two are bitwise).
    chex.assert_trees_all_close(ours, theirs, rtol=1e-6, atol=1e-6)
    assert float(jnp.max(jnp.abs(ours[-1] - target))) < 1e-5


# -- Mechanic ------------------------------------------------------------------------------------


def _numpy_adam(learning_rate: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """optax's Adam update u_t (tests/reference/optimizers.run_adam's step), as Mechanic's base."""
    moments = {"m": 0.0, "v": 0.0}

    def base(g, t):
        moments["m"] = b1 * moments["m"] + (1 - b1) * g
        moments["v"] = b2 * moments["v"] + (1 - b2) * g**2
        m_hat, v_hat = moments["m"] / (1 - b1**t), moments["v"] / (1 - b2**t)
        return -learning_rate * m_hat / (np.sqrt(v_hat) + eps)

    return base


@pytest.mark.parametrize("form", ["optax", "paper"])
def test_mechanize_matches_the_reference_in_both_forms(form):
    kwargs = {"weight_decay": 0.1, "form": form}
    tx = jopt.mechanize(jopt.adam(1.0), **kwargs)
    want = _against_reference(
        tx, reference.mechanize_iterates, 50, 1e-12, base=_numpy_adam(1.0), **kwargs
    )
    if form == "paper":  # the clip of h in the reward matters within these steps
        clipped = reference.mechanize_iterates(
            *_problem_args(50), _numpy_adam(1.0), weight_decay=0.1
        )
        assert np.abs(np.stack(clipped) - want).max() > 1e-6


def test_mechanize_holds_its_hyperparameters_next_to_the_base_optimizers():
    params = (jnp.array([1.0, -2.0]), jnp.array([[0.5]]))
    grad = helpers.random_problem(0, shapes=((2,), (1, 1)))[1]
    tx = jopt.mechanize(jopt.adam(1.0), weight_decay=0.02)
    state = tx.init(params)
    want = {"learning_rate": 1.0, "b1": 0.9, "b2": 0.999, "eps": 1e-8, "eps_root": 0.0}
    want |= {"mechanic_weight_decay": 0.02, "mechanic_eps": 1e-8, "mechanic_s_init": 1e-6}
    chex.assert_trees_all_equal(
        jopt.get_hparams(state), {k: jnp.float32(v) for k, v in want.items()}
    )
    changed = jopt.set_hparams(state, learning_rate=0.5, mechanic_weight_decay=0.05)
    built = jopt.mechanize(jopt.adam(0.5), weight_decay=0.05)
    chex.assert_trees_all_equal(changed, built.init(params))

    def run(tx, state):
        p = params
        for _ in range(5):
            u, state = tx.update(grad(p), state, p)
            p = optax.apply_updates(p, u)
        return p

    chex.assert_trees_all_equal(run(tx, changed), run(built, built.init(params)))


# -- refusals ------------------------------------------------------------------------------------

REFUSALS = [
    (lambda: jopt.prodigy(b1=1.0), r"jopt\.prodigy: b1 must be in \[0, 1\), got 1\.0\."),
    (lambda: jopt.prodigy(estim_lr0=0.0), r"jopt\.prodigy: estim_lr0 must be > 0, got 0\.0\."),
    (
        lambda: jopt.dadapt_adamw(form="torch"),
        r"jopt\.dadapt_adamw: form must be one of 'optax', 'paper', got 'torch'\.",
    ),
    (
        lambda: jopt.dog(init_step="fast"),
        r"jopt\.dog: init_step must be one of 'heuristic', 'distance', 'learning_rate', got 'fast'",
    ),
    (
        lambda: jopt.dog(init_step=("heuristic", 1e-2, 3)),
        r"jopt\.dog: init_step must be one of .*, or optax's pair \(kind, value\), got",
    ),
    (
        lambda: jopt.dowg(eps=0.0),
        r"jopt\.dowg: eps=0 needs an init_estim_sq_dist > 0: without one the initial squared "
        r"distance estimate is eps, 0, and DoWG would never move\.",
    ),
    (lambda: jopt.cocob(alpha=0.0), r"jopt\.cocob: alpha must be > 0, got 0\.0\."),
    (
        lambda: jopt.mechanize(3),
        r"jopt\.mechanize: base_optimizer must be an optax\.GradientTransformation, got 3\.",
    ),
    (
        lambda: jopt.mechanize(jopt.sgd(1.0), num_betas=0),
        r"jopt\.mechanize: num_betas must be an integer >= 1, got 0\.",
    ),
    (lambda: jopt.mechanize(jopt.sgd(1.0), eps=0.0), r"jopt\.mechanize: eps must be > 0, got 0"),
]


@pytest.mark.parametrize(("build", "message"), REFUSALS, ids=[m[:40] for _, m in REFUSALS])
def test_bad_arguments_are_refused_with_a_clear_message(build, message):
    with pytest.raises(jopt.ArgumentError, match=message):
        build()


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (jopt.prodigy, "Prodigy's estimate takes real inner products"),
        (jopt.dadapt_adamw, "D-Adaptation's estimate takes real inner products"),
        (jopt.cocob, "COCOB bets on the sign of each coordinate's gradients"),
        (lambda: jopt.mechanize(jopt.sgd(1.0)), "Mechanic's scale is learned from real"),
    ],
)
def test_complex_parameters_are_refused_naming_the_path(make, what):
    with pytest.raises(TypeError, match=rf"the parameter at \['w'\] is complex .*: {what}"):
        make().init({"w": jnp.ones(2, jnp.complex64)})


@pytest.mark.parametrize(
    "make", [jopt.prodigy, jopt.dadapt_adamw, jopt.dog, lambda: jopt.mechanize(jopt.sgd(1.0))]
)
def test_update_without_params_is_refused(make):
    tx = make()
    with pytest.raises(ValueError, match="needs the params"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))
