"""torch.optim's optimizers as jopt transforms: same names, signatures, defaults and numbers.

Each function takes torch's arguments (minus `params`, plus the torch-only `foreach`-style
switches left out) and returns an ordinary jopt chain, so hyperparameters live in the state and
the result drops into `optax.chain`. The trajectories match torch 2.x step for step (tests/golden
holds fixtures made by the real torch). Conventions followed, each a named jopt option:

- `weight_decay` is coupled L2 (added to the gradient) except in AdamW and with
  `decoupled_weight_decay=True`, where `theta *= 1 - lr * weight_decay` before the step. As
  torch's `param_group["weight_decay"]`, it is always in the state (0.0 by default), so
  `jopt.set_hparams(state, weight_decay=...)` can change it later.
- SGD: the learning rate sits outside the momentum buffer, and the first step sets the buffer to
  the undampened gradient (`dampen_first_step=False`).
- RMSprop: eps outside the root, momentum buffer before the learning rate.
- Adam/AdamW: AMSGrad keeps the max of the raw second moment. (The Adam family is in
  `torch_adam_optimizers`.)
- NAdam: Dozat's momentum schedule with `momentum_decay`; RAdam: eps added to sqrt(v) before
  the bias correction.
- Adagrad: accumulator starts at 0, eps=1e-10 outside the root, `lr / (1 + t * lr_decay)`.
- `maximize=True` ascends (the gradient is negated first).
- `param_groups=[{"params": "head/**", "lr": 1e-2}, ...]`: torch's parameter groups, path rules in
  place of tensors (`torch_param_groups`).

Cycled momentum: an `lr` from `jopt.torch.OneCycleLR` or `CyclicLR` with `cycle_momentum=True`
sets the momentum or beta1 at every step, as torch's do (`torch_arguments.cycled_momentum`).

Arguments are validated at construction, each under torch's name (`lr`, `betas[0]`, `alpha`)
and the constructor's (`jopt.torch.RMSprop: alpha must be in [0, 1), got 1.0.`), before any
building block sees it: ValueError for every entry of torch's own list of bad inputs, and more
strictly: `lr=inf`, `lr=nan` and a nan weight decay in SGD (which torch accepts); momentum,
alpha and rho in [0, 1) (torch: momentum and alpha >= 0, rho <= 1); dampening in [0, 1] (torch
does not check it); and hyperparameters that round out of range when stored in the state's
dtype (betas[0] = 0.99999999 becomes 1.0 in float32).
"""

from __future__ import annotations

import optax

from jopt._src import errors, fused, fused_rules, stateful, validation
from jopt._src.base import ScalarOrSchedule, Transform
from jopt._src.conventions import torch_arguments as checks
from jopt._src.conventions.torch_param_groups import groupable
from jopt._src.schedules.compose import multiply_schedules
from jopt._src.schedules.decay import inverse_time_decay
from jopt._src.transforms.adadelta import scale_by_adadelta
from jopt._src.transforms.adagrad import scale_by_rss
from jopt._src.transforms.learning_rate import scale_by_learning_rate
from jopt._src.transforms.momentum import scale_by_momentum
from jopt._src.transforms.regularization import add_decayed_weights
from jopt._src.transforms.rms import scale_by_rms

# -- the chain ---------------------------------------------------------------------------------


def _chain(
    fn: str,
    scaling: list[Transform],
    lr: ScalarOrSchedule,
    weight_decay: float,
    *,
    maximize: bool,
    decoupled: bool = False,
    fused_rule: fused.FusedRule | None = None,
) -> Transform:
    """maximize -> [coupled L2] -> scaling -> [decoupled decay] -> -lr (arguments checked), with
    `fused_rule` declared as its fused step (`jopt.train_step`) unless it maximizes.

    The weight-decay block is kept at 0.0, where it adds `0 * theta` (exactly nothing for
    finite parameters), so that the state holds `weight_decay` as torch's param group does.
    """
    decay = [add_decayed_weights(weight_decay)]
    tx = stateful.chain(
        *([optax.scale(-1.0)] if maximize else []),
        *([] if decoupled else decay),
        *scaling,
        *(decay if decoupled else []),
        scale_by_learning_rate(lr, keep_count=not scaling),
    )
    return fused.declare(tx, None if maximize else fused_rule)


# -- the optimizers ----------------------------------------------------------------------------


