"""NovoGrad (Ginsburg et al. 2019, "Stochastic Gradient Methods with Layer-wise Adaptive Moments
for Training of Deep Networks"): a second moment per layer, of the gradient's norm, and the
weight decay inside the momentum.

For each leaf (a "layer") l of the gradient tree, with v_l a scalar:

    v_l = ||g_l||**2                                  at the first step
    v_l = b2 v_l + (1 - b2) ||g_l||**2                after
    m_l = b1 m_l + g_l / (sqrt(v_l + eps_root) + eps) + weight_decay * theta_l     (m_l starts at 0)
    update_l = m_l

Algorithm 1 of the paper, as optax: v starts at the first squared norm, not at 0 (no bias
correction), and the momentum sums its inputs (`b1 m + ...`, no `1 - b1` factor), so that the
step size of a steady gradient is about lr / (1 - b1) times the normalized gradient. The weight
decay is added to the normalized gradient before the momentum, so it is accumulated by it (unlike
AdamW's). Half of Adam's memory: m per parameter, v one number per leaf. `optax.scale_by_novograd`
defaults eps to 1e-8, `optax.novograd` to 1e-6 (the same here).

v is kept in the leaf's arithmetic dtype (float32 for half-precision leaves, where a squared norm
overflows above 256; optax keeps it in the leaf's dtype), and for complex leaves in their real
dtype: ||g||**2 is real.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, per_leaf, stateful, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import B2, EPS, EPS_ROOT
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY
from jopt._src.validation import DECAY

# The momentum's coefficient, not an EMA's decay: no `1 - b1` is kept.
B1 = Float("b1", DECAY, schedulable=True)
SCALE_BY_NOVOGRAD = Spec(B1, B2, EPS, EPS_ROOT, WEIGHT_DECAY)
NOVOGRAD = Spec(LEARNING_RATE, *SCALE_BY_NOVOGRAD)


class ScaleByNovogradState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # momentum m, per parameter
    nu: optax.Updates  # second moment v of each leaf's gradient norm: one scalar per leaf
    hparams: HParams  # b1, b2, eps, eps_root, weight_decay


def _norm_dtype(dtype: Any) -> Any:
    """The dtype v is kept in for a leaf of `dtype`: real, at least float32."""
    return base.compute_dtype(jnp.finfo(dtype).dtype)


@errors.public("jopt.scale_by_novograd")
def scale_by_novograd(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.25,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mu_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """NovoGrad's layer-wise normalized momentum; a drop-in for `optax.scale_by_novograd`.

        v_l = b2 v_l + (1 - b2) ||g_l||**2   (v_l = ||g_l||**2 at the first step)
        m_l = b1 m_l + g_l / (sqrt(v_l + eps_root) + eps) + weight_decay * theta_l;  update = m

    Args:
      b1: the momentum's coefficient, in [0, 1). optax default 0.9.
      b2: decay rate of the second moment of each leaf's gradient norm, in [0, 1). optax
        default 0.25.
      eps: added to the root, >= 0.
      eps_root: added to v inside the root, >= 0.
      weight_decay: coefficient of theta added before the momentum, >= 0. `update` needs the
        params.
      mu_dtype: dtype of the momentum (default: the params' dtype).
    """
    fn = errors.current_function()
    bound = SCALE_BY_NOVOGRAD.bind(
        fn, b1=b1, b2=b2, eps=eps, eps_root=eps_root, weight_decay=weight_decay
    )
    mu_dtype = validation.check_dtype(fn, "mu_dtype", mu_dtype)

    def buffers(params):
        nu = jax.tree.map(lambda p: jnp.zeros([], _norm_dtype(jnp.result_type(p))), params)
        return {"mu": base.zeros_like(params, mu_dtype), "nu": nu}

    def step(updates, state, hp, count, params):
        def second_moment(g, v):
            dt = base.wider(g.dtype, v.dtype)
            squared_norm = jnp.linalg.norm(g.astype(dt)) ** 2
            average = tree_math.moment(squared_norm, v, hp["b2"], hp.complement("b2"))
            return jnp.where(count == 1, squared_norm, average)

        nu = jax.tree.map(second_moment, updates, state.nu)

        def momentum(g, m, v, p):
            dt = base.wider(g.dtype, m.dtype, p.dtype)
            root = jnp.sqrt(v.astype(dt) + hp["eps_root"].astype(dt)) + hp["eps"].astype(dt)
            decay = hp["weight_decay"].astype(dt) * p.astype(dt)
            return hp["b1"].astype(dt) * m.astype(dt) + (g.astype(dt) / root + decay)

        mu = jax.tree.map(momentum, updates, state.mu, nu, params)
        return mu, {"mu": mu, "nu": nu}

    return per_leaf.declare(
        stateful_transform(
            bound, ScaleByNovogradState, buffers, step, matches="mu", needs_params=True
        ),
        "the norm of each leaf's gradient",
    )


@errors.public("jopt.novograd")
def novograd(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.25,
    eps: float = 1e-6,
    eps_root: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """NovoGrad (Ginsburg et al. 2019); a drop-in for `optax.novograd`.

        v_l = b2 v_l + (1 - b2) ||g_l||**2   (v_l = ||g_l||**2 at the first step), per leaf l
        m = b1 m + g / (sqrt(v + eps_root) + eps) + weight_decay * theta;   theta -= lr * m

    `update` needs the params (for the weight decay, even at 0, as optax's).
    """
    return stateful.chain(
        scale_by_novograd(b1, b2, eps, eps_root, weight_decay),
        scale_by_learning_rate(learning_rate),
    )
