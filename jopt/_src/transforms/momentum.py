"""Momentum in the three forms people mean by it, an EMA of updates, and SGD built on them.

The forms agree at a constant learning rate (up to a rescaling of it) and differ once it changes:

    classic (heavy ball; Polyak 1964, torch, optax `trace`):
        m = mu * m + (1 - dampening) * g      direction = m             (nesterov: g + mu * m)
        the learning rate multiplies the direction afterwards: it sits *outside* the buffer.
    ema (the form most tutorials teach):
        m = mu * m + (1 - mu) * g             direction = m             (nesterov: (1-mu) g + mu m)
        equals classic with the learning rate scaled by (1 - mu).
    lr_inside (Keras, and optax's rmsprop momentum):
        v = mu * v - lr * g                   update = v                (nesterov: mu * v - lr * g)
        past learning rates stay inside the buffer, so a schedule acts with a delay.

Nesterov momentum follows Sutskever et al. (2013), "On the importance of initialization and momentum
in deep learning", in the look-ahead form used by torch, optax and Keras.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, fused, fused_rules, stateful, tree_math, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Bound, Choice, Flag, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY, coupled_weight_decay
from jopt._src.tree_math import moment
from jopt._src.validation import DECAY, UNIT

FORMS = ("classic", "ema")  # the forms scale_by_momentum computes
MOMENTUM_FORMS = (*FORMS, "lr_inside")  # the forms the optimizers offer

MOMENTUM = Float("momentum", DECAY, schedulable=True, complement=True)
DAMPENING = Float("dampening", UNIT, complement=True)
NESTEROV = Flag("nesterov")
KEEP_COUNT = Flag("keep_count")
SCALE_BY_MOMENTUM = Spec(
    MOMENTUM, Choice("form", FORMS), DAMPENING, NESTEROV, Flag("dampen_first_step"), KEEP_COUNT
)
MOMENTUM_FORM = Choice("momentum_form", MOMENTUM_FORMS)
SGD = Spec(
    LEARNING_RATE,
    MOMENTUM.as_optional(),
    NESTEROV,
    DAMPENING,
    MOMENTUM_FORM,
    WEIGHT_DECAY.as_optional(),
)
# The learning-rate-inside form weighs the gradient by -lr, not by 1 - momentum: no complement.
MOMENTUM_LR_INSIDE = Spec(
    LEARNING_RATE,
    dataclasses.replace(MOMENTUM, complement=False),
    WEIGHT_DECAY.as_optional(),
    NESTEROV,
    KEEP_COUNT,
)
EMA = Spec(Float("decay", DECAY, schedulable=True, complement=True), Flag("debias"))


class MomentumState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    trace: optax.Updates  # the buffer m (or v for the lr_inside form); optax's TraceState.trace
    hparams: HParams  # momentum, dampening (lr_inside: learning_rate, momentum, weight_decay)


class ChainedMomentumState(NamedTuple):
    """`MomentumState` after a block that keeps the step count (RMSProp's momentum)."""

    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    trace: optax.Updates  # as MomentumState.trace
    hparams: HParams  # as MomentumState.hparams


def _momentum_state(keep_count: bool) -> type:
    return MomentumState if keep_count else ChainedMomentumState


@errors.public("jopt.scale_by_momentum")
def scale_by_momentum(
    momentum: ScalarOrSchedule = 0.9,
    *,
    form: str = "classic",
    dampening: float = 0.0,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    dampen_first_step: bool = True,
    keep_count: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Momentum whose output the learning rate multiplies afterwards (classic or EMA form).

    Args:
      momentum: mu in [0, 1), or a schedule.
      form: "classic" (`m = mu m + (1 - dampening) g`) or "ema" (`m = mu m + (1 - mu) g`).
      dampening: torch's dampening tau in [0, 1], classic form only.
      nesterov: use the Nesterov look-ahead direction.
      accumulator_dtype: dtype of the buffer (default: the params' dtype).
      dampen_first_step: with False, the first step sets `m = g` undampened, as torch's SGD
        does (it differs from the default only when dampening > 0).
      keep_count: name the step counter `count`; False names it `schedule_count`, for a chain
        in which a block before this one keeps the count (stateful.py).
    """
    fn = errors.current_function()
    args = SCALE_BY_MOMENTUM.check(
        fn,
        momentum=momentum,
        form=form,
        dampening=dampening,
        nesterov=nesterov,
        dampen_first_step=dampen_first_step,
        keep_count=keep_count,
    )
    validation.require(
        fn,
        not (form == "ema" and dampening != 0.0),
        f"dampening applies to the classic form only, got dampening={dampening} with form='ema'.",
        argument="dampening",
        value=dampening,
    )
    if form == "ema":
        del args["dampening"]  # a hyperparameter of the classic form only: none to set here
    bound = Bound(SCALE_BY_MOMENTUM, fn, args)
    accumulator_dtype = validation.check_dtype(fn, "accumulator_dtype", accumulator_dtype)

    def buffers(params):
        return {"trace": base.zeros_like(params, accumulator_dtype)}

    def step(updates, state, hp, count, params):
        mu = hp["momentum"]
        # The weight of the new gradient: 1 - dampening (classic) or 1 - mu (ema).
        weight = hp.complement("dampening" if form == "classic" else "momentum")
        if not args["dampen_first_step"]:
            weight = jnp.where(count == 1, jnp.ones_like(weight), weight)
        new_m = jax.tree.map(lambda g, m: moment(g, m, mu, weight), updates, state.trace)
        direction = new_m
        if bound["nesterov"]:
            direction = jax.tree.map(lambda g, m: moment(g, m, mu, weight), updates, new_m)
        return direction, {"trace": new_m}

    state_type = _momentum_state(args["keep_count"])
    return stateful_transform(bound, state_type, buffers, step, matches="trace")


@errors.public("jopt.trace")
def trace(
    decay: ScalarOrSchedule,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    *,
    dampening: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """Classic (heavy-ball) momentum, a drop-in for `optax.trace`: `m = decay * m + g`.

    The decay is kept in the state under the name `momentum`. `dampening` (torch) scales the new
    gradient by `1 - dampening`.
    """
    decay = MOMENTUM.check(errors.current_function(), decay, argument="decay")
    return scale_by_momentum(
        decay,
        form="classic",
        dampening=dampening,
        nesterov=nesterov,
        accumulator_dtype=accumulator_dtype,
    )


@errors.public("jopt.momentum_lr_inside")
def momentum_lr_inside(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule = 0.9,
    *,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    weight_decay: ScalarOrSchedule | None = None,
    keep_count: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Momentum with the learning rate inside the buffer (Keras): `v = mu v - lr g`, update `v`.

    Returns the full update (already scaled by `-learning_rate`): do not chain a learning-rate
    scaling after it. With `nesterov`, the update is `mu v - lr g` (Keras' form). With
    `weight_decay`, the decoupled decay `-lr * weight_decay * params` is added to the update
    (not to the buffer), with the same learning rate, as Keras applies it.

    Args:
      learning_rate: a number >= 0 or a schedule.
      momentum: mu in [0, 1), or a schedule.
      nesterov: use the Nesterov look-ahead update.
      accumulator_dtype: dtype of the buffer (default: the params' dtype).
      weight_decay: None, or a decoupled decay coefficient >= 0 (needs params in update).
      keep_count: as in `scale_by_momentum`.
    """
    fn = errors.current_function()
    decay = {} if weight_decay is None else {"weight_decay": weight_decay}
    bound = MOMENTUM_LR_INSIDE.bind(
        fn,
        learning_rate=learning_rate,
        momentum=momentum,
        **decay,
        nesterov=nesterov,
        keep_count=keep_count,
    )
    accumulator_dtype = validation.check_dtype(fn, "accumulator_dtype", accumulator_dtype)

    def buffers(params):
        return {"trace": base.zeros_like(params, accumulator_dtype)}

    def step(updates, state, hp, count, params):
        step_size = -hp["learning_rate"]
        new_v = jax.tree.map(
            lambda g, v: moment(g, v, hp["momentum"], step_size), updates, state.trace
        )
        out = new_v
        if bound["nesterov"]:
            out = jax.tree.map(lambda g, v: moment(g, v, hp["momentum"], step_size), updates, new_v)
        if weight_decay is not None:
            decay = step_size * hp["weight_decay"]
            out = jax.tree.map(lambda u, p: u + decay.astype(u.dtype) * p, out, params)
        return out, {"trace": new_v}

    # It ends its chain, as the learning-rate scaling does: it checks the params the same way.
    return stateful_transform(
        bound,
        _momentum_state(bound["keep_count"]),
        buffers,
        step,
        matches=("trace", "params"),
        needs_params=weight_decay is not None,
    )


class EmaState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    ema: optax.Updates  # the moving average
    hparams: HParams  # decay


@errors.public("jopt.ema")
def ema(
    decay: ScalarOrSchedule, debias: bool = True, accumulator_dtype: Any = None
) -> optax.GradientTransformationExtraArgs:
    """Exponential moving average of updates, a drop-in for `optax.ema`.

    ema = decay * ema + (1 - decay) * g;   output ema / (1 - decay**t) if debias.
    """
    fn = errors.current_function()
    bound = EMA.bind(fn, decay=decay, debias=debias)
    accumulator_dtype = validation.check_dtype(fn, "accumulator_dtype", accumulator_dtype)

    def buffers(params):
        return {"ema": base.zeros_like(params, accumulator_dtype)}

    def step(updates, state, hp, count, params):
        new_ema = jax.tree.map(
            lambda g, m: moment(g, m, hp["decay"], hp.complement("decay")), updates, state.ema
        )
        out = new_ema
        if bound["debias"]:
            correction = tree_math.bias_correction(hp["decay"], count)
            out = jax.tree.map(lambda m: tree_math.debias(m, correction), new_ema)
        return out, {"ema": new_ema}

    return stateful_transform(bound, EmaState, buffers, step, matches="ema")


def momentum_then_learning_rate(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule | None,
    nesterov: bool,
    form: str,
    dampening: float = 0.0,
    accumulator_dtype: Any = None,
    forms: tuple[str, ...] = MOMENTUM_FORMS,
    keep_count: bool = True,
) -> list[optax.GradientTransformationExtraArgs]:
    """The momentum block in the chosen form, followed by the learning rate where it is outside.

    `forms` are the momentum forms the calling optimizer offers, listed in its error messages.
    With `keep_count`, the first of these blocks keeps the optimizer's step count (no block
    before them does); without, they follow one that does (stateful.py).
    """
    fn = errors.current_function()
    form = validation.check_choice(fn, "momentum_form", form, forms)
    nesterov = validation.check_bool(fn, "nesterov", nesterov)
    dampening = validation.check_number(fn, "dampening", dampening, UNIT)
    validation.require(
        fn,
        not (nesterov and momentum is None),
        "nesterov=True needs a momentum value.",
        argument="nesterov",
        value=nesterov,
    )
    if momentum is None:
        validation.require(
            fn,
            dampening == 0.0,
            f"dampening={dampening} needs a momentum value.",
            argument="dampening",
            value=dampening,
        )
        return [scale_by_learning_rate(learning_rate, keep_count=keep_count)]
    validation.require(
        fn,
        form == "classic" or dampening == 0.0,
        f"dampening={dampening} applies to momentum_form='classic' only, got "
        f"momentum_form={form!r}.",
        argument="dampening",
        value=dampening,
    )
    if form == "lr_inside":
        return [
            momentum_lr_inside(
                learning_rate,
                momentum,
                nesterov=nesterov,
                accumulator_dtype=accumulator_dtype,
                keep_count=keep_count,
            )
        ]
    block = scale_by_momentum(
        momentum,
        form=form,
        dampening=dampening,
        nesterov=nesterov,
        accumulator_dtype=accumulator_dtype,
        keep_count=keep_count,
    )
    return [block, scale_by_learning_rate(learning_rate)]


@errors.public("jopt.sgd")
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
) -> optax.GradientTransformationExtraArgs:
    """Stochastic gradient descent with optional momentum and L2 weight decay.

        g = g + weight_decay * theta                      (coupled L2, as torch's SGD)
        classic:   m = mu m + (1 - dampening) g;  theta -= lr * m   (nesterov: lr * (g + mu m))
        ema:       m = mu m + (1 - mu) g;         theta -= lr * m
        lr_inside: v = mu v - lr g;               theta += v        (Keras)

    Momentum: Polyak (1964); Nesterov: Sutskever et al. (2013). The forms are equal at a constant
    learning rate (ema up to lr / (1 - mu)) and differ under a schedule (see the module
    docstring). A drop-in for `optax.sgd`.

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
    fn = errors.current_function()
    accumulator_dtype = validation.check_dtype(fn, "accumulator_dtype", accumulator_dtype)
    tx = stateful.chain(
        *coupled_weight_decay(weight_decay, weight_decay_mask),
        *momentum_then_learning_rate(
            learning_rate,
            momentum,
            nesterov,
            momentum_form,
            dampening,
            accumulator_dtype,
        ),
    )
    decay = weight_decay is not None
    fusible = momentum is not None and momentum_form != "lr_inside"
    fusible = fusible and (weight_decay_mask is None or not decay)
    rule = fused_rules.momentum(decay, nesterov, momentum_form) if fusible else None
    return fused.declare(tx, rule)
