"""Sign-based methods: steps from the signs of gradients or momenta (signSGD, Signum, Rprop)."""

from __future__ import annotations

from jopt._src.registry_types import Optimizer

ENTRIES: list[Optimizer] = []
