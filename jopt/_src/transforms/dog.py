"""DoG and DoWG: SGD with a step size from the distance travelled from the initial point over the
gradients seen, no learning rate to tune.

DoG, "Distance over Gradients" (Ivgi, Hinder & Carmon 2023, "DoG is SGD's Best Friend: A
Parameter-Free Dynamic Step Size Schedule", Algorithm 1):

    rbar_t = max(r_eps, max_{i<=t} ||x_i - x_0||)
    G_t    = sum_{i<=t} ||g_i||^2
    x_{t+1} = x_t - gamma * rbar_t / sqrt(G_t + eps) * g_t

with the initial movement r_eps = alpha * (1 + ||x_0||) (`init_step="heuristic"`, alpha =
`init_step_value`, the paper's choice, 1e-6; 1e-4 for models with batch normalization), r_eps
given (`"distance"`), or the first step's size eta_0 given (`"learning_rate"`, r_eps = 0 after
it). The paper has no eps: `eps=0` is its form (optax adds 1e-8 under the root).

DoWG, "Distance over Weighted Gradients" (Khaled, Mishchenko & Jin 2023, "DoWG Unleashed: An
Efficient Universal Parameter-Free Gradient Descent Method", Algorithm 1), in squared distances
as optax keeps them:

    rbar_t^2 = max(rbar_{t-1}^2, ||x_t - x_0||^2)          (rbar_0^2 = init_estim_sq_dist)
    v_t      = v_{t-1} + rbar_t^2 ||g_t||^2
    x_{t+1}  = x_t - gamma * rbar_t^2 / (sqrt(v_t) + eps) * g_t

The paper has no eps (`eps=0`, with an `init_estim_sq_dist`, is its form); optax's
`init_estim_sq_dist=None` starts from eps (1e-4: rbar_0 = 1e-2), as here.

gamma is `learning_rate` (1 by default, a multiplier or a schedule); `weight_decay` adds
`weight_decay * x` to the gradients first (coupled; None: no block, as optax). The blocks
`scale_by_dog` and `scale_by_dowg` give the steps before the learning rate (not negated), and
keep x_0 from `init`, which must be given the actual initial params; `update` needs the params.
The initial values (`init_step_value`, `init_estim_sq_dist`, or eps for DoWG) are read at the
first update, so that `jopt.set_hparams` sets them before it. Complex parameters work:
distances and norms are of |x|^2. With eps = 0, a step before any nonzero gradient is 0 (optax's
is inf * 0 = NaN). Both are `optax.contrib.dog` and `optax.contrib.dowg`, bitwise, except DoWG at
eps = 0: optax bakes the 0 into its program and XLA turns its rbar^2 / (sqrt(v) + 0) into
rbar^2 * rsqrt(v), an ulp apart (1.5e-6 after 1000 float32 steps). The authors recommend
evaluating at an average of the iterates (`jopt.ema_params`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms import distance
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY, add_decayed_weights
from jopt._src.validation import NON_NEGATIVE, POSITIVE

INIT_STEP_KINDS = ("heuristic", "distance", "learning_rate")
INIT_STEP = Choice("init_step", INIT_STEP_KINDS)
INIT_STEP_VALUE = Float("init_step_value", POSITIVE).as_optional()
EPS = Float("eps", NON_NEGATIVE)
INIT_ESTIM_SQ_DIST = Float("init_estim_sq_dist", POSITIVE).as_optional()
SCALE_BY_DOG = Spec(INIT_STEP, INIT_STEP_VALUE, EPS)
SCALE_BY_DOWG = Spec(INIT_ESTIM_SQ_DIST, EPS)
DOG = Spec(LEARNING_RATE, INIT_STEP, INIT_STEP_VALUE, EPS, WEIGHT_DECAY.as_optional())
DOWG = Spec(LEARNING_RATE, INIT_ESTIM_SQ_DIST, EPS, WEIGHT_DECAY.as_optional())
_DEFAULT_INIT_STEP_VALUE = 1e-6


class ScaleByDoGState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    init_params: optax.Params  # x_0, the params at init
    max_dist: jax.Array  # rbar_t (0 before the first update)
    sum_sq_norm_grads: jax.Array  # G_t
    hparams: HParams  # init_step_value, eps


class ScaleByDoWGState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    init_params: optax.Params  # x_0, the params at init
    estim_sq_dist: jax.Array  # rbar_t^2 (0 before the first update)
    weighted_sq_norm_grads: jax.Array  # v_t
    hparams: HParams  # [init_estim_sq_dist], eps


def _split_init_step(fn: str, init_step: Any, init_step_value: Any) -> tuple[Any, Any]:
    """(kind, value) from jopt's `init_step=kind, init_step_value=value` or optax's
    `init_step=(kind, value)`; an `init_step_value` given with the pair replaces its value."""
    if isinstance(init_step, tuple):
        validation.require(
            fn,
            len(init_step) == 2,
            f"init_step must be one of {', '.join(map(repr, INIT_STEP_KINDS))}, or optax's pair "
            f"(kind, value), got {init_step!r}.",
            argument="init_step",
            value=init_step,
        )
        kind, value = init_step
        return kind, value if init_step_value is None else init_step_value
    return init_step, _DEFAULT_INIT_STEP_VALUE if init_step_value is None else init_step_value


def _difference(x0: jax.Array, x: jax.Array) -> jax.Array:
    """x0 - x in x's arithmetic dtype (float32 at least; complex stays complex)."""
    dt = base.compute_dtype(x.dtype)
    return x0.astype(dt) - x.astype(dt)


