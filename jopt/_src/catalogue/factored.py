"""Memory-light second moments: factored or cover-based accumulators in place of one per parameter
(Adafactor, SM3)."""

from __future__ import annotations

from jopt._src.catalogue import halving
from jopt._src.registry_types import Convergence, Example, Optimizer
from jopt._src.transforms import adafactor, sm3

# Adafactor's steps are normalized (|U| ~ 1 per leaf) and scaled by rms(theta): once a coordinate
# of the shared problem reaches its minimum it oscillates, and the trajectory turns chaotic (a
# difference of 1e-16 grows threefold a step, from step ~150 at learning_rate 0.01). At 0.001
# (and with momentum, at 0.005) 1000 steps stay clear of that, where float64 agrees with the
# reference to 1e-15. The second example factors the (2, 4) leaf (min_dim_size_to_factor=2) and
# keeps its momentum in float64 for float64 params (optax's default buffer is float32).
_ADAFACTOR_FACTORED = {
    "learning_rate": 0.005,
    "min_dim_size_to_factor": 2,
    "momentum": 0.9,
    "dtype_momentum": None,
}

ENTRIES: list[Optimizer] = [
    Optimizer(
        "adafactor",
        adafactor.adafactor,
        adafactor.ADAFACTOR,
        "Shazeer & Stern 2018, Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
        "adafactor",
        {
            "adafactor": Example({"learning_rate": 0.001}, optax=True),
            "adafactor_factored_momentum": Example(_ADAFACTOR_FACTORED, optax=True),
        },
        # Without momentum, Adafactor (RMSProp with a decay rate tending to 1) creeps along
        # Rosenbrock's valley: ~7,000 steps at the best halving schedule; with it, 1,220.
        {
            "adafactor": Convergence(
                {"learning_rate": halving(0.05, 1000), "momentum": 0.9}, 272, 1220
            )
        },
        scale_invariant=True,
        reads_params=True,
    ),
    Optimizer(
        "sm3",
        sm3.sm3,
        sm3.SM3,
        "Anil et al. 2019, Memory-Efficient Adaptive Optimization",
        "sm3",
        {"sm3": Example({"learning_rate": 0.1}, optax=True)},
        # Adagrad's sums: the steps shrink as 1 / sqrt(t) by themselves, no schedule needed.
        {"sm3": Convergence({"learning_rate": 3.0}, 150, 2023)},
        scale_invariant=True,
    ),
]
