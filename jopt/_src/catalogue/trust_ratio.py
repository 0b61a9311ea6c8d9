"""Layer-wise trust ratios: each leaf's step scaled by the ratio of its parameter norm to its update
norm (LARS, LAMB, Fromage)."""

from __future__ import annotations

from jopt._src.registry_types import Optimizer

ENTRIES: list[Optimizer] = []
