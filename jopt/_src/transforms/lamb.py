"""LAMB, layer-wise adaptive moments for batch training (You et al. 2020, "Large Batch Optimization
for Deep Learning: Training BERT in 76 minutes", Algorithm 2): Adam's step, decoupled weight decay
added, then scaled per layer by a trust ratio.

    m = b1 * m + (1 - b1) * g            m_hat = m / (1 - b1**t)
    v = b2 * v + (1 - b2) * g**2         v_hat = v / (1 - b2**t)
    r = m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay * w
    w = w - lr * phi(||w||) / ||r|| * r                   per leaf, ratio 1 where a norm is 0

Both moments are bias-corrected, as in the paper's Algorithm 2 and optax. Where optax departs
from the paper: the paper's phi is `min(max(z, gamma_l), gamma_u)`, which its convergence
analysis needs; optax and the authors' code use phi(z) = z. `phi_min` / `phi_max` give the bounds
(see `trust_ratio.py`, also for the zero norms). The decay is added in the trust-ratio block
(optax: an `add_decayed_weights` block before it, the same arithmetic).
"""

from __future__ import annotations

from typing import Any

import optax

from jopt._src import errors, stateful, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.spec import Spec
from jopt._src.transforms.adam import B1, B2, EPS, EPS_ROOT, scale_by_adam
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY
from jopt._src.transforms.trust_ratio import PHI_MAX, PHI_MIN, bind_phi, trust_ratio_transform

LAMB = Spec(LEARNING_RATE, B1, B2, EPS, EPS_ROOT, WEIGHT_DECAY, PHI_MIN, PHI_MAX)
LAMB_RATIO = Spec(WEIGHT_DECAY, PHI_MIN, PHI_MAX)


@errors.public("jopt.lamb")
def lamb(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-6,
    eps_root: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
    *,
    phi_min: float | None = None,
    phi_max: float | None = None,
) -> optax.GradientTransformationExtraArgs:
    """LAMB (You et al. 2020); a drop-in for `optax.lamb`.

        r = m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay w
        theta -= lr * phi(||theta||) / ||r|| * r      (per leaf)

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1: decay rate of the first moment, in [0, 1). Paper default 0.9.
      b2: decay rate of the second moment, in [0, 1). Paper default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-6, as optax and the authors' code.
      eps_root: added to v_hat inside the root, >= 0.
      weight_decay: decoupled weight decay lambda, >= 0, or a schedule.
      mask: the leaves to decay (a tree of bools, or a function of the params).
      phi_min: the paper's gamma_l: the parameter norm is raised to it, >= 0 (None: phi(z) = z
        from below, as optax).
      phi_max: the paper's gamma_u: the parameter norm is lowered to it, > 0 (None: no bound).
    """
    fn = errors.current_function()
    ratio = bind_phi(fn, LAMB_RATIO, {"weight_decay": weight_decay}, phi_min, phi_max)
    return stateful.chain(
        scale_by_adam(b1, b2, eps, eps_root),
        trust_ratio_transform(ratio, decay_mask=validation.check_mask(fn, "mask", mask)),
        scale_by_learning_rate(learning_rate),
    )
