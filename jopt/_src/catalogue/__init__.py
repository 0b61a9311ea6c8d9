"""The catalogue's entries, one module per family of optimizers; `jopt._src.registry` joins them
(after its own entries: the optimizers jopt started with) into `OPTIMIZERS`.

A family module holds `ENTRIES`, a list of `registry_types.Optimizer`, and imports only the
transforms it catalogues and the record types; what the entries share is here."""

from __future__ import annotations

from jopt._src.schedules.decay import exponential_decay

LR = {"learning_rate": 0.01}  # the learning rate of most examples


def halving(learning_rate: float, half_life: int):
    """A learning rate halved every `half_life` steps."""
    return exponential_decay(learning_rate, half_life, 0.5)
