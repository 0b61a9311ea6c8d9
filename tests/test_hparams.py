"""Hyperparameters in the state: `jopt.get_hparams`, `jopt.set_hparams` and `jopt.current_lr`.

For every optimizer in `tests/helpers.CASES`:
- the state holds the constructor's hyperparameters (also inside optax wrappers), as arrays of
  the default float dtype;
- a schedule is evaluated at each step and the value used is what `current_lr` reads;
- `set_hparams` validates its arguments, and gives a state and a trajectory bitwise identical to
  building the optimizer with the new values (derived constants such as `1 - b1` are recomputed
  in float64);
- a jitted step given states with different hyperparameters traces once;
- `jax.vmap` over learning rates agrees with separate runs;
- jit and eager agree, and two jitted runs are bitwise identical.
"""

from __future__ import annotations

import inspect
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt._src import registry
from tests import helpers

_ADAM = {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "eps_root": 0.0}
_SGD_MOMENTUM = {"momentum": 0.9, "dampening": 0.0}

# The hyperparameters each case's state must hold, written out from the constructors' documented
# defaults and the case's arguments (not read from jopt). A case not listed must hold what its
# optimizer's registry entry declares (`_declared`); the table checks that rule too.
EXPECTED: dict[str, dict[str, float]] = {
    "sgd": {"learning_rate": 0.05},
    "sgd_momentum": {"learning_rate": 0.05, **_SGD_MOMENTUM},
    "sgd_nesterov": {"learning_rate": 0.05, **_SGD_MOMENTUM},
    "sgd_dampening": {"learning_rate": 0.05, "momentum": 0.9, "dampening": 0.3},
    # The EMA form has no dampening: its state holds none to set.
    "sgd_ema": {"learning_rate": 0.1, "momentum": 0.9},
    "sgd_ema_nesterov": {"learning_rate": 0.1, "momentum": 0.9},
    "sgd_lr_inside": {"learning_rate": 0.05, "momentum": 0.9},
    "sgd_lr_inside_nesterov": {"learning_rate": 0.05, "momentum": 0.9},
    "sgd_weight_decay": {
        "learning_rate": 0.05,
        "momentum": 0.5,
        "dampening": 0.0,
        "weight_decay": 0.01,
    },
    "rmsprop": {"learning_rate": 0.01, "decay": 0.9, "eps": 0.1},
    "rmsprop_torch_style": {"learning_rate": 0.01, "decay": 0.99, "eps": 0.1, **_SGD_MOMENTUM},
    "rmsprop_centered_nesterov": {
        "learning_rate": 0.005,
        "decay": 0.9,
        "eps": 0.1,
        "momentum": 0.9,
    },
    "rmsprop_bias_correction": {"learning_rate": 0.01, "decay": 0.9, "eps": 0.1},
    "adam": {"learning_rate": 0.01, **_ADAM},
    "adam_eps_root": {"learning_rate": 0.01, **_ADAM, "eps": 1e-6, "eps_root": 1e-8},
    "nadam": {"learning_rate": 0.01, **_ADAM},
    "adamw": {"learning_rate": 0.01, **_ADAM, "weight_decay": 0.01},
    "amsgrad": {"learning_rate": 0.01, **_ADAM},
    "amsgrad_corrected": {"learning_rate": 0.01, **_ADAM},
    "adamax": {"learning_rate": 0.01, "b1": 0.9, "b2": 0.999, "eps": 1e-8},
    "radam": {"learning_rate": 0.01, **_ADAM},
    "adagrad": {"learning_rate": 0.1, "eps": 1e-7},
    "adagrad_torch_style": {"learning_rate": 0.1, "eps": 1e-10},
    "adadelta": {"learning_rate": 1.0, "rho": 0.9, "eps": 1e-6},
    "adadelta_weight_decay": {"learning_rate": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.01},
    "lion": {"learning_rate": 2**-13, "b1": 0.9, "b2": 0.99, "weight_decay": 0.01},
    # DoG's example gives init_step_value through optax's pair (kind, value).
    "dog": {"learning_rate": 1.0, "init_step_value": 0.01, "eps": 1e-8},
    "dog_distance": {"learning_rate": 1.0, "init_step_value": 0.1, "eps": 0.0},
}

