"""SM3: Adagrad whose sums of squared gradients are kept per row and per column of a matrix
(per slice along each axis of a tensor), not per entry (Anil et al. 2019, "Memory-Efficient
Adaptive Optimization").

optax's SM3, reproduced here, is the paper's SM3-II (Algorithm 2) with the cover of each leaf by
its slices along every axis (a vector: its single entries, where it is Adagrad), an EMA momentum
of the preconditioned gradients (not in the paper's algorithms), and eps inside the root:

    nu(i)  = min over the slices r holding i of mu(r)  +  g(i)**2
    mu(r)  = max over i in r of nu(i)                            (one array per axis, from 0)
    u(i)   = g(i) / sqrt(nu(i) + eps),  0 where nu(i) = 0         (the paper's 0/0 = 0)
    m = b1 * m + (1 - b1) * u;   theta -= learning_rate * m

With eps = 0, the step is the paper's SM3-II (with momentum; momentum=0 drops it too). optax's
`b2` < 1 (in `scale_by_sm3` only) turns the sums into averages,
nu = (1 - b2) g**2 + b2 min(mu), which the paper does not have. A leaf of shape (n, m) keeps
n + m accumulators and a momentum buffer of n m entries (Adam keeps 2 n m).

Complex parameters are refused, as optax does; scalar leaves are treated as vectors of one entry
(optax's SM3 fails on them).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, per_leaf, stateful, tree_math
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Bound, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import B1, EPS
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.momentum import MOMENTUM
from jopt._src.validation import UNIT

SCALE_BY_SM3 = Spec(B1, Float("b2", UNIT, complement=True), EPS)
SM3 = Spec(LEARNING_RATE, MOMENTUM, EPS)
_SM3_BLOCK = Spec(MOMENTUM, EPS)


class ScaleBySM3State(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # per leaf, a list: the max of nu over each slice, one array per axis
    nu: optax.Updates  # the momentum m of the preconditioned gradients
    hparams: HParams  # b1 (sm3: momentum), b2 (scale_by_sm3 only), eps


def _refuse_complex(fn: str, params: Any) -> None:
    paths = jax.tree_util.tree_flatten_with_path(params)[0]
    found = [jax.tree_util.keystr(p) or "<root>" for p, x in paths if jnp.iscomplexobj(x)]
    if found:
        raise TypeError(
            f"{fn}: complex parameters at {', '.join(found)}: SM3 is defined on real numbers, "
            "and optax's sm3 refuses them too. Optimize their real and imaginary parts as "
            "separate real parameters."
        )


def _slice_maxima_shapes(p: jax.Array) -> list[tuple[int, ...]]:
    """The shapes of a leaf's accumulators: one per axis (its length), or the leaf's own."""
    shape = jnp.shape(p)
    return [shape] if len(shape) < 2 else [(n,) for n in shape]


def _sm3(bound: Bound, first: str) -> optax.GradientTransformationExtraArgs:
    """SM3's transform, the momentum kept in the state under the name `first` (b1 or momentum);
    with "b2" in `bound` the accumulator is optax's average, else the paper's sum."""
    fn, averaged = bound.fn, "b2" in bound.values

    def buffers(params):
        _refuse_complex(fn, params)

        def mu(p):
            return [jnp.zeros(shape, jnp.result_type(p)) for shape in _slice_maxima_shapes(p)]

        return {"mu": jax.tree.map(mu, params), "nu": base.zeros_like(params)}

    def step(updates, state, hp, count, params):
        def accumulate(g, mu):
            dt = base.wider(g.dtype)
            g = g.astype(dt)
            if g.ndim < 2:
                smallest = mu[0].astype(dt)
            else:
                covers = [
                    jnp.reshape(m, [1] * i + [g.shape[i]] + [1] * (g.ndim - i - 1)).astype(dt)
                    for i, m in enumerate(mu)
                ]
                smallest = functools.reduce(jnp.minimum, covers)
            if not averaged:
                return g**2 + smallest
            b2 = hp["b2"].astype(dt)  # b2 = 1: the sum (optax's weight of g**2 is then 1)
            weight = jnp.where(b2 == 1, jnp.ones_like(b2), hp.complement("b2").astype(dt))
            return weight * g**2 + b2 * smallest

        accum = jax.tree.map(accumulate, updates, state.mu)

        def precondition(g, a):
            inverse = jnp.where(a > 0, jax.lax.rsqrt(a + hp["eps"].astype(a.dtype)), 0.0)
            return g.astype(a.dtype) * inverse

        scaled = jax.tree.map(precondition, updates, accum)
        nu = jax.tree.map(
            lambda u, m: tree_math.moment(u, m, hp[first], hp.complement(first)), scaled, state.nu
        )

        def maxima(a):
            if a.ndim < 2:
                return [a]
            return [jnp.max(a, axis=[k for k in range(a.ndim) if k != i]) for i in range(a.ndim)]

        return nu, {"mu": jax.tree.map(maxima, accum), "nu": nu}

    return per_leaf.declare(
        stateful_transform(bound, ScaleBySM3State, buffers, step, matches="nu"),
        "the maxima of each leaf's squared gradients along its axes",
    )


@errors.public("jopt.scale_by_sm3")
def scale_by_sm3(
    b1: ScalarOrSchedule = 0.9, b2: float = 1.0, eps: float = 1e-8
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by SM3's accumulators; a drop-in for `optax.scale_by_sm3` (formula and
    its relation to the paper's SM3-II: the module docstring).

    Args:
      b1: decay of the momentum of the preconditioned gradients, in [0, 1).
      b2: 1 (default) for the paper's sums of squared gradients; in [0, 1) for optax's
        exponential averages `(1 - b2) g**2 + b2 min(mu)`.
      eps: added to nu inside the root, >= 0 (0: the paper's SM3-II).
    """
    bound = SCALE_BY_SM3.bind(errors.current_function(), b1=b1, b2=b2, eps=eps)
    return _sm3(bound, "b1")


@errors.public("jopt.sm3")
def sm3(
    learning_rate: ScalarOrSchedule, momentum: ScalarOrSchedule = 0.9, *, eps: float = 1e-8
) -> optax.GradientTransformationExtraArgs:
    """SM3 (Anil et al. 2019), the paper's SM3-II with momentum and optax's eps; a drop-in for
    `optax.sm3` (formula: the module docstring).

        nu = min(mu over the slices holding each entry) + g**2;   mu = max(nu over each slice)
        m = momentum m + (1 - momentum) g / sqrt(nu + eps);        theta -= lr * m

    Args:
      learning_rate: a number >= 0 or a schedule (optax's takes a number only).
      momentum: decay of the momentum, in [0, 1) (0: none). Default 0.9 (optax's).
      eps: added to nu inside the root, >= 0: optax's 1e-8 (fixed there); 0 is the paper's
        SM3-II, whose step is then invariant to the scale of the gradients.
    """
    bound = _SM3_BLOCK.bind(errors.current_function(), momentum=momentum, eps=eps)
    return stateful.chain(_sm3(bound, "momentum"), scale_by_learning_rate(learning_rate))
