"""`jopt.skip_nonfinite`: a NaN or inf gradient never reaches the params or the optimizer state.

- A step with a NaN, +inf or -inf anywhere in one leaf returns zero updates (in the params'
  dtypes) and leaves the inner state bit for bit as it was, step count included; the counters
  read by `jopt.skipped_steps` say so; the next finite step is, bit for bit, the inner optimizer's
  step from the state before the skipped one (Adam's bias correction did not advance).
- For several optimizers (jopt's and optax's), a run with no non-finite gradient is bitwise the
  bare optimizer's run; a run with non-finite gradients at some steps is bitwise the bare run on
  the finite gradients alone (params frozen at the skipped steps), schedules included.
- `get_hparams`, `set_hparams`, `current_lr` and `clipped_norm` see through the wrapper; the loss
  passed as `value=` reaches the inner transform, and a non-finite one skips the step unless
  `check_value=False`; the wrapper works inside `optax.chain`, under `jit` (one trace) and `vmap`
  (one member NaN), checks the gradient tree against the params, and counters saturate.
- `optax.apply_if_finite(tx, 2)` writes NaN into the params at the third NaN step in a row;
  `skip_nonfinite(tx, max_consecutive=2)` keeps them and raises its sticky `limit_reached` there.
- Bad arguments raise at construction, naming the function, the argument, the value and the range.
"""

from __future__ import annotations

import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt._src.transforms.nonfinite import all_finite
from tests import helpers

PARAMS = {"b": jnp.array([0.1, -0.3, 0.7]), "w": jnp.array([[0.5, -1.0], [2.0, 0.25]])}
INT32_MAX = 2**31 - 1


def _grads(seed: int) -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), PARAMS)


def _poison(grads, leaf: str, value: float, index: int = 1):
    """`grads` with one element of one leaf set to `value`."""
    flat = grads[leaf].reshape(-1).at[index].set(value)
    return {**grads, leaf: flat.reshape(grads[leaf].shape)}


def assert_bitwise_equal(got, want):
    """Same tree, and every leaf with the same dtype, shape and bytes (NaN payloads and -0.0
    included, unlike `==`)."""
    got_leaves, got_def = jax.tree.flatten(got)
    want_leaves, want_def = jax.tree.flatten(want)
    assert got_def == want_def
    for i, (a, b) in enumerate(zip(got_leaves, want_leaves, strict=True)):
        a, b = np.asarray(a), np.asarray(b)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"leaf {i}"
        assert a.tobytes() == b.tobytes(), f"leaf {i}: {a} != {b}"


def _counters(state) -> tuple[int, int, bool, bool]:
    s = jopt.skipped_steps(state)
    return int(s.consecutive), int(s.total), bool(s.last_skipped), bool(s.limit_reached)


# -- one skipped step ----------------------------------------------------------------------------

ADAM = jopt.adam(1e-2)
GUARDED_ADAM = jopt.skip_nonfinite(ADAM)
ADAM_UPDATE = jax.jit(ADAM.update)
GUARDED_UPDATE = jax.jit(GUARDED_ADAM.update)


