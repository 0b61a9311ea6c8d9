"""Yogi (Zaheer et al. 2018, "Adaptive Methods for Nonconvex Optimization"): Adam whose second
moment moves by an additive, sign-controlled step instead of an exponential average.

    m = b1 m + (1 - b1) g                            m_hat = m / (1 - b1**t)
    v = v - (1 - b2) * sign(v - g**2) * g**2         v_hat = v / (1 - b2**t)
    update = m_hat / (sqrt(v_hat + eps_root) + eps)

Adam's `v = v + (1 - b2) (g**2 - v)` moves v by a fraction of how far it is from g**2, so a
few large gradients shrink the effective step size quickly and small ones let it grow back as
fast; Yogi moves v by `(1 - b2) g**2` towards g**2 whatever the distance, which bounds how fast
the effective learning rate can increase. The sign form is the paper's (Algorithm 2); written
`v + (1 - b2) sign(g**2 - v) g**2` it is the same number, bit for bit. With complex gradients
g**2 is |g|**2.

As optax (`optax.scale_by_yogi`), both moments start at `initial_accumulator_value` (1e-6), not
at 0, and both are bias-corrected as Adam's. The paper's experiments use eps = 1e-3, optax's
default, much larger than Adam's 1e-8. Warning: since m starts at 1e-6, zero gradients still
move the params (by about `lr * 1e-6 * b1**t / (1 - b1**t) / (sqrt(v_hat) + eps)`); with
`initial_accumulator_value=0` they do not (and then, like Adam's, the update of a coordinate
whose gradients have all been 0 is 0 / eps, or 0 / 0 with eps = eps_root = 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful, tree_math
from jopt._src.base import ScalarOrSchedule
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import (
    B1,
    B2,
    EPS,
    EPS_ROOT,
    ScaleByAdamState,
    _debiased_first_moments,
    _first_moments,
    _normalize,
)
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.validation import NON_NEGATIVE

INITIAL_ACCUMULATOR_VALUE = Float("initial_accumulator_value", NON_NEGATIVE, in_state=False)
SCALE_BY_YOGI = Spec(B1, B2, EPS, EPS_ROOT, INITIAL_ACCUMULATOR_VALUE)
YOGI = Spec(LEARNING_RATE, *SCALE_BY_YOGI)


@errors.public("jopt.scale_by_yogi")
def scale_by_yogi(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-3,
    eps_root: float = 0.0,
    initial_accumulator_value: float = 1e-6,
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by Yogi's moments; a drop-in for `optax.scale_by_yogi`.

        m = b1 m + (1 - b1) g;   v = v - (1 - b2) sign(v - g**2) g**2
        update = m_hat / (sqrt(v_hat + eps_root) + eps),   x_hat = x / (1 - b**t)

    Args:
      b1: decay rate of the first moment, in [0, 1). Paper default 0.9.
      b2: rate of the second moment's additive steps, in [0, 1). Paper default 0.999.
      eps: added to the root of v_hat, >= 0. Paper (experiments) and optax default 1e-3.
      eps_root: added to v_hat inside the root, >= 0 (useful to differentiate through).
      initial_accumulator_value: where both m and v start, >= 0 (optax: 1e-6).

    The state is Adam's (`count`, `mu`, `nu`), as optax's.
    """
    bound = SCALE_BY_YOGI.bind(
        errors.current_function(),
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        initial_accumulator_value=initial_accumulator_value,
    )
    initial = bound["initial_accumulator_value"]

    def buffers(params):
        return {"mu": base.full_like(params, initial), "nu": base.full_like(params, initial)}

    def step(updates, state, hp, count, params):
        mu = _first_moments(updates, state.mu, hp)

        def second_moment(g, v):
            dt = base.wider(g.dtype, v.dtype)
            g2, v = tree_math.abs_sq(g.astype(dt)), v.astype(dt)
            return v - hp.complement("b2").astype(dt) * jnp.sign(v - g2) * g2

        nu = jax.tree.map(second_moment, updates, state.nu)
        m_hat = _debiased_first_moments(mu, updates, hp, count, False)
        correction2 = tree_math.bias_correction(hp["b2"], count)
        v_hat = jax.tree.map(lambda v: tree_math.debias(v, correction2), nu)
        return _normalize(m_hat, v_hat, hp, updates), {"mu": mu, "nu": nu}

    return stateful_transform(bound, ScaleByAdamState, buffers, step, matches="mu")


@errors.public("jopt.yogi")
def yogi(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-3,
    eps_root: float = 0.0,
    initial_accumulator_value: float = 1e-6,
) -> optax.GradientTransformationExtraArgs:
    """Yogi (Zaheer et al. 2018); a drop-in for `optax.yogi`.

        v = v - (1 - b2) sign(v - g**2) g**2;   theta -= lr * m_hat / (sqrt(v_hat + eps_root) + eps)

    m and v start at `initial_accumulator_value` (1e-6, as optax; `optax.yogi` takes neither
    it nor `eps_root`).
    """
    return stateful.chain(
        scale_by_yogi(b1, b2, eps, eps_root, initial_accumulator_value),
        scale_by_learning_rate(learning_rate),
    )
