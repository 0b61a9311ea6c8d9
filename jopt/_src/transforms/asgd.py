"""Averaged SGD: SGD with a slowly decaying step size, whose iterates are averaged for evaluation
(Polyak & Juditsky 1992, "Acceleration of Stochastic Approximation by Averaging"), in Bottou's
form (2012, "Stochastic Gradient Descent Tricks", section 5.3), torch's `optim.ASGD`.

With t the number of steps taken before this one (0 at the first step), theta the params and
ax the average:

    eta = lr / (1 + l2 * lr * t) ** alpha
    theta = theta * (1 - l2 * eta) - eta * g
    mu = 1 / max(1, t - t0)
    ax = ax + mu * (theta - ax)              (ax = theta while mu = 1)

`l2` is the regularization constant lambda of the objective `f(theta) + l2 / 2 * |theta|**2`: it
decays the params and sets the step-size schedule (the strong-convexity constant of the
objective, Bottou's `(1 + lambda * lr * t) ** -0.75`). The average ax is the iterate itself
as long as t <= t0 + 1, then (for integral t0) the mean of the iterates from the one that step
gave on; evaluate the model at it with `jopt.asgd_eval_params(state, params)`. The params
themselves train on, unchanged by the average. Polyak & Juditsky average every iterate with
step sizes decaying slower than 1 / t (alpha in (1/2, 1)); Bottou starts the average late (t0),
once the iterates are near a minimum, and uses alpha = 0.75.

Learning-rate schedules: step t uses the learning rate `lr(t)` of its own step. torch computes a
step's eta at the end of the step before, from the learning rate then: `jopt.torch.ASGD`
delays its schedule by one step to match.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.ftrl import L2
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.validation import NON_NEGATIVE

ALPHA = Float("alpha", NON_NEGATIVE)
T0 = Float("t0", NON_NEGATIVE)
ASGD = Spec(LEARNING_RATE, L2, ALPHA, T0)


class AsgdState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    ax: optax.Params  # the average of the iterates (torch's `ax`), in float32 at least
    hparams: HParams  # learning_rate, l2, alpha, t0


@errors.public("jopt.asgd")
def asgd(
    learning_rate: ScalarOrSchedule,
    l2: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
) -> optax.GradientTransformationExtraArgs:
    """Averaged SGD (Polyak & Juditsky 1992; Bottou 2012's step sizes), torch's ASGD:

        eta = lr / (1 + l2 lr t) ** alpha;   theta = theta (1 - l2 eta) - eta g
        ax = ax + (theta - ax) / max(1, t - t0)          (t: steps taken before this one)

    The update needs the params (`update(grads, state, params)`); evaluate the model at the
    average, `jopt.asgd_eval_params(state, params)`.

    Args:
      learning_rate: the initial step size lr >= 0, or a schedule (see the module docstring).
      l2: the regularization constant lambda >= 0: decays the params by `1 - l2 * eta` every
        step and sets the step-size decay. torch's `lambd`, default 1e-4.
      alpha: the power of the step-size decay, >= 0. Bottou: 0.75 (Polyak & Juditsky: in
        (1/2, 1)).
      t0: where the average starts, >= 0: while t <= t0 + 1 the average is the current
        iterate. torch's default 1e6 (averaging effectively off).
    """
    fn = errors.current_function()
    bound = ASGD.bind(fn, learning_rate=learning_rate, l2=l2, alpha=alpha, t0=t0)

    def buffers(params):
        return {
            "ax": jax.tree.map(
                lambda p: jnp.zeros_like(p, base.compute_dtype(jnp.result_type(p))), params
            )
        }

    def step(updates, state, hp, count, params):
        # The scalars in the state's dtype (torch computes them in Python floats and keeps them
        # in its default dtype).
        t = state.count.astype(hp["learning_rate"].dtype)
        lr, l2 = hp["learning_rate"], hp["l2"]
        eta = lr / (1 + l2 * lr * t) ** hp["alpha"]
        decay = l2 * eta
        mu = 1 / jnp.maximum(1, t - hp["t0"])

        def leaf(g, p, ax):
            dt = base.wider(g.dtype, p.dtype, ax.dtype)
            # theta (1 - l2 eta) - eta g, as an update (torch: the params times 1 - l2 eta, then
            # minus eta g: the same to an ulp of the params).
            step = -(eta.astype(dt) * g.astype(dt)) - decay.astype(dt) * p.astype(dt)
            update = step.astype(g.dtype)
            theta = optax.apply_updates(p, update).astype(ax.dtype)
            average = jnp.where(mu == 1, theta, ax + (theta - ax) * mu.astype(ax.dtype))
            return update, average

        results = jax.tree.map(leaf, updates, params, state.ax)
        two = jax.tree.structure((0, 0))
        out, ax = jax.tree.transpose(jax.tree.structure(updates), two, results)
        return out, {"ax": ax}

    return stateful_transform(
        bound, AsgdState, buffers, step, matches=("ax", "params"), needs_params=True
    )


def asgd_eval_params(state: Any, params: optax.Params) -> optax.Params:
    """The average ax of the (single) `jopt.asgd` state inside `state` (which may be a chain's
    or a wrapper's), in the params' dtypes: the params to evaluate the model at. While the
    steps taken are at most t0 + 2 it is the current iterate."""
    found = base.single_state("jopt.asgd_eval_params", state, AsgdState, "asgd state")
    return jax.tree.map(lambda p, ax: ax.astype(jnp.result_type(p)), params, found.ax)
