"""AdEMAMix (Pagliardini et al. 2024, "The AdEMAMix Optimizer: Better, Faster, Older"): Adam
whose step mixes a fast EMA of the gradients with a slow one that remembers gradients for tens of
thousands of steps.

    m1 = b1 * m1 + (1 - b1) * g          m1_hat = m1 / (1 - b1**t)
    m2 = b3 * m2 + (1 - b3) * g          (not bias-corrected: it fills up slowly)
    nu = b2 * nu + (1 - b2) * |g|**2     nu_hat = nu / (1 - b2**t)
    update = (m1_hat + alpha * m2) / (sqrt(nu_hat + eps_root) + eps)
    theta = theta - lr * (update + weight_decay * theta)

as the paper's Algorithm 1 and `optax.contrib.ademamix` (eps_root, 0 by default, is optax's).
`alpha` and `b3` may follow schedules of the count of earlier updates (the paper warms both up
over the run: `alpha=jopt.linear_schedule(0.0, alpha, T_alpha)`, and b3 from b1 to its final
value along its b3 scheduler, given as a function of the count). Note optax's defaults: alpha
is 6 in `scale_by_ademamix` and 5 in `ademamix`; jopt keeps both.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from jopt._src import base, errors, stateful, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import B1, B2, EPS, EPS_ROOT, _first_moments, _normalize
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY, add_decayed_weights
from jopt._src.validation import DECAY, NON_NEGATIVE

B3 = Float("b3", DECAY, schedulable=True, complement=True)
ALPHA = Float("alpha", NON_NEGATIVE, schedulable=True)
SCALE_BY_ADEMAMIX = Spec(B1, B2, B3, ALPHA, EPS, EPS_ROOT)
ADEMAMIX = Spec(LEARNING_RATE, *SCALE_BY_ADEMAMIX, WEIGHT_DECAY)


class ScaleByAdemamixState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating (optax's count_m2 is always equal to it)
    m1: optax.Updates  # fast EMA of the gradients
    m2: optax.Updates  # slow EMA of the gradients
    nu: optax.Updates  # second moment
    hparams: HParams  # b1, b2, b3, alpha, eps, eps_root


@errors.public("jopt.scale_by_ademamix")
def scale_by_ademamix(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 6.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by AdEMAMix's moments; a drop-in for `optax.contrib.scale_by_ademamix`.

    Args:
      b1: decay rate of the fast EMA, in [0, 1). Paper default 0.9.
      b2: decay rate of the second moment, in [0, 1). Paper default 0.999.
      b3: decay rate of the slow EMA, in [0, 1), or a schedule. Paper default 0.9999.
      alpha: weight of the slow EMA, >= 0, or a schedule (optax's default here: 6).
      eps: added to the root of nu_hat, >= 0.
      eps_root: added to nu_hat inside the root, >= 0.
      mu_dtype: dtype of m1, m2 and nu, as optax (default: the params' dtype).
    """
    fn = errors.current_function()
    bound = SCALE_BY_ADEMAMIX.bind(fn, b1=b1, b2=b2, b3=b3, alpha=alpha, eps=eps, eps_root=eps_root)
    mu_dtype = validation.check_dtype(fn, "mu_dtype", mu_dtype)

    def buffers(params):
        return {name: base.zeros_like(params, mu_dtype) for name in ("m1", "m2", "nu")}

    def step(updates, state, hp, count, params):
        m1 = _first_moments(updates, state.m1, hp)
        m2 = jax.tree.map(
            lambda g, m: tree_math.moment(g, m, hp["b3"], hp.complement("b3")), updates, state.m2
        )
        nu = jax.tree.map(
            lambda g, v: tree_math.moment(g, v, hp["b2"], hp.complement("b2"), 2),
            updates,
            state.nu,
        )
        correction1 = tree_math.bias_correction(hp["b1"], count)
        correction2 = tree_math.bias_correction(hp["b2"], count)

        def mixed(m_fast, m_slow):
            m_hat = tree_math.debias(m_fast, correction1)
            return m_hat + hp["alpha"].astype(m_hat.dtype) * m_slow.astype(m_hat.dtype)

        numerator = jax.tree.map(mixed, m1, m2)
        nu_hat = jax.tree.map(lambda v: tree_math.debias(v, correction2), nu)
        return _normalize(numerator, nu_hat, hp, updates), {"m1": m1, "m2": m2, "nu": nu}

    return stateful_transform(bound, ScaleByAdemamixState, buffers, step, matches="m1")


@errors.public("jopt.ademamix")
def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """AdEMAMix (Pagliardini et al. 2024); a drop-in for `optax.contrib.ademamix`.

        theta -= lr * ((m1_hat + alpha m2) / (sqrt(nu_hat + eps_root) + eps) + weight_decay theta)

    m1 and nu are Adam's moments (b1, b2), m2 the slow EMA (b3, not bias-corrected). The decay
    is multiplied by the learning rate, as the paper and optax.
    """
    return stateful.chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
