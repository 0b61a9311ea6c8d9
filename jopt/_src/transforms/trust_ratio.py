"""Trust ratios: each leaf's (layer's) update rescaled by the ratio of its parameters' norm to
its own, so that every layer moves by a set fraction of its weights whatever the scale of its
gradients. The block of LARS (`lars.py`), LAMB (`lamb.py`) and Fromage (`fromage.py`).

    ratio = trust_coefficient * phi(||w||) / (||u|| + eps)        per leaf w, its update u
    update = ratio * u;     ratio = 1 where phi(||w||) = 0 or ||u|| = 0

||.|| is the Frobenius norm of the leaf (|x|**2 summed, complex leaves included), raised to
`min_norm` where it is smaller (optax's `safe_norm`), for the parameters and the update alike.

phi is the identity by default, as in optax and the authors' code. The LAMB paper (You et al.
2020, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes", Algorithm 2)
bounds the parameter norm, phi(z) = min(max(z, gamma_l), gamma_u): `phi_min` and `phi_max`.

Zero norms. The papers' formulas give ratio 0 at ||w|| = 0 (a zero-initialised layer, a bias,
would never move) and 0/0 at ||u|| = 0; optax, TF's LARS, the LAMB authors' code and Fromage's
code use ratio 1 there, and so does jopt. With phi_min > 0 (the LAMB paper's phi), ||w|| = 0
gives phi_min / ||u|| instead: only a zero update falls back to 1 (its step is 0 either way).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, per_leaf, validation
from jopt._src.hparams import HParams
from jopt._src.spec import Bound, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import EPS
from jopt._src.validation import NON_NEGATIVE, POSITIVE

MIN_NORM = Float("min_norm", NON_NEGATIVE)
TRUST_COEFFICIENT = Float("trust_coefficient", POSITIVE)
PHI_MIN = Float("phi_min", NON_NEGATIVE).as_optional()
PHI_MAX = Float("phi_max", POSITIVE).as_optional()
SCALE_BY_TRUST_RATIO = Spec(MIN_NORM, TRUST_COEFFICIENT, EPS, PHI_MIN, PHI_MAX)


class ScaleByTrustRatioState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    hparams: HParams  # those of min_norm, trust_coefficient, eps, phi_min, phi_max given


def bind_phi(fn: str, spec: Spec, values: dict[str, Any], phi_min: Any, phi_max: Any) -> Bound:
    """`spec` bound to `values` and to the phi bounds given (None: that bound is off, and not in
    the state), checking phi_min <= phi_max."""
    phi = {k: v for k, v in (("phi_min", phi_min), ("phi_max", phi_max)) if v is not None}
    bound = spec.bind(fn, **values, **phi)
    if len(phi) == 2:
        validation.require(
            fn,
            phi_min <= phi_max,
            f"phi_min={phi_min!r} must not exceed phi_max={phi_max!r}.",
            argument="phi_min",
            value=phi_min,
        )
    return bound


def leaf_mask(mask: Any, params: Any) -> Any:
    """`mask` read as `optax.masked` reads it (a tree of bools, or a prefix of the params such as
    a single bool, or a function of the params returning one; None: every leaf), as a tree of
    bools shaped like `params`."""
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    tree = mask(params) if callable(mask) else mask
    return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), tree, params)


def _norm(x: jax.Array, hp: HParams) -> jax.Array:
    """`optax.safe_norm(x, min_norm)`: ||x||, raised to min_norm (0 if not in the state). Also
    at 0, where `jnp.linalg.norm(x)` is the same number on paper, but XLA may add its squares in
    another order than in optax's `safe_norm`: 1 ulp apart, not bitwise."""
    if "min_norm" not in hp:
        return optax.safe_norm(x, 0.0)
    return optax.safe_norm(x, hp["min_norm"].astype(jnp.finfo(x.dtype).dtype))


