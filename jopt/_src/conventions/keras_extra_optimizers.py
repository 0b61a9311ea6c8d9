"""keras.optimizers' Ftrl, Lamb, Adafactor and ScheduleFreeAdamW as jopt transforms (Keras 3):
same names, signatures, defaults and numbers (the conventions shared with the other twins:
`keras_optimizers`).

These four read the params in their step, so Keras' order matters: the weight decay
(`theta -= lr * weight_decay * theta`) comes first, and the step reads the decayed params
(`keras_decay_first`).

- Ftrl is `jopt.ftrl` (McMahan et al. 2013) with Keras' L2 strengths doubled: Keras'
  `l2_regularization_strength` and `l2_shrinkage_regularization_strength` are the coefficients
  of |w|**2, jopt's `l2` and `l2_shrinkage` (the paper's lambda_2) of |w|**2 / 2.
- Lamb is Adam's bias-corrected step (eps outside the root) times the trust ratio
  ||theta|| / ||step|| per leaf, without the weight decay inside the ratio (`jopt.lamb` puts it
  there, as the paper and optax).
- Adafactor is `jopt.adafactor`'s math with Keras' rules (`keras_adafactor`): every leaf of two
  axes or more factored over its last two, the step `min(lr, 1 / sqrt(t)) * max(epsilon_2,
  rms(theta))` (Keras' `relative_step` changes nothing: Keras applies that rate either way),
  `beta_2_decay` = -decay_rate, and Keras' means computed in float32.
- ScheduleFreeAdamW is `jopt.schedule_free_adamw`'s averaging with Keras' choices: the average's
  weights all equal (c_t = 1 / t), the warmup `lr * min(t / warmup_steps, 1)` of step t, and
  Adam's bias correction in the denominator. Evaluate at
  `jopt.schedule_free_eval_params(state, params)`.

Arguments are checked under Keras' names, more strictly than Keras where it takes nonsense:
Ftrl's beta and Lamb's and ScheduleFreeAdamW's epsilons must be >= 0, decay rates in [0, 1)
(ScheduleFreeAdamW's beta_1 in (0, 1): x is recovered by dividing by it), Adafactor's
beta_2_decay <= 0, its epsilons >= 0 and clip_threshold > 0, warmup_steps an integer >= 0.
"""

from __future__ import annotations

from typing import Any

from jopt._src import errors, stateful, validation
from jopt._src.base import ScalarOrSchedule, Transform
from jopt._src.conventions.keras_adafactor import scale_by_keras_adafactor
from jopt._src.conventions.keras_arguments import check_globals, check_learning_rate
from jopt._src.conventions.keras_decay_first import (
    decay_first,
    decay_params_first,
    inverse_sqrt_cap,
)
from jopt._src.conventions.keras_extras import with_keras_options
from jopt._src.conventions.keras_schedule_free import scale_by_keras_second_moment
from jopt._src.spec import Spec
from jopt._src.transforms.adam import scale_by_adam
from jopt._src.transforms.ftrl import ftrl
from jopt._src.transforms.schedule_free import _averaging, _schedule_free
from jopt._src.transforms.trust_ratio import trust_ratio_transform
from jopt._src.validation import DECAY, NON_NEGATIVE, POSITIVE, Range

_OPEN_UNIT = Range(0.0, 1.0, lo_open=True, hi_open=True)


def _number(fn: str, name: str, value: Any, allowed: Range) -> float:
    return validation.check_number(fn, name, value, allowed)


