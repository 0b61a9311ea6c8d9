"""NumPy float64 references of the catalogue's trust ratio family
(`jopt/_src/catalogue/trust_ratio.py`), written from the papers; same calling convention as
`tests/reference/optimizers.py`."""

from __future__ import annotations
