"""Adafactor: RMS-normalized steps whose second moments of a matrix are kept as a row and a column
vector (Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost").

For a leaf G factored over its two largest axes (a matrix: rows and columns), with t = 1 at the
first update:

    b_t = 1 - t**(-decay_rate)                         the paper's beta2-hat: 0 at t = 1
    R = b_t R + (1 - b_t) mean_cols(|G|**2 + eps)      optax's v_row (one number per row)
    C = b_t C + (1 - b_t) mean_rows(|G|**2 + eps)      optax's v_col (one per column)
    U = G / sqrt(V),  V = (R / mean(R)) C              (= R C / sum(R), the paper's sums)

and for any other leaf, V = b_t V + (1 - b_t) (|G|**2 + eps) and U = G / sqrt(V) (optax's v).
Then, per leaf,

    U = U / max(1, rms(U) / clipping_threshold)                 update clipping (the paper's d)
    U = learning_rate * max(eps2, rms(theta)) * U               relative step size
    m = momentum * m + (1 - momentum) * U;  U = m               (momentum not None)
    theta -= U + weight_decay_rate * theta                      (weight_decay_rate not None)

What is factored is optax's rule (T5X's and big_vision's, not the paper's "every matrix"): a leaf
with at least two axes whose second-largest axis has at least `min_dim_size_to_factor` (128)
entries, over its two largest axes. The paper's rule for matrices is `min_dim_size_to_factor=1`.

Where optax departs from the paper, jopt keeps optax's form (bitwise in float32, but for a weight
decay without momentum: there XLA folds optax's constants into other roundings, an ulp a step):
- The relative step size is `learning_rate` (None: 1, no learning rate at all), where the paper
  takes rho_t = min(1e-2, 1 / sqrt(t)): pass that schedule,
  `learning_rate=lambda count: jnp.minimum(1e-2, jax.lax.rsqrt(count + 1.0))`.
- Which leaves are factored (above).
- Momentum (the paper's beta1, 0 in its Adafactor) averages the scaled steps, without
  debiasing, as Tensor2Tensor's Adafactor.
- The weight decay is not in the paper; it is added to the step, not multiplied by the learning
  rate (torch's and Keras' Adafactor multiply theirs by it).

Where jopt departs from optax (the same numbers wherever optax's are accurate and finite):
- optax computes b_t in float32 even for float64 parameters; jopt in the hyperparameters' dtype
  (float64 under `jax_enable_x64`): at t = 1000, float32's 1 - b_t is off by up to 1.5e-5.
- A step before `decay_offset` counts as the first one (b_t = 0), where optax's t**(-0.8) at
  t <= 0 is a NaN.
- Half-precision leaves: R, C and V are stored in the leaf's dtype (as optax), but U is computed
  from their float32 values; optax rounds them first, and a float16 V of 0 makes U infinite.
- `eps2`, optax's fixed 1e-3, is an argument.

Memory: the state of a factored (n, m) leaf holds n + m numbers where Adam's holds 2 n m. In
float32 (`python benchmarks/state_bytes.py`), a 784-1024-1024-10 MLP (7,454,760 bytes of params;
its (1024, 10) output layer and its biases are not factored): Adam's state 14,909,556 bytes,
Adafactor's 64,688 (0.43%); a (4096, 4096) matrix (67,108,864 bytes): 134,217,764 and 32,804
(0.024%).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jopt._src import base, errors, per_leaf, stateful, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Bound, Flag, Float, Int, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import EPS
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.momentum import MOMENTUM, scale_by_momentum
from jopt._src.transforms.regularization import _add_term
from jopt._src.validation import NON_NEGATIVE, POSITIVE

FACTORED = Flag("factored")
DECAY_RATE = Float("decay_rate", NON_NEGATIVE)
MIN_DIM_SIZE_TO_FACTOR = Int("min_dim_size_to_factor", 0, in_state=False)  # shapes the state
CLIPPING_THRESHOLD = Float("clipping_threshold", POSITIVE).as_optional()
MULTIPLY_BY_PARAMETER_SCALE = Flag("multiply_by_parameter_scale")
EPS2 = Float("eps2", NON_NEGATIVE)
WEIGHT_DECAY_RATE = Float("weight_decay_rate", NON_NEGATIVE, schedulable=True)
DECAY_OFFSET = Int("decay_offset", 0)
SCALE_BY_FACTORED_RMS = Spec(
    FACTORED,
    DECAY_RATE,
    Int("step_offset", 0),
    MIN_DIM_SIZE_TO_FACTOR,
    Float("epsilon", NON_NEGATIVE),
)
ADAFACTOR = Spec(
    LEARNING_RATE.as_optional(),
    MIN_DIM_SIZE_TO_FACTOR,
    DECAY_RATE,
    DECAY_OFFSET,
    MULTIPLY_BY_PARAMETER_SCALE,
    CLIPPING_THRESHOLD,
    MOMENTUM.as_optional(),
    WEIGHT_DECAY_RATE.as_optional(),
    EPS,
    FACTORED,
    EPS2,
)
# adafactor's blocks: its second moments, and the rest of its step (see _relative_step).
_FACTORED_RMS = Spec(FACTORED, DECAY_RATE, DECAY_OFFSET, MIN_DIM_SIZE_TO_FACTOR, EPS)
_RELATIVE_STEP = Spec(CLIPPING_THRESHOLD, LEARNING_RATE.as_optional(), EPS2)


class FactoredState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    v_row: optax.Updates  # per leaf: R of a factored leaf (its shape without the column axis)
    v_col: optax.Updates  # per leaf: C of a factored leaf (its shape without the row axis)
    v: optax.Updates  # per leaf: V of a leaf that is not factored; a (1,) zero where unused
    hparams: HParams  # decay_rate, step_offset (adafactor: decay_offset), epsilon (eps)


class RelativeStepState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    hparams: HParams  # clipping_threshold, learning_rate, eps2 (those given)


def decay_rate_pow(step: jax.Array, exponent: jax.Array) -> jax.Array:
    """The paper's beta2-hat, `1 - t**(-exponent)` at t = step + 1 (step from 0, counted from
    the decay offset; a step before it counts as step 0), in the dtype of `exponent`."""
    t = base.increment(jnp.maximum(step, 0)).astype(exponent.dtype)  # saturating, as counts
    return 1 - t**-exponent


def factored_dims(shape: tuple[int, ...], factored: bool, min_dim_size: int) -> tuple | None:
    """(d1, d0): the axes of the two largest sizes of `shape` (d0 the largest), if a leaf of this
    shape is factored; None if not (optax's rule, ties broken as NumPy's argsort)."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim_size:
        return None
    return int(order[-2]), int(order[-1])


