"""`jopt.keras`' Keras-wide options beyond the golden fixtures' (which hold use_ema with
ema_overwrite_frequency, and gradient_accumulation_steps, against Keras' trajectories):

- `exclude_from_weight_decay=["bias"]` is Keras' `optimizer.exclude_from_weight_decay(
  var_names=["bias"])`: live against Keras (float64, two variables named "kernel" and "bias"),
  and bitwise the same as the equivalent `weight_decay_mask`;
- `use_ema` keeps Keras' moving average, read with `jopt.averaged_params`: live against Keras'
  `_model_variables_moving_average`.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests.golden import make_optimizer_fixtures as gen

STEPS = 50
START = {"kernel": [[0.5, -1.0], [2.0, 0.3]], "bias": [1.0, -2.0]}
TARGET = {"kernel": [[0.0, 1.0], [-1.0, 0.5]], "bias": [0.5, 0.5]}

_KERAS_RUN = """
import json, sys
import numpy as np
import keras
spec = json.load(sys.stdin)
variables = {
    n: keras.Variable(np.asarray(v), name=n, dtype="float64") for n, v in spec["start"].items()
}
optimizer = getattr(keras.optimizers, spec["optimizer"])(**spec["kwargs"])
if spec["exclude"]:
    optimizer.exclude_from_weight_decay(var_names=spec["exclude"])
names = list(variables)
optimizer.build([variables[n] for n in names])
for _ in range(spec["steps"]):
    grads = [variables[n].value - np.asarray(spec["target"][n]) for n in names]
    optimizer.apply(grads, [variables[n] for n in names])
out = {"params": {n: np.asarray(variables[n].value).tolist() for n in names}}
if spec["kwargs"].get("use_ema"):
    averages = optimizer._model_variables_moving_average
    out["average"] = {n: np.asarray(a.value).tolist() for n, a in zip(names, averages)}
print(json.dumps(out))
"""


def _keras(optimizer: str, kwargs: dict, exclude=None) -> dict:
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    spec = {"optimizer": optimizer, "kwargs": kwargs, "exclude": exclude, "steps": STEPS,
            "start": START, "target": TARGET}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", _KERAS_RUN], input=json.dumps(spec), text=True,
        capture_output=True, check=True, env=gen.keras_environment("float64"),
    )  # fmt: skip
    return json.loads(done.stdout.splitlines()[-1])


def _jopt(tx) -> tuple[dict, object]:
    with jax.enable_x64(True):
        params = {n: jnp.asarray(v, jnp.float64) for n, v in START.items()}
        target = {n: jnp.asarray(v, jnp.float64) for n, v in TARGET.items()}
        state = tx.init(params)
        for _ in range(STEPS):
            grads = jax.tree.map(lambda p, t: p - t, params, target)
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
        return jax.tree.map(np.asarray, params), state


# Keras keeps the learning rate in float32: 2**-6 is exact there.
KWARGS = {"learning_rate": 2**-6, "weight_decay": 0.1}


def test_exclude_from_weight_decay_is_keras_method():
    want = _keras("AdamW", KWARGS, exclude=["bias"])["params"]
    got, _ = _jopt(jopt.keras.AdamW(**KWARGS, exclude_from_weight_decay=["bias"]))
    for name in START:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12)
    masked, _ = _jopt(jopt.keras.AdamW(**KWARGS, weight_decay_mask={"kernel": True, "bias": False}))
    chex.assert_trees_all_equal(got, masked)
    decayed, _ = _jopt(jopt.keras.AdamW(**KWARGS))
    assert not np.allclose(decayed["bias"], got["bias"])  # the exclusion changes the bias


def test_use_ema_keeps_keras_moving_average():
    kwargs = {"learning_rate": 2**-6, "use_ema": True, "ema_momentum": 0.9}
    want = _keras("Adam", kwargs)
    got, state = _jopt(jopt.keras.Adam(**kwargs))
    average = jopt.averaged_params(state)
    for name in START:
        np.testing.assert_allclose(got[name], want["params"][name], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(average[name], want["average"][name], rtol=1e-10, atol=1e-12)
