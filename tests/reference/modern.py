"""NumPy float64 references of the catalogue's modern family (`jopt/_src/catalogue/modern.py`),
written from the papers; same calling convention as `tests/reference/optimizers.py`."""

from __future__ import annotations