def _scaled(lr: jax.Array, g: jax.Array) -> jax.Array:
    """lr * g in g's arithmetic dtype (float32 at least: a step size of 1e5 overflows float16)."""
    dt = base.compute_dtype(g.dtype)
    return lr.astype(dt) * g.astype(dt)


def _distance_state(params: Any) -> tuple[Any, Any]:
    return distance.copy(params), distance.scalar_dtype(params)


@errors.public("jopt.scale_by_dog")
def scale_by_dog(
    init_step: str | tuple[str, float] = "heuristic",
    init_step_value: float | None = None,
    eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """DoG's step `rbar_t / sqrt(G_t + eps) * g` (not negated); optax.contrib's `scale_by_dog`.

    Args:
      init_step: how the first step is set: "heuristic" (r_eps = init_step_value * (1 +
        ||x_0||)), "distance" (r_eps = init_step_value) or "learning_rate" (the first step's
        size is init_step_value); optax's pair (kind, value) is taken too.
      init_step_value: its value, > 0; None (default): the pair's value, or 1e-6 (the paper's
        alpha). Given with a pair, it replaces the pair's value.
      eps: added to G_t under the root, >= 0 (0: the paper's form). Default 1e-8.
    """
    fn = errors.current_function()
    init_step, init_step_value = _split_init_step(fn, init_step, init_step_value)
    bound = SCALE_BY_DOG.bind(fn, init_step=init_step, init_step_value=init_step_value, eps=eps)
    kind = bound["init_step"]

    def buffers(params):
        x0, dtype = _distance_state(params)
        return {
            "init_params": x0,
            "max_dist": jnp.zeros([], dtype),  # r_eps, from the state, at the first update
            "sum_sq_norm_grads": jnp.zeros([], dtype),
        }

    def step(updates, state, hp, count, params):
        dt = state.max_dist.dtype
        first = count == 1
        value = hp["init_step_value"].astype(dt)
        if kind == "heuristic":
            r_eps = value * (1 + jnp.sqrt(distance.squared_norm(state.init_params, dt)))
        else:
            r_eps = value if kind == "distance" else jnp.zeros([], dt)
        moved = jax.tree.map(_difference, state.init_params, params)
        max_dist = jnp.maximum(
            jnp.where(first, r_eps, state.max_dist), jnp.sqrt(distance.squared_norm(moved, dt))
        )
        sum_sq = state.sum_sq_norm_grads + distance.squared_norm(updates, dt)
        # With eps = 0, before any nonzero gradient G + eps is 0 and the step inf * 0: the guard
        # makes it max_dist * 0. (Under the root: XLA computes optax's `max_dist / sqrt(x)` as
        # `max_dist * rsqrt(x)`, and would not with a select between the division and the root.)
        total = sum_sq + hp["eps"].astype(dt)
        lr = max_dist / jnp.sqrt(jnp.where(total > 0, total, jnp.ones_like(total)))
        if kind == "learning_rate":
            lr = jnp.where(first, value, lr)
        out = jax.tree.map(lambda g: _scaled(lr, g), updates)
        return out, {"max_dist": max_dist, "sum_sq_norm_grads": sum_sq}

    return stateful_transform(
        bound, ScaleByDoGState, buffers, step, matches=("init_params", "params"), needs_params=True
    )


@errors.public("jopt.scale_by_dowg")
def scale_by_dowg(
    init_estim_sq_dist: float | None = None, eps: float = 1e-4
) -> optax.GradientTransformationExtraArgs:
    """DoWG's step `rbar_t^2 / (sqrt(v_t) + eps) * g` (not negated); optax.contrib's
    `scale_by_dowg`.

    Args:
      init_estim_sq_dist: rbar_0^2, the initial squared distance estimate, > 0; None: eps.
      eps: added to sqrt(v_t), >= 0 (0, with init_estim_sq_dist, is the paper's form).
        Default 1e-4.
    """
    fn = errors.current_function()
    bound = SCALE_BY_DOWG.bind(fn, init_estim_sq_dist=init_estim_sq_dist, eps=eps)
    validation.require(
        fn,
        bound["init_estim_sq_dist"] is not None or bound["eps"] > 0,
        "eps=0 needs an init_estim_sq_dist > 0: without one the initial squared distance "
        "estimate is eps, 0, and DoWG would never move.",
        argument="eps",
        value=eps,
    )
    initial = "init_estim_sq_dist" if bound["init_estim_sq_dist"] is not None else "eps"

    def buffers(params):
        x0, dtype = _distance_state(params)
        return {
            "init_params": x0,
            "estim_sq_dist": jnp.zeros([], dtype),  # rbar_0^2, from the state, at the first update
            "weighted_sq_norm_grads": jnp.zeros([], dtype),
        }

    def step(updates, state, hp, count, params):
        dt = state.estim_sq_dist.dtype
        start = jnp.where(count == 1, hp[initial].astype(dt), state.estim_sq_dist)
        moved = jax.tree.map(_difference, state.init_params, params)
        estim_sq_dist = jnp.maximum(start, distance.squared_norm(moved, dt))
        weighted = estim_sq_dist * distance.squared_norm(updates, dt) + state.weighted_sq_norm_grads
        root = jnp.sqrt(weighted) + hp["eps"].astype(dt)
        lr = estim_sq_dist / jnp.where(root > 0, root, jnp.ones_like(root))  # as DoG's
        out = jax.tree.map(lambda g: _scaled(lr, g), updates)
        return out, {"estim_sq_dist": estim_sq_dist, "weighted_sq_norm_grads": weighted}

    return stateful_transform(
        bound, ScaleByDoWGState, buffers, step, matches=("init_params", "params"), needs_params=True
    )


def _chain(fn, learning_rate, weight_decay, mask, block) -> optax.GradientTransformationExtraArgs:
    validation.check_mask(fn, "mask", mask)
    decay = [] if weight_decay is None else [add_decayed_weights(weight_decay, mask)]
    return stateful.chain(*decay, block, scale_by_learning_rate(learning_rate))


@errors.public("jopt.dog")
def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: str | tuple[str, float] = "heuristic",
    init_step_value: float | None = None,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule | None = None,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """DoG (Ivgi et al. 2023): x -= gamma * rbar_t / sqrt(G_t + eps) * g; a drop-in for
    `optax.contrib.dog`. See the module docstring.

    Args:
      learning_rate: gamma >= 0, a multiplier of DoG's step (1: none), or a schedule.
      init_step: "heuristic", "distance" or "learning_rate" (see `scale_by_dog`), or optax's
        pair (kind, value).
      init_step_value: alpha, r_eps or eta_0, > 0; None (default): the pair's value, or 1e-6.
      eps: added to G_t under the root, >= 0 (0: the paper's form). Default 1e-8.
      weight_decay: None (default), or the coupled decay >= 0 added to the gradients first.
      mask: which params the weight decay applies to (a tree of bools, or a function of the
        params giving one).
    """
    fn = errors.current_function()
    block = scale_by_dog(init_step, init_step_value, eps)
    return _chain(fn, learning_rate, weight_decay, mask, block)


@errors.public("jopt.dowg")
def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: float | None = None,
    eps: float = 1e-4,
    weight_decay: ScalarOrSchedule | None = None,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """DoWG (Khaled et al. 2023): x -= gamma * rbar_t^2 / (sqrt(v_t) + eps) * g; a drop-in for
    `optax.contrib.dowg`. See the module docstring.

    Args:
      learning_rate: gamma >= 0, a multiplier of DoWG's step (1: none), or a schedule.
      init_estim_sq_dist: rbar_0^2 > 0, the initial squared distance estimate; None: eps.
      eps: added to sqrt(v_t), >= 0 (0, with init_estim_sq_dist, is the paper's form).
        Default 1e-4.
      weight_decay: None (default), or the coupled decay >= 0 added to the gradients first.
      mask: which params the weight decay applies to.
    """
    fn = errors.current_function()
    block = scale_by_dowg(init_estim_sq_dist, eps)
    return _chain(fn, learning_rate, weight_decay, mask, block)
