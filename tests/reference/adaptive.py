"""NumPy float64 references of the catalogue's adaptive family (`jopt/_src/catalogue/adaptive.py`),
written from the papers; same calling convention as `tests/reference/optimizers.py`."""

from __future__ import annotations