@errors.public("jopt.keras.Ftrl")
@with_keras_options
def Ftrl(  # noqa: N802 - Keras' name
    learning_rate: ScalarOrSchedule = 0.001,
    learning_rate_power: float = -0.5,
    initial_accumulator_value: float = 0.1,
    l1_regularization_strength: float = 0.0,
    l2_regularization_strength: float = 0.0,
    l2_shrinkage_regularization_strength: float = 0.0,
    beta: float = 0.0,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.Ftrl (McMahan et al. 2013), per coordinate with q = -learning_rate_power:

        n' = n + g**2;  z += g + 2 l2_shrinkage w - (n'**q - n**q) / lr * w;  n = n'
        w = (clip(z, -l1, l1) - z) / (n**q / lr + 2 l2 + beta / lr)       (0 where |z| <= l1)

    `jopt.get_hparams` shows jopt's `l2` and `l2_shrinkage`: twice Keras' (module docstring).
    """
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    power = _number(fn, "learning_rate_power", learning_rate_power, Range(hi=0.0))
    initial = _number(fn, "initial_accumulator_value", initial_accumulator_value, NON_NEGATIVE)
    l1 = _number(fn, "l1_regularization_strength", l1_regularization_strength, NON_NEGATIVE)
    l2 = _number(fn, "l2_regularization_strength", l2_regularization_strength, NON_NEGATIVE)
    shrinkage = _number(
        fn, "l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength,
        NON_NEGATIVE,
    )  # fmt: skip
    beta = _number(fn, "beta", beta, NON_NEGATIVE)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    step = ftrl(
        learning_rate, power, initial, l1, 2 * l2, 2 * shrinkage, beta,
        weight_decay=common.weight_decay, weight_decay_mask=common.mask,
    )  # fmt: skip
    return stateful.chain(*common.clipping, step)


@errors.public("jopt.keras.Lamb")
@with_keras_options
def Lamb(  # noqa: N802
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
    """keras.optimizers.Lamb (You et al. 2020), after Keras' weight decay:

        u = m_hat / (sqrt(v_hat) + epsilon)
        theta -= lr * ||theta|| / ||u|| * u         per leaf (ratio 1 where a norm is 0)

    The weight decay is not in the trust ratio (`jopt.lamb`'s, the paper's, is); the ratio
    reads the decayed params.
    """
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    beta_1 = validation.check_number_or_schedule(fn, "beta_1", beta_1, DECAY)
    beta_2 = validation.check_number_or_schedule(fn, "beta_2", beta_2, DECAY)
    epsilon = _number(fn, "epsilon", epsilon, NON_NEGATIVE)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    direction = stateful.chain(
        scale_by_adam(beta_1, beta_2, epsilon), trust_ratio_transform(Spec().bind(fn))
    )
    step = decay_first(direction, common.learning_rate, common.weight_decay, common.mask)
    return stateful.chain(*common.clipping, step)


@errors.public("jopt.keras.Adafactor")
@with_keras_options
def Adafactor(  # noqa: N802
    learning_rate: ScalarOrSchedule = 0.001,
    beta_2_decay: float = -0.8,
    epsilon_1: float = 1e-30,
    epsilon_2: float = 1e-3,
    clip_threshold: float = 1.0,
    relative_step: bool = True,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.Adafactor (Shazeer & Stern 2018), after Keras' weight decay:

        b = 1 - t**beta_2_decay;   R, C (last two axes) or V from g**2 + epsilon_1
        u = g / sqrt(V);   u = u / max(1, rms(u) / clip_threshold)
        theta -= min(lr, 1 / sqrt(t)) * max(epsilon_2, rms(theta)) * u

    `relative_step` is checked and has no effect, as in Keras 3.
    """
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    decay_rate = -_number(fn, "beta_2_decay", beta_2_decay, Range(hi=0.0))
    epsilon_1 = _number(fn, "epsilon_1", epsilon_1, NON_NEGATIVE)
    epsilon_2 = _number(fn, "epsilon_2", epsilon_2, NON_NEGATIVE)
    clip_threshold = _number(fn, "clip_threshold", clip_threshold, POSITIVE)
    validation.check_bool(fn, "relative_step", relative_step)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    direction = scale_by_keras_adafactor(decay_rate, epsilon_1, epsilon_2, clip_threshold)
    step = decay_first(
        direction, common.learning_rate, common.weight_decay, common.mask, inverse_sqrt_cap
    )
    return stateful.chain(*common.clipping, step)


@errors.public("jopt.keras.ScheduleFreeAdamW")
@with_keras_options
def ScheduleFreeAdamW(  # noqa: N802
    learning_rate: ScalarOrSchedule = 0.0025,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    warmup_steps: int = 0,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.ScheduleFreeAdamW (Defazio et al. 2024), after Keras' weight decay:

        lr_t = lr * min(t / warmup_steps, 1);   v = b2 v + (1 - b2) g**2
        z -= lr_t g / (sqrt(v / (1 - b2**t)) + epsilon)
        x = (1 - 1/t) x + z / t;   y = (1 - beta_1) z + beta_1 x     (y: the params)

    The params are y: evaluate at `jopt.schedule_free_eval_params(state, params)` (x).
    """
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    beta_1 = _number(fn, "beta_1", beta_1, _OPEN_UNIT)
    beta_2 = validation.check_number_or_schedule(fn, "beta_2", beta_2, DECAY)
    epsilon = _number(fn, "epsilon", epsilon, NON_NEGATIVE)
    warmup_steps = validation.check_int(fn, "warmup_steps", warmup_steps, 0)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    averaging = _averaging(
        fn, common.learning_rate, warmup_steps or None, beta_1, 0.0, 0.0, "paper"
    )
    direction = scale_by_keras_second_moment(beta_2, epsilon)
    tx = _schedule_free(fn, averaging, direction, None, steps=True)
    if common.weight_decay is not None:

        def learning_rate_of(state):
            return averaging.resolve(state.hparams, state.step_count - 1)["learning_rate"]

        tx = decay_params_first(tx, common.weight_decay, common.mask, learning_rate_of)
    return stateful.chain(*common.clipping, tx)
