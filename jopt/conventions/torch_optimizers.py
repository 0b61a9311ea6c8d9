"""torch.optim's optimizers as jopt transforms: same names, signatures, defaults and numbers.

Each function takes torch's arguments (minus `params`, plus the torch-only `foreach`-style
switches left out) and returns an ordinary jopt chain, so hyperparameters live in the state and
the result drops into `optax.chain`. The trajectories match torch 2.x step for step (tests/golden
holds fixtures made by the real torch). Conventions followed, each a named jopt option:

- `weight_decay` is coupled L2 (added to the gradient) except in AdamW and with
  `decoupled_weight_decay=True`, where `theta *= 1 - lr * weight_decay` before the step.
- SGD: the learning rate sits outside the momentum buffer, and the first step sets the buffer to
  the undampened gradient (`dampen_first_step=False`).
- RMSprop: eps outside the root, momentum buffer before the learning rate.
- Adam/AdamW: AMSGrad keeps the max of the raw second moment.
- NAdam: Dozat's momentum schedule with `momentum_decay`; RAdam: eps added to sqrt(v) before
  the bias correction.
- Adagrad: accumulator starts at 0, eps=1e-10 outside the root, `lr / (1 + t * lr_decay)`.
- `maximize=True` ascends (the gradient is negated first).

Arguments are validated at construction with torch's names (`lr`, `betas[0]`), ValueError for
every entry of torch's own list of bad inputs, and more strictly: `lr=inf`, and `lr=nan` or a nan
weight decay in SGD (which torch accepts), raise too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import optax

from jopt import validation
from jopt.schedules.compose import multiply_schedules
from jopt.schedules.decay import inverse_time_decay
from jopt.transforms.adadelta import scale_by_adadelta
from jopt.transforms.adagrad import scale_by_rss
from jopt.transforms.adam import scale_by_adam, scale_by_adamax, scale_by_amsgrad
from jopt.transforms.learning_rate import scale_by_learning_rate
from jopt.transforms.momentum import scale_by_momentum
from jopt.transforms.nadam import scale_by_nadam
from jopt.transforms.radam import scale_by_radam
from jopt.transforms.regularization import add_decayed_weights
from jopt.transforms.rms import scale_by_rms

LearningRate = float | validation.Schedule
Transform = optax.GradientTransformationExtraArgs


def _betas(fn: str, betas: Sequence[float]) -> tuple[float, float]:
    """torch's `betas` pair, each in [0, 1) (reported as betas[0], betas[1] as torch does)."""
    try:
        b1, b2 = betas
    except (TypeError, ValueError) as e:
        raise ValueError(f"{fn}: betas must be a pair (beta1, beta2), got {betas!r}.") from e
    for i, beta in enumerate((b1, b2)):
        validation.check_number(fn, f"betas[{i}]", beta, validation.DECAY)
    return b1, b2


def _lr(fn: str, lr: LearningRate) -> LearningRate:
    """torch's `lr`: a number >= 0 (nan rejected, unlike torch), a 1-element array, or a
    schedule."""
    if not callable(lr) and np.ndim(lr) > 0:
        validation.require(
            fn, np.size(lr) == 1, f"lr must be a 1-element array, got shape {np.shape(lr)}."
        )
        lr = np.reshape(lr, ())
    return validation.check_number_or_schedule(fn, "lr", lr, validation.NON_NEGATIVE)


def _chain(
    fn: str,
    scaling: list[Transform],
    lr: LearningRate,
    weight_decay: float,
    *,
    maximize: bool,
    decoupled: bool = False,
) -> Transform:
    """maximize -> [coupled L2] -> scaling -> [decoupled decay] -> -lr."""
    lr = _lr(fn, lr)
    maximize = validation.check_bool(fn, "maximize", maximize)
    weight_decay = validation.check_number(
        fn, "weight_decay", weight_decay, validation.NON_NEGATIVE
    )
    decay = [add_decayed_weights(weight_decay, owner=fn)] if weight_decay != 0 else []
    return optax.chain(
        *([optax.scale(-1.0)] if maximize else []),
        *([] if decoupled else decay),
        *scaling,
        *(decay if decoupled else []),
        scale_by_learning_rate(lr, owner=fn),
    )