# New values for set_hparams, as functions of the old one. Decay rates move to values whose
# complements `1 - x` round differently in float32 and float64 (0.8, 0.99): that is where a
# float32 recomputation of `1 - x` would differ from the constructor's.
_CHANGES = {
    "learning_rate": lambda v: 0.3 * v,
    "b1": lambda v: 0.8,
    "b2": lambda v: 0.99 if v != 0.99 else 0.995,
    "momentum": lambda v: 0.8,
    "decay": lambda v: 0.95,
    "rho": lambda v: 0.95,
    "dampening": lambda v: 0.1 if v else v,  # stays 0 where the form has no dampening
    "weight_decay": lambda v: 2 * v,
    "eps": lambda v: 2 * v,
    "eps_root": lambda v: 2 * v,
    "decay_rate": lambda v: 0.7,  # Adafactor's exponent c in b_t = 1 - t**-c
    "decay_offset": lambda v: v + 3,  # its first 3 steps then count as the first (b_t = 0)
    "clipping_threshold": lambda v: 0.5 * v,
    "eps2": lambda v: 2 * v,
    "trust_coefficient": lambda v: 2 * v,  # LARS' trust ratio
    "min_norm": lambda v: 2 * v,
    "eta_minus": lambda v: 0.6,  # Rprop's step size factors and bounds
    "eta_plus": lambda v: 1.3,
    "min_step_size": lambda v: 2 * v,
    "max_step_size": lambda v: 0.5 * v,
    "b3": lambda v: 0.999 if v != 0.999 else 0.9995,  # AdEMAMix's slow EMA
    "alpha": lambda v: 0.7 * v,
    "beta": lambda v: 0.5 * v,
    "weight_lr_power": lambda v: 1.0 if v != 1.0 else 2.0,  # schedule-free's averaging
    "r": lambda v: v + 0.25,
    "warmup_steps": lambda v: v + 5,
    "lower_bound": lambda v: v - 0.5,  # MoMo's
    "f_min": lambda v: v - 0.1,  # Polyak's
    "max_learning_rate": lambda v: 0.5 * v,
    "scaling": lambda v: 0.5 * v,
    "max_linesearch_steps": lambda v: v - 5,  # L-BFGS's line search
    "tol": lambda v: 1e-10,
    "increase_factor": lambda v: 3.0,
    "slope_rtol": lambda v: 2 * v,
    "curv_rtol": lambda v: 0.5,
    "approx_dec_rtol": lambda v: 2 * v,
    "stepsize_precision": lambda v: 2 * v,
    "estim_lr0": lambda v: 2 * v,  # Prodigy's and D-Adaptation's initial estimate d0
    "estim_lr_coef": lambda v: 0.5 * v,
    "beta3": lambda v: 0.95,
    "init_step_value": lambda v: 2 * v,  # DoG's r_eps / alpha / eta_0
    "init_estim_sq_dist": lambda v: 2 * v,  # DoWG's rbar_0^2
    "l2": lambda v: 2 * v,  # ASGD's and FTRL's L2 strength (coefficient of |w|**2 / 2)
    "t0": lambda v: v + 10,  # ASGD's averaging start
    "learning_rate_power": lambda v: -0.6 if v != -0.6 else -0.7,  # FTRL's -q in n**q
    "l1": lambda v: 2 * v,
    "l2_shrinkage": lambda v: 2 * v,
    "adam_b1": lambda v: 0.8,  # Muon's Adam, for the leaves that are not matrices
    "adam_b2": lambda v: 0.99 if v != 0.99 else 0.995,
    "adam_eps_root": lambda v: 2 * v,
    "adam_weight_decay": lambda v: 2 * v,
    "adam_learning_rate": lambda v: 0.3 * v,
    "consistent_rms": lambda v: 0.5 * v,
    "eta": lambda v: 2 * v,  # noisy SGD's noise
    "gamma": lambda v: 0.5 * v,
}
STEPS = 50
SCHEDULE_STEPS = 12


