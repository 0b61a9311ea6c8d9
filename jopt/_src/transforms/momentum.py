"""Momentum in the three forms people mean by it, and an EMA of updates.

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

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, tree_math, validation
from jopt._src.hparams import HParams, Spec
from jopt._src.tree_math import moment

FORMS = ("classic", "ema")  # the forms scale_by_momentum computes
MOMENTUM_FORMS = (*FORMS, "lr_inside")  # the forms the optimizers offer


class MomentumState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    momentum: optax.Updates  # the buffer m (or v for the lr_inside form)
    hparams: HParams  # momentum, dampening (lr_inside: learning_rate, momentum, weight_decay)


def scale_by_momentum(
    momentum: float | validation.Schedule = 0.9,
    *,
    form: str = "classic",
    dampening: float = 0.0,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    dampen_first_step: bool = True,
    owner: str = "jopt.scale_by_momentum",
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
      owner: the public name reported in errors.
    """
    form = validation.check_choice(owner, "form", form, FORMS)
    dampen_first_step = validation.check_bool(owner, "dampen_first_step", dampen_first_step)
    momentum = validation.check_number_or_schedule(owner, "momentum", momentum, validation.DECAY)
    dampening = validation.check_number(owner, "dampening", dampening, validation.UNIT)
    nesterov = validation.check_bool(owner, "nesterov", nesterov)
    accumulator_dtype = validation.check_dtype(owner, "accumulator_dtype", accumulator_dtype)
    validation.require(
        owner,
        not (form == "ema" and dampening != 0.0),
        f"dampening applies to the classic form only, got dampening={dampening} with form='ema'.",
    )
    # dampening is a hyperparameter of the classic form only: the EMA form has none to set.
    values = {"momentum": momentum, **({"dampening": dampening} if form == "classic" else {})}
    spec = Spec(
        owner,
        values,
        {"momentum": validation.DECAY, "dampening": validation.UNIT},
        decays=tuple(values),
    )

    def init_fn(params):
        return MomentumState(
            count=base.zero_count(),
            momentum=base.zeros_like(params, accumulator_dtype),
            hparams=spec.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        base.check_tree(owner, updates, state.momentum, "momentum buffer")
        hp = spec.resolve(state.hparams, state.count)
        mu = hp["momentum"]
        # The weight of the new gradient: 1 - dampening (classic) or 1 - mu (ema).
        weight = hp.complement("dampening" if form == "classic" else "momentum")
        if not dampen_first_step:
            weight = jnp.where(state.count == 0, jnp.ones_like(weight), weight)
        new_m = jax.tree.map(lambda g, m: moment(g, m, mu, weight), updates, state.momentum)
        if nesterov:
            direction = jax.tree.map(lambda g, m: moment(g, m, mu, weight), updates, new_m)
        else:
            direction = new_m
        direction = base.cast_like(direction, updates)
        new_m = base.cast_like(new_m, state.momentum)
        return direction, MomentumState(base.increment(state.count), new_m, hp)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def trace(
    decay: float | validation.Schedule,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    *,
    dampening: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """Classic (heavy-ball) momentum, a drop-in for `optax.trace`: `m = decay * m + g`.

    The decay is kept in the state under the name `momentum`. `dampening` (torch) scales the new
    gradient by `1 - dampening`.
    """
    owner = "jopt.trace"
    decay = validation.check_number_or_schedule(owner, "decay", decay, validation.DECAY)
    return scale_by_momentum(
        decay,
        form="classic",
        dampening=dampening,
        nesterov=nesterov,
        accumulator_dtype=accumulator_dtype,
        owner=owner,
    )


def momentum_lr_inside(
    learning_rate: float | validation.Schedule,
    momentum: float | validation.Schedule = 0.9,
    *,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    weight_decay: float | validation.Schedule | None = None,
    owner: str = "jopt.momentum_lr_inside",
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
      owner: the public name reported in errors.
    """
    values = {
        "learning_rate": validation.check_number_or_schedule(
            owner, "learning_rate", learning_rate, validation.NON_NEGATIVE
        ),
        "momentum": validation.check_number_or_schedule(
            owner, "momentum", momentum, validation.DECAY
        ),
    }
    if weight_decay is not None:
        values["weight_decay"] = validation.check_number_or_schedule(
            owner, "weight_decay", weight_decay, validation.NON_NEGATIVE
        )
    nesterov = validation.check_bool(owner, "nesterov", nesterov)
    accumulator_dtype = validation.check_dtype(owner, "accumulator_dtype", accumulator_dtype)
    spec = Spec(
        owner,
        values,
        {
            "learning_rate": validation.NON_NEGATIVE,
            "momentum": validation.DECAY,
            "weight_decay": validation.NON_NEGATIVE,
        },
    )

    def init_fn(params):
        return MomentumState(
            count=base.zero_count(),
            momentum=base.zeros_like(params, accumulator_dtype),
            hparams=spec.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        base.check_tree(owner, updates, state.momentum, "momentum buffer")
        # It ends its chain, as the learning-rate scaling does: it checks the params the same way.
        base.check_tree(owner, updates, params, "params", dtypes=True)
        hp = spec.resolve(state.hparams, state.count)
        step = -hp["learning_rate"]
        new_v = jax.tree.map(
            lambda g, v: moment(g, v, hp["momentum"], step), updates, state.momentum
        )
        if nesterov:
            out = jax.tree.map(lambda g, v: moment(g, v, hp["momentum"], step), updates, new_v)
        else:
            out = new_v
        if weight_decay is not None:
            if params is None:
                raise ValueError(f"{owner}: weight decay needs the params in update.")
            decay = step * hp["weight_decay"]
            out = jax.tree.map(lambda u, p: u + decay.astype(u.dtype) * p, out, params)
        out = base.cast_like(out, updates)
        new_v = base.cast_like(new_v, state.momentum)
        return out, MomentumState(base.increment(state.count), new_v, hp)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class EmaState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    ema: optax.Updates  # the moving average
    hparams: HParams  # decay


def ema(
    decay: float | validation.Schedule,
    debias: bool = True,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Exponential moving average of updates, a drop-in for `optax.ema`.

    ema = decay * ema + (1 - decay) * g;   output ema / (1 - decay**t) if debias.
    """
    owner = "jopt.ema"
    decay = validation.check_number_or_schedule(owner, "decay", decay, validation.DECAY)
    debias = validation.check_bool(owner, "debias", debias)
    accumulator_dtype = validation.check_dtype(owner, "accumulator_dtype", accumulator_dtype)
    spec = Spec(owner, {"decay": decay}, {"decay": validation.DECAY}, decays=("decay",))

    def init_fn(params):
        return EmaState(base.zero_count(), base.zeros_like(params, accumulator_dtype), spec.init())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        base.check_tree(owner, updates, state.ema, "moving average")
        hp = spec.resolve(state.hparams, state.count)
        new_ema = jax.tree.map(
            lambda g, m: moment(g, m, hp["decay"], hp.complement("decay")), updates, state.ema
        )
        count = base.increment(state.count)
        out = new_ema
        if debias:
            correction = tree_math.bias_correction(hp["decay"], count)
            out = jax.tree.map(lambda m: tree_math.debias(m, correction), new_ema)
        out = base.cast_like(out, updates)
        return out, EmaState(count, base.cast_like(new_ema, state.ema), hp)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
