"""Names a config may use, mapped to code: optimizers and schedules.

Configs name things in the library's own vocabulary: the jopt optimizers (`adam`), the
framework-parity constructors (`torch.SGD`, `keras.Adam`) and every schedule
(`cosine_decay_schedule`, `torch.OneCycleLR`, `keras.CosineDecay`). No string is ever looked
up as an attribute: an unknown name is an error that suggests the closest known one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

import jopt
from jopt import keras as jkeras
from jopt import schedules as jschedules
from jopt import torch as jtorch

_CORE_OPTIMIZERS = {
    "sgd": jopt.sgd,
    "rmsprop": jopt.rmsprop,
    "adam": jopt.adam,
    "adamw": jopt.adamw,
    "amsgrad": jopt.amsgrad,
    "adamax": jopt.adamax,
    "nadam": jopt.nadam,
    "nadamw": jopt.nadamw,
    "radam": jopt.radam,
    "adagrad": jopt.adagrad,
    "adadelta": jopt.adadelta,
    "lion": jopt.lion,
}
_TORCH_OPTIMIZERS = (
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "Adagrad",
    "Adadelta",
)
_KERAS_OPTIMIZERS = (
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "Adamax",
    "Nadam",
    "Adagrad",
    "Adadelta",
    "Lion",
)
_TORCH_SCHEDULES = (
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "CyclicLR",
    "LinearLR",
    "PolynomialLR",
    "ConstantLR",
)
_KERAS_SCHEDULES = (
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
)


def _namespaced(prefix: str, module: Any, names: tuple[str, ...]) -> dict[str, Callable]:
    return {f"{prefix}.{name}": vars(module)[name] for name in names}


OPTIMIZERS: Mapping[str, Callable[..., Any]] = {
    **_CORE_OPTIMIZERS,
    **_namespaced("torch", jtorch, _TORCH_OPTIMIZERS),
    **_namespaced("keras", jkeras, _KERAS_OPTIMIZERS),
}

SCHEDULES: Mapping[str, Callable[..., Any]] = {
    **{
        name: vars(jschedules)[name]
        for name in jschedules.__all__
        if name not in ("per_epoch", "Schedule")
    },
    **_namespaced("torch", jtorch, _TORCH_SCHEDULES),
    **_namespaced("keras", jkeras, _KERAS_SCHEDULES),
}


def closest(name: str, known: Any) -> str:
    """' (did you mean X?)' for the closest known name, or '' if none is close."""
    same_but_case = [k for k in known if str(k).lower() == str(name).lower()]
    match = same_but_case or difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""