def _placeholder(leaf: jax.Array) -> jax.Array:
    return jnp.zeros((1,), jnp.result_type(leaf))


def _factored_rms(bound: Bound, offset: str, epsilon: str, decay_rate_fn: Callable):
    """The transform of `scale_by_factored_rms`, its step offset and epsilon kept in the state
    under the names `offset` and `epsilon` (adafactor's are `decay_offset` and `eps`)."""
    factored, min_dim = bound["factored"], bound["min_dim_size_to_factor"]

    def buffers(params):
        def leaf(p):
            dims = factored_dims(jnp.shape(p), factored, min_dim)
            if dims is None:
                return _placeholder(p), _placeholder(p), base.zeros_like(p)
            d1, d0 = dims
            dtype, shape = jnp.result_type(p), jnp.shape(p)
            row = jnp.zeros(shape[:d0] + shape[d0 + 1 :], dtype)
            col = jnp.zeros(shape[:d1] + shape[d1 + 1 :], dtype)
            return row, col, _placeholder(p)

        v_row, v_col, v = _unzip(params, jax.tree.map(leaf, params), 3)
        return {"v_row": v_row, "v_col": v_col, "v": v}

    def step(updates, state, hp, count, params):
        beta = decay_rate_fn(state.count - hp[offset], hp["decay_rate"])

        def leaf(g, row, col, v):
            dt = base.wider(g.dtype, v.dtype)
            g = g.astype(dt)
            b = jnp.asarray(beta).astype(dt)
            grad_sqr = tree_math.abs_sq(g) + hp[epsilon].astype(jnp.finfo(dt).dtype)
            grad_sqr = grad_sqr.astype(dt)  # complex leaves: their states are complex, as optax
            dims = factored_dims(g.shape, factored, min_dim)
            if dims is None:
                new_v = b * v.astype(dt) + (1 - b) * grad_sqr
                return g * new_v**-0.5, row, col, new_v
            d1, d0 = dims
            new_row = b * row.astype(dt) + (1 - b) * jnp.mean(grad_sqr, axis=d0)
            new_col = b * col.astype(dt) + (1 - b) * jnp.mean(grad_sqr, axis=d1)
            row_mean = jnp.mean(new_row, axis=d1 - 1 if d1 > d0 else d1, keepdims=True)
            row_factor = (new_row / row_mean) ** -0.5
            col_factor = new_col**-0.5
            out = g * jnp.expand_dims(row_factor, d0) * jnp.expand_dims(col_factor, d1)
            return out, new_row, new_col, v

        results = jax.tree.map(leaf, updates, state.v_row, state.v_col, state.v)
        out, v_row, v_col, v = _unzip(updates, results, 4)
        return out, {"v_row": v_row, "v_col": v_col, "v": v}

    return per_leaf.declare(
        stateful_transform(bound, FactoredState, buffers, step, needs_params=True),
        "second moments factored over each matrix leaf's rows and columns",
    )


