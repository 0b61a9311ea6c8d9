"""torch.optim's ASGD, Rprop and Adafactor as jopt transforms: same names, signatures, defaults
and numbers (the conventions shared with the other twins: `torch_optimizers`).

- ASGD is `jopt.asgd` (Bottou's averaged SGD, torch's formulas) after torch's coupled L2
  `weight_decay`; torch's `lambd` is jopt's `l2`. torch computes the step size of step t at the
  end of step t - 1, from the learning rate then: under an lr_scheduler, the twin reads its
  schedule one step late, as torch does. The average ax is
  `jopt.asgd_eval_params(state, params)`.
- Rprop is `jopt.rprop`'s iRprop- (torch's). torch reads `lr` once, at its first step: the
  initial step size. A schedule's value at step 0 is taken, later ones change nothing, as an
  lr_scheduler changes nothing in torch. torch clamps the step sizes to `step_sizes` at every
  step, jopt when they adapt: the twin clamps the initial step size, after which they agree.
- Adafactor is torch 2.x's own Adafactor (`torch_adafactor`), not Shazeer & Stern's as optax
  and `jopt.adafactor` have it: step size min(lr, 1 / sqrt(t)), second moments of the last two
  axes, eps clamps instead of eps added, weight decay multiplying the params by 1 - lr * wd.

Arguments are checked under torch's names before the jopt blocks see them, more strictly than
torch where it takes nonsense: ASGD's lambd, alpha and t0 must be >= 0 (torch checks none of
them), Rprop's step sizes must be 0 <= min <= max with max > 0 (torch checks neither), and
Adafactor's d must be finite.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import optax

from jopt._src import errors, stateful, validation
from jopt._src.base import ScalarOrSchedule, Transform
from jopt._src.conventions import torch_arguments as checks
from jopt._src.conventions.torch_adafactor import scale_by_torch_adafactor
from jopt._src.conventions.torch_param_groups import groupable
from jopt._src.transforms.asgd import asgd
from jopt._src.transforms.regularization import add_decayed_weights
from jopt._src.transforms.rprop import scale_by_rprop
from jopt._src.validation import NON_NEGATIVE, POSITIVE, Range

_ETA_MINUS = Range(0.0, 1.0, lo_open=True, hi_open=True)
_ETA_PLUS = Range(1.0, lo_open=True)
_D = Range(1.0)


def _one_step_late(lr: ScalarOrSchedule) -> ScalarOrSchedule:
    """A schedule read one step late (its value at step 0 for the first two steps)."""
    if not callable(lr):
        return lr

    def late(count):
        return lr(jnp.maximum(count - 1, 0))

    return late


def _pair(fn: str, name: str, value: Any, first: str, second: str) -> tuple[Any, Any]:
    try:
        a, b = value
    except (TypeError, ValueError) as e:
        raise errors.ArgumentError(
            fn, f"{name} must be a pair ({first}, {second}), got {value!r}.", argument=name,
            value=value,
        ) from e  # fmt: skip
    return a, b


@errors.public("jopt.torch.ASGD")
@groupable()
def ASGD(  # noqa: N802 - torch's name
    lr: ScalarOrSchedule = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.ASGD (Polyak & Juditsky 1992; Bottou 2012), coupled L2 weight decay:

        g = g + weight_decay * theta
        eta = lr / (1 + lambd lr t) ** alpha              (t: steps taken before this one)
        theta = theta (1 - lambd eta) - eta g
        ax = ax + (theta - ax) / max(1, t - t0)           (ax = theta while t <= t0 + 1)

    Evaluate at the average ax, `jopt.asgd_eval_params(state, params)` (torch's
    `optimizer.state[p]["ax"]`). Under a schedule, step t reads the learning rate of step t - 1
    (the first two steps the initial one), as torch does.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    lambd = checks.non_negative(fn, "lambd", lambd)
    alpha = checks.non_negative(fn, "alpha", alpha)
    t0 = checks.non_negative(fn, "t0", t0)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    flags = checks.flags(fn, maximize=maximize)
    checks.cycled_momentum(fn, lr, has_momentum=False)
    return stateful.chain(
        *([optax.scale(-1.0)] if flags["maximize"] else []),
        add_decayed_weights(weight_decay),
        asgd(_one_step_late(lr), l2=lambd, alpha=alpha, t0=t0),
    )


def _initial_step_size(fn: str, lr: ScalarOrSchedule) -> float:
    """torch's Rprop reads lr once, at its first step: a schedule's value at step 0."""
    if not callable(lr):
        return lr
    return validation.check_number(
        fn, "lr", float(np.asarray(lr(jnp.zeros([], jnp.int32)))), NON_NEGATIVE
    )


@errors.public("jopt.torch.Rprop")
@groupable()
def Rprop(  # noqa: N802
    lr: ScalarOrSchedule = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50),
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.Rprop (Riedmiller & Braun 1993), iRprop- (Igel & Hüsken 2000):

        step = clamp(step * (etas[1] if g g_prev > 0 else etas[0] if g g_prev < 0 else 1),
                     *step_sizes)                              (step = lr before the first)
        theta -= step * sign(g), except where g g_prev < 0: no move, and g_prev = 0 there

    `lr` is the initial step size, read once (a schedule: its value at step 0; torch's
    lr_schedulers change nothing either). No weight decay, as torch's Rprop has none.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    checks.cycled_momentum(fn, lr, has_momentum=False)
    minus, plus = _pair(fn, "etas", etas, "etaminus", "etaplus")
    minus = checks.number(fn, "etas[0]", minus, _ETA_MINUS)
    plus = checks.number(fn, "etas[1]", plus, _ETA_PLUS)
    low, high = _pair(fn, "step_sizes", step_sizes, "min", "max")
    low = checks.number(fn, "step_sizes[0]", low, NON_NEGATIVE)
    high = checks.number(fn, "step_sizes[1]", high, POSITIVE)
    validation.require(
        fn,
        low <= high,
        f"step_sizes must be (min, max) with min <= max, got {step_sizes!r}.",
        argument="step_sizes",
        value=step_sizes,
    )
    flags = checks.flags(fn, maximize=maximize)
    initial = min(max(_initial_step_size(fn, lr), low), high)
    return stateful.chain(
        *([optax.scale(-1.0)] if flags["maximize"] else []),
        scale_by_rprop(initial, minus, plus, low, high),
        optax.scale(-1.0),
    )


@errors.public("jopt.torch.Adafactor")
@groupable()
def Adafactor(  # noqa: N802
    lr: ScalarOrSchedule = 1e-2,
    beta2_decay: float = -0.8,
    eps: tuple[float | None, float] = (None, 1e-3),
    d: float = 1.0,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> Transform:
    """torch.optim.Adafactor (torch 2.5+; Shazeer & Stern 2018 in torch's form, see
    `torch_adafactor`):

        b_t = 1 - t ** beta2_decay;   R, C (factored over the last two axes) or V, from g**2
        u = g / sqrt(max(V_hat, eps1**2));   rho = min(lr, 1 / sqrt(t))
        theta = theta (1 - lr weight_decay) - max(eps2, rms(theta)) rho u / max(1, rms(u) / d)

    `eps = (eps1, eps2)`; eps1 None is the machine epsilon of each parameter's dtype.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    checks.cycled_momentum(fn, lr, has_momentum=False)
    beta2_decay = checks.number(fn, "beta2_decay", beta2_decay, Range(hi=0.0))
    eps1, eps2 = _pair(fn, "eps", eps, "eps1", "eps2")
    if eps1 is not None:
        eps1 = checks.non_negative(fn, "eps[0]", eps1)
    eps2 = checks.non_negative(fn, "eps[1]", eps2)
    d = checks.number(fn, "d", d, _D)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    flags = checks.flags(fn, maximize=maximize)
    return stateful.chain(
        *([optax.scale(-1.0)] if flags["maximize"] else []),
        scale_by_torch_adafactor(lr, -beta2_decay, eps1, eps2, d, weight_decay),
    )
