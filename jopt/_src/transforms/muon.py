"""Muon, momentum orthogonalized by Newton-Schulz (Jordan et al. 2024, "Muon: An optimizer for
hidden layers in neural networks"; the adjusted rate of Liu et al. 2025, "Muon is Scalable for
LLM Training"), for the matrices of a model, with Adam for its other parameters.

For a matrix G (its gradient), with t = 1 at the first update:

    m = beta * m + (1 - beta) * G                        an EMA of the gradients
    M = beta * m_hat' + (1 - beta) * G_hat  (nesterov)   or  m_hat
    O = NS_k(M / (||M||_F + eps))                        k Newton-Schulz steps (below)
    theta -= learning_rate * (s * O + weight_decay * theta)

    X <- a X + (b A + c A A) X,   A = X X^T              one step, (a, b, c) = ns_coeffs

Five steps of the quintic with (a, b, c) = (3.4445, -4.7750, 2.0315) take every singular value
of the normalized M into about [0.7, 1.2]: O is nearly U V^T for M = U S V^T, the closest
semi-orthogonal matrix, at the cost of a few matrix products (X is transposed first when it has
more rows than columns, so that A is the smaller Gram matrix). The scale s is Jordan's
`sqrt(max(1, fan_out / fan_in))` or, with `consistent_rms=r`, Liu et al.'s
`r * sqrt(max(fan_in, fan_out))`, which gives O an RMS of about r (0.2 matches AdamW's, so that
AdamW's learning rate and weight decay carry over). fan_in is the reduction axis of `x @ W`
(axis 0 of JAX's (in, out) kernels), fan_out the output axis.

The convention is optax's (`optax.contrib.muon`; bitwise in float32 and float64 where XLA
compiles both programs alike, else an ulp a step apart: optax bakes its hyperparameters into the
program, and XLA may then fold its constants or rewrite a division differently, see
tests/test_orthogonal.py): the momentum is debiased, m_hat = m / (1 - beta**t),
m_hat' = m / (1 - beta**(t+1)) and G_hat = G / (1 - beta**t). Jordan's Muon uses the buffer as
it is, M = beta * m + (1 - beta) * G (nesterov) or m: `bias_correction=False`. Since M is
normalized before the iteration, the correction changes only the direction of the Nesterov mix
in the first steps (and how eps compares to ||M||). Jordan's eps is 1e-7, optax's 1e-8.

Which leaves are matrices: by default those with two axes; `muon_weight_dimension_numbers` (a
tree of `optax.contrib.MuonDimensionNumbers` or None per leaf, or a prefix of the params, or a
function of the params returning one) names, for each leaf, its reduction and output axes (other
axes are batch axes, orthogonalized independently) or None for Adam. Every other leaf takes
AdamW's step with `adam_b1`, `adam_b2`, `eps`, `adam_eps_root`, `adam_weight_decay` and
`adam_learning_rate` (None: `learning_rate`), and the same `nesterov` (NAdamW by default, as
optax). Jordan and Liu et al. also give embeddings and the output layer to AdamW, although they
are matrices: pass None for them in `muon_weight_dimension_numbers`, or use parameter groups,

    tx = jopt.param_groups(
        functools.partial(jopt.muon, learning_rate=0.02),
        jopt.Group("adamw", ("embed/**", "head/**"), optimizer=jopt.adamw(3e-4, weight_decay=0.0)),
    )

The hyperparameters are in the state under the constructor's names (`adam_b1`...); with
`adam_learning_rate=None`, `jopt.set_hparams(state, learning_rate=...)` changes both rates.
`ns_coeffs` is kept in the state as optax keeps it (a (3,) array, or (n, 3) for a coefficient
triple per step); `eps` (a guard against dividing by 0) is a constant of the program, as in
optax's, and `ns_steps` and the options select the program.

Half-precision leaves are orthogonalized in float32 (optax iterates in bfloat16), and their
updates cast back to their dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

from jopt._src import base, errors, per_leaf, stateful, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Flag, Float, Int, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.muon_dimensions import (
    ADAM_LEAF,
    DimensionNumbers,
    plan,
    shape_scale,
    unplanned,
)
from jopt._src.transforms.muon_step import adam_leaf, muon_leaf
from jopt._src.transforms.newton_schulz import (
    PRECONDITIONINGS,
    STANDARD_NS_COEFFS,
    coefficients,
    state_coefficients,
)
from jopt._src.transforms.regularization import WEIGHT_DECAY
from jopt._src.transforms.trust_ratio import leaf_mask
from jopt._src.validation import DECAY, NON_NEGATIVE

BETA = Float("beta", DECAY, schedulable=True, complement=True)
NS_STEPS = Int("ns_steps", 1, in_state=False)  # unrolled: it selects the program
NESTEROV = Flag("nesterov")
ADAPTIVE = Flag("adaptive")
# A constant of the program, as in optax's: read from the state, eps makes XLA fuse the
# normalization M / (||M||_F + eps) with the computation of M, rounded differently than optax's
# program does (an ulp, which Muon's normalization amplifies near a minimum).
EPS = Float("eps", NON_NEGATIVE, in_state=False)
PRECONDITIONING = Choice("preconditioning", PRECONDITIONINGS)
BIAS_CORRECTION = Flag("bias_correction")
CONSISTENT_RMS = Float("consistent_rms", NON_NEGATIVE).as_optional()
ADAM_B1 = Float("adam_b1", DECAY, schedulable=True, complement=True)
ADAM_B2 = Float("adam_b2", DECAY, schedulable=True, complement=True)
ADAM_EPS_ROOT = Float("adam_eps_root", NON_NEGATIVE)
ADAM_WEIGHT_DECAY = Float("adam_weight_decay", NON_NEGATIVE, schedulable=True)
ADAM_LEARNING_RATE = Float(
    "adam_learning_rate", NON_NEGATIVE, schedulable=True, scale="adam_lr_scale"
).as_optional()
_OPTIONS = (NS_STEPS, NESTEROV, ADAPTIVE, PRECONDITIONING, BIAS_CORRECTION)
SCALE_BY_MUON = Spec(BETA, EPS, *_OPTIONS)
MUON = Spec(
    LEARNING_RATE,
    BETA,
    EPS,
    WEIGHT_DECAY,
    *_OPTIONS,
    ADAM_B1,
    ADAM_B2,
    ADAM_EPS_ROOT,
    ADAM_WEIGHT_DECAY,
    ADAM_LEARNING_RATE,
    CONSISTENT_RMS,
)
# The blocks of `muon`: its directions, its weight decays, its learning rates.
_DIRECTION = Spec(BETA, EPS, *_OPTIONS, ADAM_B1, ADAM_B2, ADAM_EPS_ROOT, CONSISTENT_RMS)
_DECAY = Spec(WEIGHT_DECAY, ADAM_WEIGHT_DECAY)
_RATE = Spec(LEARNING_RATE, ADAM_LEARNING_RATE)

ORTHOGONALIZES = "the orthogonalization of each matrix leaf"  # (Adam on the other leaves)


class ScaleByMuonState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # the momentum m, an EMA of the gradients
    ns_coeffs: jax.Array  # the Newton-Schulz coefficients, (3,) or (steps, 3), as optax's
    hparams: HParams  # beta


class MuonState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # Muon's momentum on matrices, Adam's first moment on the other leaves
    nu: optax.Updates  # Adam's second moment; optax.MaskedNode() on the matrices
    ns_coeffs: jax.Array  # the Newton-Schulz coefficients, (3,) or (steps, 3), as optax's
    hparams: HParams  # beta, adam_b1, adam_b2, adam_eps_root (and consistent_rms if given)


class MuonTermState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    hparams: HParams  # weight_decay, adam_weight_decay; or learning_rate (adam_learning_rate)


# -- scale_by_muon -------------------------------------------------------------------------------


@errors.public("jopt.scale_by_muon")
def scale_by_muon(
    ns_coeffs: Any = STANDARD_NS_COEFFS,
    ns_steps: int = 5,
    beta: ScalarOrSchedule = 0.95,
    eps: float = 1e-8,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    weight_dimension_numbers: DimensionNumbers = None,
    bias_correction: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Muon's orthogonalized momentum, O = NS_k(M / (||M||_F + eps)) (see the module
    docstring); a drop-in for `optax.contrib.scale_by_muon`. Every leaf must be a matrix, or
    have its dimension numbers.

    Args:
      ns_coeffs: (a, b, c) of the quintic, or one triple per step ("standard" and "dion" in
        `jopt.muon`). Default: Jordan's (3.4445, -4.7750, 2.0315).
      ns_steps: the number of Newton-Schulz steps k, >= 1. Given a triple per step, there is
        one step per triple, and ns_steps bounds their number (as optax). Default 5.
      beta: the momentum's decay rate, in [0, 1), or a schedule. Default 0.95.
      eps: added to ||M||_F, >= 0. optax's default 1e-8 (Jordan's: 1e-7).
      mu_dtype: dtype of the momentum (default: the params').
      nesterov: M = beta m_hat' + (1 - beta) G_hat, else m_hat.
      adaptive: O scaled by <M, O> (Bernstein & Newhouse 2024).
      preconditioning: how M is brought below norm 1 before the iteration: "frobenius"
        (divided by ||M||_F + eps), "spectral" (by its largest singular value + eps, an SVD),
        "aol" or "schatten" (rescaled inside the first step, where eps is optax's fixed 1e-8).
      weight_dimension_numbers: per leaf, `optax.contrib.MuonDimensionNumbers` (its reduction
        and output axes; the others are batch axes), as a tree shaped like the params or a
        prefix of it, or a function of the params returning one. None: every leaf a matrix.
      bias_correction: debias the momentum as optax (True), or use it as Jordan's Muon (False).
    """
    fn = errors.current_function()
    bound = SCALE_BY_MUON.bind(
        fn,
        beta=beta,
        eps=eps,
        ns_steps=ns_steps,
        nesterov=nesterov,
        adaptive=adaptive,
        preconditioning=preconditioning,
        bias_correction=bias_correction,
    )
    coeffs = coefficients(fn, ns_coeffs, bound["ns_steps"])
    mu_dtype = validation.check_dtype(fn, "mu_dtype", mu_dtype)

    def buffers(params):
        plan(fn, params, weight_dimension_numbers, default_adam=False)
        return {"mu": base.zeros_like(params, mu_dtype), "ns_coeffs": state_coefficients(coeffs)}

    def step(updates, state, hp, count, params):
        plans = plan(fn, updates, weight_dimension_numbers, default_adam=False)

        def leaf(g, m, dims):
            return muon_leaf(g, m, dims, state.ns_coeffs, hp, count, bound)

        results = jax.tree.map(leaf, updates, state.mu, unplanned(plans)(updates))
        out, mu = _unzip(updates, results)
        return out, {"mu": mu}

    return per_leaf.declare(
        stateful_transform(bound, ScaleByMuonState, buffers, step, matches="mu"),
        ORTHOGONALIZES,
    )