@pytest.mark.parametrize("leaf", ["b", "w"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_nonfinite_step_leaves_params_and_inner_state_bitwise_unchanged(bad, leaf):
    state = GUARDED_ADAM.init(PARAMS)
    for seed in (0, 1):  # two finite steps first: Adam's count is 2
        _, state = GUARDED_UPDATE(_grads(seed), state, PARAMS)
    before = jax.tree.map(np.array, state)  # a copy of every buffer

    updates, skipped = GUARDED_UPDATE(_poison(_grads(2), leaf, bad), state, PARAMS)

    assert_bitwise_equal(updates, jax.tree.map(jnp.zeros_like, PARAMS))
    assert_bitwise_equal(optax.apply_updates(PARAMS, updates), PARAMS)
    assert_bitwise_equal(skipped.inner_state, before.inner_state)
    assert _counters(skipped) == (1, 1, True, False)

    # The next finite step is Adam's third step from the state before the skipped one.
    grads = _grads(3)
    updates, after = GUARDED_UPDATE(grads, skipped, PARAMS)
    want_updates, want_inner = ADAM_UPDATE(grads, before.inner_state, PARAMS)
    assert_bitwise_equal(updates, want_updates)
    assert_bitwise_equal(after.inner_state, want_inner)
    assert _counters(after) == (0, 1, False, False)
    # Had the skipped step counted, Adam's bias correction would be a step further along.
    advanced, _ = ADAM_UPDATE(grads, ADAM_UPDATE(_grads(2), before.inner_state, PARAMS)[1], PARAMS)
    assert not np.array_equal(np.asarray(updates["w"]), np.asarray(advanced["w"]))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bfloat16", "float16"])
def test_skipped_updates_are_zeros_in_the_params_dtypes_under_strict_promotion(dtype):
    params = {"half": jnp.ones(3, dtype), "full": jnp.ones(2, jnp.float32)}
    grads = {"half": jnp.array([1.0, np.inf, 2.0], dtype), "full": jnp.ones(2, jnp.float32)}
    tx = jopt.skip_nonfinite(jopt.adam(1e-3))
    with jax.numpy_dtype_promotion("strict"):
        state = tx.init(params)
        update = jax.jit(tx.update)
        updates, new_state = update(grads, state, params)
        finite_updates, _ = update(jax.tree.map(jnp.ones_like, grads), state, params)
    assert_bitwise_equal(updates, jax.tree.map(jnp.zeros_like, params))
    chex.assert_trees_all_equal_shapes_and_dtypes(finite_updates, params)
    assert_bitwise_equal(new_state.inner_state, state.inner_state)


# -- whole runs ----------------------------------------------------------------------------------

STEPS = 12
BAD = {3: ("w", np.nan), 4: ("b", np.inf), 9: ("w", -np.inf)}  # two in a row, then one more
GRAD_SEQ = [_grads(100 + k) for k in range(STEPS)]  # independent of the params
POISONED_SEQ = [_poison(g, *BAD[k]) if k in BAD else g for k, g in enumerate(GRAD_SEQ)]
FINITE_SEQ = [g for k, g in enumerate(GRAD_SEQ) if k not in BAD]
APPLY = jax.jit(optax.apply_updates)


def _run(tx, update, seq):
    """Applies the gradients of `seq` in order from PARAMS: (params after each step, state).

    One jitted `update` call per step: compiled into one `lax.scan`, the bare and the wrapped
    optimizer are different programs, which XLA may contract into fused multiply-adds
    differently (a last-bit difference that says nothing about the wrapper).
    """
    params, state, trajectory = PARAMS, tx.init(PARAMS), []
    for grads in seq:
        updates, state = update(grads, state, params)
        params = APPLY(params, updates)
        trajectory.append(params)
    return trajectory, state


def _schedule(count):
    return 0.02 * jnp.minimum(1.0, (count + 1) / 4)  # a warmup: must not advance on skipped steps


RUNS = {
    "sgd_momentum": lambda: helpers.CASES_BY_ID["sgd_momentum"].build(),
    "rmsprop_centered_nesterov": lambda: helpers.CASES_BY_ID["rmsprop_centered_nesterov"].build(),
    "adamw": lambda: helpers.CASES_BY_ID["adamw"].build(),
    "adam_scheduled_clipped": lambda: optax.chain(
        jopt.clip_by_global_norm(1.0), jopt.adam(_schedule)
    ),
    "optax_adam": lambda: optax.adam(1e-2),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_runs_are_the_bare_optimizer_on_the_finite_gradients_alone(name):
    bare = RUNS[name]()
    guarded = jopt.skip_nonfinite(bare)
    bare_update, guarded_update = jax.jit(bare.update), jax.jit(guarded.update)

    # No non-finite gradient: bitwise the bare optimizer, params and state.
    bare_params, bare_state = _run(bare, bare_update, GRAD_SEQ)
    params, state = _run(guarded, guarded_update, GRAD_SEQ)
    assert_bitwise_equal(params, bare_params)
    assert_bitwise_equal(state.inner_state, bare_state)
    assert _counters(state) == (0, 0, False, False)

    # Non-finite gradients at some steps: the params stay where they were at those steps, and the
    # other steps are the bare run on the finite gradients alone.
    bare_params, bare_state = _run(bare, bare_update, FINITE_SEQ)
    params, state = _run(guarded, guarded_update, POISONED_SEQ)
    for step in BAD:
        assert_bitwise_equal(params[step], params[step - 1])
    assert_bitwise_equal([p for k, p in enumerate(params) if k not in BAD], bare_params)
    assert_bitwise_equal(state.inner_state, bare_state)
    assert _counters(state) == (0, len(BAD), False, False)


# -- hyperparameters, value=, chains -------------------------------------------------------------


def test_hparams_are_read_and_set_through_the_wrapper():
    tx = jopt.skip_nonfinite(jopt.adam(_schedule, b1=0.8))
    state = tx.init(PARAMS)
    chex.assert_trees_all_equal(jopt.get_hparams(state), jopt.get_hparams(state.inner_state))
    assert float(jopt.get_hparams(state)["b1"]) == np.float32(0.8)

    step = jax.jit(tx.update)
    lrs = []
    for grads in [_grads(0), _grads(1), _poison(_grads(2), "b", np.nan), _grads(3)]:
        _, state = step(grads, state, PARAMS)
        lrs.append(float(jopt.current_lr(state)))
    # The schedule follows the inner step count: the skipped step neither used nor advanced it.
    want = [float(_schedule(jnp.asarray(k, jnp.int32))) for k in (0, 1, 1, 2)]
    assert lrs == want

    fixed = jopt.skip_nonfinite(jopt.adam(0.1))
    changed = jopt.set_hparams(fixed.init(PARAMS), learning_rate=0.05, b2=0.99)
    assert float(jopt.current_lr(changed)) == np.float32(0.05)
    want_tx = jopt.skip_nonfinite(jopt.adam(0.05, b2=0.99))
    got, want = jax.jit(
        lambda g: (
            fixed.update(g, changed, PARAMS),
            want_tx.update(g, want_tx.init(PARAMS), PARAMS),
        )
    )(_grads(0))
    assert_bitwise_equal(got, want)


def test_clipped_norm_is_read_through_the_wrapper_and_kept_on_skipped_steps():
    tx = jopt.skip_nonfinite(optax.chain(jopt.clip_by_global_norm(1.0), jopt.adam(1e-2)))
    state, update = tx.init(PARAMS), jax.jit(tx.update)
    grads = _grads(0)
    _, state = update(grads, state, PARAMS)
    norm = float(jopt.clipped_norm(state))
    want = np.sqrt(sum(np.sum(np.square(np.asarray(g, np.float64))) for g in grads.values()))
    np.testing.assert_allclose(norm, want, rtol=1e-6)
    _, state = update(_poison(grads, "w", np.nan), state, PARAMS)
    assert float(jopt.clipped_norm(state)) == norm


def _plateau(**kwargs):
    return jopt.skip_nonfinite(jopt.reduce_on_plateau(jopt.sgd(0.1), patience=0), **kwargs)


def test_value_reaches_the_inner_transform_and_a_nonfinite_value_skips_the_step():
    tx = _plateau()
    state, update = tx.init(PARAMS), jax.jit(tx.update)
    _, state = update(_grads(0), state, PARAMS, value=jnp.asarray(2.5))
    assert float(state.inner_state.best) == 2.5  # reduce_on_plateau read value=

    before = jax.tree.map(np.array, state)
    updates, skipped = update(_grads(1), state, PARAMS, value=jnp.asarray(np.nan))
    assert_bitwise_equal(updates, jax.tree.map(jnp.zeros_like, PARAMS))
    assert_bitwise_equal(skipped.inner_state, before.inner_state)
    assert _counters(skipped) == (1, 1, True, False)

    # Without value=, the gradients alone decide.
    _, state = update(_grads(1), skipped, PARAMS)
    assert _counters(state) == (0, 1, False, False)


def test_check_value_false_judges_the_gradients_alone():
    tx = _plateau(check_value=False)
    state, update = tx.init(PARAMS), jax.jit(tx.update)
    _, state = update(_grads(0), state, PARAMS, value=jnp.asarray(2.5))
    updates, state = update(_grads(1), state, PARAMS, value=jnp.asarray(np.nan))
    assert _counters(state) == (0, 0, False, False)
    assert int(state.inner_state.num_bad_evaluations) == 0  # a NaN metric is no improvement:
    assert int(state.inner_state.num_reductions) == 1  # patience 0 lowers the learning rate
    assert float(jnp.max(jnp.abs(updates["w"]))) > 0


def test_works_inside_optax_chain_with_extra_arguments():
    tx = optax.chain(
        optax.scale_by_rms(), jopt.skip_nonfinite(jopt.sgd(0.1, momentum=0.9)), optax.scale(0.5)
    )
    state = tx.init(PARAMS)
    extra = {"value": jnp.asarray(1.0), "grad": _grads(0), "value_fn": lambda p: 0.0}
    update = jax.jit(functools.partial(tx.update, **extra))
    updates, state = update(_grads(0), state, PARAMS)
    chex.assert_tree_all_finite(updates)
    assert _counters(state) == (0, 0, False, False)
    updates, state = update(_poison(_grads(1), "b", np.inf), state, PARAMS)
    assert _counters(state) == (1, 1, True, False)
    # optax's scale_by_rms before the guard saw the inf: its state is not protected.
    assert not bool(all_finite(state[0]))


# -- jit, vmap -----------------------------------------------------------------------------------


def test_jitted_step_traces_once_for_finite_and_nonfinite_gradients():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(grads, state):
        return GUARDED_ADAM.update(grads, state, PARAMS)

    state = GUARDED_ADAM.init(PARAMS)
    for grads in [_grads(0), _poison(_grads(1), "w", np.nan), _grads(2)]:
        _, state = step(grads, state)
    assert _counters(state) == (0, 1, False, False)


def test_vmap_skips_only_the_member_with_a_nonfinite_gradient():
    grads = [_grads(0), _poison(_grads(1), "w", np.nan), _grads(2)]
    lrs = jnp.array([0.1, 0.01, 0.001])
    tx = jopt.skip_nonfinite(jopt.adam(0.1), max_consecutive=0)

    def member(grads, lr):
        state = jopt.set_hparams(tx.init(PARAMS), learning_rate=lr)
        _, state = tx.update(_grads(5), state, PARAMS)
        return tx.update(grads, state, PARAMS) + (state,)

    batched = jax.tree.map(lambda *xs: jnp.stack(xs), *grads)
    updates, states, starts = jax.jit(jax.vmap(member))(batched, lrs)
    single = jax.jit(member)
    for i, (g, lr) in enumerate(zip(grads, lrs, strict=True)):
        pick = jax.tree.map(lambda x, i=i: x[i], (updates, states, starts))
        # The batched program is another program: XLA may place fused multiply-adds elsewhere.
        chex.assert_trees_all_close(pick, single(g, lr), rtol=1e-6, atol=0)
    # The skipped member: zero updates, and its state exactly the one it started the step from.
    assert_bitwise_equal(
        jax.tree.map(lambda x: x[1], updates), jax.tree.map(jnp.zeros_like, PARAMS)
    )
    assert_bitwise_equal(
        jax.tree.map(lambda x: x[1], states.inner_state),
        jax.tree.map(lambda x: x[1], starts.inner_state),
    )
    np.testing.assert_array_equal(states.total, [0, 1, 0])
    np.testing.assert_array_equal(states.last_skipped, [False, True, False])
    np.testing.assert_array_equal(states.limit_reached, [False, True, False])


# -- the difference from optax.apply_if_finite ---------------------------------------------------


def test_optax_applies_a_nan_update_after_max_consecutive_errors_where_jopt_keeps_skipping():
    nan_grads = jax.tree.map(lambda p: jnp.full_like(p, np.nan), PARAMS)
    ours = jopt.skip_nonfinite(jopt.sgd(0.1), max_consecutive=2)
    theirs = optax.apply_if_finite(optax.sgd(0.1), max_consecutive_errors=2)
    ours_update, theirs_update = jax.jit(ours.update), jax.jit(theirs.update)
    ours_params, ours_state = PARAMS, ours.init(PARAMS)
    theirs_params, theirs_state = PARAMS, theirs.init(PARAMS)
    for step in (1, 2, 3, 4):
        updates, ours_state = ours_update(nan_grads, ours_state, ours_params)
        ours_params = APPLY(ours_params, updates)
        updates, theirs_state = theirs_update(nan_grads, theirs_state, theirs_params)
        theirs_params = APPLY(theirs_params, updates)

        assert_bitwise_equal(ours_params, PARAMS)
        assert bool(all_finite(ours_state))
        assert _counters(ours_state) == (step, step, True, step > 2)
        # optax tolerates two NaN steps, then applies the third: the params are NaN for good.
        assert bool(all_finite(theirs_params)) == (step <= 2), step

    # A finite step resumes training; the flag stays up (sticky) for a loop that logs rarely.
    updates, ours_state = ours_update(_grads(0), ours_state, ours_params)
    sgd = jopt.sgd(0.1)
    assert_bitwise_equal(updates, jax.jit(sgd.update)(_grads(0), sgd.init(PARAMS), PARAMS)[0])
    assert _counters(ours_state) == (0, 4, False, True)


# -- tree checks, saturation, the reader ---------------------------------------------------------


def test_gradient_tree_is_checked_against_the_params():
    tx = jopt.skip_nonfinite(optax.sgd(0.1))  # optax's sgd checks nothing itself
    state = tx.init(PARAMS)
    column = {**_grads(0), "b": jnp.ones((3, 1))}
    with pytest.raises(ValueError, match=r"jopt\.skip_nonfinite: gradient at \['b'\].*\(3, 1\)"):
        jax.jit(tx.update)(column, state, PARAMS)
    with pytest.raises(ValueError, match=r"jopt\.skip_nonfinite: .*missing.*\['w'\]"):
        tx.update({"b": jnp.ones(3)}, state, PARAMS)
    half = {**_grads(0), "w": jnp.ones((2, 2), jnp.float16)}
    with pytest.raises(TypeError, match=r"jopt\.skip_nonfinite: gradient at \['w'\].*float16"):
        tx.update(half, state, PARAMS)


def test_counters_saturate_instead_of_wrapping():
    tx = jopt.skip_nonfinite(jopt.sgd(0.1), max_consecutive=INT32_MAX - 1)
    full = jnp.asarray(INT32_MAX, jnp.int32)
    state = tx.init(PARAMS)._replace(consecutive=full, total=full)
    _, state = tx.update(_poison(_grads(0), "b", np.nan), state, PARAMS)
    assert _counters(state) == (INT32_MAX, INT32_MAX, True, True)


def test_all_finite_looks_at_floating_and_complex_leaves_only():
    assert bool(all_finite({}))
    assert bool(all_finite({"i": jnp.arange(3), "f": jnp.ones(2), "none": None}))
    assert not bool(all_finite({"i": jnp.arange(3), "f": jnp.array([1.0, np.nan])}))
    assert not bool(all_finite(jnp.array([1 + 1j, complex(np.inf, 0)])))
    float0 = jax.grad(lambda x, i: x, allow_int=True, argnums=(0, 1))(1.0, 3)[1]
    assert bool(all_finite((jnp.ones(2), float0)))


def test_skipped_steps_needs_exactly_one_guard_in_the_state():
    with pytest.raises(ValueError, match=r"jopt\.skipped_steps: .*found 0"):
        jopt.skipped_steps(jopt.adam(1e-3).init(PARAMS))
    twice = jopt.skip_nonfinite(jopt.skip_nonfinite(jopt.adam(1e-3)))
    with pytest.raises(ValueError, match=r"jopt\.skipped_steps: .*found 2"):
        jopt.skipped_steps(twice.init(PARAMS))
    chained = optax.chain(optax.scale(1.0), GUARDED_ADAM)
    assert _counters(chained.init(PARAMS)) == (0, 0, False, False)


# -- arguments -----------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    pytest.param(
        {"max_consecutive": -1},
        ValueError,
        "max_consecutive must be an integer >= 0, got -1.",
        id="max_consecutive=-1",
    ),
    pytest.param(
        {"max_consecutive": INT32_MAX},
        ValueError,
        f"max_consecutive must be None or an integer in [0, {INT32_MAX - 1}]",
        id="max_consecutive=int32_max",
    ),
    pytest.param(
        {"max_consecutive": 2.5},
        TypeError,
        "max_consecutive must be an integer >= 0, got 2.5.",
        id="max_consecutive=2.5",
    ),
    pytest.param(
        {"max_consecutive": True},
        TypeError,
        "max_consecutive must be an integer >= 0, got True.",
        id="max_consecutive=True",
    ),
    pytest.param(
        {"check_value": "yes"},
        TypeError,
        "check_value must be True or False, got 'yes'.",
        id="check_value=yes",
    ),
    pytest.param(
        {"tx": "adam"},
        TypeError,
        "tx must be an optax.GradientTransformation, got 'adam'.",
        id="tx=adam",
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_ARGUMENTS)
def test_bad_arguments_raise_at_construction(kwargs, error, message):
    kwargs = {"tx": jopt.sgd(0.1), **kwargs}
    with pytest.raises(error, match=re.escape(f"jopt.skip_nonfinite: {message}")):
        jopt.skip_nonfinite(**kwargs)


@pytest.mark.parametrize("max_consecutive", [None, 0, 3, 3.0, INT32_MAX - 1])
def test_allowed_arguments_build(max_consecutive):
    tx = jopt.skip_nonfinite(jopt.sgd(0.1), max_consecutive, check_value=False)
    assert isinstance(tx, optax.GradientTransformationExtraArgs)
