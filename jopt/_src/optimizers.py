"""The optimizers users call: each a validated chain of building blocks. This file holds SGD,
RMSProp, Adagrad and Adadelta; `jopt._src.adam_family` holds Adam and its relatives.

Where optax has the same optimizer, the signature is a drop-in for it (same name, argument names
and order) and only adds keyword options; float32 and float64 results are bitwise identical to
optax where the conventions agree. Where a default differs from optax, torch or Keras, the
docstring says so. Every hyperparameter lives in the state (see `jopt.hparams`).

A block that an argument switches off (`momentum=None`, `weight_decay=None`) is left out of the
chain, as in optax, and costs nothing; a value, 0.0 included, puts the block and its
hyperparameter in the state, where `jopt.set_hparams` can change it later.
"""

from __future__ import annotations

from typing import Any

import optax

from jopt._src import validation
from jopt._src.transforms.adadelta import scale_by_adadelta
from jopt._src.transforms.adagrad import scale_by_rss
from jopt._src.transforms.learning_rate import scale_by_learning_rate
from jopt._src.transforms.momentum import MOMENTUM_FORMS, momentum_lr_inside, scale_by_momentum
from jopt._src.transforms.regularization import add_decayed_weights
from jopt._src.transforms.rms import scale_by_rms

ScalarOrSchedule = float | validation.Schedule
GradientTransformation = optax.GradientTransformationExtraArgs


def _descend(owner: str, learning_rate: ScalarOrSchedule) -> GradientTransformation:
    return scale_by_learning_rate(learning_rate, owner=owner)


def _coupled_decay(owner: str, weight_decay: Any, mask: Any) -> list[GradientTransformation]:
    """L2 regularization folded into the gradient, or nothing when weight_decay is None."""
    validation.check_mask(owner, "weight_decay_mask", mask)
    if weight_decay is None:
        return []
    validation.check_number_or_schedule(
        owner, "weight_decay", weight_decay, validation.NON_NEGATIVE
    )
    return [add_decayed_weights(weight_decay, mask, owner=owner)]