# Cases whose state holds other hyperparameters than their optimizer declares: blocks that an
# option switches on or off (dampening only in SGD's classic form with momentum; RMSProp's
# classic momentum has a dampening it does not offer as an argument).
NOT_AS_DECLARED = {
    "sgd",
    "sgd_ema",
    "sgd_ema_nesterov",
    "sgd_lr_inside",
    "sgd_lr_inside_nesterov",
    "rmsprop_torch_style",
    "dog",  # given (kind, value): the value is declared as init_step_value
    "dog_distance",
}


def _declared(case: helpers.Case) -> dict[str, float]:
    """The numbers the registry declares in the state of `case`'s optimizer, at the case's
    values or the constructor's defaults (a None default leaves its block out)."""
    entry = registry.OPTIMIZERS[case.optimizer]
    values = {
        h.name: case.kwargs.get(h.name, entry.defaults.get(h.name))
        for h in entry.hparams
        if h.is_number and h.in_state
    }
    return {name: value for name, value in values.items() if value is not None}


def _expected(case: helpers.Case) -> dict[str, float]:
    return EXPECTED[case.id] if case.id in EXPECTED else _declared(case)


@pytest.mark.parametrize("case_id", sorted(set(EXPECTED) - NOT_AS_DECLARED))
def test_the_written_out_table_agrees_with_the_declarations(case_id):
    case = helpers.CASES_BY_ID[case_id]
    assert _declared(case) == EXPECTED[case_id]


def _new_values(case: helpers.Case) -> dict[str, float]:
    """Every hyperparameter of `case` that its constructor takes, moved to a new value."""
    accepted = inspect.signature(case.make).parameters
    return {n: _CHANGES[n](v) for n, v in _expected(case).items() if n in accepted}


def _scan(tx, grad, params, state, steps: int):
    """`steps` updates from (params, state) in a `lax.scan`: (stacked iterates, final state)."""

    def body(carry, _):
        p, s = carry
        u, s = tx.update(grad(p), s, p)
        p = optax.apply_updates(p, u)
        return (p, s), p

    (_, state), trajectory = jax.lax.scan(body, (params, state), None, length=steps)
    return trajectory, state


def _problem(case: helpers.Case, dtype: Any = jnp.float32):
    _, grad, start = helpers.random_problem(case.seed)
    return grad, start(dtype)


# -- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_get_hparams_returns_constructor_values(case, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        _, params = _problem(case, dtype)
        state = case.build().init(params)
        got = jopt.get_hparams(state)
        hparams = registry.OPTIMIZERS[case.optimizer].hparams
        integers = {h.name for h in hparams if h.kind == "int"}  # schedule-free's warmup_steps
        want = {
            name: jnp.asarray(value, jnp.int32 if name in integers else dtype)
            for name, value in _expected(case).items()
        }
        assert set(got) == set(want)
        chex.assert_trees_all_equal_shapes_and_dtypes(got, want)
        chex.assert_trees_all_equal(got, want)
        if "learning_rate" in want:  # Polyak SGD has none: its step size comes from the loss
            chex.assert_trees_all_equal(jopt.current_lr(state), want["learning_rate"])


