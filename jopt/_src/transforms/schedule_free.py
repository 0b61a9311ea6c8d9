"""Schedule-free learning (Defazio et al. 2024, "The Road Less Scheduled"): iterate averaging in
place of a decaying learning-rate schedule, as a wrapper (`schedule_free`) and as SGD and AdamW.

Algorithm 1 of the paper keeps three sequences: z, the base optimizer's iterate; x, a weighted
average of the z's; and y, the point between them where gradients are taken:

    y_t     = (1 - b1) z_t + b1 x_t                      (the params the user holds: y)
    z_{t+1} = z_t - lr_t d_t        d_t: the base direction at y_t (g, or g / (sqrt(v) + eps)),
                                         plus weight_decay * y_t
    c_{t+1} = t**r max_lr**p / sum_{i<=t} i**r max_lr_i**p,   max_lr = max_{i<=t} lr_i,
                                         p = weight_lr_power (the averaging weight)
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}

**Evaluate at x, not at the params.** The params a training loop holds (and `update` moves) are
y; the point with the guarantees, where the loss should be measured and the model deployed, is
x = `jopt.schedule_free_eval_params(state, params)`.

As optax, the state keeps z (`z`), the sum of the weights (`weight_sum`), `max_lr` and the
step t (`step_count`, starting at 1) next to the base optimizer's state, not x: x is recovered
from the params at each step, x = (y - (1 - b1) z) / b1, which is why b1 must be in (0, 1).
`update` needs the params. The hyperparameters (learning_rate, warmup_steps, b1,
weight_lr_power, r) are in the state's `hparams`; b1 is read from there, so changing it with
`jopt.set_hparams` mid-run changes the x recovered from the params held (formed with the old b1).

`form="optax"` (default) is optax 0.2.8's, bitwise; `form="paper"` is the authors' reference
PyTorch implementation of Algorithm 1 (`schedulefree/*_reference.py`). They differ in two places:

- warmup (`warmup_steps` = T): the paper's z-step and weight both use lr * min(1, t / T). optax
  turns the learning rate into `warmup_constant_schedule(0, lr, T)`, which its base optimizer
  reads at t - 1 (the first step is taken with lr 0) and the weight at t; its ramp min(t, T) / T
  is computed in float32 even under x64 (JAX divides int32 by int32 in float32), as here.
- AdamW's bias correction: optax's direction is g / (sqrt(v / (1 - b2**t)) + eps); the paper's
  is g / (sqrt(v) + eps) with lr_t = lr * sqrt(1 - b2**t), in the step and in the weights.

The paper's polynomial weighting t**r (`r`, 0 by default as in the paper's experiments) is the
same in both forms; optax has none, which is r = 0. A learning-rate schedule is read as optax
does: at t - 1 for the step (the value `jopt.current_lr` shows), at t for the weight (at t - 1 for
both in the paper's form). `current_lr` reads the learning rate before the warmup factor.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jopt._src import base, errors, per_leaf, stateful, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams, default_float
from jopt._src.spec import INT_LIMIT, Choice, Float, HParam, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.adam import B2, EPS, _second_moments
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.regularization import (
    WEIGHT_DECAY,
    add_decayed_weights,
    coupled_weight_decay,
)
from jopt._src.validation import NON_NEGATIVE, Range

B1 = Float("b1", Range(0.0, 1.0, lo_open=True, hi_open=True), complement=True)
WEIGHT_LR_POWER = Float("weight_lr_power", NON_NEGATIVE)
R = Float("r", NON_NEGATIVE)
# An integer below 2**24 (stored exactly), >= 1: optax's warmup_steps=0 is a learning rate of 0.
WARMUP_STEPS = HParam("warmup_steps", "int", Range(1.0, float(INT_LIMIT), hi_open=True))
FORM = Choice("form", ("optax", "paper"))
SCHEDULE_FREE = Spec(LEARNING_RATE, B1, WEIGHT_LR_POWER, R)
_AVERAGING = Spec(LEARNING_RATE, WARMUP_STEPS.as_optional(), B1, WEIGHT_LR_POWER, R, FORM)
SCHEDULE_FREE_SGD = Spec(
    LEARNING_RATE,
    WARMUP_STEPS.as_optional(),
    B1,
    WEIGHT_DECAY.as_optional(),
    WEIGHT_LR_POWER,
    R,
    FORM,
)
SCHEDULE_FREE_ADAMW = Spec(
    LEARNING_RATE, WARMUP_STEPS.as_optional(), B1, B2, EPS, WEIGHT_DECAY, WEIGHT_LR_POWER, R, FORM
)


class ScheduleFreeState(NamedTuple):
    """optax's `ScheduleFreeState`, its b1 in `hparams` (and readable as `state.b1`)."""

    weight_sum: jax.Array  # sum of the averaging weights so far
    step_count: jax.Array  # the step t the next update takes: 1 + steps taken, int32, saturating
    max_lr: jax.Array  # the largest learning rate the weights have seen
    base_optimizer_state: Any  # the base optimizer's state (it keeps the step `count`)
    z: optax.Params  # the base iterate z, in `state_dtype` (default: the params' dtypes)
    hparams: HParams  # learning_rate, [warmup_steps], b1, weight_lr_power, r

    @property
    def b1(self) -> jax.Array:
        """b1, where `optax.contrib.schedule_free_eval_params` looks for it."""
        return self.hparams["b1"]


