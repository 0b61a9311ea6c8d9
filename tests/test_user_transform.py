"""A transform written outside jopt (docs/examples/signum.py, shown in docs/hparams.md) gets
jopt's hyperparameter machinery from its declaration alone: checked arguments with errors as
data, hyperparameters in the state (read, set inside jit without recompiling, vmapped over,
scheduled), the tree checks, and the exact numbers of its formula (against NumPy, float64).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "signum.py"


def _load():
    spec = importlib.util.spec_from_file_location("signum_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


signum = _load().signum
PARAMS = {"w": jnp.array([0.5, -1.0, 2.0], jnp.float32), "b": jnp.array(0.25, jnp.float32)}


def _grad(params):
    return jax.tree.map(lambda p: 2.0 * (p - 0.1) + 0.3 * jnp.sin(3.0 * p), params)


def _numpy_signum(x, steps, lr, momentum, weight_decay):
    """The docstring's formula in float64."""
    m = np.zeros_like(x)
    for _ in range(steps):
        g = 2.0 * (x - 0.1) + 0.3 * np.sin(3.0 * x)
        m = momentum * m + (1.0 - momentum) * g
        x = x - lr * (np.sign(m) + weight_decay * x)
    return x


def test_the_docs_show_the_example_as_it_is():
    page = (ROOT / "docs" / "hparams.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    assert EXAMPLE.read_text() in blocks


def test_arguments_are_checked_with_the_declared_ranges_and_reported_as_data():
    with pytest.raises(jopt.ArgumentError, match=r"^signum: momentum must be in \[0, 1\)") as e:
        signum(0.1, momentum=1.0)
    assert (e.value.fn, e.value.argument, e.value.value) == ("signum", "momentum", 1.0)
    with pytest.raises(jopt.ArgumentTypeError, match="weight_decay must be a real scalar"):
        signum(0.1, weight_decay="0.1")


def test_it_computes_its_formula_exactly_in_float64():
    with jax.enable_x64(True):
        tx = signum(0.01, momentum=0.8, weight_decay=0.05)
        x = jnp.asarray(np.linspace(-1.0, 1.5, 7))
        state = tx.init(x)
        for _ in range(30):
            updates, state = tx.update(_grad(x), state, x)
            x = optax.apply_updates(x, updates)
        want = _numpy_signum(np.linspace(-1.0, 1.5, 7), 30, 0.01, 0.8, 0.05)
        np.testing.assert_allclose(np.asarray(x), want, rtol=0, atol=1e-15)


def test_its_hyperparameters_live_in_the_state():
    tx = signum(0.1, momentum=0.9)
    state = tx.init(PARAMS)
    assert jopt.current_lr(state) == jnp.float32(0.1)
    want = {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.0}
    chex.assert_trees_all_equal(
        jopt.get_hparams(state), {k: jnp.float32(v) for k, v in want.items()}
    )
    with pytest.raises(jopt.ArgumentError, match=r"set_hparams: momentum must be in \[0, 1\)"):
        jopt.set_hparams(state, momentum=1.5)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state):
        updates, state = tx.update(_grad(params), state, params)
        return optax.apply_updates(params, updates), state

    params, state = step(PARAMS, state)
    params, state = step(params, jopt.set_hparams(state, learning_rate=0.01, momentum=0.5))
    assert jopt.get_hparams(state)["momentum"] == jnp.float32(0.5)


def test_a_batch_of_learning_rates_is_one_vmapped_program():
    tx = signum(0.1)

    def run(lr):
        params, state = PARAMS, jopt.set_hparams(tx.init(PARAMS), learning_rate=lr)
        for _ in range(5):
            updates, state = tx.update(_grad(params), state, params)
            params = optax.apply_updates(params, updates)
        return params

    rates = jnp.array([0.1, 0.03, 0.01])
    batched = jax.vmap(run)(rates)
    for i, lr in enumerate(rates):
        chex.assert_trees_all_close(jax.tree.map(lambda x, i=i: x[i], batched), run(lr), rtol=1e-6)


def test_a_scheduled_learning_rate_is_read_back_and_a_bad_gradient_tree_named():
    tx = signum(jopt.exponential_decay(0.1, 1, 0.5))
    state = tx.init(PARAMS)
    for want in (0.1, 0.05, 0.025):
        _, state = tx.update(_grad(PARAMS), state, PARAMS)
        assert jopt.current_lr(state) == jnp.float32(want)
    with pytest.raises(ValueError, match=r"signum: gradient at \['w'\] has shape \(3, 1\)"):
        tx.update({"w": jnp.ones((3, 1)), "b": jnp.ones(())}, state, PARAMS)
