"""FTRL-Proximal, follow the (proximally) regularized leader (McMahan et al. 2013, "Ad Click
Prediction: a View from the Trenches", Algorithm 1), with Keras' and TensorFlow's extensions: a
general learning-rate power, an initial accumulator and an L2 shrinkage of the gradients.

Per coordinate, with z ("linear") and n ("accumulator") in the state, w the params and
q = -learning_rate_power (1/2 in the paper):

    g' = g + l2_shrinkage * w
    sigma = ((n + g**2)**q - n**q) / lr;   n = n + g**2
    z = z + g' - sigma * w
    w = 0                                                        if |z| <= l1
    w = -(z - sign(z) l1) / (n**q / lr + beta / lr + l2)        otherwise

The new params are a function of z and n: the update returned is that w minus the params. The
paper's n starts at 0 (the `initial_accumulator_value`, 0.1 here as in Keras and TensorFlow, keeps
the first steps from dividing by 0); its w starts at 0 where here it starts at the params given,
which enter z through sigma * w. An initial accumulator n_0 > 0 keeps a term n_0**q / lr * |w|**2
/ 2 centered at 0 in every step's objective: the iterates still converge to a minimum of the loss
(the sum of the gradients converges, so they go to 0), more slowly the larger n_0 / lr.

Conventions. `l1`, `l2` and `beta` are the paper's lambda_1, lambda_2 and beta: `l2` is the
coefficient of |w|**2 / 2. Keras' and TensorFlow's `l2_regularization_strength` is that of
|w|**2 (their denominator adds 2 * l2), and so is their `l2_shrinkage_regularization_strength`
(their gradient adds 2 * l2_shrinkage * w): `jopt.keras.Ftrl` doubles both. `l2_shrinkage` is
not in the paper: a plain L2 penalty in the gradient (z), where `l2` only stabilizes the step.
A learning-rate schedule is read at each step, in sigma and in the denominator, as Keras reads
its schedules. `weight_decay` (None: off) is Keras' decoupled decay, applied to the params before
the step: `w = w - lr * weight_decay * w`, the step then taken at that w.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adagrad import SCALE_BY_RSS
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.regularization import L1, WEIGHT_DECAY
from jopt._src.transforms.trust_ratio import leaf_mask
from jopt._src.validation import NON_NEGATIVE, Range

LEARNING_RATE_POWER = Float("learning_rate_power", Range(hi=0.0))
L2 = Float("l2", NON_NEGATIVE)  # the coefficient of |w|**2 / 2
L2_SHRINKAGE = Float("l2_shrinkage", NON_NEGATIVE)
BETA = Float("beta", NON_NEGATIVE)
FTRL = Spec(
    LEARNING_RATE,
    LEARNING_RATE_POWER,
    SCALE_BY_RSS["initial_accumulator_value"],
    L1,
    L2,
    L2_SHRINKAGE,
    BETA,
    WEIGHT_DECAY.as_optional(),
)


class FtrlState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    linear: optax.Updates  # the paper's z: gradients minus sigma-weighted iterates (Keras' name)
    accumulator: optax.Updates  # the paper's n: initial value plus the squared gradients
    hparams: HParams  # learning_rate, learning_rate_power, l1, l2, l2_shrinkage, beta,
    # weight_decay (if given)


def _check_real(fn: str, params: Any) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if jnp.iscomplexobj(leaf):
            where = jax.tree_util.keystr(path) or "<root>"
            raise TypeError(
                f"{fn}: the parameter at {where} is complex ({jnp.result_type(leaf)}): FTRL's "
                "per-coordinate rates and l1 threshold are defined on real numbers. Optimize the "
                "real and imaginary parts as separate real parameters."
            )


def _leaf(g, w, z, n, hp: HParams, decays: bool):
    """One leaf's FTRL step: (the update, z, n)."""
    dt = base.wider(g.dtype, w.dtype, z.dtype, n.dtype)
    g, old, z, n = g.astype(dt), w.astype(dt), z.astype(dt), n.astype(dt)
    lr, q = hp["learning_rate"].astype(dt), -hp["learning_rate_power"].astype(dt)
    w = old
    if decays and "weight_decay" in hp:
        w = old - old * hp["weight_decay"].astype(dt) * lr
    shrunk = g + hp["l2_shrinkage"].astype(dt) * w
    new_n = n + g * g
    power = jnp.power(new_n, q)
    z = z + (shrunk - (power - jnp.power(n, q)) / lr * w)
    l1 = hp["l1"].astype(dt)
    denominator = power / lr + (hp["l2"].astype(dt) + hp["beta"].astype(dt) / lr)
    new = jnp.where(jnp.abs(z) <= l1, jnp.zeros_like(z), (jnp.clip(z, -l1, l1) - z) / denominator)
    return new - old, z, new_n