@pytest.mark.parametrize(
    "wrap",
    [
        lambda tx: optax.chain(optax.clip_by_global_norm(1.0), tx),
        lambda tx: optax.MultiSteps(tx, every_k_schedule=2),
    ],
    ids=["chain", "multi_steps"],
)
@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_hparams_are_read_and_set_through_optax_wrappers(case, wrap):
    _, params = _problem(case)
    state = wrap(case.build()).init(params)
    want = {name: jnp.asarray(value, jnp.float32) for name, value in _expected(case).items()}
    chex.assert_trees_all_equal(jopt.get_hparams(state), want)
    if "learning_rate" in want:
        chex.assert_trees_all_equal(jopt.current_lr(state), want["learning_rate"])
    new = _new_values(case)
    changed = jopt.get_hparams(jopt.set_hparams(state, **new))
    chex.assert_trees_all_equal(
        changed, {**want, **{name: jnp.asarray(v, jnp.float32) for name, v in new.items()}}
    )


def test_sgd_weight_decay_mask_state_holds_weight_decay():
    grad, params = _problem(helpers.CASES_BY_ID["sgd_weight_decay"])
    mask = (True, False)

    def build(weight_decay):
        return jopt.sgd(0.05, momentum=0.5, weight_decay=weight_decay, weight_decay_mask=mask)

    state = build(0.01).init(params)
    assert isinstance(state[0], optax.MaskedState)
    chex.assert_trees_all_equal(jopt.get_hparams(state)["weight_decay"], jnp.float32(0.01))
    state = jopt.set_hparams(state, weight_decay=0.02)
    chex.assert_trees_all_equal(jopt.get_hparams(state)["weight_decay"], jnp.float32(0.02))
    chex.assert_trees_all_equal(state, build(0.02).init(params))
    got = jax.jit(lambda p, s: _scan(build(0.01), grad, p, s, 5)[0])(params, state)
    want, _ = helpers.run_jopt(build(0.02), grad, params, 5)
    chex.assert_trees_all_equal(got, jax.tree.map(lambda x: x[1:], want))


@pytest.mark.parametrize(
    ("build", "learning_rate"),
    [(jopt.sgd, 0.05), (jopt.rmsprop, 0.01), (jopt.adadelta, 1.0)],
    ids=["sgd", "rmsprop", "adadelta"],
)
def test_a_weight_decay_built_as_zero_is_in_the_state_and_can_be_set_later(build, learning_rate):
    grad, params = _problem(helpers.CASES_BY_ID["sgd_weight_decay"])
    with pytest.raises(ValueError, match="weight_decay=None.*build the optimizer with a value"):
        jopt.set_hparams(build(learning_rate).init(params), weight_decay=0.01)
    zero = build(learning_rate, weight_decay=0.0)
    state = jopt.set_hparams(zero.init(params), weight_decay=0.01)
    got = jax.jit(lambda p, s: _scan(zero, grad, p, s, 5)[0])(params, state)
    want, _ = helpers.run_jopt(build(learning_rate, weight_decay=0.01), grad, params, 5)
    chex.assert_trees_all_equal(got, jax.tree.map(lambda x: x[1:], want))


# -- schedules -----------------------------------------------------------------------------------


def _values_after_each_step(tx, grad, params, read):
    """`read(state)` before any step and after each of SCHEDULE_STEPS jitted steps."""

    def body(carry, _):
        p, s = carry
        u, s = tx.update(grad(p), s, p)
        return (optax.apply_updates(p, u), s), read(s)

    @jax.jit
    def run(p):
        state = tx.init(p)
        _, after = jax.lax.scan(body, (p, state), None, length=SCHEDULE_STEPS)
        return jnp.concatenate([read(state)[None], after])

    return run(params)


# Cases whose learning rate takes a schedule: all but Rprop's, its initial step size (and Polyak
# SGD, which has none).
SCHEDULED_LR_CASES = [
    case
    for case in helpers.CASES
    if "learning_rate" in (hparams := registry.OPTIMIZERS[case.optimizer].hparams)
    and hparams["learning_rate"].schedulable
]


