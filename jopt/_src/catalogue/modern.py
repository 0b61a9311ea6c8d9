"""Recent Adam variants from the literature (ADOPT, AdEMAMix) and optimistic methods for games."""

from __future__ import annotations

from jopt._src.catalogue import LR, halving
from jopt._src.registry_types import Convergence, Example, Optimizer
from jopt._src.transforms import ademamix, adopt, optimistic

ENTRIES: list[Optimizer] = [
    Optimizer(
        "adopt",
        adopt.adopt,
        adopt.ADOPT,
        "Taniguchi et al. 2024, ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal "
        "Rate",
        "contrib.adopt",
        {"adopt": Example(LR, optax=True)},
        {"adopt": Convergence({"learning_rate": 1.0}, 151, 1848)},
        scale_invariant=True,
    ),
    Optimizer(
        "ademamix",
        ademamix.ademamix,
        ademamix.ADEMAMIX,
        "Pagliardini et al. 2024, The AdEMAMix Optimizer: Better, Faster, Older",
        "contrib.ademamix",
        {"ademamix": Example(LR, optax=True)},
        # b3 = 0.999, the paper's advice for short runs (its Appendix C.1.5): with 0.9999 the
        # slow EMA keeps pushing past the minimum for ~10^4 steps.
        {"ademamix": Convergence({"learning_rate": 0.01, "b3": 0.999}, 1620, 2597)},
        scale_invariant=True,
    ),
    Optimizer(
        "optimistic_gradient_descent",
        optimistic.optimistic_gradient_descent,
        optimistic.OPTIMISTIC_GRADIENT_DESCENT,
        "Mokhtari et al. 2020, A Unified Analysis of Extra-gradient and Optimistic Gradient "
        "Methods for Saddle Point Problems: Proximal Point Approach; Daskalakis et al. 2018, "
        "Training GANs with Optimism",
        "optimistic_gradient_descent",
        {"optimistic_gradient_descent": Example(LR, optax=True)},
        # Gradient descent's speed on Rosenbrock (condition ~2500), below its stability limit
        # lr < 2 / (3 * 1002) for alpha = beta = 1: no schedule makes it faster.
        {"optimistic_gradient_descent": Convergence({"learning_rate": 0.0006}, 11682, 28481)},
    ),
    Optimizer(
        "optimistic_adam",
        optimistic.optimistic_adam,
        optimistic.OPTIMISTIC_ADAM,
        "Daskalakis et al. 2018, Training GANs with Optimism",
        "optimistic_adam",
        # lr = 0.01 reaches the minimum by step 200, where Adam's v decays until the step blows
        # up and settles again (steps 830-1000): that burst amplifies rounding (the float64
        # reference and jopt part by 1e-2), so the example takes a smaller rate.
        {"optimistic_adam": Example({"learning_rate": 0.001}, optax=True)},
        {"optimistic_adam": Convergence({"learning_rate": halving(0.03, 1500)}, 546, 3547)},
        scale_invariant=True,
    ),
]
