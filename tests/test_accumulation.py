"""`jopt.accumulate_gradients`: one optimizer step per k micro-batches, on their mean.

- In float64, k micro-batches of a least-squares problem step the optimizer as the batch they
  make together does (Adam, SGD with momentum; 1e-13 relative over 5 steps), the updates between
  are zeros, and the optimizer's own count advances once per k.
- In bfloat16, the sum is kept in float32: one large and many small gradients average to the
  float64 mean rounded once to bfloat16, where a bfloat16 sum loses the small ones.
- `every_k` lives in the state: set to another value, the jitted step does not recompile.
- Bad arguments are refused at construction.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

K = 4
X = jnp.asarray(np.random.default_rng(0).standard_normal((4 * K, 3)))  # 4 batches of K rows
Y = X @ jnp.asarray([1.0, -2.0, 0.5]) + 0.1


def _loss(w, x, y):
    return jnp.mean((x @ w - y) ** 2)


@pytest.mark.parametrize(
    "make", [lambda: jopt.adam(0.1), lambda: jopt.sgd(0.05, momentum=0.9)], ids=["adam", "sgd"]
)
def test_k_micro_batches_step_as_their_whole_batch_in_float64(make):
    with jax.enable_x64(True):
        x, y, w0 = X.astype(jnp.float64), Y.astype(jnp.float64), jnp.zeros(3, jnp.float64)
        accumulated = jopt.accumulate_gradients(make(), K)
        whole = make()
        wa, sa, ww, sw = w0, accumulated.init(w0), w0, whole.init(w0)
        for step in range(5):
            rows = slice(step * K % len(x), step * K % len(x) + K)
            for i in range(K):  # one row per micro-batch
                g = jax.grad(_loss)(wa, x[rows][i : i + 1], y[rows][i : i + 1])
                u, sa = accumulated.update(g, sa, wa)
                if i < K - 1:
                    chex.assert_trees_all_equal(u, jnp.zeros_like(u))
                wa = optax.apply_updates(wa, u)
            u, sw = whole.update(jax.grad(_loss)(ww, x[rows], y[rows]), sw, ww)
            ww = optax.apply_updates(ww, u)
            np.testing.assert_allclose(wa, ww, rtol=1e-13, atol=1e-15)
        assert int(optax.tree.get(sa.inner_state, "count")) == 5


def test_bfloat16_gradients_are_summed_in_float32():
    grads = [jnp.full(2, 1.0, jnp.bfloat16)] + [jnp.full(2, 3e-3, jnp.bfloat16)] * 63
    tx = jopt.accumulate_gradients(jopt.sgd(1.0), 64)
    params = jnp.zeros(2, jnp.bfloat16)
    state = tx.init(params)
    assert state.gradient_sum.dtype == jnp.float32
    for g in grads:
        updates, state = tx.update(g, state, params)
    exact = np.mean([np.float64(g[0].astype(jnp.float32)) for g in grads])
    assert float(-updates[0]) == float(jnp.asarray(exact, jnp.bfloat16))
    in_bfloat16 = jnp.bfloat16(0)
    for g in grads:
        in_bfloat16 = in_bfloat16 + g[0]
    assert abs(float(in_bfloat16) / 64 - exact) > 0.05 * exact  # what a bfloat16 sum gives


def test_every_k_is_in_the_state_and_changes_without_recompiling():
    tx = jopt.accumulate_gradients(jopt.sgd(1.0), 4)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state):
        return tx.update(jnp.ones(2), state, jnp.zeros(2))

    state = jopt.set_hparams(tx.init(jnp.zeros(2)), every_k=2)
    emitted = []
    for _ in range(6):
        updates, state = step(state)
        emitted.append(bool(updates[0] != 0))
    assert emitted == [False, True] * 3
    assert int(jopt.get_hparams(state)["every_k"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every_k": 0}, "every_k must be an integer >= 1, got 0"),
        ({"every_k": 2.5}, "every_k must be an integer >= 1, got 2.5"),
        ({"tx": "adam", "every_k": 2}, "tx must be"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(jopt.ArgumentError, match=message):
        jopt.accumulate_gradients(**{"tx": jopt.sgd(0.1), **kwargs})