def SGD(  # noqa: N802 - torch's name
    lr: LearningRate = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.SGD: `buf = momentum * buf + (1 - dampening) * g` (buf = g at the first step)."""
    fn = "jopt.torch.SGD"
    momentum = validation.check_number(fn, "momentum", momentum, validation.DECAY)
    dampening = validation.check_number(fn, "dampening", dampening, validation.UNIT)
    nesterov = validation.check_bool(fn, "nesterov", nesterov)
    validation.require(
        fn,
        not nesterov or (momentum > 0 and dampening == 0),
        f"nesterov=True needs momentum > 0 and dampening == 0, got momentum={momentum}, "
        f"dampening={dampening}.",
    )
    scaling = []
    if momentum != 0:
        scaling.append(
            scale_by_momentum(
                momentum, dampening=dampening, nesterov=nesterov, dampen_first_step=False, owner=fn
            )
        )
    return _chain(fn, scaling, lr, weight_decay, maximize=maximize)


def RMSprop(  # noqa: N802
    lr: LearningRate = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.RMSprop: `g / (sqrt(v) + eps)`, momentum buffer before the learning rate."""
    fn = "jopt.torch.RMSprop"
    momentum = validation.check_number(fn, "momentum", momentum, validation.DECAY)
    scaling = [scale_by_rms(alpha, eps, 0.0, False, False, centered=centered, owner=fn)]
    if momentum != 0:
        scaling.append(scale_by_momentum(momentum, owner=fn))
    return _chain(fn, scaling, lr, weight_decay, maximize=maximize)


def _adam_block(fn, betas, eps, amsgrad):
    b1, b2 = _betas(fn, betas)
    amsgrad = validation.check_bool(fn, "amsgrad", amsgrad)
    if amsgrad:
        return scale_by_amsgrad(b1, b2, eps, max_of="raw", owner=fn)
    return scale_by_adam(b1, b2, eps, owner=fn)


def Adam(  # noqa: N802
    lr: LearningRate = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> Transform:
    """torch.optim.Adam (coupled L2 weight decay unless decoupled_weight_decay)."""
    fn = "jopt.torch.Adam"
    decoupled = validation.check_bool(fn, "decoupled_weight_decay", decoupled_weight_decay)
    block = _adam_block(fn, betas, eps, amsgrad)
    return _chain(fn, [block], lr, weight_decay, maximize=maximize, decoupled=decoupled)


def AdamW(  # noqa: N802
    lr: LearningRate = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.AdamW: `theta *= 1 - lr * weight_decay`, then the Adam step."""
    fn = "jopt.torch.AdamW"
    block = _adam_block(fn, betas, eps, amsgrad)
    return _chain(fn, [block], lr, weight_decay, maximize=maximize, decoupled=True)


def Adamax(  # noqa: N802
    lr: LearningRate = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.Adamax: `u = max(b2 u, |g| + eps)`."""
    fn = "jopt.torch.Adamax"
    b1, b2 = _betas(fn, betas)
    return _chain(fn, [scale_by_adamax(b1, b2, eps, owner=fn)], lr, weight_decay, maximize=maximize)


def NAdam(  # noqa: N802
    lr: LearningRate = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.NAdam: Dozat's momentum schedule `mu_t = b1 (1 - 0.96**(t psi) / 2)`."""
    fn = "jopt.torch.NAdam"
    b1, b2 = _betas(fn, betas)
    decoupled = validation.check_bool(fn, "decoupled_weight_decay", decoupled_weight_decay)
    block = scale_by_nadam(b1, b2, eps, momentum_decay, owner=fn)
    return _chain(fn, [block], lr, weight_decay, maximize=maximize, decoupled=decoupled)


def RAdam(  # noqa: N802
    lr: LearningRate = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.RAdam: rectification above rho_t = 5, eps added to sqrt(v)."""
    fn = "jopt.torch.RAdam"
    b1, b2 = _betas(fn, betas)
    decoupled = validation.check_bool(fn, "decoupled_weight_decay", decoupled_weight_decay)
    block = scale_by_radam(b1, b2, eps, 0.0, 5.0, eps_hat=True, owner=fn)
    return _chain(fn, [block], lr, weight_decay, maximize=maximize, decoupled=decoupled)


def Adagrad(  # noqa: N802
    lr: LearningRate = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.Adagrad: `lr / (1 + t * lr_decay) * g / (sqrt(acc) + eps)`, acc from 0."""
    fn = "jopt.torch.Adagrad"
    lr = _lr(fn, lr)
    lr_decay = validation.check_number(fn, "lr_decay", lr_decay, validation.NON_NEGATIVE)
    if lr_decay != 0:
        decay = inverse_time_decay(1.0, 1, lr_decay)
        lr = multiply_schedules(lr, decay) if callable(lr) else inverse_time_decay(lr, 1, lr_decay)
    block = scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=False, owner=fn)
    return _chain(fn, [block], lr, weight_decay, maximize=maximize)


def Adadelta(  # noqa: N802
    lr: LearningRate = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.Adadelta (Zeiler 2012) with coupled weight decay."""
    fn = "jopt.torch.Adadelta"
    return _chain(fn, [scale_by_adadelta(rho, eps, owner=fn)], lr, weight_decay, maximize=maximize)