class ScaleBySecondMomentState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    nu: optax.Updates  # EMA of squared gradients v
    hparams: HParams  # b2, eps


class StepCountState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating: the optimizer's step count
    hparams: HParams  # none


def schedule_free_eval_params(state: Any, params: optax.Params) -> optax.Params:
    """x, the average to evaluate the model at, from the params y a schedule-free optimizer
    trains (the one schedule-free state inside `state`, which may be a chain's or a wrapper's):
    `x = (y - (1 - b1) z) / b1`, computed as `update` recovers it; a drop-in for
    `optax.contrib.schedule_free_eval_params` (whose `1 - b1` is rounded in the params' dtype,
    0.100000024 for b1 = 0.9 in float32, where its update uses 0.1).
    """
    fn = "jopt.schedule_free_eval_params"
    found = base.single_state(fn, state, ScheduleFreeState, "schedule_free state")
    return jax.tree.map(lambda y, z: _average(y, z, found.hparams).astype(y.dtype), params, found.z)


def _average(y: jax.Array, z: jax.Array, hp: HParams) -> jax.Array:
    """x = (y - (1 - b1) z) / b1, in the wider of the two dtypes (float32 at least)."""
    dt = base.wider(y.dtype, z.dtype)
    return (y.astype(dt) - hp.complement("b1").astype(dt) * z.astype(dt)) / hp["b1"].astype(dt)


def _scalar_dtype(params: Any) -> np.dtype:
    """The dtype of the weights: the narrowest real dtype of the params, float32 at least (optax:
    the lowest, so that float32 and float64 params agree with it bitwise)."""
    dtypes = [
        base.compute_dtype(jnp.finfo(jnp.result_type(p)).dtype) for p in jax.tree.leaves(params)
    ]
    return min(dtypes, key=lambda d: d.itemsize) if dtypes else default_float()


def _warmed(hp: HParams, t: jax.Array, paper: bool) -> jax.Array:
    """The learning rate of step `t` after the warmup factor: the paper's lr * min(1, t / T), or
    optax's `warmup_constant_schedule(0, lr, T)(t)`, in its arithmetic (0 at t = 0)."""
    lr = hp["learning_rate"]
    if "warmup_steps" not in hp:
        return lr
    steps = hp["warmup_steps"]
    if paper:
        return lr * jnp.minimum(t.astype(lr.dtype) / steps.astype(lr.dtype), 1)
    # int32 / int32 is float32 in JAX, x64 or not: optax's schedule runs in float32.
    fraction = 1 - jnp.clip(t, 0, steps) / steps
    peak = lr.astype(fraction.dtype)
    return (-peak * fraction + peak).astype(lr.dtype)


