"""keras.optimizers as jopt transforms: same names, signatures, defaults and numbers (Keras 3).

Each function takes the Keras constructor's arguments and returns an ordinary jopt chain. The
trajectories match Keras step for step (tests/golden holds fixtures made by real Keras).
Conventions followed, each a named jopt option:

- `weight_decay` (every optimizer) is decoupled: `theta -= lr * weight_decay * theta`, applied
  with the same learning rate as the step; `exclude_from_weight_decay=[names]` (Keras' method,
  as an argument) or `weight_decay_mask` leave leaves out of it.
- `use_ema`, `ema_momentum`, `ema_overwrite_frequency` and `gradient_accumulation_steps` are
  Keras' (keyword-only here; `keras_extras`).
- `clipnorm` clips each tensor's norm, `global_clipnorm` the norm of all together, `clipvalue`
  each element; at most one of them may be set, as in Keras.
- SGD and RMSprop keep the learning rate inside the momentum buffer (`v = mu v - lr g`).
- Adam/AdamW use the "epsilon hat" form, eps=1e-7; AMSGrad keeps the max of the raw v.
- Adamax adds eps outside the max; Nadam uses the momentum schedule mu_t = b1 (1 - 0.96**t / 2).

Keras keeps the learning rate in a float32 variable even for float64 models: to reproduce a
float64 Keras run to 1e-10, give jopt the float32-rounded learning rate.

Every argument is checked at construction under its Keras name, before the jopt blocks are
built (`jopt.keras.Adam: beta_1 must be in [0, 1), got 1.0.`). The ranges are Keras' where it
has any (only one clip option; AdamW's weight_decay not None; Lion's beta_1 > 0), narrowed where
Keras takes nonsense silently: negative or non-finite learning rates, epsilons and weight decays,
decay rates (beta_1, beta_2, rho, momentum) outside [0, 1), clip thresholds <= 0.
"""

from __future__ import annotations

from typing import Any

from jopt._src import errors, stateful, validation
from jopt._src.base import ScalarOrSchedule, Transform
from jopt._src.conventions.keras_arguments import Globals, check_globals, check_learning_rate
from jopt._src.conventions.keras_extras import with_keras_options
from jopt._src.transforms.adadelta import scale_by_adadelta
from jopt._src.transforms.adagrad import scale_by_rss
from jopt._src.transforms.adam import scale_by_adam
from jopt._src.transforms.adamax import scale_by_adamax
from jopt._src.transforms.amsgrad import scale_by_amsgrad
from jopt._src.transforms.learning_rate import scale_by_learning_rate
from jopt._src.transforms.lion import scale_by_lion
from jopt._src.transforms.momentum import momentum_lr_inside
from jopt._src.transforms.nadam import scale_by_nadam
from jopt._src.transforms.regularization import add_decayed_weights
from jopt._src.transforms.rms import scale_by_rms

_DECAY = validation.DECAY
_EPSILON = validation.NON_NEGATIVE
_LION_BETA_1 = validation.Range(0.0, 1.0, lo_open=True, hi_open=True)


def _chain(fn: str, scaling: list[Transform], common: Globals) -> Transform:
    """clip -> scaling -> decoupled decay -> -lr: `theta -= lr * (scaled + wd * theta)`."""
    decay = []
    if common.weight_decay is not None:
        decay = [add_decayed_weights(common.weight_decay, common.mask)]
    return stateful.chain(
        *common.clipping,
        *scaling,
        *decay,
        scale_by_learning_rate(common.learning_rate, keep_count=not scaling),
    )


def _momentum_chain(
    fn: str, scaling: list[Transform], momentum: float, nesterov: bool, common: Globals
) -> Transform:
    """clip -> scaling -> `v = mu v - lr u`, update `v - lr * wd * theta` (lr inside the buffer)."""
    validation.require(
        fn,
        common.mask is None or common.weight_decay is None,
        "weight_decay_mask is not supported with momentum > 0 (the decay shares the momentum "
        "block's learning rate).",
        argument="weight_decay_mask",
    )
    step = momentum_lr_inside(
        common.learning_rate,
        momentum,
        nesterov=nesterov,
        weight_decay=common.weight_decay,
        keep_count=not scaling,
    )
    return stateful.chain(*common.clipping, *scaling, step)


