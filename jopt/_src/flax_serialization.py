"""`flax.serialization` support for the hyperparameter node, registered where flax is installed.

`flax.serialization.to_bytes(state)` and `from_bytes(target, data)` save optimizer states as
msgpack; flax walks dicts, lists, named tuples and the classes registered with it. `HParams` is
registered here as `{"packed": array}`: its static declarations come back from the target state,
as a restore always has one. jopt does not depend on flax; `register` runs at `import jopt` when
flax is installed (importing it costs ~0.2 s) and does nothing where flax cannot be imported.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from jopt._src.hparams import HParams


def _to_state_dict(node: HParams) -> dict[str, Any]:
    from flax import serialization

    return {"packed": serialization.to_state_dict(node.packed)}


def _from_state_dict(target: HParams, state: dict[str, Any]) -> HParams:
    from flax import serialization

    packed = serialization.from_state_dict(target.packed, state["packed"], name="packed")
    return HParams(packed, target.meta)


def register() -> bool:
    """Registers `HParams` with flax.serialization; False where flax is not installed."""
    if importlib.util.find_spec("flax") is None:
        return False
    try:
        from flax import serialization
    except Exception:  # an installed flax that cannot be imported cannot serialize either
        return False

    serialization.register_serialization_state(
        HParams, _to_state_dict, _from_state_dict, override=True
    )
    return True
