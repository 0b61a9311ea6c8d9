"""torch.optim's arguments, checked under torch's names before any jopt block sees them.

Every check names the constructor and torch's argument (`jopt.torch.RMSprop: alpha must be in
[0, 1), got 1.0.`) and refuses, beyond torch's own list of bad inputs, nan and inf learning
rates and values that round out of range once stored in the state's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jopt._src import errors, hparams, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.schedules.schedule import Schedule, momentum_of

_CYCLING_HINT = (
    "to cycle the momentum as torch's OneCycleLR and CyclicLR do, pass jopt.torch.OneCycleLR "
    "or jopt.torch.CyclicLR (cycle_momentum=True) as lr"
)


def number(fn: str, name: str, value: Any, allowed: validation.Range) -> float:
    """A number in `allowed` that stays in it once stored in the state's dtype."""
    x = validation.check_number(fn, name, value, allowed)
    hparams.store(fn, name, x, allowed)
    return x


def decay_rate(fn: str, name: str, value: Any) -> float:
    """momentum, alpha, rho, betas[i]: a number in [0, 1) (a schedule gets a hint)."""
    if callable(value):
        raise errors.ArgumentTypeError(
            fn,
            f"{name} must be a number (as in torch), got a schedule; {_CYCLING_HINT}.",
            argument=name,
            value=value,
            allowed=validation.DECAY,
        )
    return number(fn, name, value, validation.DECAY)


def lr(fn: str, lr: Any) -> ScalarOrSchedule:
    """torch's `lr`: a number >= 0 (nan and inf rejected, unlike torch), a 1-element array, or a
    schedule."""
    if not callable(lr) and not isinstance(lr, str) and np.ndim(lr) > 0:
        validation.require(
            fn,
            np.size(lr) == 1,
            f"lr must be a 1-element array, got shape {np.shape(lr)}.",
            argument="lr",
            value=lr,
        )
        lr = np.reshape(lr, ())
    if callable(lr) or isinstance(lr, str):
        return validation.check_number_or_schedule(fn, "lr", lr, validation.NON_NEGATIVE)
    return number(fn, "lr", lr, validation.NON_NEGATIVE)


def betas(fn: str, betas: Any) -> tuple[float, float]:
    """torch's `betas` pair, each in [0, 1) (reported as betas[0], betas[1] as torch does)."""
    try:
        b1, b2 = betas
    except (TypeError, ValueError) as e:
        raise errors.ArgumentError(
            fn,
            f"betas must be a pair (beta1, beta2), got {betas!r}.",
            argument="betas",
            value=betas,
        ) from e
    return decay_rate(fn, "betas[0]", b1), decay_rate(fn, "betas[1]", b2)


def non_negative(fn: str, name: str, value: Any) -> float:
    """weight_decay, eps, lr_decay, momentum_decay, initial_accumulator_value: >= 0."""
    return number(fn, name, value, validation.NON_NEGATIVE)


def flags(fn: str, **flags: Any) -> dict[str, bool]:
    return {name: validation.check_bool(fn, name, value) for name, value in flags.items()}


def cycled_momentum(fn: str, lr: ScalarOrSchedule, has_momentum: bool) -> Schedule | None:
    """The momentum schedule a cycling `lr` (OneCycleLR, CyclicLR) imposes, or None.

    torch's schedulers raise at construction for an optimizer without `momentum` or `betas` in
    its defaults ("optimizer must support momentum or beta1 with `cycle_momentum` option
    enabled"); so do the optimizers here, given such an `lr`.

    Cycled momentum. torch's OneCycleLR and CyclicLR with `cycle_momentum=True` (their default)
    overwrite the optimizer's `momentum` (SGD, RMSprop) or `betas[0]` (Adam, AdamW, Adamax, NAdam,
    RAdam) at construction and at every step, with a schedule that falls while the learning rate
    rises; the value given to the optimizer is checked, then ignored. `jopt.torch.OneCycleLR` and
    `jopt.torch.CyclicLR` carry that schedule as `.momentum`, and an optimizer given such an `lr`
    uses it the same way: `m_t` (or `beta1_t`) is the schedule at the number of steps taken, and
    everything that reads beta1 reads the current value, as torch does, e.g. Adam's bias correction
    `1 - beta1_t ** t` (not a product of past betas) and NAdam's `mu_t = beta1_t (1 - 0.96**(t
    psi) / 2)`. SGD with `momentum=0` then has a momentum buffer (torch's SGD tests `momentum != 0`
    on the overwritten value). Adagrad and Adadelta have neither momentum nor betas: like torch's
    schedulers, they refuse such an `lr` (build it with `cycle_momentum=False`). One difference
    remains, in SGD and RMSprop at steps where the cycled value is exactly 0 (`base_momentum=0`, at
    the peak learning rate): torch steps along the plain (SGD: undampened) gradient and leaves the
    buffer as it was; jopt updates the buffer with a zero momentum, which forgets its past.
    """
    momentum = momentum_of(lr)
    if momentum is None:
        return None
    name = fn.rsplit(".", 1)[-1]
    validation.require(
        fn,
        has_momentum,
        f"lr cycles the momentum (a OneCycleLR or CyclicLR with cycle_momentum=True), but "
        f"{name} has neither momentum nor betas for it to set (torch's schedulers raise here "
        "too); build the schedule with cycle_momentum=False.",
        argument="lr",
        value=lr,
    )
    return momentum
