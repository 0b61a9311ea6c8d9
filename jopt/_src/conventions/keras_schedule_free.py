"""keras.optimizers.ScheduleFreeAdamW's direction (Keras 3), the block `jopt.keras.
ScheduleFreeAdamW` hands to `jopt.schedule_free_adamw`'s averaging.

    v = v + (g**2 - v) (1 - b2);   direction = g / (sqrt(v / (1 - b2**t)) + eps)

This is `jopt.schedule_free_adamw`'s (optax's) direction in Keras' arithmetic: Keras computes
`1 - b2` from b2 stored in the parameters' dtype (in float32, 1 - 0.999 is 0.00099998713, where
jopt keeps 0.001 rounded once from float64, 1.3e-5 apart), and so does this block, so that a
float32 run agrees with Keras' to rounding.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import B2, EPS

KERAS_SECOND_MOMENT = Spec(B2, EPS)


class KerasSecondMomentState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    nu: optax.Updates  # the EMA of the squared gradients v (Keras' `velocity`)
    hparams: HParams  # b2 (Keras' beta_2), eps (epsilon)


def scale_by_keras_second_moment(
    beta_2: ScalarOrSchedule, epsilon: float
) -> optax.GradientTransformationExtraArgs:
    """Keras' ScheduleFreeAdamW direction (the module docstring). Arguments come checked by
    `jopt.keras.ScheduleFreeAdamW` (its errors name it)."""
    bound = KERAS_SECOND_MOMENT.bind(errors.current_function(), b2=beta_2, eps=epsilon)

    def step(updates, state, hp, count, params):
        def leaf(g, v):
            dt = base.wider(g.dtype, v.dtype)
            g, v = g.astype(dt), v.astype(dt)
            b2 = hp["b2"].astype(dt)
            v = v + (jnp.square(g) - v) * (1 - b2)
            correction = 1 - b2 ** count.astype(dt)
            return g / (jnp.sqrt(v / correction) + hp["eps"].astype(dt)), v

        results = jax.tree.map(leaf, updates, state.nu)
        two = jax.tree.structure((0, 0))
        out, nu = jax.tree.transpose(jax.tree.structure(updates), two, results)
        return out, {"nu": nu}

    def buffers(params):
        return {"nu": base.zeros_like(params)}

    return stateful_transform(bound, KerasSecondMomentState, buffers, step, matches="nu")
