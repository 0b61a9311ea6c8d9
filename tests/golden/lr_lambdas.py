"""The `lr_lambda` functions of the LambdaLR / MultiplicativeLR fixtures, by name (a fixture
records the name; the generator gives the function to torch, the tests to jopt.torch).

`TRACEABLE` ones use arithmetic only, so they also run on a traced int32 step count; the others
branch in Python, as torch users write them, and are called with Python ints only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _warmup_then_halving(epoch: int) -> float:
    if epoch < 5:
        return (epoch + 1) / 5
    return 0.5 ** ((epoch - 5) // 10)


def _grow_then_halve_every_10(epoch: int) -> float:
    if epoch < 5:
        return 1.1
    return 0.5 if epoch % 10 == 0 else 1.0


LAMBDAS: dict[str, Callable[[Any], Any]] = {
    "inverse_time": lambda epoch: 1.0 / (1.0 + 0.05 * epoch),
    "power": lambda epoch: 0.97**epoch,
    "constant": lambda epoch: 0.95,
    "shrinking_factor": lambda epoch: 1.0 - 0.3 / (epoch + 2),
    "warmup_then_halving": _warmup_then_halving,
    "grow_then_halve_every_10": _grow_then_halve_every_10,
}
TRACEABLE = frozenset({"inverse_time", "power", "constant", "shrinking_factor"})
