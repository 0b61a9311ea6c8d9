"""Independent NumPy float64 reference implementations of optimizers and test problems.

`optimizers` holds the first twelve optimizers and the shared helpers; each family of the
catalogue (`jopt/_src/catalogue/<family>.py`) has its module of the same name here."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tests.reference import (
    adaptive,
    factored,
    learning_rate_free,
    loss_based,
    modern,
    online,
    optimizers,
    orthogonal,
    schedule_free,
    sign,
    trust_ratio,
)

MODULES = (optimizers, adaptive, trust_ratio, sign, modern, factored, schedule_free)
MODULES += (orthogonal, learning_rate_free, loss_based, online)


def runner(name: str) -> Callable[..., list[np.ndarray]] | None:
    """The reference `run_<name>` of the registry's optimizer `name`, or None if none is written."""
    found = [vars(m)[f"run_{name}"] for m in MODULES if f"run_{name}" in vars(m)]
    if len(found) > 1:
        raise RuntimeError(f"run_{name} is defined in more than one reference module")
    return found[0] if found else None