@errors.public("jopt.torch.SGD")
@groupable()
def SGD(  # noqa: N802 - torch's name
    lr: ScalarOrSchedule = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.SGD (Sutskever et al. 2013 for Nesterov), with coupled L2 weight decay:

        g = g + weight_decay * theta
        buf = momentum * buf + (1 - dampening) * g          (buf = g at the first step)
        theta = theta - lr * buf                            (nesterov: lr * (g + momentum * buf))

    With momentum 0 there is no buffer: `theta -= lr * g`. Under an `lr` that cycles momentum
    (jopt.torch.OneCycleLR, CyclicLR), `momentum` is that schedule whatever value is given here
    (0 included), as torch's schedulers overwrite it; `nesterov=True` still needs momentum > 0
    here, as torch checks it when the optimizer is built.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    momentum = checks.decay_rate(fn, "momentum", momentum)
    dampening = checks.number(fn, "dampening", dampening, validation.UNIT)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    flags = checks.flags(fn, nesterov=nesterov, maximize=maximize)
    validation.require(
        fn,
        not flags["nesterov"] or (momentum > 0 and dampening == 0),
        f"nesterov=True needs momentum > 0 and dampening == 0, got momentum={momentum}, "
        f"dampening={dampening}.",
        argument="nesterov",
        value=flags["nesterov"],
    )
    cycled = checks.cycled_momentum(fn, lr, has_momentum=True)
    scaling = []
    if cycled is not None or momentum != 0:
        block = scale_by_momentum(
            momentum if cycled is None else cycled,
            dampening=dampening,
            nesterov=flags["nesterov"],
            dampen_first_step=False,
        )
        scaling.append(block)
    # torch's first buffer is g, undampened: the kernel's (1 - dampening) g only with dampening 0.
    fusible = scaling and dampening == 0
    rule = fused_rules.momentum(True, flags["nesterov"], "classic") if fusible else None
    return _chain(fn, scaling, lr, weight_decay, maximize=flags["maximize"], fused_rule=rule)


@errors.public("jopt.torch.RMSprop")
@groupable()
def RMSprop(  # noqa: N802
    lr: ScalarOrSchedule = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.RMSprop (Tieleman & Hinton 2012; centered: Graves 2013):

        g = g + weight_decay * theta;   v = alpha * v + (1 - alpha) * g**2   (v from 0)
        s = g / (sqrt(v - mean_g**2 if centered else v) + eps)               (eps outside)
        buf = momentum * buf + s;   theta = theta - lr * buf                 (momentum > 0)
        theta = theta - lr * s                                               (momentum = 0)

    Under an `lr` that cycles momentum, `momentum` is that schedule (the given value, 0
    included, is checked and ignored), as torch's schedulers overwrite it.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    alpha = checks.decay_rate(fn, "alpha", alpha)
    eps = checks.non_negative(fn, "eps", eps)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    momentum = checks.decay_rate(fn, "momentum", momentum)
    flags = checks.flags(fn, centered=centered, maximize=maximize)
    cycled = checks.cycled_momentum(fn, lr, has_momentum=True)
    scaling = [scale_by_rms(alpha, eps, 0.0, False, False, centered=flags["centered"])]
    if cycled is not None or momentum != 0:
        scaling.append(scale_by_momentum(momentum if cycled is None else cycled, keep_count=False))
    # The kernel's momentum keeps the learning rate inside the buffer; torch's does not.
    fusible = len(scaling) == 1
    rule = fused_rules.rmsprop(True, False, flags["centered"], False, False) if fusible else None
    return _chain(fn, scaling, lr, weight_decay, maximize=flags["maximize"], fused_rule=rule)


@errors.public("jopt.torch.Adagrad")
@groupable(constructor_only=("initial_accumulator_value",))
def Adagrad(  # noqa: N802
    lr: ScalarOrSchedule = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.Adagrad (Duchi et al. 2011), coupled L2 weight decay:

        acc = acc + g**2   (acc from initial_accumulator_value)
        theta -= lr / (1 + t * lr_decay) * g / (sqrt(acc) + eps)     (t = steps taken before)

    It has neither momentum nor betas: an `lr` that cycles momentum raises, as in torch.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    lr_decay = checks.non_negative(fn, "lr_decay", lr_decay)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    initial = checks.non_negative(fn, "initial_accumulator_value", initial_accumulator_value)
    eps = checks.non_negative(fn, "eps", eps)
    flags = checks.flags(fn, maximize=maximize)
    checks.cycled_momentum(fn, lr, has_momentum=False)
    if lr_decay != 0:
        decay = inverse_time_decay(1.0, 1, lr_decay)
        lr = multiply_schedules(lr, decay) if callable(lr) else inverse_time_decay(lr, 1, lr_decay)
    block = scale_by_rss(initial, eps, eps_in_sqrt=False)
    return _chain(fn, [block], lr, weight_decay, maximize=flags["maximize"])


@errors.public("jopt.torch.Adadelta")
@groupable()
def Adadelta(  # noqa: N802
    lr: ScalarOrSchedule = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.Adadelta (Zeiler 2012), coupled L2 weight decay:

        E_g = rho E_g + (1 - rho) g**2;   dx = sqrt(E_dx + eps) / sqrt(E_g + eps) * g
        E_dx = rho E_dx + (1 - rho) dx**2;   theta -= lr * dx

    It has neither momentum nor betas: an `lr` that cycles momentum raises, as in torch.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    rho = checks.decay_rate(fn, "rho", rho)
    eps = checks.non_negative(fn, "eps", eps)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    flags = checks.flags(fn, maximize=maximize)
    checks.cycled_momentum(fn, lr, has_momentum=False)
    block = scale_by_adadelta(rho, eps)
    return _chain(fn, [block], lr, weight_decay, maximize=flags["maximize"])
