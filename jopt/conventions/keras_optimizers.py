"""keras.optimizers as jopt transforms: same names, signatures, defaults and numbers (Keras 3).

Each function takes the Keras constructor's arguments and returns an ordinary jopt chain. The
trajectories match Keras step for step (tests/golden holds fixtures made by real Keras).
Conventions followed, each a named jopt option:

- `weight_decay` (every optimizer) is decoupled: `theta -= lr * weight_decay * theta`, applied
  with the same learning rate as the step; `weight_decay_mask` plays `exclude_from_weight_decay`.
- `clipnorm` clips each tensor's norm, `global_clipnorm` the norm of all together, `clipvalue`
  each element; at most one of them may be set, as in Keras.
- SGD and RMSprop keep the learning rate inside the momentum buffer (`v = mu v - lr g`).
- Adam/AdamW use the "epsilon hat" form, eps=1e-7; AMSGrad keeps the max of the raw v.
- Adamax adds eps outside the max; Nadam uses the momentum schedule mu_t = b1 (1 - 0.96**t / 2).

Keras keeps the learning rate in a float32 variable even for float64 models: to reproduce a
float64 Keras run to 1e-10, give jopt the float32-rounded learning rate.
"""

from __future__ import annotations

from typing import Any

import optax

from jopt import validation
from jopt.transforms.adadelta import scale_by_adadelta
from jopt.transforms.adagrad import scale_by_rss
from jopt.transforms.adam import scale_by_adam, scale_by_adamax, scale_by_amsgrad
from jopt.transforms.clipping import clip, clip_by_global_norm, clip_by_leaf_norm
from jopt.transforms.learning_rate import scale_by_learning_rate
from jopt.transforms.lion import scale_by_lion
from jopt.transforms.momentum import momentum_lr_inside
from jopt.transforms.nadam import scale_by_nadam
from jopt.transforms.regularization import add_decayed_weights
from jopt.transforms.rms import scale_by_rms

LearningRate = float | validation.Schedule
Transform = optax.GradientTransformationExtraArgs


def _clipping(fn: str, clipnorm: Any, clipvalue: Any, global_clipnorm: Any) -> list[Transform]:
    given = {
        "clipnorm": clipnorm,
        "clipvalue": clipvalue,
        "global_clipnorm": global_clipnorm,
    }
    given = {k: v for k, v in given.items() if v is not None}
    validation.require(
        fn,
        len(given) <= 1,
        f"only one of clipnorm, clipvalue and global_clipnorm may be set, got {sorted(given)}.",
    )
    for name, value in given.items():
        validation.check_number(fn, name, value, validation.POSITIVE)
    if clipnorm is not None:
        return [clip_by_leaf_norm(clipnorm)]
    if global_clipnorm is not None:
        return [clip_by_global_norm(global_clipnorm)]
    if clipvalue is not None:
        return [clip(clipvalue)]
    return []


def _decay(fn: str, weight_decay: Any, mask: Any) -> list[Transform]:
    if weight_decay is None:
        return []
    return [add_decayed_weights(weight_decay, mask, owner=fn)]


def _chain(fn, scaling, learning_rate, weight_decay, mask, clipping) -> Transform:
    """clip -> scaling -> decoupled decay -> -lr: `theta -= lr * (scaled + wd * theta)`."""
    return optax.chain(
        *_clipping(fn, *clipping),
        *scaling,
        *_decay(fn, weight_decay, mask),
        scale_by_learning_rate(learning_rate, owner=fn),
    )


def _momentum_chain(fn, scaling, learning_rate, momentum, nesterov, weight_decay, mask, clips):
    """clip -> scaling -> `v = mu v - lr u`, update `v - lr * wd * theta` (lr inside the buffer)."""
    validation.require(
        fn,
        mask is None or weight_decay is None,
        "weight_decay_mask is not supported with momentum > 0 (the decay shares the momentum "
        "block's learning rate).",
    )
    step = momentum_lr_inside(
        learning_rate, momentum, nesterov=nesterov, weight_decay=weight_decay, owner=fn
    )
    return optax.chain(*_clipping(fn, *clips), *scaling, step)


