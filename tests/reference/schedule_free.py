"""NumPy float64 references of the catalogue's schedule-free family
(`jopt/_src/catalogue/schedule_free.py`), written from the papers; same calling convention as
`tests/reference/optimizers.py`."""

from __future__ import annotations
