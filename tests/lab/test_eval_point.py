"""Where the lab evaluates a model: at the params, or where the optimizer says (schedule-free
methods train at y and are evaluated at the average x, read from their state)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jopt
from jopt.lab import config as config_lib
from jopt.lab import programs


def _batched_run(tx, seeds=2, steps=3):
    """Params and state after a few steps, stacked over seeds as the lab's runner holds them."""

    def one(seed):
        params = {"w": jnp.arange(3.0) + seed}
        state = tx.init(params)
        for _ in range(steps):
            updates, state = tx.update({"w": params["w"] - 1.0}, state, params)
            params = jax.tree.map(jnp.add, params, updates)
        return params, state

    return jax.vmap(one)(jnp.arange(seeds, dtype=jnp.float32))


def test_schedule_free_is_evaluated_at_its_average():
    config = config_lib.OptimizerConfig("schedule_free_sgd", "sf", {"learning_rate": 0.1})
    params, state = _batched_run(jopt.schedule_free_sgd(0.1))
    got = programs._make_eval_params(config)(params, state)
    want = jax.vmap(lambda p, s: jopt.schedule_free_eval_params(s, p))(params, state)
    np.testing.assert_allclose(got["w"], want["w"], rtol=1e-6)  # jitted: an ulp may differ
    assert not np.array_equal(got["w"], params["w"])


def test_other_optimizers_are_evaluated_at_their_params():
    config = config_lib.OptimizerConfig("adam", "adam", {"learning_rate": 0.1})
    params, state = _batched_run(jopt.adam(0.1))
    assert programs._make_eval_params(config)(params, state) is params
