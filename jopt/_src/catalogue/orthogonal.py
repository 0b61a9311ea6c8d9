"""Orthogonalized and noisy updates: Muon's Newton-Schulz orthogonalized momentum for matrices, and
SGD with annealed Gaussian noise."""

from __future__ import annotations

from jopt._src.registry_types import Convergence, Example, Optimizer
from jopt._src.transforms import muon, noisy_sgd

# Muon steps every matrix by lr * s in spectral norm, whatever the gradient's size: within ~lr
# of a minimum the normalized momentum turns with every rounding, and two correct
# implementations part (1e-16 grows to 1e-2 within 1000 steps at lr = 0.003 on the shared
# problem). At 0.002 its (2, 4) leaf stays away from there for 1000 steps (a perturbation of
# the start is not amplified), so the examples are comparable to the reference at 1e-12.
_MUON_LR = {"learning_rate": 0.002}
# JAX draws a float32 normal from 32 random bits and a float64 one from 64: a float32 run of
# noisy SGD gets other noise than a float64 run with the same key, so the shared float32
# trajectory follows the float64 reference only to within the noise. At eta = 1e-10 that is
# 1e-6 (within the float32 tolerance, 1e-5), while the noise still moves every float64 step by
# ~1e-7, a million times the float64 tolerance: the float64 comparison checks the noise, its
# key handling and its variance. tests/test_orthogonal.py checks the default eta in both dtypes
# against the reference drawing the matching noise.
_NOISE = {"learning_rate": 0.01, "eta": 1e-10}

ENTRIES: list[Optimizer] = [
    Optimizer(
        "muon",
        muon.muon,
        muon.MUON,
        "Jordan et al. 2024, Muon: An optimizer for hidden layers in neural networks; the "
        "adjusted rate: Liu et al. 2025, Muon is Scalable for LLM Training",
        "contrib.muon",
        {
            # With weight_decay = 0, optax leaves its decay out and XLA folds its constant
            # scale s into the learning rate, t * (-lr * s), where jopt computes -lr * (s * t):
            # an ulp apart per step. With a decay both compute -lr * (s * t + wd * theta).
            "muon": Example(_MUON_LR),
            "muon_weight_decay": Example(
                {**_MUON_LR, "weight_decay": 0.1, "adam_weight_decay": 0.1, "consistent_rms": 0.2},
                optax=True,
            ),
        },
        # The convergence problems are vectors: this measures Muon's Adam (NAdamW) part. Its
        # Newton-Schulz part converges on a matrix problem in tests/test_orthogonal.py.
        {"muon": Convergence({"learning_rate": 0.05}, 280, 1504)},
        scale_invariant=True,
        reads_params=True,
    ),
    Optimizer(
        "noisy_sgd",
        noisy_sgd.noisy_sgd,
        noisy_sgd.NOISY_SGD,
        "Neelakantan et al. 2015, Adding Gradient Noise Improves Learning for Very Deep Networks",
        "noisy_sgd",
        {
            "noisy_sgd": Example(_NOISE, optax=True),
            "noisy_sgd_key": Example({**_NOISE, "gamma": 1.0, "key": 7}, optax=True),
        },
        {"noisy_sgd": Convergence({"learning_rate": 0.0015}, 4824, 11168)},
    ),
]