def _weight(max_lr: jax.Array, hp: HParams, t: jax.Array) -> jax.Array:
    """t**r * max_lr**weight_lr_power; max_lr * max_lr for the power 2, as XLA computes optax's
    `max_lr ** 2.0` (a constant exponent), and no t**r for r = 0 (optax has none)."""
    power, r = hp["weight_lr_power"].astype(max_lr.dtype), hp["r"].astype(max_lr.dtype)
    weight = jnp.where(power == 2, max_lr * max_lr, max_lr**power)
    return jnp.where(r == 0, weight, t.astype(max_lr.dtype) ** r * weight)


def _schedule_free(fn, bound, tx, state_dtype, *, steps: bool, lr_factor=None):
    """The schedule-free wrapper of `tx`. With `steps`, `tx` gives a direction d and the wrapper
    steps z by -lr_t d (warmup and `lr_factor(base state)` included); without, `tx` gives the
    whole update of z and the learning rate only weighs the average (optax's wrapper)."""
    tx = optax.with_extra_args_support(tx)
    paper = bound.values.get("form") == "paper"
    own_meta = bound.init().meta
    expected = f"a ScheduleFreeState ({stateful._hparams_of(own_meta)})"

    def init_fn(params):
        base.check_inexact(fn, params, "parameter")
        dtype = _scalar_dtype(params)
        same = state_dtype is None
        z = jax.tree.map(
            lambda p: jnp.array(p, jnp.result_type(p) if same else state_dtype), params
        )
        return ScheduleFreeState(
            weight_sum=jnp.zeros([], dtype),
            step_count=jnp.ones([], base.COUNT_DTYPE),
            max_lr=jnp.zeros([], dtype),
            base_optimizer_state=tx.init(params),
            z=z,
            hparams=bound.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        base.check_inexact(fn, updates, "gradient")
        if type(state) is not ScheduleFreeState or state.hparams.meta != own_meta:
            raise stateful.foreign_state(fn, state, expected)
        if params is None:
            raise ValueError(
                f"{fn}: needs the params (y, where the gradients are taken): call "
                "update(updates, state, params)."
            )
        base.check_tree(fn, updates, state.z, "state's z")
        base.check_tree(fn, updates, params, "params", dtypes=True)
        t, dtype = state.step_count, state.max_lr.dtype
        hp = bound.resolve(state.hparams, t - 1)  # the values of this step, kept in the state
        inner, inner_state = tx.update(updates, state.base_optimizer_state, params, **extra_args)
        lr = _warmed(hp, t if paper else t - 1, paper)
        if lr_factor is not None:
            lr = lr * lr_factor(inner_state).astype(lr.dtype)
        lr_weight = lr if paper else _warmed(bound.resolve(state.hparams, t), t, paper)
        if steps:
            inner = jax.tree.map(lambda d: (-lr).astype(d.dtype) * d, inner)

        # optax's arithmetic, in its order: the bitwise agreement depends on it.
        max_lr = jnp.maximum(state.max_lr, lr_weight.astype(dtype))
        weight = _weight(max_lr, hp, t)
        total = state.weight_sum + weight
        nan = jnp.isnan(weight) | jnp.isnan(total)
        ratio = jnp.nan_to_num(weight / total, nan=0.0, posinf=jnp.inf)
        ck = jnp.where(nan, jnp.full(weight.shape, jnp.nan, dtype), ratio)

        def new_z(z, u):
            dt = base.wider(z.dtype, u.dtype)
            return (z.astype(dt) + u.astype(dt)).astype(z.dtype)

        def step(y, z_old, z):
            x = _average(y, z_old, hp)
            dt = x.dtype
            x = (1 - ck).astype(dt) * x + ck.astype(dt) * z.astype(dt)
            y_new = hp["b1"].astype(dt) * x + hp.complement("b1").astype(dt) * z.astype(dt)
            return y_new - y.astype(dt)

        z = jax.tree.map(new_z, state.z, inner)
        out = base.cast_like(jax.tree.map(step, params, state.z, z), updates)
        return out, ScheduleFreeState(total, base.increment(t), max_lr, inner_state, z, hp)

    return per_leaf.inherit(optax.GradientTransformationExtraArgs(init_fn, update_fn), tx)


@errors.public("jopt.schedule_free")
def schedule_free(
    base_optimizer: optax.GradientTransformation,
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    weight_lr_power: float = 2.0,
    state_dtype: Any = None,
    *,
    r: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """Makes `base_optimizer` schedule-free; a drop-in for `optax.contrib.schedule_free`.

    The base optimizer's update moves z (give it no momentum: b1 plays that part here); the
    params returned are y, and the model must be **evaluated at
    `jopt.schedule_free_eval_params(state, params)`** (x), not at the params.

    Args:
      base_optimizer: the optimizer of z, its learning rate included (e.g. `jopt.sgd(lr)`).
      learning_rate: the base optimizer's learning rate (a number or a schedule), which weighs
        the average: c_{t+1} is proportional to max_lr**weight_lr_power. It is kept in this
        state too, so `jopt.set_hparams(state, learning_rate=...)` sets both; with a jopt base
        optimizer, read it with `jopt.get_hparams(state.base_optimizer_state)`.
      b1: the interpolation y = (1 - b1) z + b1 x, in (0, 1). Paper default 0.9.
      weight_lr_power: p, >= 0; 0 gives the uniform average. Paper default 2.
      state_dtype: dtype of z (default: the params' dtypes).
      r: the paper's polynomial weighting t**r, >= 0 (0: none, as optax).
    """
    fn = errors.current_function()
    validation.check_transform(fn, "base_optimizer", base_optimizer)
    bound = SCHEDULE_FREE.bind(
        fn, learning_rate=learning_rate, b1=b1, weight_lr_power=weight_lr_power, r=r
    )
    state_dtype = validation.check_dtype(fn, "state_dtype", state_dtype)
    return _schedule_free(fn, bound, base_optimizer, state_dtype, steps=False)


def _averaging(fn, learning_rate, warmup_steps, b1, weight_lr_power, r, form):
    return _AVERAGING.bind(
        fn,
        learning_rate=learning_rate,
        warmup_steps=warmup_steps,
        b1=b1,
        weight_lr_power=weight_lr_power,
        r=r,
        form=form,
    )


def _step_counter() -> optax.GradientTransformationExtraArgs:
    """The identity, keeping the optimizer's step `count` for a direction that has none."""
    bound = Spec().bind(errors.current_function())
    return stateful_transform(bound, StepCountState, lambda params: {}, lambda u, *_: (u, {}))


@errors.public("jopt.schedule_free_sgd")
def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    warmup_steps: int | None = None,
    b1: float = 0.9,
    weight_decay: ScalarOrSchedule | None = None,
    weight_lr_power: float = 2.0,
    state_dtype: Any = None,
    *,
    r: float = 0.0,
    form: str = "optax",
) -> optax.GradientTransformationExtraArgs:
    """Schedule-free SGD (Defazio et al. 2024); a drop-in for `optax.contrib.schedule_free_sgd`.

        z -= lr_t (g + weight_decay * y);   x = (1 - c) x + c z;   y = (1 - b1) z + b1 x

    The params are y: **evaluate at `jopt.schedule_free_eval_params(state, params)`** (x).

    Args:
      learning_rate: a number >= 0 or a schedule. optax's default, 1.0.
      warmup_steps: None, or the length T >= 1 of a linear warmup (see `form`).
      b1: the interpolation between z and x, in (0, 1). Paper default 0.9.
      weight_decay: None, or the coefficient (>= 0) of the decay at y, scaled by lr_t.
      weight_lr_power: the averaging weights' power of max_lr, >= 0. Paper default 2.
      state_dtype: dtype of z (default: the params' dtypes).
      r: the paper's polynomial weighting t**r, >= 0.
      form: "optax" (default, bitwise) or "paper": the warmup's indexing, see the module.
    """
    fn = errors.current_function()
    bound = _averaging(fn, learning_rate, warmup_steps, b1, weight_lr_power, r, form)
    state_dtype = validation.check_dtype(fn, "state_dtype", state_dtype)
    direction = stateful.chain(*coupled_weight_decay(weight_decay, None), _step_counter())
    return _schedule_free(fn, bound, direction, state_dtype, steps=True)


def _scale_by_second_moment(b2, eps, debias: bool) -> optax.GradientTransformationExtraArgs:
    """g / (sqrt(v_hat) + eps) (optax's `scale_by_rms(b2, eps, eps_in_sqrt=False,
    bias_correction=True)`, its reciprocal times g), or g / (sqrt(v) + eps) without `debias`."""
    bound = Spec(B2, EPS).bind(errors.current_function(), b2=b2, eps=eps)

    def step(updates, state, hp, count, params):
        nu = _second_moments(updates, state.nu, hp)
        correction = tree_math.bias_correction(hp["b2"], count)

        def leaf(g, v):
            v = tree_math.debias(v, correction) if debias else v
            dt = base.wider(g.dtype, v.dtype)
            scale = 1 / (jnp.sqrt(v.astype(dt)) + hp["eps"].astype(dt))
            return (scale * g.astype(dt)).astype(g.dtype)

        return jax.tree.map(leaf, updates, nu), {"nu": nu}

    def buffers(params):
        return {"nu": base.zeros_like(params)}

    return stateful_transform(bound, ScaleBySecondMomentState, buffers, step, matches="nu")


def _adam_lr_factor(direction_state: Any) -> jax.Array:
    """sqrt(1 - b2**t): the paper's AdamW folds the bias correction into lr_t."""
    moment = direction_state[0]
    return jnp.sqrt(tree_math.bias_correction(moment.hparams["b2"], moment.count))


@errors.public("jopt.schedule_free_adamw")
def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = 0.0025,
    warmup_steps: int | None = None,
    b1: float = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_lr_power: float = 2.0,
    state_dtype: Any = None,
    *,
    r: float = 0.0,
    form: str = "optax",
) -> optax.GradientTransformationExtraArgs:
    """Schedule-free AdamW (Defazio et al. 2024); a drop-in for
    `optax.contrib.schedule_free_adamw`.

        v = b2 v + (1 - b2) g**2
        z -= lr_t (g / (sqrt(v / (1 - b2**t)) + eps) + weight_decay * y)        (form="optax")
        z -= lr_t sqrt(1 - b2**t) (g / (sqrt(v) + eps) + weight_decay * y)      (form="paper")
        x = (1 - c) x + c z;   y = (1 - b1) z + b1 x

    The params are y: **evaluate at `jopt.schedule_free_eval_params(state, params)`** (x).
    There is no first moment: b1 is the interpolation between z and x.

    Args:
      learning_rate: a number >= 0 or a schedule. Paper and optax default 0.0025.
      warmup_steps: None, or the length T >= 1 of a linear warmup (see `form`).
      b1: the interpolation between z and x, in (0, 1). Paper default 0.9.
      b2: decay rate of the second moment, in [0, 1). Paper default 0.999.
      eps: added to the root of the second moment, >= 0. Paper default 1e-8.
      weight_decay: the decoupled decay at y (>= 0), scaled by lr_t.
      weight_lr_power: the averaging weights' power of max_lr, >= 0. Paper default 2.
      state_dtype: dtype of z (default: the params' dtypes).
      r: the paper's polynomial weighting t**r, >= 0.
      form: "optax" (default, bitwise) or "paper": bias correction and warmup, see the module.
    """
    fn = errors.current_function()
    bound = _averaging(fn, learning_rate, warmup_steps, b1, weight_lr_power, r, form)
    state_dtype = validation.check_dtype(fn, "state_dtype", state_dtype)
    paper = bound["form"] == "paper"
    direction = stateful.chain(
        _scale_by_second_moment(b2, eps, debias=not paper), add_decayed_weights(weight_decay)
    )
    factor = _adam_lr_factor if paper else None
    return _schedule_free(fn, bound, direction, state_dtype, steps=True, lr_factor=factor)
