"""Recent Adam variants from the literature (ADOPT, AdEMAMix) and optimistic methods for games."""

from __future__ import annotations

from jopt._src.registry_types import Optimizer

ENTRIES: list[Optimizer] = []
