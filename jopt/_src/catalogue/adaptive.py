"""Adam's relatives: per-coordinate step sizes from running moments (AdaBelief, Yogi, AdamaxW,
NovoGrad, Adan)."""

from __future__ import annotations

from jopt._src.catalogue import LR
from jopt._src.registry_types import Convergence, Example, Optimizer
from jopt._src.transforms import adabelief

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
]
