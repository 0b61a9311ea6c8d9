"""Signum (Bernstein et al. 2018, "signSGD: Compressed Optimisation for Non-Convex Problems"),
written outside jopt on jopt's hyperparameter machinery.

    m = momentum * m + (1 - momentum) * g
    theta = theta - learning_rate * (sign(m) + weight_decay * theta)

Declared once, its hyperparameters are checked at construction, kept in the state, read with
`jopt.current_lr` and `jopt.get_hparams`, changed with `jopt.set_hparams` (inside jit, without
recompiling) and vmapped over, as any jopt optimizer's are.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt import hparams

SIGNUM = hparams.Spec(
    hparams.Float("learning_rate", hparams.NON_NEGATIVE, schedulable=True),
    hparams.Float("momentum", hparams.DECAY, schedulable=True, complement=True),
    hparams.Float("weight_decay", hparams.NON_NEGATIVE),
)


class SignumState(NamedTuple):
    count: jax.Array  # steps taken (kept by jopt)
    hparams: hparams.HParams  # learning_rate, momentum, weight_decay (kept by jopt)
    momentum: optax.Updates  # the buffer m


def signum(learning_rate, momentum=0.9, weight_decay=0.0) -> optax.GradientTransformationExtraArgs:
    """Signum: the sign of an exponential moving average of the gradients, times -lr."""
    bound = SIGNUM.bind(
        "signum", learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay
    )

    def buffers(params):
        return {"momentum": jax.tree.map(jnp.zeros_like, params)}

    def step(updates, state, hp, count, params):
        # hp.complement("momentum") is 1 - momentum, rounded once from float64.
        mu, weight = hp["momentum"], hp.complement("momentum")
        m = jax.tree.map(lambda g, m: mu * m + weight * g, updates, state.momentum)
        lr, decay = hp["learning_rate"], hp["weight_decay"]
        out = jax.tree.map(lambda m, p: -lr * (jnp.sign(m) + decay * p), m, params)
        return out, {"momentum": m}

    return hparams.stateful_transform(
        bound, SignumState, buffers, step, matches=("momentum", "params"), needs_params=True
    )
