"""Keras 3's optimizers and learning-rate schedules as jopt transforms (`jopt.keras`).

Same names, arguments, defaults and numbers as keras.optimizers and keras.optimizers.schedules;
Keras itself is not needed. See `jopt._src.conventions.keras_optimizers` for the conventions
followed.
"""

from jopt._src.conventions.keras_extra_optimizers import (
    Adafactor,
    Ftrl,
    Lamb,
    ScheduleFreeAdamW,
)
from jopt._src.conventions.keras_muon import Muon
from jopt._src.conventions.keras_optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    Nadam,
    RMSprop,
)
from jopt._src.conventions.keras_schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    PiecewiseConstantDecay,
    PolynomialDecay,
)

__all__ = [
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "Ftrl",
    "InverseTimeDecay",
    "Lamb",
    "Lion",
    "Muon",
    "Nadam",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "RMSprop",
    "ScheduleFreeAdamW",
]