def _ratio(param_norm: jax.Array, update_norm: jax.Array, hp: HParams) -> jax.Array:
    """trust_coefficient * phi(param_norm) / (update_norm + eps), 1 where either norm is 0."""
    dt = param_norm.dtype
    phi = param_norm
    if "phi_min" in hp:
        phi = jnp.maximum(phi, hp["phi_min"].astype(dt))
    if "phi_max" in hp:
        phi = jnp.minimum(phi, hp["phi_max"].astype(dt))
    numerator = hp["trust_coefficient"].astype(dt) * phi if "trust_coefficient" in hp else phi
    denominator = update_norm + hp["eps"].astype(dt) if "eps" in hp else update_norm
    ratio = numerator / denominator
    return jnp.where((phi == 0) | (update_norm == 0), jnp.ones_like(ratio), ratio)


def _decayed(updates: Any, params: Any, mask: Any, weight_decay: jax.Array) -> Any:
    """`u + weight_decay * w` on the leaves of `mask` (a tree of bools).

    Skipped at weight_decay = 0, as optax skips a decay of 0: jitted, XLA would fuse the zero
    term into the sums of the norms after it, and add their terms in another order than optax's.
    """

    def decay():
        return jax.tree.map(
            lambda u, w, m: u + weight_decay.astype(u.dtype) * w.astype(u.dtype) if m else u,
            updates,
            params,
            mask,
        )

    return jax.lax.cond(weight_decay == 0, lambda: updates, decay)


def trust_ratio_transform(
    bound: Bound, *, decay_mask: Any = None, ratio_mask: Any = None, split_norm: bool = False
) -> optax.GradientTransformationExtraArgs:
    """The trust-ratio block with the hyperparameters of `bound` (any of min_norm,
    trust_coefficient, eps, phi_min, phi_max and weight_decay; one it does not hold is neutral:
    no clipping, 1, 0, no bound, no decay), none of which needs to be in the state.

    With `weight_decay` (LARS, LAMB), it first adds `weight_decay * w` to the leaves of
    `decay_mask`; the ratio scales the leaves of `ratio_mask`. `split_norm`: the LARS paper's
    denominator ||g|| + weight_decay ||w||, instead of the decayed update's ||g + weight_decay w||.
    """

    def step(updates, state, hp, count, params):
        decays = leaf_mask(decay_mask, params)
        grads = jax.tree.map(lambda g, w: g.astype(base.wider(g.dtype, w.dtype)), updates, params)
        wd = hp["weight_decay"] if "weight_decay" in hp else None
        decayed = grads if wd is None else _decayed(grads, params, decays, wd)

        def leaf(g, u, w, decay, scale):
            if not scale:
                return u
            w = w.astype(u.dtype)
            param_norm = _norm(w, hp)
            if not split_norm:
                update_norm = _norm(u, hp)
            elif decay and wd is not None:
                update_norm = _norm(g, hp) + wd.astype(param_norm.dtype) * param_norm
            else:
                update_norm = _norm(g, hp)
            return u * _ratio(param_norm, update_norm, hp).astype(u.dtype)

        scales = leaf_mask(ratio_mask, params)
        return jax.tree.map(leaf, grads, decayed, params, decays, scales), {}

    return per_leaf.declare(
        stateful_transform(
            bound, ScaleByTrustRatioState, lambda params: {}, step, needs_params=True
        ),
        "a trust ratio of each leaf's norms",
    )


@errors.public("jopt.scale_by_trust_ratio")
def scale_by_trust_ratio(
    min_norm: float = 0.0,
    trust_coefficient: float = 1.0,
    eps: float = 0.0,
    *,
    phi_min: float | None = None,
    phi_max: float | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Scales each leaf's update by its trust ratio; a drop-in for `optax.scale_by_trust_ratio`.

        ratio = trust_coefficient * phi(||w||) / (||u|| + eps),  1 where phi(||w||) or ||u|| is 0

    Needs the params in `update`.

    Args:
      min_norm: both norms are raised to it where smaller, >= 0 (0: no clipping).
      trust_coefficient: multiplies the ratio, > 0 (LARS' eta).
      eps: added to the update's norm, >= 0.
      phi_min: the LAMB paper's lower bound gamma_l on the parameter norm, >= 0 (None: none).
      phi_max: the LAMB paper's upper bound gamma_u on the parameter norm, > 0 (None: none).
    """
    fn = errors.current_function()
    values = {"min_norm": min_norm, "trust_coefficient": trust_coefficient, "eps": eps}
    bound = bind_phi(fn, SCALE_BY_TRUST_RATIO, values, phi_min, phi_max)
    return trust_ratio_transform(bound)
