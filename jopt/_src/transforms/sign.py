"""signSGD and Signum (Bernstein et al. 2018, "signSGD: Compressed Optimisation for Non-Convex
Problems", Algorithms 1 and 2): a step of the same size for every coordinate, along the sign of
the gradient or of its moving average.

    sign_sgd:  theta = theta - lr * sign(g)
    signum:    m = beta * m + (1 - beta) * g;   theta = theta - lr * sign(m)

Signum's momentum is the paper's EMA, optax's `ema(beta, debias=False)`: the heavy-ball buffer
`m = beta * m + g` is the EMA divided by 1 - beta and has the same signs, and so has a bias
corrected EMA, so neither needs an option. sign(0) = 0: a zero gradient (or momentum) leaves its
coordinate where it is. On complex parameters sign(z) is z / |z| (`jnp.sign`), as in optax, whose
own tests skip these optimizers on complex numbers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.validation import DECAY

SCALE_BY_SIGN = Spec()
BETA = Float("beta", DECAY, schedulable=True, complement=True)
SIGNUM_DIRECTION = Spec(BETA)
SIGN_SGD = Spec(LEARNING_RATE)
SIGNUM = Spec(LEARNING_RATE, BETA)


class ScaleBySignState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    hparams: HParams  # none


class SignumState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    ema: optax.Updates  # the momentum m, an EMA of the gradients (optax's EmaState.ema)
    hparams: HParams  # beta


def _no_buffers(params: Any) -> dict[str, Any]:
    return {}


@errors.public("jopt.scale_by_sign")
def scale_by_sign() -> optax.GradientTransformationExtraArgs:
    """Replaces each update by its sign (-1, 0 or 1); a drop-in for `optax.scale_by_sign`."""
    bound = SCALE_BY_SIGN.bind(errors.current_function())

    def step(updates, state, hp, count, params):
        return jax.tree.map(jnp.sign, updates), {}

    return stateful_transform(bound, ScaleBySignState, _no_buffers, step)


@errors.public("jopt.sign_sgd")
def sign_sgd(learning_rate: ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
    """signSGD (Bernstein et al. 2018, Algorithm 1); a drop-in for `optax.sign_sgd`.

    theta -= lr * sign(g)

    A step of fixed size lr per coordinate: near a minimum it oscillates at that size, so reaching
    it closely takes a decaying learning rate (a schedule).
    """
    return stateful.chain(scale_by_sign(), scale_by_learning_rate(learning_rate, keep_count=True))


def _signum_direction(
    beta: ScalarOrSchedule, accumulator_dtype: Any
) -> optax.GradientTransformationExtraArgs:
    """The block of `signum` before its learning rate: updates the EMA and returns its sign."""
    fn = errors.current_function()
    bound = SIGNUM_DIRECTION.bind(fn, beta=beta)
    accumulator_dtype = validation.check_dtype(fn, "accumulator_dtype", accumulator_dtype)

    def buffers(params):
        return {"ema": base.zeros_like(params, accumulator_dtype)}

    def step(updates, state, hp, count, params):
        def average(g, m):
            return tree_math.moment(g, m, hp["beta"], hp.complement("beta"))

        ema = jax.tree.map(average, updates, state.ema)
        return jax.tree.map(jnp.sign, ema), {"ema": ema}

    return stateful_transform(bound, SignumState, buffers, step, matches="ema")


@errors.public("jopt.signum")
def signum(
    learning_rate: ScalarOrSchedule,
    beta: ScalarOrSchedule = 0.9,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Signum, signSGD with momentum (Bernstein et al. 2018, Algorithm 2); a drop-in for
    `optax.signum`.

    m = beta m + (1 - beta) g;   theta -= lr * sign(m)

    Args:
      learning_rate: the step size lr >= 0, or a schedule.
      beta: the momentum's decay rate, in [0, 1), or a schedule. Paper default 0.9.
      accumulator_dtype: dtype of the momentum buffer (default: the params' dtype).
    """
    return stateful.chain(
        _signum_direction(beta, accumulator_dtype), scale_by_learning_rate(learning_rate)
    )