@errors.public("jopt.ftrl")
def ftrl(
    learning_rate: ScalarOrSchedule,
    learning_rate_power: float = -0.5,
    initial_accumulator_value: float = 0.1,
    l1: ScalarOrSchedule = 0.0,
    l2: float = 0.0,
    l2_shrinkage: float = 0.0,
    beta: float = 0.0,
    *,
    weight_decay: float | None = None,
    weight_decay_mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """FTRL-Proximal (McMahan et al. 2013, Algorithm 1), per coordinate:

        n' = n + g**2;   z = z + g + l2_shrinkage w - (n'**q - n**q) / lr * w;   n = n'
        w = 0 if |z| <= l1, else -(z - sign(z) l1) / (n**q / lr + beta / lr + l2)

    with q = -learning_rate_power. The update needs the params (`update(grads, state, params)`),
    and returns the new w minus them.

    Args:
      learning_rate: the paper's alpha, > 0 in effect (>= 0 accepted; 0 divides by 0), or a
        schedule.
      learning_rate_power: -q <= 0: the per-coordinate rate is lr / n**q. Paper -0.5; 0 is a
        fixed rate (FTRL with a constant quadratic regularizer).
      initial_accumulator_value: n at the start, >= 0. Paper 0; Keras' and TensorFlow's 0.1.
      l1: the paper's lambda_1 >= 0: coordinates with |z| <= l1 are exactly 0 (sparsity).
      l2: the paper's lambda_2 >= 0, the coefficient of |w|**2 / 2 (half Keras' l2).
      l2_shrinkage: >= 0, adds l2_shrinkage * w to the gradient in z (half Keras').
      beta: the paper's beta >= 0, added to n**q in the denominator (Keras' beta).
      weight_decay: None, or Keras' decoupled decay >= 0: w = w - lr * weight_decay * w before
        the step.
      weight_decay_mask: the leaves weight_decay applies to (a tree of bools shaped like the
        params, or a function of the params returning one; None: all).
    """
    fn = errors.current_function()
    bound = FTRL.bind(
        fn,
        learning_rate=learning_rate,
        learning_rate_power=learning_rate_power,
        initial_accumulator_value=initial_accumulator_value,
        l1=l1,
        l2=l2,
        l2_shrinkage=l2_shrinkage,
        beta=beta,
        weight_decay=weight_decay,
    )
    mask = validation.check_mask(fn, "weight_decay_mask", weight_decay_mask)
    initial = bound["initial_accumulator_value"]

    def buffers(params):
        _check_real(fn, params)
        return {
            "linear": base.zeros_like(params),
            "accumulator": base.full_like(params, initial),
        }

    def step(updates, state, hp, count, params):
        decays = leaf_mask(mask, params)
        results = jax.tree.map(
            lambda g, w, z, n, d: _leaf(g, w, z, n, hp, d),
            updates,
            params,
            state.linear,
            state.accumulator,
            decays,
        )
        three = jax.tree.structure((0, 0, 0))
        out, z, n = jax.tree.transpose(jax.tree.structure(updates), three, results)
        return out, {"linear": z, "accumulator": n}

    return stateful_transform(
        bound, FtrlState, buffers, step, matches=("linear", "params"), needs_params=True
    )
