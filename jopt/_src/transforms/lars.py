"""LARS, layer-wise adaptive rate scaling (You, Gitman & Ginsburg 2017, "Large Batch Training of
Convolutional Networks"): SGD with momentum whose every layer's step is scaled by a trust ratio.

    u = g + weight_decay * w                             (coupled weight decay)
    ratio = trust_coefficient * ||w|| / (||u|| + eps)    per leaf, 1 where a norm is 0
    v = momentum * v - lr * ratio * u;   w = w + v       (nesterov: w + momentum v - lr ratio u)

The learning rate sits inside the momentum buffer, as in the paper's Algorithm 1 and optax.

Where optax departs from the paper: the paper's local learning rate is
`eta * ||w|| / (||g|| + weight_decay * ||w||)`, the norms of the gradient and of the decay term
added; optax divides by the norm of the decayed update, `||g + weight_decay * w||`. The two agree
without weight decay, and the paper's sum is the larger (the triangle inequality):
`split_norm=True` takes it. Both fall back to a ratio of 1 at zero norms (see `trust_ratio.py`).
The trust coefficient eta is the paper's, 0.001 by default as in optax and TF's LARS.
"""

from __future__ import annotations

from typing import Any

import optax

from jopt._src import errors, stateful, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.spec import Flag, Spec
from jopt._src.transforms.adam import EPS
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.momentum import MOMENTUM_LR_INSIDE, NESTEROV, momentum_lr_inside
from jopt._src.transforms.regularization import WEIGHT_DECAY
from jopt._src.transforms.trust_ratio import TRUST_COEFFICIENT, trust_ratio_transform

SPLIT_NORM = Flag("split_norm")
LARS_RATIO = Spec(WEIGHT_DECAY, TRUST_COEFFICIENT, EPS, SPLIT_NORM)
LARS = Spec(LEARNING_RATE, *LARS_RATIO, MOMENTUM_LR_INSIDE["momentum"], NESTEROV)


@errors.public("jopt.lars")
def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any = True,
    trust_coefficient: float = 0.001,
    eps: float = 0.0,
    trust_ratio_mask: Any = True,
    momentum: ScalarOrSchedule = 0.9,
    nesterov: bool = False,
    *,
    split_norm: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """LARS (You et al. 2017); a drop-in for `optax.lars`.

        u = g + weight_decay w;   ratio = trust_coefficient ||w|| / (||u|| + eps)
        v = momentum v - lr ratio u;   theta += v

    Args:
      learning_rate: a number >= 0 or a schedule.
      weight_decay: coupled weight decay, >= 0, or a schedule.
      weight_decay_mask: the leaves to decay (a tree of bools, a prefix of the params such as
        True, or a function of the params).
      trust_coefficient: eta, > 0. Default 0.001, as optax and TF's LARS.
      eps: added to the denominator of the ratio, >= 0.
      trust_ratio_mask: the leaves whose update the ratio scales (as `weight_decay_mask`);
        the others take the plain SGD step (biases, norm scales).
      momentum: in [0, 1), or a schedule.
      nesterov: Nesterov momentum.
      split_norm: the paper's denominator `||g|| + weight_decay ||w|| + eps`, instead of optax's
        `||g + weight_decay w|| + eps`.
    """
    fn = errors.current_function()
    bound = LARS_RATIO.bind(
        fn,
        weight_decay=weight_decay,
        trust_coefficient=trust_coefficient,
        eps=eps,
        split_norm=split_norm,
    )
    return stateful.chain(
        trust_ratio_transform(
            bound,
            decay_mask=validation.check_mask(fn, "weight_decay_mask", weight_decay_mask),
            ratio_mask=validation.check_mask(fn, "trust_ratio_mask", trust_ratio_mask),
            split_norm=bound["split_norm"],
        ),
        momentum_lr_inside(learning_rate, momentum, nesterov=nesterov),
    )