@errors.public("jopt.keras.SGD")
@with_keras_options
def SGD(  # noqa: N802 - Keras' name
    learning_rate: ScalarOrSchedule = 0.01,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.SGD: `v = momentum * v - lr * g; theta += v` (nesterov: mu v - lr g).

    As in Keras, `nesterov` has no effect at `momentum=0`. Keras accepts `momentum=1` (a buffer
    that never forgets); jopt asks for momentum in [0, 1).
    """
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    momentum = validation.check_number(fn, "momentum", momentum, _DECAY)
    nesterov = validation.check_bool(fn, "nesterov", nesterov)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    if momentum == 0:
        return _chain(fn, [], common)
    return _momentum_chain(fn, [], momentum, nesterov, common)


@errors.public("jopt.keras.RMSprop")
@with_keras_options
def RMSprop(  # noqa: N802
    learning_rate: ScalarOrSchedule = 0.001,
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
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    rho = validation.check_number_or_schedule(fn, "rho", rho, _DECAY)
    momentum = validation.check_number(fn, "momentum", momentum, _DECAY)
    epsilon = validation.check_number(fn, "epsilon", epsilon, _EPSILON)
    centered = validation.check_bool(fn, "centered", centered)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    scaling = [scale_by_rms(rho, epsilon, 0.0, True, False, centered=centered)]
    if momentum == 0:
        return _chain(fn, scaling, common)
    return _momentum_chain(fn, scaling, momentum, False, common)


def _check_betas(fn: str, beta_1: Any, beta_2: Any, beta_1_range=_DECAY):
    return (
        validation.check_number_or_schedule(fn, "beta_1", beta_1, beta_1_range),
        validation.check_number_or_schedule(fn, "beta_2", beta_2, _DECAY),
    )


def _adam(fn, learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, clips, mask):
    """Keras' Adam and AdamW: the checks, then the epsilon-hat Adam (or AMSGrad) chain."""
    learning_rate = check_learning_rate(fn, learning_rate)
    beta_1, beta_2 = _check_betas(fn, beta_1, beta_2)
    epsilon = validation.check_number(fn, "epsilon", epsilon, _EPSILON)
    amsgrad = validation.check_bool(fn, "amsgrad", amsgrad)
    common = check_globals(fn, learning_rate, weight_decay, *clips, mask)
    if amsgrad:
        scaling = scale_by_amsgrad(beta_1, beta_2, epsilon, max_of="raw", eps_hat=True)
    else:
        scaling = scale_by_adam(beta_1, beta_2, epsilon, eps_hat=True)
    return _chain(fn, [scaling], common)


@errors.public("jopt.keras.Adam")
@with_keras_options
def Adam(  # noqa: N802
    learning_rate: ScalarOrSchedule = 0.001,
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
    fn, clips = errors.current_function(), (clipnorm, clipvalue, global_clipnorm)
    return _adam(
        fn, learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, clips, weight_decay_mask
    )


@errors.public("jopt.keras.AdamW")
@with_keras_options
def AdamW(  # noqa: N802
    learning_rate: ScalarOrSchedule = 0.001,
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
    """keras.optimizers.AdamW: Keras' Adam with decoupled weight decay (default 0.004).

    As in Keras, `weight_decay` may not be None.
    """
    fn = errors.current_function()
    validation.check_number_or_schedule(fn, "weight_decay", weight_decay, validation.NON_NEGATIVE)
    clips = (clipnorm, clipvalue, global_clipnorm)
    return _adam(
        fn, learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, clips, weight_decay_mask
    )


@errors.public("jopt.keras.Adamax")
@with_keras_options
def Adamax(  # noqa: N802
    learning_rate: ScalarOrSchedule = 0.001,
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
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    beta_1, beta_2 = _check_betas(fn, beta_1, beta_2)
    epsilon = validation.check_number(fn, "epsilon", epsilon, _EPSILON)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    scaling = [scale_by_adamax(beta_1, beta_2, epsilon, eps_in_max=False)]
    return _chain(fn, scaling, common)


@errors.public("jopt.keras.Nadam")
@with_keras_options
def Nadam(  # noqa: N802
    learning_rate: ScalarOrSchedule = 0.001,
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
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    beta_1, beta_2 = _check_betas(fn, beta_1, beta_2)
    epsilon = validation.check_number(fn, "epsilon", epsilon, _EPSILON)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    scaling = [scale_by_nadam(beta_1, beta_2, epsilon, 1.0)]
    return _chain(fn, scaling, common)


@errors.public("jopt.keras.Adagrad")
@with_keras_options
def Adagrad(  # noqa: N802
    learning_rate: ScalarOrSchedule = 0.001,
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
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    initial = validation.check_number(
        fn, "initial_accumulator_value", initial_accumulator_value, validation.NON_NEGATIVE
    )
    epsilon = validation.check_number(fn, "epsilon", epsilon, _EPSILON)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    return _chain(fn, [scale_by_rss(initial, epsilon)], common)


@errors.public("jopt.keras.Adadelta")
@with_keras_options
def Adadelta(  # noqa: N802
    learning_rate: ScalarOrSchedule = 0.001,
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
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    rho = validation.check_number_or_schedule(fn, "rho", rho, _DECAY)
    epsilon = validation.check_number(fn, "epsilon", epsilon, _EPSILON)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    return _chain(fn, [scale_by_adadelta(rho, epsilon)], common)


@errors.public("jopt.keras.Lion")
@with_keras_options
def Lion(  # noqa: N802
    learning_rate: ScalarOrSchedule = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.99,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.Lion (Chen et al. 2023).

    Keras refuses `beta_1 = 0` (Lion would be signSGD) and accepts `beta_1 = 1`; jopt asks for
    beta_1 in (0, 1).
    """
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    beta_1, beta_2 = _check_betas(fn, beta_1, beta_2, _LION_BETA_1)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    return _chain(fn, [scale_by_lion(beta_1, beta_2)], common)
