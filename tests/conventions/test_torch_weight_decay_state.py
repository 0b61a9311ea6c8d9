"""jopt.torch optimizers keep weight_decay in the state, 0.0 included, as torch's param groups.

torch's `param_group["weight_decay"]` exists for every optimizer (0 by default) and can be changed
between steps. The jopt.torch twins keep their weight-decay block at 0.0, so that
`jopt.set_hparams(state, weight_decay=...)` works on any of them: set under jit after `init`, it
must give bitwise the trajectory of an optimizer built with that weight decay.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

STEPS = 25
# (id, constructor, arguments other than weight_decay)
CASES = [
    ("SGD", "SGD", {"lr": 0.05}),
    ("SGD_momentum_nesterov", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("RMSprop_momentum", "RMSprop", {"lr": 0.01, "momentum": 0.5}),
    ("Adam", "Adam", {"lr": 0.01}),
    ("Adam_decoupled", "Adam", {"lr": 0.01, "decoupled_weight_decay": True}),
    ("AdamW_maximize", "AdamW", {"lr": 0.01, "maximize": True}),
    ("Adamax", "Adamax", {"lr": 0.01}),
    ("NAdam", "NAdam", {"lr": 0.01}),
    ("RAdam", "RAdam", {"lr": 0.01}),
    ("Adagrad_lr_decay", "Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("Adadelta", "Adadelta", {"lr": 1.0}),
    ("SGD_onecycle", "SGD", {"lr": jopt.torch.OneCycleLR(0.05, total_steps=STEPS)}),
]


def _params():
    return {"w": jnp.linspace(-1.0, 1.5, 6).reshape(2, 3), "b": jnp.asarray([0.5, -2.0])}


def _grad(params):
    return jax.tree.map(lambda p: 2.0 * p - 0.25 + 0.1 * jnp.sin(3.0 * p), params)


def _run(tx, state, params):
    def body(carry, _):
        p, s = carry
        u, s = tx.update(_grad(p), s, p)
        p = optax.apply_updates(p, u)
        return (p, s), p

    (_, state), trajectory = jax.lax.scan(body, (params, state), None, length=STEPS)
    return trajectory, state


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "Adamax", "NAdam", "RAdam",
                                  "Adagrad", "Adadelta"])  # fmt: skip
def test_default_weight_decay_zero_is_in_the_state(name):
    state = getattr(jopt.torch, name)().init(_params())
    assert float(jopt.get_hparams(state)["weight_decay"]) == 0.0


def test_adamw_default_weight_decay_is_in_the_state():
    state = jopt.torch.AdamW().init(_params())
    np.testing.assert_allclose(jopt.get_hparams(state)["weight_decay"], 1e-2, rtol=1e-7)


@pytest.mark.parametrize(("case_id", "name", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_weight_decay_set_under_jit_matches_one_built_with_it(case_id, name, kwargs):
    make = getattr(jopt.torch, name)
    built_without = make(**kwargs, weight_decay=0.0)
    built_with = make(**kwargs, weight_decay=0.1)
    params = _params()

    @jax.jit
    def set_then_run(weight_decay):
        state = jopt.set_hparams(built_without.init(params), weight_decay=weight_decay)
        return _run(built_without, state, params)

    got, state = set_then_run(jnp.float32(0.1))
    want, _ = jax.jit(lambda: _run(built_with, built_with.init(params), params))()
    jax.tree.map(np.testing.assert_array_equal, got, want)
    np.testing.assert_array_equal(jopt.get_hparams(state)["weight_decay"], np.float32(0.1))
    # ... and the decay acts: the trajectory is not the one without it.
    plain, _ = set_then_run(jnp.float32(0.0))
    assert not np.array_equal(got["w"][-1], plain["w"][-1]), case_id
