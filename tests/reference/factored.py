"""NumPy float64 references of the catalogue's factored family
(`jopt/_src/catalogue/factored.py`), written from the papers; same calling convention as
`tests/reference/optimizers.py`."""

from __future__ import annotations
