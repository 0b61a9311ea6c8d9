"""Averaged and online methods: averaged SGD (Polyak-Ruppert averaging, torch's ASGD) and FTRL-
Proximal (Keras' Ftrl)."""

from __future__ import annotations

from jopt._src.registry_types import Convergence, Example, Optimizer
from jopt._src.transforms import asgd, ftrl

ENTRIES: list[Optimizer] = [
    Optimizer(
        "asgd",
        asgd.asgd,
        asgd.ASGD,
        "Polyak & Juditsky 1992, Acceleration of Stochastic Approximation by Averaging; step "
        "sizes and averaging start: Bottou 2012, Stochastic Gradient Descent Tricks",
        None,
        {
            "asgd": Example({"learning_rate": 0.05}),
            # A strong decay term (it moves the minimum and slows the steps), another power,
            # and an average that starts within the 1000 steps.
            "asgd_decaying": Example({"learning_rate": 0.1, "l2": 0.05, "alpha": 0.6, "t0": 20}),
        },
        # At the defaults: l2 = 1e-4 moves the minimum by less than the tolerance, and barely
        # slows the steps within the budget; SGD's learning rate (its trajectory is SGD's).
        {"asgd": Convergence({"learning_rate": 0.0015}, 4710, 12062)},
        reads_params=True,
        eval_params=asgd.asgd_eval_params,
    ),
    Optimizer(
        "ftrl",
        ftrl.ftrl,
        ftrl.FTRL,
        "McMahan et al. 2013, Ad Click Prediction: a View from the Trenches (FTRL-Proximal)",
        None,
        {
            "ftrl": Example({"learning_rate": 0.5}),
            # The paper's regularizers and beta, and TensorFlow's extensions.
            "ftrl_regularized": Example(
                {
                    "learning_rate": 0.5,
                    "learning_rate_power": -0.7,
                    "initial_accumulator_value": 0.5,
                    "l1": 0.01,
                    "l2": 0.1,
                    "l2_shrinkage": 0.05,
                    "beta": 0.5,
                }
            ),
        },
        {"ftrl": Convergence({"learning_rate": 0.5}, 207, 8905)},
        reads_params=True,
    ),
]
