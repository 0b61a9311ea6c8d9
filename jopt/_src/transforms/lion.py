"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): the building block
and the optimizer.

    c = b1 * m + (1 - b1) * g;   update = sign(c);   m = b2 * m + (1 - b2) * g
    theta = theta - learning_rate * (update + weight_decay * theta)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, fused, fused_rules, stateful, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY, add_decayed_weights
from jopt._src.validation import DECAY

SCALE_BY_LION = Spec(
    Float("b1", DECAY, schedulable=True, complement=True),
    Float("b2", DECAY, schedulable=True, complement=True),
)

LION = Spec(LEARNING_RATE, *SCALE_BY_LION, WEIGHT_DECAY)


class ScaleByLionState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # momentum m
    hparams: HParams  # b1, b2


@errors.public("jopt.scale_by_lion")
def scale_by_lion(
    b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.99, mu_dtype: Any = None
) -> optax.GradientTransformationExtraArgs:
    """Lion's sign update; a drop-in for `optax.scale_by_lion` (its "hard" mode)."""
    fn = errors.current_function()
    bound = SCALE_BY_LION.bind(fn, b1=b1, b2=b2)
    mu_dtype = validation.check_dtype(fn, "mu_dtype", mu_dtype)

    def buffers(params):
        return {"mu": base.zeros_like(params, mu_dtype)}

    def step(updates, state, hp, count, params):
        def direction(g, m):
            return jnp.sign(tree_math.moment(g, m, hp["b1"], hp.complement("b1"))).astype(g.dtype)

        out = jax.tree.map(direction, updates, state.mu)
        mu = jax.tree.map(
            lambda g, m: tree_math.moment(g, m, hp["b2"], hp.complement("b2")), updates, state.mu
        )
        return out, {"mu": mu}

    return stateful_transform(bound, ScaleByLionState, buffers, step, matches="mu")


@errors.public("jopt.lion")
def lion(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.99,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Lion (Chen et al. 2023) with decoupled weight decay; a drop-in for `optax.lion`.

    theta -= lr * (sign(b1 m + (1 - b1) g) + weight_decay * theta);  m = b2 m + (1 - b2) g
    """
    tx = stateful.chain(
        scale_by_lion(b1, b2, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
    return fused.declare(tx, fused_rules.lion() if mask is None else None)
