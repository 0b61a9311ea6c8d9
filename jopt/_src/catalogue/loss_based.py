"""Methods that read the loss: Polyak step sizes, model-based momentum (MoMo) and L-BFGS with a
line search.

Their `update` needs the loss at the params, `update(grads, state, params, value=loss)`, and
L-BFGS's line search the loss function too (`grad=grads, value_fn=loss_fn`): their entries say
so (`reads_value`), and the shared suites and the lab pass them.
"""

from __future__ import annotations

from jopt._src.registry_types import Convergence, Example, Optimizer
from jopt._src.transforms import lbfgs, momo, polyak

_MOMO_PAPER = "Schaipp et al. 2023, MoMo: Momentum Models for Adaptive Learning Rates"

ENTRIES: list[Optimizer] = [
    Optimizer(
        "momo",
        momo.momo,
        momo.MOMO,
        _MOMO_PAPER,
        "contrib.momo",
        {
            "momo": Example({"learning_rate": 1.0}, optax=True),
            # The proximal weight decay and the estimated lower bound (MoMo*), from below.
            "momo_paper": Example(
                {
                    "learning_rate": 0.5,
                    "weight_decay": 0.01,
                    "adapt_lower_bound": True,
                    "lower_bound": -1.0,
                    "form": "paper",
                }
            ),
        },
        {"momo": Convergence({}, 272, 681)},
        reads_params=True,
        reads_value=True,
    ),
    Optimizer(
        "momo_adam",
        momo.momo_adam,
        momo.MOMO_ADAM,
        _MOMO_PAPER,
        "contrib.momo_adam",
        {
            "momo_adam": Example({"learning_rate": 1e-2}, optax=True),
            # The proximal weight decay. float32 stays within 8.5e-6 of the float64 reference
            # (the default: 7.5e-6): h = f_bar - rho f_* - gamma + <d, x> cancels, and Adam's
            # metric amplifies the rounding in the first steps.
            "momo_adam_paper": Example(
                {"learning_rate": 0.05, "weight_decay": 0.01, "form": "paper"}
            ),
        },
        {"momo_adam": Convergence({"learning_rate": 0.1}, 252, 1106)},
        reads_params=True,
        reads_value=True,
    ),
    Optimizer(
        "lbfgs",
        lbfgs.lbfgs,
        lbfgs.LBFGS,
        "Nocedal 1980, Updating Quasi-Newton Matrices with Limited Storage; Liu & Nocedal 1989, "
        "On the Limited Memory BFGS Method for Large Scale Optimization; line search: Nocedal & "
        "Wright 2006, Numerical Optimization, Algorithms 3.5 and 3.6",
        "lbfgs",
        # One example: each of its line searches compiles to a large program. A short memory
        # without the first step's scaling is checked against optax in tests/test_loss_based.py.
        {"lbfgs": Example({"learning_rate": 1.0}, optax=True)},
        {"lbfgs": Convergence({}, 10, 33)},
        reads_params=True,
        reads_value=True,
    ),
    Optimizer(
        "polyak_sgd",
        polyak.polyak_sgd,
        polyak.POLYAK_SGD,
        "Loizou et al. 2021, Stochastic Polyak Step-size for SGD: An Adaptive Learning Rate for "
        "Fast Convergence; Berrada et al. 2020, Training Neural Networks for and by "
        "Interpolation",
        "polyak_sgd",
        {
            # f_min = 0 is below the shared problem's minimum (0.384): steps overshoot it.
            "polyak_sgd": Example({}, optax=True),
            # SPS_max with c = 2, the positive part of the gap and a cap: optax has no such form.
            "polyak_sgd_paper": Example(
                {
                    "scaling": 0.5,
                    "f_min": 0.3,
                    "variant": "sps+",
                    "eps": 1e-3,
                    "max_learning_rate": 0.7,
                    "form": "paper",
                }
            ),
        },
        # f_min = 0 is both problems' minimum: the classic Polyak step.
        {"polyak_sgd": Convergence({}, 125, 767)},
        reads_value=True,
    ),
]