def _unzip(like: Any, results: Any) -> tuple[Any, Any]:
    return jax.tree.transpose(jax.tree.structure(like), jax.tree.structure((0, 0)), results)


# -- muon ----------------------------------------------------------------------------------------


def _direction(bound, coeffs, mu_dtype, dimension_numbers) -> optax.GradientTransformationExtraArgs:
    """`muon`'s first block: O times its scale s on matrices, Adam's m_hat / (sqrt(v_hat +
    eps_root) + eps) on the other leaves."""
    fn = bound.fn

    def buffers(params):
        plans = plan(fn, params, dimension_numbers, default_adam=True)
        nu = jax.tree.map(
            lambda p, how: base.zeros_like(p) if how is ADAM_LEAF else optax.MaskedNode(),
            params,
            unplanned(plans)(params),
        )
        mu = base.zeros_like(params, mu_dtype)
        return {"mu": mu, "nu": nu, "ns_coeffs": state_coefficients(coeffs)}

    def step(updates, state, hp, count, params):
        plans = plan(fn, updates, dimension_numbers, default_adam=True)
        rms = hp["consistent_rms"] if "consistent_rms" in hp else None

        def matrix_leaf(g, m, dims):
            out, m = muon_leaf(g, m, dims, state.ns_coeffs, hp, count, bound)
            return shape_scale(out, dims, rms).astype(out.dtype) * out, m

        grads, treedef = jax.tree.flatten(updates)
        moments = jax.tree.leaves(state.mu)
        seconds = treedef.flatten_up_to(state.nu)
        out, mu, nu = [], [], []
        for g, m, v, how in zip(grads, moments, seconds, plans, strict=True):
            if how is ADAM_LEAF:
                u, m, v = adam_leaf(g, m, v, hp, count, bound)
            else:
                u, m = matrix_leaf(g, m, how)
            out.append(u)
            mu.append(m)
            nu.append(v)
        unflatten = lambda leaves: jax.tree.unflatten(treedef, leaves)  # noqa: E731
        return unflatten(out), {"mu": unflatten(mu), "nu": unflatten(nu)}

    return per_leaf.declare(
        stateful_transform(bound, MuonState, buffers, step, matches="mu"), ORTHOGONALIZES
    )


