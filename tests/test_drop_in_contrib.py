"""optax.contrib's own optimizer test, pointed at jopt's optax.contrib-named optimizers and
wrappers: the cases, targets, dtype, step count and tolerance of `test_optimizers` in
`optax/contrib/_common_test.py` (optax 0.2.8), so that code written against optax.contrib keeps
working with jopt.

- a parabola, the Rosenbrock function, a matrix parabola and a target of a vector and a matrix,
  in float32, optimized for 30,000 steps from optax's starting points, must end within
  rtol = atol = 3e-2 of the minimum (the schedule-free methods evaluated at their average x);
- updates accept keyword arguments they do not expect, and the jitted step does not recompile
  on its second call (`test_optimizers_accept_extra_args`), for every case and for Mechanic
  around each of optax's base optimizers there.

optax.contrib's optimizers jopt does not have: acprop, simplified_ademamix, madgrad, sophia and
galore. optax's `reduce_on_plateau` case chains `contrib.reduce_on_plateau()` after the optimizer;
`jopt.reduce_on_plateau` wraps the optimizer instead (its tests: tests/schedules).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

STEPS = 30_000
# (optimizer, its arguments, wrapper, its arguments): optax's _MAIN_OPTIMIZERS_UNDER_TEST.
CASES = [
    ("ademamix", {"learning_rate": 1e-3}, None, None),
    ("adopt", {"learning_rate": 1e-2}, None, None),
    ("cocob", {}, None, None),
    ("cocob", {"weight_decay": 1e-2}, None, None),
    ("dadapt_adamw", {"learning_rate": 1e-1}, None, None),
    ("dog", {"learning_rate": 1.0}, None, None),
    ("dowg", {"learning_rate": 1.0}, None, None),
    ("momo", {"learning_rate": 1e-1}, None, None),
    ("momo_adam", {"learning_rate": 1e-1}, None, None),
    ("muon", {"learning_rate": 1e-2}, None, None),
    ("prodigy", {"learning_rate": 1e-1}, None, None),
    ("schedule_free_sgd", {"learning_rate": 1e-2, "warmup_steps": 5000}, None, None),
    ("schedule_free_adamw", {"learning_rate": 1e-2, "warmup_steps": 5000}, None, None),
    ("sgd", {"learning_rate": 1e-1}, "mechanize", {"weight_decay": 0.0}),
    ("sgd", {"learning_rate": 1e-2}, "schedule_free", {"learning_rate": 1e-2}),
]
# Mechanic around optax's _BASE_OPTIMIZERS (its extra-arguments test only, as optax's).
MECHANIZED = [
    ("sgd", {"learning_rate": 1.0}),
    ("sgd", {"learning_rate": 1.0, "momentum": 0.9}),
    ("adam", {"learning_rate": 1.0}),
    ("adamw", {"learning_rate": 1.0}),
    ("adamax", {"learning_rate": 1.0}),
    ("adamaxw", {"learning_rate": 1.0}),
    ("adan", {"learning_rate": 1.0}),
    ("amsgrad", {"learning_rate": 1.0}),
    ("lamb", {"learning_rate": 1.0}),
    ("lion", {"learning_rate": 1.0, "b1": 0.99}),
    ("noisy_sgd", {"learning_rate": 1.0, "eta": 1e-4, "key": 0}),
    ("novograd", {"learning_rate": 1.0}),
    ("optimistic_gradient_descent", {"learning_rate": 1.0, "alpha": 0.7, "beta": 0.1}),
    ("rmsprop", {"learning_rate": 1.0}),
    ("rmsprop", {"learning_rate": 1.0, "momentum": 0.9}),
    ("adabelief", {"learning_rate": 1.0}),
    ("radam", {"learning_rate": 1.0}),
    ("sm3", {"learning_rate": 3.0}),
    ("yogi", {"learning_rate": 1.0, "b1": 0.99}),
]
READS_VALUE = {"momo", "momo_adam"}  # optax's test passes them `value=`
SCHEDULE_FREE = {"schedule_free_sgd", "schedule_free_adamw", "schedule_free"}


def _case_id(case) -> str:
    name, kwargs, wrapper, _ = case
    arguments = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{wrapper}({name}({arguments}))" if wrapper else f"{name}({arguments})"


def _build(case) -> optax.GradientTransformation:
    name, kwargs, wrapper, wrapper_kwargs = case
    tx = getattr(jopt, name)(**kwargs)
    return getattr(jopt, wrapper)(tx, **wrapper_kwargs) if wrapper else tx


def parabola():
    final = jnp.array([1.0, -1.0, 1.0])
    return jnp.array([-1.0, 10.0, 1.0]), final, lambda p: jnp.sum(jnp.square(p - final))


def rosenbrock():
    final = jnp.array([1.0, 1.0])
    return jnp.zeros(2), final, lambda p: (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


def matrix_parabola():
    final = jnp.array([[3.0, -2.0], [1.0, 4.0]])
    return jnp.zeros((2, 2)), final, lambda p: jnp.sum(jnp.square(p - final))


def mixed_tensors():
    final = (jnp.array([1.0, -1.0, 2.0]), jnp.array([[1.0, 0.0], [-1.0, 1.0]]))

    def objective(params):
        return sum(jnp.sum(jnp.square(p - f)) for p, f in zip(params, final, strict=True))

    return (jnp.zeros(3), jnp.zeros((2, 2))), final, objective


TARGETS = (parabola, rosenbrock, matrix_parabola, mixed_tensors)


def _step(tx, objective, reads_value: bool, **extra):
    def step(params, state):
        value, grads = jax.value_and_grad(objective)(params)
        given = {"value": value} if reads_value else {}
        updates, state = tx.update(grads, state, params, **given, **extra)
        return optax.apply_updates(params, updates), state

    return step


def _minimize(tx, target, reads_value: bool):
    """STEPS steps of `tx` on `target` from its start: the final params and state."""
    start, _, objective = target()
    step = _step(tx, objective, reads_value)

    def body(carry, _):
        return step(*carry), None

    (params, state), _ = jax.lax.scan(body, (start, tx.init(start)), length=STEPS)
    return params, state


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_optimization_reaches_the_minimum_as_in_optax_contribs_own_test(case):
    name, _, wrapper, _ = case
    tx = _build(case)

    @jax.jit
    def run_all():  # the four targets in one program: one compilation per case
        finals = []
        for target in TARGETS:
            params, state = _minimize(tx, target, name in READS_VALUE)
            if {name, wrapper} & SCHEDULE_FREE:
                params = jopt.schedule_free_eval_params(state, params)
            finals.append(params)
        return finals

    for target, params in zip(TARGETS, run_all(), strict=True):
        final = target()[1]
        for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(final), strict=True):
            np.testing.assert_allclose(
                got, want, rtol=3e-2, atol=3e-2, err_msg=f"{_case_id(case)} on {target.__name__}"
            )


EXTRA_ARGS_CASES = CASES + [
    (name, kwargs, "mechanize", {"weight_decay": 0.0}) for name, kwargs in MECHANIZED
]


@pytest.mark.parametrize("case", EXTRA_ARGS_CASES, ids=_case_id)
def test_updates_accept_extra_arguments_and_do_not_recompile(case):
    tx = _build(case)
    start, _, objective = rosenbrock()
    step = jax.jit(
        _step(tx, objective, case[0] in READS_VALUE, unexpected_extra_args_your_optimizer=1)
    )
    params, state = step(start, tx.init(start))
    params, _ = step(params, state)
    assert step._cache_size() == 1
    assert np.all(np.isfinite(params))
