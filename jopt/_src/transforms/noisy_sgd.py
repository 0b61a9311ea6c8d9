"""Gradient noise (Neelakantan et al. 2015, "Adding Gradient Noise Improves Learning for Very Deep
Networks"): Gaussian noise of a variance annealed over the steps, added to the gradients.

    g_t = g + N(0, sigma_t^2),   sigma_t^2 = eta / t**gamma      (t = 1 at the first update)
    theta = theta - learning_rate * g_t                           (noisy_sgd)

The paper writes sigma_t^2 = eta / (1 + t)**gamma with t counted from 0: the same numbers. Its
eta is one of {0.01, 0.3, 1.0} and gamma 0.55.

The random key. The state holds the key's data (`rng_key`, `jax.random.key_data` of the key:
two uint32 for the default threefry), so that the state is plain arrays that checkpoint and
restore like any other; the key's implementation is fixed at construction. Each update splits
it, as optax does: `rng_key, sample_key = split(rng_key)`, then one key per leaf,
`split(sample_key, number of leaves)`, and the leaf's noise is `jax.random.normal(that key, its
shape, its dtype)`. The noise, and so the trajectory, is bitwise optax's (`optax.add_noise`,
`optax.noisy_sgd`) given the same key. It depends on the leaf's dtype: JAX draws 32 random bits
for a float32 normal and 64 for a float64 one, so a float32 run is not a rounding of a float64
run with the same key. The same key gives the same noise in every run: give another key (or
seed) for other noise.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jopt._src import base, errors, stateful
from jopt._src.base import ScalarOrSchedule
from jopt._src.errors import ArgumentTypeError
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.validation import NON_NEGATIVE

ETA = Float("eta", NON_NEGATIVE)
GAMMA = Float("gamma", NON_NEGATIVE)
ADD_NOISE = Spec(ETA, GAMMA)
NOISY_SGD = Spec(LEARNING_RATE, ETA, GAMMA)


class AddNoiseState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    rng_key: jax.Array  # the key's data (jax.random.key_data), uint32: split at every update
    hparams: HParams  # eta, gamma


def key_data(fn: str, key: Any) -> tuple[np.ndarray, Any]:
    """(the key's data, its implementation) of `key`: an integer seed, a typed key
    (`jax.random.key`) or a raw threefry key (`jax.random.PRNGKey`, two uint32)."""
    if isinstance(key, (bool, np.bool_)):
        raise _bad_key(fn, key)
    if isinstance(key, (int, np.integer)):
        key = jax.random.key(int(key))
    elif isinstance(key, (jax.Array, np.ndarray)) and jnp.issubdtype(
        key.dtype, jax.dtypes.prng_key
    ):
        pass
    elif isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32 and key.shape == (2,):
        key = jax.random.wrap_key_data(key)
    else:
        raise _bad_key(fn, key)
    if key.shape != ():
        raise _bad_key(fn, key)
    return np.asarray(jax.random.key_data(key)), jax.random.key_impl(key)


def _bad_key(fn: str, key: Any) -> ArgumentTypeError:
    return ArgumentTypeError(
        fn,
        f"key must be an integer seed, a jax.random.key(...) or a jax.random.PRNGKey(...), got "
        f"{key!r}.",
        argument="key",
        value=key,
        allowed="an integer seed or a single PRNG key",
    )


@errors.public("jopt.add_noise")
def add_noise(
    eta: float = 0.01, gamma: float = 0.55, key: Any = 0
) -> optax.GradientTransformationExtraArgs:
    """Adds Gaussian noise of variance eta / t**gamma to the updates; a drop-in for
    `optax.add_noise` (see the module docstring for the key).

    Args:
      eta: the variance at the first step, >= 0. Paper: 0.01, 0.3 or 1.0.
      gamma: its decay exponent, >= 0. Paper: 0.55.
      key: an integer seed, or a PRNG key. Default 0 (optax warns and takes 0 without one).
    """
    fn = errors.current_function()
    bound = ADD_NOISE.bind(fn, eta=eta, gamma=gamma)
    data, impl = key_data(fn, key)

    def buffers(params):
        return {"rng_key": jnp.asarray(data)}

    def step(updates, state, hp, count, params):
        rng_key, sample_key = jax.random.split(jax.random.wrap_key_data(state.rng_key, impl=impl))
        grads, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample_key, len(grads))
        std = jnp.sqrt(hp["eta"] / count.astype(hp["eta"].dtype) ** hp["gamma"])

        def noisy(g, k):
            noise = jax.random.normal(k, jnp.shape(g), jnp.result_type(g))
            dt = base.wider(g.dtype)
            return g.astype(dt) + std.astype(dt) * noise.astype(dt)

        out = [noisy(g, k) for g, k in zip(grads, keys, strict=True)]
        return jax.tree.unflatten(treedef, out), {"rng_key": jax.random.key_data(rng_key)}

    return stateful_transform(bound, AddNoiseState, buffers, step)


@errors.public("jopt.noisy_sgd")
def noisy_sgd(
    learning_rate: ScalarOrSchedule, eta: float = 0.01, gamma: float = 0.55, key: Any = 0
) -> optax.GradientTransformationExtraArgs:
    """SGD with annealed Gaussian gradient noise (Neelakantan et al. 2015); a drop-in for
    `optax.noisy_sgd`.

        theta -= lr * (g + N(0, eta / t**gamma))

    Args:
      learning_rate: the step size lr >= 0, or a schedule.
      eta: the noise's variance at the first step, >= 0. Default 0.01 (the paper's smallest).
      gamma: its decay exponent, >= 0. Paper default 0.55.
      key: an integer seed, or a PRNG key (see the module docstring). Default 0.
    """
    return stateful.chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))
