"""The lab's progress bars (tqdm), one per optimizer: steps of a run, a PBT population or a
learning-rate ramp, or trials of a sweep."""

from __future__ import annotations

from typing import Any


def bar(
    enabled: bool, label: str, total: float | None, initial: int = 0, unit: str = "step"
) -> Any:
    """A tqdm bar (None when not `enabled`): `label`, `initial` of `total` done (None: unknown)."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=label, unit=unit, dynamic_ncols=True, leave=True)
