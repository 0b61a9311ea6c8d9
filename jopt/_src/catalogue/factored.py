"""Memory-light second moments: factored or cover-based accumulators in place of one per parameter
(Adafactor, SM3)."""

from __future__ import annotations

from jopt._src.registry_types import Optimizer

ENTRIES: list[Optimizer] = []