@pytest.mark.parametrize("case", SCHEDULED_LR_CASES, ids=repr)
def test_current_lr_is_the_scheduled_value_used_at_the_last_step(case):
    grad, params = _problem(case)
    # 8 transition steps, not 10: under jit, XLA turns `count / 10` into `count * 0.1`, and the
    # schedule then ends at -7.5e-10 instead of 0 (eager optax gives 0).
    schedule = optax.linear_schedule(case.kwargs["learning_rate"], 0.0, 8)
    got = _values_after_each_step(case.build(learning_rate=schedule), grad, params, jopt.current_lr)
    # Before any step: schedule(0), the rate the first step will use; after k >= 1 steps:
    # schedule(k - 1). Steps beyond the schedule's end (k > 8) read its final value 0.
    counts = np.array([0, *range(SCHEDULE_STEPS)])
    want = jnp.stack([schedule(k) for k in counts])
    chex.assert_trees_all_close(got, want, rtol=1e-6, atol=0)
    assert got[-1] == 0.0


def test_scheduled_b1_is_stored_at_each_step():
    grad, params = _problem(helpers.CASES_BY_ID["adam"])
    schedule = optax.linear_schedule(0.9, 0.5, 8)
    got = _values_after_each_step(
        jopt.adam(0.01, b1=schedule), grad, params, lambda s: jopt.get_hparams(s)["b1"]
    )
    want = jnp.stack([schedule(k) for k in [0, *range(SCHEDULE_STEPS)]])
    chex.assert_trees_all_close(got, want, rtol=1e-6, atol=0)
    assert got[-1] == np.float32(0.5)


@pytest.mark.parametrize("case", SCHEDULED_LR_CASES, ids=repr)
def test_set_hparams_rejects_a_scheduled_learning_rate(case):
    _, params = _problem(case)
    tx = case.build(learning_rate=optax.constant_schedule(case.kwargs["learning_rate"]))
    with pytest.raises(ValueError, match="schedule"):
        jopt.set_hparams(tx.init(params), learning_rate=0.1)


def test_set_hparams_rejects_a_scheduled_b1():
    _, params = _problem(helpers.CASES_BY_ID["adam"])
    state = jopt.adam(0.01, b1=optax.constant_schedule(0.9)).init(params)
    with pytest.raises(jopt.ArgumentError, match="b1 .*follows a schedule") as raised:
        jopt.set_hparams(state, b1=0.8)
    assert (raised.value.fn, raised.value.argument) == ("jopt.set_hparams", "b1")
    # The other hyperparameters stay settable.
    chex.assert_trees_all_equal(
        jopt.get_hparams(jopt.set_hparams(state, b2=0.99))["b2"], jnp.float32(0.99)
    )


# -- writing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_set_hparams_rejects_unknown_names_and_lists_the_available_ones(case):
    _, params = _problem(case)
    state = case.build().init(params)
    available = ", ".join(sorted(_expected(case)))
    with pytest.raises(ValueError, match=f"'lr' in this state; it holds: {available}\\. A"):
        jopt.set_hparams(state, lr=0.1)