def _momentum_then_lr(
    owner: str,
    learning_rate: ScalarOrSchedule,
    momentum: Any,
    nesterov: bool,
    form: str,
    dampening: float = 0.0,
    accumulator_dtype: Any = None,
    forms: tuple[str, ...] = MOMENTUM_FORMS,
) -> list[GradientTransformation]:
    """The momentum block in the chosen form, followed by the learning rate where it is outside.

    `forms` are the momentum forms the calling optimizer offers, listed in its error messages.
    """
    form = validation.check_choice(owner, "momentum_form", form, forms)
    nesterov = validation.check_bool(owner, "nesterov", nesterov)
    dampening = validation.check_number(owner, "dampening", dampening, validation.UNIT)
    validation.require(
        owner, not (nesterov and momentum is None), "nesterov=True needs a momentum value."
    )
    if momentum is None:
        validation.require(
            owner, dampening == 0.0, f"dampening={dampening} needs a momentum value."
        )
        return [_descend(owner, learning_rate)]
    validation.require(
        owner,
        form == "classic" or dampening == 0.0,
        f"dampening={dampening} applies to momentum_form='classic' only, got "
        f"momentum_form={form!r}.",
    )
    if form == "lr_inside":
        return [
            momentum_lr_inside(
                learning_rate,
                momentum,
                nesterov=nesterov,
                accumulator_dtype=accumulator_dtype,
                owner=owner,
            )
        ]
    momentum_block = scale_by_momentum(
        momentum,
        form=form,
        dampening=dampening,
        nesterov=nesterov,
        accumulator_dtype=accumulator_dtype,
        owner=owner,
    )
    return [momentum_block, _descend(owner, learning_rate)]


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    *,
    dampening: float = 0.0,
    momentum_form: str = "classic",
    weight_decay: ScalarOrSchedule | None = None,
    weight_decay_mask: Any = None,
) -> GradientTransformation:
    """Stochastic gradient descent with optional momentum and L2 weight decay.

        g = g + weight_decay * theta                      (coupled L2, as torch's SGD)
        classic:   m = mu m + (1 - dampening) g;  theta -= lr * m   (nesterov: lr * (g + mu m))
        ema:       m = mu m + (1 - mu) g;         theta -= lr * m
        lr_inside: v = mu v - lr g;               theta += v        (Keras)

    Momentum: Polyak (1964); Nesterov: Sutskever et al. (2013). The forms are equal at a constant
    learning rate (ema up to lr / (1 - mu)) and differ under a schedule; see
    `jopt._src.transforms.momentum`.

    Args:
      learning_rate: a number >= 0 or a schedule.
      momentum: mu in [0, 1), a schedule, or None for plain SGD (no buffer).
      nesterov: Nesterov momentum (needs a momentum value).
      accumulator_dtype: dtype of the momentum buffer (default: the params' dtype).
      dampening: torch's dampening, classic form only.
      momentum_form: "classic" (default; optax, torch), "ema" or "lr_inside" (Keras).
      weight_decay: coupled L2 coefficient >= 0 (torch's `weight_decay`), a schedule, or None
        (default: no decay block; 0.0 keeps one in the state to set later). Needs params.
      weight_decay_mask: which params to decay (tree of bools or a function of the params).
    """
    owner = "jopt.sgd"
    accumulator_dtype = validation.check_dtype(owner, "accumulator_dtype", accumulator_dtype)
    return optax.chain(
        *_coupled_decay(owner, weight_decay, weight_decay_mask),
        *_momentum_then_lr(
            owner,
            learning_rate,
            momentum,
            nesterov,
            momentum_form,
            dampening,
            accumulator_dtype,
        ),
    )


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: ScalarOrSchedule = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
    *,
    momentum_form: str = "lr_inside",
    weight_decay: ScalarOrSchedule | None = None,
    weight_decay_mask: Any = None,
) -> GradientTransformation:
    """RMSProp (Tieleman & Hinton 2012), centered as Graves (2013); a drop-in for `optax.rmsprop`.

        u = g / sqrt(nu + eps)   (eps_in_sqrt=True)   or   g / (sqrt(nu) + eps)   (False)
        then momentum on u: v = mu v - lr u (momentum_form="lr_inside", optax and Keras)
                       or   m = mu m + u;  theta -= lr m ("classic", torch)

    Warning: optax's defaults (decay=0.9, eps inside the root, lr inside the momentum buffer)
    differ from torch's RMSprop (alpha=0.99, eps outside, lr outside): `jopt.rmsprop(lr,
    decay=0.99, eps_in_sqrt=False, momentum_form="classic")` is torch's.

    Args:
      learning_rate: a number >= 0 or a schedule.
      decay: EMA rate of the squared gradients (torch's alpha), in [0, 1).
      eps: >= 0; see eps_in_sqrt.
      initial_scale: initial value of the squared-gradient EMA.
      eps_in_sqrt: eps inside the root (optax, Keras) or outside (torch).
      centered: divide by an estimate of the standard deviation instead of the RMS.
      momentum: mu in [0, 1), a schedule, or None for no momentum.
      nesterov: Nesterov momentum (needs a momentum value).
      bias_correction: divide the EMAs by `1 - decay**t`.
      momentum_form: "lr_inside" (default, optax and Keras) or "classic" (torch).
      weight_decay: coupled L2 coefficient >= 0 (torch's `weight_decay`), a schedule, or None
        (default: no decay block; 0.0 keeps one in the state to set later). Needs params.
      weight_decay_mask: which params to decay.
    """
    owner = "jopt.rmsprop"
    return optax.chain(
        *_coupled_decay(owner, weight_decay, weight_decay_mask),
        scale_by_rms(
            decay, eps, initial_scale, eps_in_sqrt, bias_correction, centered=centered, owner=owner
        ),
        *_momentum_then_lr(
            owner, learning_rate, momentum, nesterov, momentum_form, forms=("lr_inside", "classic")
        ),
    )


def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: float = 0.1,
    eps: float = 1e-7,
    *,
    eps_in_sqrt: bool = True,
) -> GradientTransformation:
    """Adagrad (Duchi et al. 2011); a drop-in for `optax.adagrad`.

        acc = acc + g**2;   theta -= lr * g / sqrt(acc + eps)

    Warning: torch starts the accumulator at 0 with eps=1e-10 outside the root:
    `jopt.adagrad(lr, 0.0, 1e-10, eps_in_sqrt=False)`.
    """
    owner = "jopt.adagrad"
    return optax.chain(
        scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=eps_in_sqrt, owner=owner),
        _descend(owner, learning_rate),
    )


def adadelta(
    learning_rate: ScalarOrSchedule | None = 1.0,
    rho: ScalarOrSchedule = 0.9,
    eps: float = 1e-6,
    weight_decay: ScalarOrSchedule | None = None,
    weight_decay_mask: Any = None,
) -> GradientTransformation:
    """Adadelta (Zeiler 2012) with coupled weight decay; a drop-in for `optax.adadelta`.

        dx = sqrt(E_dx + eps) / sqrt(E_g + eps) * g;   theta -= lr * dx

    The default learning rate is 1.0 (the paper's and torch's; `None` means 1.0 too). optax
    0.2.8's default `learning_rate=None` leaves the sign unflipped, so its default ascends.
    """
    owner = "jopt.adadelta"
    return optax.chain(
        *_coupled_decay(owner, weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps, owner=owner),
        _descend(owner, 1.0 if learning_rate is None else learning_rate),
    )
