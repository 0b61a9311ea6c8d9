"""Adan (Xie et al. 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
Models"): Adam whose first and second moments see the gradient extrapolated along its last
change, `g + w (g - g_prev)`, a Nesterov step estimated without a second gradient.

The decay rates here are the code's (optax, the authors' sail-sg/Adan): b = 1 - beta of the
paper, whose defaults beta = (0.02, 0.08, 0.01) are b = (0.98, 0.92, 0.99). With d = g - g_prev
(0 at the first step):

    m = b1 m + (1 - b1) g
    v = b2 v + (1 - b2) d
    n = b3 n + (1 - b3) (g + w d)**2
    update = (m' + w v') / (sqrt(n' + eps_root) + eps)

`form` chooses between two readings of Algorithm 1:

- "optax" (default, `optax.scale_by_adan` / `optax.adan` 0.2.8 bitwise): w = 1 - b2 (0.08 by
  default); m, v, n start at 0 and are bias-corrected, x' = x / (1 - b**t) (so the zero d of the
  first step counts as a sample of v); weight decay decoupled as AdamW's,
  theta -= lr * (update + weight_decay * theta).
- "paper" (Algorithm 1): w = 1 - beta2 = b2 (0.92 by default; optax's 1 - b2 copies the
  paper's (1 - beta2) into the code's convention unchanged, see optax pull request #1715);
  each moment starts at its first sample (m_1 = g_1, n_1 = g_1**2, and v_2 = g_2 - g_1, the
  first difference) and none is bias-corrected, x' = x; weight decay proximal,
  theta = (theta - lr * update) / (1 + lr * weight_decay).

The authors' code takes a third way: the paper's w = b2 and proximal decay (its default,
`no_prox=False`), with optax's zero-started, bias-corrected moments.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import B1, B2, EPS, EPS_ROOT
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY, add_decayed_weights
from jopt._src.validation import DECAY

FORMS = ("optax", "paper")
B3 = Float("b3", DECAY, schedulable=True, complement=True)
FORM = Choice("form", FORMS)
SCALE_BY_ADAN = Spec(B1, B2, B3, EPS, EPS_ROOT, FORM)
ADAN = Spec(LEARNING_RATE, B1, B2, B3, EPS, EPS_ROOT, WEIGHT_DECAY, FORM)
PROXIMAL_STEP = Spec(LEARNING_RATE, WEIGHT_DECAY)


class ScaleByAdanState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating (optax calls it `t`)
    m: optax.Updates  # EMA of the gradients
    v: optax.Updates  # EMA of their differences g - g_prev
    n: optax.Updates  # EMA of (g + w (g - g_prev))**2
    g: optax.Updates  # the previous gradients
    hparams: HParams  # b1, b2, b3, eps, eps_root


class ProximalStepState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    hparams: HParams  # learning_rate, weight_decay


@errors.public("jopt.scale_by_adan")
def scale_by_adan(
    b1: ScalarOrSchedule = 0.98,
    b2: ScalarOrSchedule = 0.92,
    b3: ScalarOrSchedule = 0.99,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    *,
    form: str = "optax",
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by Adan's moments; a drop-in for `optax.scale_by_adan` (see the module
    docstring for the formulas).

    Args:
      b1: decay rate of the gradients' EMA, in [0, 1). Default 0.98 (the paper's beta1 = 0.02).
      b2: decay rate of the gradient differences' EMA, in [0, 1). Default 0.92 (beta2 = 0.08).
      b3: decay rate of the second moment, in [0, 1). Default 0.99 (beta3 = 0.01).
      eps: added to the root of the second moment, >= 0.
      eps_root: added to the second moment inside the root, >= 0.
      form: "optax" (default): the difference weighted by 1 - b2, moments from 0 and
        bias-corrected, as optax. "paper": Algorithm 1, the difference weighted by b2 (the
        paper's 1 - beta2), moments started at their first samples, no bias correction.
        Warning: the two differ from the second step on.
    """
    bound = SCALE_BY_ADAN.bind(
        errors.current_function(), b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root, form=form
    )
    paper = bound["form"] == "paper"

    def buffers(params):
        return {name: base.zeros_like(params) for name in ("m", "v", "n", "g")}

    def step(updates, state, hp, count, params):
        def rates(name: str, first: int):
            """(decay, 1 - decay) of `name`'s EMA; in the paper's form, decay 0 up to step
            `first`, so that the EMA starts at its first sample."""
            decay, complement = hp[name], hp.complement(name)
            if not paper:
                return decay, complement
            start = count <= first
            return jnp.where(start, 0, decay), jnp.where(start, 1, complement)

        def debiased(name: str, tree):
            if paper:
                return tree
            correction = tree_math.bias_correction(hp[name], count)
            return jax.tree.map(lambda x: tree_math.debias(x, correction), tree)

        weight = hp["b2"] if paper else hp.complement("b2")

        def difference(g, g_prev):
            dt = base.wider(g.dtype, g_prev.dtype)
            g = g.astype(dt)
            return jnp.where(count == 1, jnp.zeros_like(g), g - g_prev.astype(dt))

        def extrapolated(g, d):
            dt = base.wider(g.dtype, d.dtype)
            return g.astype(dt) + weight.astype(dt) * d.astype(dt)

        b1, b2, b3 = rates("b1", 1), rates("b2", 2), rates("b3", 1)
        d = jax.tree.map(difference, updates, state.g)
        m = jax.tree.map(lambda g, m: tree_math.moment(g, m, *b1), updates, state.m)
        v = jax.tree.map(lambda d, v: tree_math.moment(d, v, *b2), d, state.v)
        e = jax.tree.map(extrapolated, updates, d)
        n = jax.tree.map(lambda e, n: tree_math.moment(e, n, *b3, 2), e, state.n)

        def leaf(m, v, n, g):
            dt = base.wider(m.dtype, v.dtype, n.dtype)
            direction = m.astype(dt) + weight.astype(dt) * v.astype(dt)
            root = jnp.sqrt(n.astype(dt) + hp["eps_root"].astype(dt)) + hp["eps"].astype(dt)
            return (direction / root).astype(g.dtype)

        out = jax.tree.map(leaf, debiased("b1", m), debiased("b2", v), debiased("b3", n), updates)
        return out, {"m": m, "v": v, "n": n, "g": updates}

    return stateful_transform(bound, ScaleByAdanState, buffers, step, matches="m")


