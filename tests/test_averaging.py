"""`jopt.ema_params` and `jopt.swa_params`: averages of the params kept in the state.

- The EMA and the SWA mean follow a NumPy float64 reference written from their definitions
  (first averaged step copies the params; `start`, `every`), over 40 SGD steps;
- `overwrite_every` sets the params to the EMA at those steps (Keras' ema_overwrite_frequency);
- the SWA mean is torch's `swa_utils.AveragedModel`'s, live where torch is installed;
- bfloat16 params keep a float32 average, which moves where a bfloat16 one would not;
- the wrapped optimizer's trajectory is unchanged; bad arguments are refused.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

STEPS = 40
A = np.array([1.0, 3.0, 0.3])
C = np.array([0.5, -1.0, 2.0])


def _grad(w):
    return jnp.asarray(A) * (w - jnp.asarray(C))


def _trajectory(tx, steps=STEPS):
    """The params after each step, and the final state, in float64."""
    w = jnp.zeros(3, jnp.float64)
    state = tx.init(w)
    out = []
    for _ in range(steps):
        updates, state = tx.update(_grad(w), state, w)
        w = optax.apply_updates(w, updates)
        out.append(np.asarray(w))
    return np.stack(out), state


def reference_average(thetas, start, every, decay=None):
    """float64, from the definitions: copy at the first averaged step, then EMA or mean."""
    average, n = None, 0
    for t, theta in enumerate(thetas, start=1):
        if t < start or (t - start) % every:
            continue
        if average is None:
            average = theta.copy()
        elif decay is None:
            average = average + (theta - average) / (n + 1)
        else:
            average = decay * average + (1 - decay) * theta
        n += 1
    return average, n


@pytest.mark.parametrize(("start", "every"), [(1, 1), (10, 3)])
@pytest.mark.parametrize("kind", ["ema", "swa"])
def test_the_average_follows_its_definition(kind, start, every):
    with jax.enable_x64(True):
        plain, _ = _trajectory(jopt.sgd(0.05, momentum=0.5))
        if kind == "ema":
            tx = jopt.ema_params(jopt.sgd(0.05, momentum=0.5), 0.9, start=start, every=every)
        else:
            tx = jopt.swa_params(jopt.sgd(0.05, momentum=0.5), start=start, every=every)
        params, state = _trajectory(tx)
    chex.assert_trees_all_equal(params, plain)  # averaging leaves training alone
    want, n = reference_average(plain, start, every, 0.9 if kind == "ema" else None)
    np.testing.assert_allclose(jopt.averaged_params(state), want, rtol=1e-13)
    assert int(state.num_averaged) == n


def test_overwrite_every_sets_the_params_to_the_average():
    with jax.enable_x64(True):
        tx = jopt.ema_params(jopt.sgd(0.05), 0.8, overwrite_every=5)
        params, state = _trajectory(tx, 10)
        averages = []
        w, s = jnp.zeros(3), tx.init(jnp.zeros(3))
        for _ in range(10):
            u, s = tx.update(_grad(w), s, w)
            w = optax.apply_updates(w, u)
            averages.append(np.asarray(jopt.averaged_params(s)))
    np.testing.assert_array_equal(params[4], averages[4])  # step 5: params := average
    np.testing.assert_array_equal(params[9], averages[9])
    assert not np.array_equal(params[3], averages[3])


def test_swa_is_torchs_averaged_model():
    torch = pytest.importorskip("torch")
    from torch.optim import swa_utils

    with jax.enable_x64(True):
        params, state = _trajectory(jopt.swa_params(jopt.sgd(0.05, momentum=0.5), start=5, every=2))
    weight = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    model = torch.nn.ParameterList([weight])
    averaged = swa_utils.AveragedModel(model)
    optimizer = torch.optim.SGD([weight], lr=0.05, momentum=0.5)
    for t in range(1, STEPS + 1):
        weight.grad = torch.from_numpy(A * (weight.detach().numpy() - C))
        optimizer.step()
        if t >= 5 and (t - 5) % 2 == 0:
            averaged.update_parameters(model)
    np.testing.assert_allclose(weight.detach().numpy(), params[-1], rtol=1e-12)
    want = next(averaged.module.parameters()).detach().numpy()
    np.testing.assert_allclose(jopt.averaged_params(state), want, rtol=1e-12)


def test_bfloat16_params_keep_a_float32_average():
    """In bfloat16, decay 0.999 itself rounds to 1.0: a bfloat16 EMA would not average."""
    assert float(jnp.bfloat16(0.999)) == 1.0
    tx = jopt.ema_params(jopt.sgd(1.0), 0.999)
    w = jnp.ones(2, jnp.bfloat16)
    state = tx.init(w)
    assert jopt.averaged_params(state).dtype == jnp.float32
    thetas = []
    for _ in range(5):
        updates, state = tx.update(jnp.full(2, 0.5, jnp.bfloat16), state, w)
        w = optax.apply_updates(w, updates)
        thetas.append(np.asarray(w, np.float64))
    want, _ = reference_average(thetas, 1, 1, 0.999)
    np.testing.assert_allclose(jopt.averaged_params(state), want, rtol=1e-6)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: jopt.ema_params(jopt.sgd(0.1), 1.0), r"decay must be in \[0, 1\), got 1.0"),
        (lambda: jopt.ema_params(jopt.sgd(0.1), start=0), "start must be an integer >= 1"),
        (lambda: jopt.swa_params(jopt.sgd(0.1), every=0), "every must be an integer >= 1"),
        (lambda: jopt.ema_params(jopt.sgd(0.1), overwrite_every=0), "overwrite_every must be"),
    ],
)
def test_bad_arguments_are_refused(build, message):
    with pytest.raises(jopt.ArgumentError, match=message):
        build()


def test_averaged_params_needs_one_average():
    with pytest.raises(ValueError, match="expected one ema_params or swa_params in the state"):
        jopt.averaged_params(jopt.sgd(0.1).init(jnp.zeros(2)))