def _unzip(like: Any, results: Any, n: int) -> tuple:
    """A tree shaped like `like` whose leaves are n-tuples, as n trees."""
    inner = jax.tree.structure((0,) * n)
    return jax.tree.transpose(jax.tree.structure(like), inner, results)


@errors.public("jopt.scale_by_factored_rms")
def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: float = 0.8,
    step_offset: int = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: float = 1e-30,
    decay_rate_fn: Callable[[Any, Any], Any] = decay_rate_pow,
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by Adafactor's factored estimate of their RMS; a drop-in for
    `optax.scale_by_factored_rms` (see the module docstring for the formula).

    Args:
      factored: factor the second moments of leaves with two axes of size >= the next argument.
      decay_rate: c in the decay rate b_t = 1 - t**(-c), >= 0. Paper default 0.8.
      step_offset: the step the decay schedule starts from (fine-tuning), an integer >= 0.
      min_dim_size_to_factor: factor a leaf only if its two largest axes are at least this size.
      epsilon: added to |g|**2, >= 0. Paper default (its eps1) 1e-30.
      decay_rate_fn: `(step, decay_rate) -> b_t`, given the steps taken before this one minus
        `step_offset` and the decay rate as arrays (Zhai et al. 2021 cap b_t, for instance).
        The default is the paper's power schedule.
    """
    fn = errors.current_function()
    bound = SCALE_BY_FACTORED_RMS.bind(
        fn,
        factored=factored,
        decay_rate=decay_rate,
        step_offset=step_offset,
        min_dim_size_to_factor=min_dim_size_to_factor,
        epsilon=epsilon,
    )
    validation.check_callable(fn, "decay_rate_fn", decay_rate_fn, "a function (step, rate) -> b")
    return _factored_rms(bound, "step_offset", "epsilon", decay_rate_fn)


def _safe_rms(x: jax.Array, floor: jax.Array) -> jax.Array:
    """max(rms(x), floor), with finite gradients where rms(x) <= floor (as optax's
    `safe_root_mean_squares`: the square root is taken of ones there)."""
    dt = base.wider(x.dtype)
    x = x.astype(dt)
    floor = floor.astype(jnp.finfo(dt).dtype)
    small = jnp.sqrt(jnp.mean(tree_math.abs_sq(x))) <= floor
    x = jnp.where(small, jnp.ones_like(x), x)
    return jnp.where(small, floor, jnp.sqrt(jnp.mean(tree_math.abs_sq(x))))


def _relative_step(
    clipping_threshold: float | None,
    learning_rate: ScalarOrSchedule | None,
    multiply_by_parameter_scale: bool,
    eps2: float,
) -> optax.GradientTransformationExtraArgs:
    """`-learning_rate * max(eps2, rms(theta)) * clipped(u)`, per leaf (each factor if on): the
    sign of descent is taken here, so that momentum and weight decay follow it negated."""
    fn = errors.current_function()
    values = {"clipping_threshold": clipping_threshold, "learning_rate": learning_rate}
    bound = _RELATIVE_STEP.bind(fn, **values, eps2=eps2)
    multiply = validation.check_bool(fn, "multiply_by_parameter_scale", multiply_by_parameter_scale)

    def step(updates, state, hp, count, params):
        def leaf(u, p):
            dt = base.wider(u.dtype)
            u = u.astype(dt)
            if clipping_threshold is not None:
                threshold = hp["clipping_threshold"].astype(jnp.finfo(dt).dtype)
                rms = jnp.sqrt(jnp.mean(tree_math.abs_sq(u)))
                u = u / jnp.maximum(1.0, rms / threshold).astype(dt)
            if learning_rate is not None:
                u = hp["learning_rate"].astype(dt) * u
            if multiply:
                u = u * _safe_rms(p, hp["eps2"]).astype(dt)
            return -u

        return jax.tree.map(leaf, updates, updates if params is None else params), {}

    return stateful_transform(
        bound, RelativeStepState, lambda params: {}, step, needs_params=multiply
    )


@errors.public("jopt.adafactor")
def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: float = 0.8,
    decay_offset: int = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: float | None = 1.0,
    momentum: ScalarOrSchedule | None = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: ScalarOrSchedule | None = None,
    eps: float = 1e-30,
    factored: bool = True,
    weight_decay_mask: Any = None,
    *,
    eps2: float = 1e-3,
) -> optax.GradientTransformationExtraArgs:
    """Adafactor (Shazeer & Stern 2018); a drop-in for `optax.adafactor` (formula, the leaves
    factored and the departures from the paper: the module docstring).

    Args:
      learning_rate: the relative step size (a number >= 0 or a schedule), or None for 1. The
        paper's is the schedule min(1e-2, 1 / sqrt(t)). Its scale is not Adam's.
      min_dim_size_to_factor: factor a leaf only if its two largest axes have at least this
        many entries (1: every matrix, as the paper).
      decay_rate: c in b_t = 1 - t**(-c), >= 0. Paper default 0.8.
      decay_offset: the step the decay schedule starts from (fine-tuning), an integer >= 0.
      multiply_by_parameter_scale: multiply the step by max(eps2, rms(theta)) of each leaf
        (the paper's relative step size); False: the learning rate is the absolute step size.
      clipping_threshold: d in U / max(1, rms(U) / d), > 0, or None for no clipping. Paper
        default 1 (optax's and torch's documentation ask for d >= 1; any d > 0 clips to d).
      momentum: decay of an average of the steps, in [0, 1), or None (default) for none.
      dtype_momentum: dtype of the momentum buffer (None: the params'). optax's default,
        float32, rounds it for float64 params.
      weight_decay_rate: `rate * theta` added to the step, >= 0, or None (default) for none.
      eps: added to |g|**2, >= 0. Paper default (its eps1) 1e-30.
      factored: False keeps a full V for every leaf (RMSProp with Adafactor's b_t).
      weight_decay_mask: which params to decay (tree of bools or a function of the params).
      eps2: the floor of rms(theta) in the relative step, >= 0 (optax's fixed 1e-3, the paper's
        default).
    """
    fn = errors.current_function()
    dtype_momentum = validation.check_dtype(fn, "dtype_momentum", dtype_momentum)
    validation.check_mask(fn, "weight_decay_mask", weight_decay_mask)
    bound = _FACTORED_RMS.bind(
        fn,
        factored=factored,
        decay_rate=decay_rate,
        decay_offset=decay_offset,
        min_dim_size_to_factor=min_dim_size_to_factor,
        eps=eps,
    )
    blocks = [
        _factored_rms(bound, "decay_offset", "eps", decay_rate_pow),
        _relative_step(clipping_threshold, learning_rate, multiply_by_parameter_scale, eps2),
    ]
    if momentum is not None:
        blocks.append(
            scale_by_momentum(
                momentum, form="ema", accumulator_dtype=dtype_momentum, keep_count=False
            )
        )
    if weight_decay_rate is not None:  # the step is negated already: add -rate * theta
        blocks.append(
            _add_term(WEIGHT_DECAY_RATE, weight_decay_rate, weight_decay_mask, jnp.negative)
        )
    return stateful.chain(*blocks)
