"""Schedule-free methods: iterate averaging in place of a learning-rate decay schedule (schedule-
free SGD and AdamW)."""

from __future__ import annotations

from jopt._src.registry_types import Optimizer

ENTRIES: list[Optimizer] = []
