"""NumPy float64 references of the catalogue's sign family (`jopt/_src/catalogue/sign.py`),
written from the papers; same calling convention as `tests/reference/optimizers.py`."""

from __future__ import annotations
