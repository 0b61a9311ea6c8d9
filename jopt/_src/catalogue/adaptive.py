"""Adam's relatives: per-coordinate step sizes from running moments (AdaBelief, Yogi, AdamaxW,
NovoGrad, Adan)."""

from __future__ import annotations

from jopt._src.catalogue import LR, halving
from jopt._src.registry_types import Convergence, Example, Optimizer
from jopt._src.transforms import adabelief, adamax, adan, novograd, yogi

ENTRIES: list[Optimizer] = [
    Optimizer(
        "adabelief",
        adabelief.adabelief,
        adabelief.ADABELIEF,
        "Zhuang et al. 2020, AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed "
        "Gradients",
        "adabelief",
        {
            "adabelief": Example(LR, optax=True),
            "adabelief_nesterov_eps": Example(
                {**LR, "eps": 1e-8, "eps_root": 1e-12, "nesterov": True}, optax=True
            ),
        },
        {"adabelief": Convergence({"learning_rate": 0.05}, 243, 1715)},
        scale_invariant=True,
    ),
    Optimizer(
        "yogi",
        yogi.yogi,
        yogi.YOGI,
        "Zaheer et al. 2018, Adaptive Methods for Nonconvex Optimization",
        "yogi",
        {"yogi": Example(LR, optax=True)},
        {"yogi": Convergence({"learning_rate": 0.05}, 321, 2774)},
        scale_invariant=True,
    ),
    Optimizer(
        "adamaxw",
        adamax.adamaxw,
        adamax.ADAMAXW,
        "Kingma & Ba 2015, sec. 7.1; Loshchilov & Hutter 2019",
        "adamaxw",
        {"adamaxw": Example({"learning_rate": 0.01, "weight_decay": 0.01}, optax=True)},
        # Without decay: decay moves the minimum away from the problem's.
        {"adamaxw": Convergence({"learning_rate": 0.1, "weight_decay": 0.0}, 631, 3025)},
        scale_invariant=True,
    ),
    Optimizer(
        "novograd",
        novograd.novograd,
        novograd.NOVOGRAD,
        "Ginsburg et al. 2019, Stochastic Gradient Methods with Layer-wise Adaptive Moments for "
        "Training of Deep Networks",
        "novograd",
        # b2 = 0.98: with optax's 0.25 the second moment follows each step's norm, the step stays
        # about lr / (1 - b1) long, and the iterate circles the minimum chaotically (float32
        # rounding grows to 1e-2 there); with 0.98 the steps shrink as the gradients do.
        {
            "novograd": Example(
                {"learning_rate": 0.001, "b2": 0.98, "weight_decay": 0.01}, optax=True
            )
        },
        {"novograd": Convergence({"learning_rate": halving(0.01, 500)}, 1126, 1418)},
        scale_invariant=True,
    ),
    Optimizer(
        "adan",
        adan.adan,
        adan.ADAN,
        "Xie et al. 2022, Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep "
        "Models",
        "adan",
        {"adan": Example({"learning_rate": 0.01, "weight_decay": 0.01}, optax=True)},
        {"adan": Convergence({"learning_rate": 0.05}, 708, 519)},
        scale_invariant=True,
    ),
]