def _per_group(
    fn: str,
    spec: Spec,
    values: dict[str, Any],
    term: Callable[[jax.Array, Any, jax.Array], jax.Array],
    dimension_numbers: DimensionNumbers,
    mask: Any = None,
    *,
    needs_params: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """A block applying `term(update, param, value)` leaf by leaf: on matrices with the spec's
    first hyperparameter (where `mask` holds), on the other leaves with its second (or the
    first, if the second is not given)."""
    bound = spec.bind(fn, **values)
    muon_name, adam_name = (h.name for h in spec)

    def step(updates, state, hp, count, params):
        plans = plan(fn, updates, dimension_numbers, default_adam=True)
        adam_value = hp[adam_name] if adam_name in hp else hp[muon_name]
        grads, treedef = jax.tree.flatten(updates)
        weights = treedef.flatten_up_to(params) if needs_params else [None] * len(grads)
        applies = jax.tree.leaves(leaf_mask(mask, updates))
        out = [
            term(g, p, adam_value)
            if how is ADAM_LEAF
            else (term(g, p, hp[muon_name]) if applied else g)
            for g, p, how, applied in zip(grads, weights, plans, applies, strict=True)
        ]
        return jax.tree.unflatten(treedef, out), {}

    return stateful_transform(
        bound, MuonTermState, lambda params: {}, step, needs_params=needs_params
    )


@errors.public("jopt.muon")
def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs: Any = STANDARD_NS_COEFFS,
    ns_steps: int = 5,
    beta: ScalarOrSchedule = 0.95,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: ScalarOrSchedule = 0.9,
    adam_b2: ScalarOrSchedule = 0.999,
    adam_eps_root: float = 0.0,
    adam_weight_decay: ScalarOrSchedule = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: DimensionNumbers = None,
    consistent_rms: float | None = None,
    bias_correction: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Muon on the matrices, AdamW on the other leaves (see the module docstring); a drop-in for
    `optax.contrib.muon`.

        matrices:  theta -= learning_rate * (s * NS_k(M / (||M||_F + eps)) + weight_decay * theta)
        others:    theta -= adam_learning_rate * (m_hat / (sqrt(v_hat + adam_eps_root) + eps)
                            + adam_weight_decay * theta)

    Args:
      learning_rate: Muon's rate (and Adam's, unless `adam_learning_rate`), or a schedule.
      ns_coeffs: (a, b, c), one triple per step, or a preset: "standard" (Jordan's, the
        default) or "dion" (Ahn et al. 2025, five triples).
      ns_steps: the number of Newton-Schulz steps, >= 1. Default 5.
      beta: Muon's momentum decay rate, in [0, 1), or a schedule. Default 0.95.
      eps: added to ||M||_F, and Adam's eps. Default 1e-8 (Jordan's: 1e-7).
      weight_decay: the matrices' decoupled weight decay, times the learning rate (as torch's
        and Keras' Muon), >= 0 or a schedule. Default 0.
      weight_decay_mask: which matrices it applies to: a tree of bools (or a prefix), or a
        function of the params returning one, read on the whole params tree.
      mu_dtype: dtype of the momenta (default: the params').
      nesterov: Nesterov momentum, for Muon and for Adam (NAdam's first moment). Default True.
      adaptive: O scaled by <M, O>. Default False.
      preconditioning: "frobenius", "spectral", "aol" or "schatten" (see `scale_by_muon`).
      adam_b1, adam_b2: Adam's decay rates, in [0, 1). Defaults 0.9, 0.999.
      adam_eps_root: Adam's eps inside the root, >= 0. Default 0.
      adam_weight_decay: Adam's decoupled weight decay (times its rate), >= 0. Default 0.
      adam_learning_rate: Adam's rate, or None for `learning_rate`.
      muon_weight_dimension_numbers: which leaves Muon takes and their axes (see the module
        docstring); None: the leaves with two axes.
      consistent_rms: None for Jordan's scale s = sqrt(max(1, fan_out / fan_in)), or r for
        Liu et al.'s r * sqrt(max(fan_in, fan_out)) (0.2 matches AdamW's update RMS).
      bias_correction: debias Muon's momentum as optax (True), or not, as Jordan's Muon.
    """
    fn = errors.current_function()
    values = {
        "beta": beta,
        "eps": eps,
        "ns_steps": ns_steps,
        "nesterov": nesterov,
        "adaptive": adaptive,
        "preconditioning": preconditioning,
        "bias_correction": bias_correction,
        "adam_b1": adam_b1,
        "adam_b2": adam_b2,
        "adam_eps_root": adam_eps_root,
        "consistent_rms": consistent_rms,
    }
    direction = _DIRECTION.bind(fn, **values)
    coeffs = coefficients(fn, ns_coeffs, direction["ns_steps"])
    mu_dtype = validation.check_dtype(fn, "mu_dtype", mu_dtype)
    mask = validation.check_mask(fn, "weight_decay_mask", weight_decay_mask)
    dims = muon_weight_dimension_numbers
    decays = {"weight_decay": weight_decay, "adam_weight_decay": adam_weight_decay}
    rates = {"learning_rate": learning_rate, "adam_learning_rate": adam_learning_rate}
    return stateful.chain(
        _direction(direction, coeffs, mu_dtype, dims),
        _per_group(fn, _DECAY, decays, _decayed, dims, mask, needs_params=True),
        _per_group(fn, _RATE, {k: v for k, v in rates.items() if v is not None}, _descent, dims),
    )


def _decayed(g: jax.Array, p: jax.Array, weight_decay: jax.Array) -> jax.Array:
    return g + weight_decay.astype(g.dtype) * p.astype(g.dtype)


def _descent(g: jax.Array, p: Any, learning_rate: jax.Array) -> jax.Array:
    return -learning_rate.astype(g.dtype) * g