@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_set_hparams_rejects_non_scalars_and_out_of_range_values(case):
    _, params = _problem(case)
    state = case.build().init(params)
    rate = "learning_rate" if "learning_rate" in case.kwargs else "max_learning_rate"  # Polyak
    with pytest.raises(ValueError, match=f"{rate} must be a scalar, got shape \\(3,\\)"):
        jopt.set_hparams(state, **{rate: jnp.full((3,), 0.1)})
    with pytest.raises(ValueError, match=rate):
        jopt.set_hparams(state, **{rate: -0.1})
    for name in ("b1", "b2", "momentum", "decay", "rho"):
        if name in _expected(case):
            with pytest.raises(ValueError, match=name):
                jopt.set_hparams(state, **{name: 1.0})


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_set_hparams_state_equals_the_state_built_with_the_new_values(case, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        _, params = _problem(case, dtype)
        new = _new_values(case)
        got = jopt.set_hparams(case.build().init(params), **new)
        # Bitwise, derived leaves (`1 - b1`, RAdam's rho_inf) included.
        chex.assert_trees_all_equal(got, case.build(**new).init(params))


@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_set_hparams_trajectory_is_bitwise_the_one_built_with_the_new_values(case):
    grad, params = _problem(case)
    new = _new_values(case)
    tx, tx_new = case.build(), case.build(**new)

    @jax.jit
    def both(p):
        # The original optimizer's update, fed a state whose hyperparameters were set...
        changed, _ = _scan(tx, grad, p, jopt.set_hparams(tx.init(p), **new), STEPS)
        # ...and an optimizer built with the new values from the start.
        built, _ = _scan(tx_new, grad, p, tx_new.init(p), STEPS)
        return changed, built

    changed, built = both(params)
    chex.assert_tree_all_finite(built)
    chex.assert_trees_all_equal(changed, built)


# Optimizers whose first update is not linear in the learning rate.
LR_NONLINEAR = {"fromage"}
# Nor, to 1e-6, schedule-free's: a difference of params (y_new - y), exact to an ulp of the params.
LR_NONLINEAR |= {"schedule_free_sgd", "schedule_free_adamw"}
# MoMo's learning rate caps the model's step size: min(lr, h / |d|^2).
LR_NONLINEAR |= {"momo", "momo_adam"}
# COCOB's learning rate scales the gradients, and its bet is invariant to their scale.
LR_NONLINEAR |= {"cocob"}
# FTRL's params are a function of its state: its first update also pulls them toward 0 by
# sqrt(n_0 / n_1), whatever the learning rate.
LR_NONLINEAR |= {"ftrl"}


@pytest.mark.parametrize("case", helpers.FIRST_CASES, ids=repr)
def test_changing_hparams_does_not_retrace_a_jitted_step(case):
    grad, params = _problem(case)
    tx = case.build()
    chex.clear_trace_counter()  # chex counts by source location, shared by the parametrizations

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(p, s):
        return tx.update(grad(p), s, p)

    state = tx.init(params)
    other, _ = step(params, jopt.set_hparams(state, **_new_values(case)))
    chex.assert_tree_all_finite(other)
    if "learning_rate" not in case.kwargs:  # Polyak SGD: its step size comes from the loss
        return
    lr = case.kwargs["learning_rate"]
    first, _ = step(params, state)
    slower, _ = step(params, jopt.set_hparams(state, learning_rate=0.5 * lr))
    # The new values were used, not constants baked in at the first trace: the first update is
    # linear in the learning rate, so halving it halves the update (Fromage's is not: it is
    # -lr / sqrt(1 + lr**2) * ratio * g + (1 / sqrt(1 + lr**2) - 1) * w).
    if case.optimizer in LR_NONLINEAR:
        halved = case.build(learning_rate=0.5 * lr)
        want, _ = jax.jit(halved.update)(grad(params), halved.init(params), params)
    else:
        want = jax.tree.map(lambda u: 0.5 * u, first)
    chex.assert_trees_all_close(slower, want, rtol=1e-6)


@pytest.mark.parametrize("case", helpers.MACHINERY_CASES, ids=repr)
def test_vmap_over_learning_rates_matches_separate_runs(case):
    grad, params = _problem(case)
    lr = case.kwargs["learning_rate"]
    rates = (0.5 * lr, lr, 2.0 * lr)
    tx = case.build()

    @jax.jit
    def batched(rates_array):
        def one(rate):
            state = jopt.set_hparams(tx.init(params), learning_rate=rate)
            return _scan(tx, grad, params, state, 20)

        return jax.vmap(one)(rates_array)

    # One compiled unbatched run, started from each state the constructor builds (those states
    # equal set_hparams' bitwise, and so do the trajectories: see test_set_hparams_*).
    separate = jax.jit(lambda state: _scan(tx, grad, params, state, 20))

    trajectories, states = batched(jnp.asarray(rates, jnp.float32))
    for i, rate in enumerate(rates):
        trajectory, state = separate(case.build(learning_rate=rate).init(params))
        got_trajectory, got_state = jax.tree.map(lambda x, i=i: x[i], (trajectories, states))
        # Close, not bitwise: batching changes XLA's fusion and its use of fused multiply-adds.
        # Here about half the cases come out bitwise (plain sgd, adam, adamw, amsgrad, adamax,
        # radam, adadelta, lion); the momentum SGDs, most rmsprops, nadam and adagrad differ by
        # up to 2.4e-7.
        chex.assert_trees_all_close(got_trajectory, trajectory, rtol=1e-6, atol=1e-6)
        chex.assert_trees_all_close(got_state, state, rtol=1e-6, atol=1e-6)
        chex.assert_trees_all_equal(jopt.current_lr(got_state), jnp.float32(rate))


# -- jit, eager, determinism ---------------------------------------------------------------------


@pytest.mark.parametrize("case", helpers.MACHINERY_CASES, ids=repr)
def test_jit_and_eager_agree_and_jitted_runs_are_deterministic(case):
    grad, params = _problem(case)
    jitted, jitted_state = helpers.run_jopt(case.build(), grad, params, 20)
    again, again_state = helpers.run_jopt(case.build(), grad, params, 20)  # a second compile
    chex.assert_trees_all_equal((jitted, jitted_state), (again, again_state))

    tx = case.build()
    p, state, eager = params, tx.init(params), [params]
    for _ in range(20):
        u, state = tx.update(grad(p), state, p)
        p = optax.apply_updates(p, u)
        eager.append(p)
    eager = jax.tree.map(lambda *xs: jnp.stack(xs), *eager)
    # Close, not bitwise: eager runs op by op, without XLA's fusion (up to 2.4e-7 apart here).
    chex.assert_trees_all_close(eager, jitted, rtol=1e-6, atol=1e-6)
    chex.assert_trees_all_close(state, jitted_state, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_each_transforms_hyperparameters_travel_as_one_buffer(case):
    """A jitted step takes and returns one array per transform's hyperparameters, not one per
    hyperparameter: on the CPU every buffer costs microseconds of dispatch at each call."""
    _, params = _problem(case)
    state = case.build().init(params)
    nodes = [node for _, node, _ in jopt._src.hparam_access.nodes(state)]
    assert nodes
    for node in nodes:
        (packed,) = jax.tree.leaves(node)
        assert packed.shape == (len(node.meta.names) + len(node.meta.derived),)
        for name in node.meta.names:
            assert node[name].shape == () and node[name] == packed[node.meta.index[name]]


# -- declarations: kinds and printing ----------------------------------------------------------


def test_a_state_prints_under_eval_shape_and_inside_jit():
    params = {"w": jnp.ones(3)}
    tx = jopt.adam(1e-3)
    abstract = jax.eval_shape(tx.init, params)
    assert "HParams(b1, b2, eps, eps_root; packed float32[6])" in repr(abstract)

    def init(p):
        state = tx.init(p)
        assert "HParams(b1, b2, eps, eps_root" in repr(state)  # tracers: no values to show
        return state

    assert "HParams(b1=Array(0.9" in repr(jax.jit(init)(params))


def test_an_integer_hyperparameter_stays_an_integer():
    state = jopt.reduce_on_plateau(jopt.sgd(0.1), patience=3).init({"w": jnp.ones(2)})
    patience = jopt.get_hparams(state)["patience"]
    assert patience.dtype == jnp.int32 and patience == 3
    with pytest.raises(jopt.ArgumentTypeError, match="patience must be an integer >= 0, got 2.5"):
        jopt.set_hparams(state, patience=2.5)
    for value in (5, 5.0, np.int64(5)):
        assert jopt.get_hparams(jopt.set_hparams(state, patience=value))["patience"] == 5

    def patience_of(k):
        return jopt.get_hparams(jopt.set_hparams(state, patience=k))["patience"]

    chex.assert_trees_all_equal(jax.vmap(patience_of)(jnp.array([1, 7])), jnp.array([1, 7]))
    with pytest.raises(jopt.ArgumentTypeError, match="must have an integer dtype") as raised:
        jax.vmap(patience_of)(jnp.array([1.0, 7.5]))
    assert raised.value.argument == "patience"


@pytest.mark.parametrize(
    "tx", [jopt.sgd(0.5), jopt.adam(0.5)], ids=["sgd (learning rate alone)", "adam"]
)
def test_set_hparams_outside_vmap_sets_every_row_of_a_stacked_state(tx):
    """A state stacked over seeds (as `jax.vmap(tx.init)` makes it) keeps its shape: every row
    gets the value, and the vmapped step still runs."""
    params = {"w": jnp.ones((3, 2))}
    states = jax.vmap(tx.init)(params)
    before = [x.shape for x in jax.tree.leaves(states)]
    states = jopt.set_hparams(states, learning_rate=0.1)
    assert [x.shape for x in jax.tree.leaves(states)] == before
    np.testing.assert_array_equal(
        jopt.get_hparams(states)["learning_rate"], np.full(3, 0.1, np.float32)
    )
    updates, _ = jax.vmap(tx.update)(params, states, params)
    single = jopt.set_hparams(tx.init({"w": jnp.ones(2)}), learning_rate=0.1)
    expected, _ = tx.update({"w": jnp.ones(2)}, single, {"w": jnp.ones(2)})
    np.testing.assert_array_equal(updates["w"], np.stack([expected["w"]] * 3))


def test_traced_values_are_checked_under_checkify_and_cost_nothing_elsewhere():
    """Inside jit a value is a tracer: set_hparams cannot refuse it while tracing. Under
    `jax.experimental.checkify.checkify` it reports a value out of its range; without it, the
    check compiles to nothing and the step runs as written."""
    from jax.experimental import checkify

    params = {"w": jnp.ones(2)}
    tx = jopt.sgd(0.1, momentum=0.9)

    def step(state, learning_rate, momentum):
        state = jopt.set_hparams(state, learning_rate=learning_rate, momentum=momentum)
        return tx.update(params, state, params)

    checked = jax.jit(checkify.checkify(step))
    error, _ = checked(tx.init(params), -0.1, 0.5)
    assert error.get() == (
        "jopt.set_hparams: learning_rate (the hyperparameters at [1].hparams) must be a finite "
        "number >= 0, got -0.10000000149011612. (`check` failed)"
    )
    error, _ = checked(tx.init(params), 0.1, 1.0)
    assert "momentum" in error.get() and "must be in [0, 1), got 1.0" in error.get()
    error, _ = checked(tx.init(params), jnp.inf, 0.5)
    assert "must be a finite number >= 0, got inf" in error.get()
    error, (updates, _) = checked(tx.init(params), 0.1, 0.5)
    assert error.get() is None
    plain = jax.jit(step)
    unchecked, _ = plain(tx.init(params), -0.1, 0.5)
    np.testing.assert_array_equal(unchecked["w"], np.full(2, 0.1, np.float32))  # ascends
    lowered = plain.lower(tx.init(params), 0.1, 0.5).as_text()
    assert "custom_call" not in lowered and "callback" not in lowered  # nothing left of the check


@pytest.mark.parametrize("value", [float("inf"), -float("inf")])
def test_an_infinite_value_is_refused_as_not_finite(value):
    with pytest.raises(jopt.ArgumentError) as error:
        jopt.sgd(value)
    assert str(error.value) == f"jopt.sgd: learning_rate must be a finite number >= 0, got {value}."