def _proximal_step(
    learning_rate: ScalarOrSchedule, weight_decay: ScalarOrSchedule, mask: Any
) -> optax.GradientTransformationExtraArgs:
    """The paper's last line: theta = (theta - lr * u) / (1 + lr * weight_decay), as the update
    `-lr * (u + weight_decay * theta) / (1 + lr * weight_decay)`; `-lr * u` where `mask` (a
    tree of bools, a prefix of the params', or a function params -> such a tree) is False."""
    fn = errors.current_function()
    bound = PROXIMAL_STEP.bind(fn, learning_rate=learning_rate, weight_decay=weight_decay)
    mask = validation.check_mask(fn, "mask", mask)

    def step(updates, state, hp, count, params):
        def decayed(u, p):
            dt = base.wider(u.dtype, p.dtype)
            lr, wd = hp["learning_rate"].astype(dt), hp["weight_decay"].astype(dt)
            return -lr * (u.astype(dt) + wd * p.astype(dt)) / (1 + lr * wd)

        def plain(u, p):
            return -hp["learning_rate"].astype(u.dtype) * u

        if mask is None:
            return jax.tree.map(decayed, updates, params), {}
        marks = mask(params) if callable(mask) else mask
        return jax.tree.map(
            lambda keep, u, p: jax.tree.map(decayed if keep else plain, u, p),
            marks,
            updates,
            params,
        ), {}

    return stateful_transform(bound, ProximalStepState, lambda params: {}, step, needs_params=True)


@errors.public("jopt.adan")
def adan(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.98,
    b2: ScalarOrSchedule = 0.92,
    b3: ScalarOrSchedule = 0.99,
    eps: float = 1e-8,
    eps_root: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
    *,
    form: str = "optax",
) -> optax.GradientTransformationExtraArgs:
    """Adan (Xie et al. 2022); a drop-in for `optax.adan` (see the module docstring).

        optax:  theta -= lr * ((m_hat + (1 - b2) v_hat) / (sqrt(n_hat + eps_root) + eps)
                               + weight_decay * theta)
        paper:  theta = (theta - lr * (m + b2 v) / (sqrt(n + eps_root) + eps))
                        / (1 + lr * weight_decay)

    `form="paper"` is Algorithm 1 of the paper: the gradient difference weighted by b2 (not
    1 - b2), moments started at their first samples without bias correction, and the proximal
    weight decay. `mask` marks the leaves to decay (a tree of bools or a function params ->
    such a tree). The authors recommend weight_decay = 0.02 (optax's default is 0).
    """
    scale = scale_by_adan(b1, b2, b3, eps, eps_root, form=form)
    if form == "paper":
        return stateful.chain(scale, _proximal_step(learning_rate, weight_decay, mask))
    return stateful.chain(
        scale, add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate)
    )
