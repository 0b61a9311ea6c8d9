"""Layer-wise trust ratios: each leaf's step scaled by the ratio of its parameter norm to its update
norm (LARS, LAMB, Fromage)."""

from __future__ import annotations

from jopt._src.catalogue import halving
from jopt._src.registry_types import Convergence, Example, Optimizer
from jopt._src.transforms import fromage, lamb, lars

# A trust ratio makes every step a fixed fraction of the layer's norm, whatever the gradient:
# near the minimum the iterate circles it at that distance, and the circling is chaotic (float32
# and the float64 reference, 1 ulp apart at first, end up 1e-2 apart). The examples' learning
# rates keep the 1000 steps of the shared suites on the way down; the convergence
# configurations halve the learning rate to get within 1e-3, as Lion's.

ENTRIES: list[Optimizer] = [
    Optimizer(
        "lars",
        lars.lars,
        lars.LARS,
        "You, Gitman & Ginsburg 2017, Large Batch Training of Convolutional Networks",
        "lars",
        {
            "lars": Example({"learning_rate": 0.1}, optax=True),
            "lars_nesterov": Example({"learning_rate": 0.1, "nesterov": True}, optax=True),
        },
        {"lars": Convergence({"learning_rate": halving(5.0, 500)}, 390, 441)},
        scale_invariant=True,
        reads_params=True,
    ),
    Optimizer(
        "lamb",
        lamb.lamb,
        lamb.LAMB,
        "You et al. 2020, Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
        "lamb",
        {"lamb": Example({"learning_rate": 0.001}, optax=True)},
        {"lamb": Convergence({"learning_rate": halving(0.04, 450)}, 1038, 2259)},
        scale_invariant=True,
        reads_params=True,
    ),
    Optimizer(
        "fromage",
        fromage.fromage,
        fromage.FROMAGE,
        "Bernstein et al. 2020, On the distance between two neural networks and the stability "
        "of learning",
        "fromage",
        {"fromage": Example({"learning_rate": 0.001}, optax=True)},
        {"fromage": Convergence({"learning_rate": halving(0.1, 500)}, 249, 2126)},
        scale_invariant=True,
        reads_params=True,
    ),
]
