"""torch.optim's Adam family as jopt transforms: Adam, AdamW, Adamax, NAdam and RAdam, built on
the chain and the conventions of `torch_optimizers` (its docstring lists them)."""

from __future__ import annotations

from jopt._src import errors, fused_rules
from jopt._src.base import ScalarOrSchedule, Transform
from jopt._src.conventions import torch_arguments as checks
from jopt._src.conventions.torch_optimizers import _chain
from jopt._src.conventions.torch_param_groups import groupable
from jopt._src.fused import FusedRule
from jopt._src.transforms.adam import scale_by_adam
from jopt._src.transforms.adamax import scale_by_adamax
from jopt._src.transforms.amsgrad import scale_by_amsgrad
from jopt._src.transforms.nadam import scale_by_nadam
from jopt._src.transforms.radam import scale_by_radam


def _beta1(fn: str, lr: ScalarOrSchedule, b1: float) -> ScalarOrSchedule:
    """betas[0], or the schedule a cycling `lr` puts in its place."""
    cycled = checks.cycled_momentum(fn, lr, has_momentum=True)
    return b1 if cycled is None else cycled


def _adam_block(fn, b1, b2, eps, amsgrad):
    """Adam's moments; with amsgrad, the max of the raw second moment (torch's)."""
    if amsgrad:
        return scale_by_amsgrad(b1, b2, eps, max_of="raw")
    return scale_by_adam(b1, b2, eps)


def _adam_rule(amsgrad: bool, decoupled: bool) -> FusedRule:
    """The fused step of `_chain` over `_adam_block`: its weight decay coupled or decoupled."""
    max_of = "raw" if amsgrad else None
    return fused_rules.adam(decoupled, amsgrad=max_of, coupled=not decoupled)


@errors.public("jopt.torch.Adam")
@groupable()
def Adam(  # noqa: N802
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> Transform:
    """torch.optim.Adam (Kingma & Ba 2015), coupled L2 weight decay unless decoupled:

        g = g + weight_decay * theta        (decoupled: theta *= 1 - lr * weight_decay)
        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g**2
        v_max = max(v_max, v)                                    (amsgrad: over the raw v)
        theta = theta - lr / (1 - b1**t) * m / (sqrt(v [or v_max] / (1 - b2**t)) + eps)

    Under an `lr` that cycles momentum (jopt.torch.OneCycleLR, CyclicLR), b1 is that schedule,
    as torch's schedulers overwrite betas[0]; the bias correction reads the current value,
    `1 - b1_t ** t`, as torch's does.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    b1, b2 = checks.betas(fn, betas)
    eps = checks.non_negative(fn, "eps", eps)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    flags = checks.flags(
        fn, amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=decoupled_weight_decay
    )
    block = _adam_block(fn, _beta1(fn, lr, b1), b2, eps, flags["amsgrad"])
    decoupled = flags["decoupled_weight_decay"]
    rule = _adam_rule(flags["amsgrad"], decoupled)
    return _chain(
        fn,
        [block],
        lr,
        weight_decay,
        maximize=flags["maximize"],
        decoupled=decoupled,
        fused_rule=rule,
    )


@errors.public("jopt.torch.AdamW")
@groupable()
def AdamW(  # noqa: N802
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.AdamW (Loshchilov & Hutter 2019): `theta *= 1 - lr * weight_decay`, then
    Adam's step (see `Adam`).

    Under an `lr` that cycles momentum (jopt.torch.OneCycleLR, CyclicLR), b1 is that schedule,
    as torch's schedulers overwrite betas[0]; the bias correction reads the current value.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    b1, b2 = checks.betas(fn, betas)
    eps = checks.non_negative(fn, "eps", eps)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    flags = checks.flags(fn, amsgrad=amsgrad, maximize=maximize)
    block = _adam_block(fn, _beta1(fn, lr, b1), b2, eps, flags["amsgrad"])
    rule = _adam_rule(flags["amsgrad"], decoupled=True)
    return _chain(
        fn, [block], lr, weight_decay, maximize=flags["maximize"], decoupled=True, fused_rule=rule
    )


@errors.public("jopt.torch.Adamax")
@groupable()
def Adamax(  # noqa: N802
    lr: ScalarOrSchedule = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.Adamax (Kingma & Ba 2015, sec. 7.1), coupled L2 weight decay:

        m = b1 m + (1 - b1) g;   u = max(b2 u, |g| + eps);   theta -= lr / (1 - b1**t) * m / u

    Under an `lr` that cycles momentum, b1 is that schedule (torch overwrites betas[0]).
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    b1, b2 = checks.betas(fn, betas)
    eps = checks.non_negative(fn, "eps", eps)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    flags = checks.flags(fn, maximize=maximize)
    block = scale_by_adamax(_beta1(fn, lr, b1), b2, eps)
    return _chain(fn, [block], lr, weight_decay, maximize=flags["maximize"])


@errors.public("jopt.torch.NAdam")
@groupable()
def NAdam(  # noqa: N802
    lr: ScalarOrSchedule = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.NAdam (Dozat 2016) with its momentum schedule:

        mu_t = b1 (1 - 0.96**(t momentum_decay) / 2),   P_t = mu_1 ... mu_t
        theta -= lr [(1 - mu_t) / (1 - P_t) g + mu_{t+1} / (1 - P_t mu_{t+1}) m] / denom

    with `denom = sqrt(v / (1 - b2**t)) + eps`. Under an `lr` that cycles momentum, b1 is that
    schedule (torch overwrites betas[0]): mu_t and mu_{t+1} use the current b1, and P_t
    multiplies the mu_t of every step taken.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    b1, b2 = checks.betas(fn, betas)
    eps = checks.non_negative(fn, "eps", eps)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    momentum_decay = checks.non_negative(fn, "momentum_decay", momentum_decay)
    flags = checks.flags(fn, decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    block = scale_by_nadam(_beta1(fn, lr, b1), b2, eps, momentum_decay)
    decoupled = flags["decoupled_weight_decay"]
    return _chain(fn, [block], lr, weight_decay, maximize=flags["maximize"], decoupled=decoupled)


@errors.public("jopt.torch.RAdam")
@groupable()
def RAdam(  # noqa: N802
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.RAdam (Liu et al. 2020): Adam's step times the rectification r_t once
    rho_t > 5, else `m / (1 - b1**t)`; eps is added to sqrt(v) before the bias correction.

    Under an `lr` that cycles momentum, b1 is that schedule (torch overwrites betas[0]); the
    bias correction reads the current value, `1 - b1_t ** t`.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    b1, b2 = checks.betas(fn, betas)
    eps = checks.non_negative(fn, "eps", eps)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    flags = checks.flags(fn, decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    block = scale_by_radam(_beta1(fn, lr, b1), b2, eps, 0.0, 5.0, eps_hat=True)
    decoupled = flags["decoupled_weight_decay"]
    return _chain(fn, [block], lr, weight_decay, maximize=flags["maximize"], decoupled=decoupled)