def SGD(  # noqa: N802 - Keras' name
    learning_rate: LearningRate = 0.01,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.SGD: `v = momentum * v - lr * g; theta += v` (nesterov: mu v - lr g)."""
    fn = "jopt.keras.SGD"
    momentum = validation.check_number(fn, "momentum", momentum, validation.DECAY)
    nesterov = validation.check_bool(fn, "nesterov", nesterov)
    clips = (clipnorm, clipvalue, global_clipnorm)
    if momentum == 0:
        validation.require(fn, not nesterov, "nesterov=True needs momentum > 0.")
        return _chain(fn, [], learning_rate, weight_decay, weight_decay_mask, clips)
    return _momentum_chain(
        fn, [], learning_rate, momentum, nesterov, weight_decay, weight_decay_mask, clips
    )


def RMSprop(  # noqa: N802
    learning_rate: LearningRate = 0.001,
    rho: float = 0.9,
    momentum: float = 0.0,
    epsilon: float = 1e-7,
    centered: bool = False,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.RMSprop: `g / sqrt(v + eps)`, lr inside the momentum buffer."""
    fn = "jopt.keras.RMSprop"
    momentum = validation.check_number(fn, "momentum", momentum, validation.DECAY)
    scaling = [scale_by_rms(rho, epsilon, 0.0, True, False, centered=centered, owner=fn)]
    clips = (clipnorm, clipvalue, global_clipnorm)
    if momentum == 0:
        return _chain(fn, scaling, learning_rate, weight_decay, weight_decay_mask, clips)
    return _momentum_chain(
        fn, scaling, learning_rate, momentum, False, weight_decay, weight_decay_mask, clips
    )


def _adam_scaling(fn, beta_1, beta_2, epsilon, amsgrad):
    if validation.check_bool(fn, "amsgrad", amsgrad):
        return scale_by_amsgrad(beta_1, beta_2, epsilon, max_of="raw", eps_hat=True, owner=fn)
    return scale_by_adam(beta_1, beta_2, epsilon, eps_hat=True, owner=fn)


def Adam(  # noqa: N802
    learning_rate: LearningRate = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.Adam: `lr sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps)`."""
    fn = "jopt.keras.Adam"
    scaling = [_adam_scaling(fn, beta_1, beta_2, epsilon, amsgrad)]
    clips = (clipnorm, clipvalue, global_clipnorm)
    return _chain(fn, scaling, learning_rate, weight_decay, weight_decay_mask, clips)


def AdamW(  # noqa: N802
    learning_rate: LearningRate = 0.001,
    weight_decay: float = 0.004,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.AdamW: Keras' Adam with decoupled weight decay (default 0.004)."""
    fn = "jopt.keras.AdamW"
    validation.check_number(fn, "weight_decay", weight_decay, validation.NON_NEGATIVE)
    scaling = [_adam_scaling(fn, beta_1, beta_2, epsilon, amsgrad)]
    clips = (clipnorm, clipvalue, global_clipnorm)
    return _chain(fn, scaling, learning_rate, weight_decay, weight_decay_mask, clips)


def Adamax(  # noqa: N802
    learning_rate: LearningRate = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.Adamax: `u = max(b2 u, |g|)`, step `m / (1 - b1**t) / (u + eps)`."""
    fn = "jopt.keras.Adamax"
    scaling = [scale_by_adamax(beta_1, beta_2, epsilon, eps_in_max=False, owner=fn)]
    clips = (clipnorm, clipvalue, global_clipnorm)
    return _chain(fn, scaling, learning_rate, weight_decay, weight_decay_mask, clips)


def Nadam(  # noqa: N802
    learning_rate: LearningRate = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.Nadam: momentum schedule `mu_t = b1 (1 - 0.96**t / 2)`."""
    fn = "jopt.keras.Nadam"
    scaling = [scale_by_nadam(beta_1, beta_2, epsilon, 1.0, owner=fn)]
    clips = (clipnorm, clipvalue, global_clipnorm)
    return _chain(fn, scaling, learning_rate, weight_decay, weight_decay_mask, clips)


def Adagrad(  # noqa: N802
    learning_rate: LearningRate = 0.001,
    initial_accumulator_value: float = 0.1,
    epsilon: float = 1e-7,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.Adagrad: `g / sqrt(acc + eps)`, acc from 0.1."""
    fn = "jopt.keras.Adagrad"
    scaling = [scale_by_rss(initial_accumulator_value, epsilon, owner=fn)]
    clips = (clipnorm, clipvalue, global_clipnorm)
    return _chain(fn, scaling, learning_rate, weight_decay, weight_decay_mask, clips)


def Adadelta(  # noqa: N802
    learning_rate: LearningRate = 0.001,
    rho: float = 0.95,
    epsilon: float = 1e-7,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.Adadelta (Zeiler 2012); note Keras' default learning rate is 0.001."""
    fn = "jopt.keras.Adadelta"
    scaling = [scale_by_adadelta(rho, epsilon, owner=fn)]
    clips = (clipnorm, clipvalue, global_clipnorm)
    return _chain(fn, scaling, learning_rate, weight_decay, weight_decay_mask, clips)


def Lion(  # noqa: N802
    learning_rate: LearningRate = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.99,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.Lion (Chen et al. 2023)."""
    fn = "jopt.keras.Lion"
    scaling = [scale_by_lion(beta_1, beta_2, owner=fn)]
    clips = (clipnorm, clipvalue, global_clipnorm)
    return _chain(fn, scaling, learning_rate, weight_decay, weight_decay_mask, clips)
