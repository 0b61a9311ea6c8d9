"""Names a config may use, mapped to code: optimizers and schedules.

Configs name things in the library's own vocabulary, taken from the library's catalogue
(`jopt._src.registry`): the jopt optimizers (`adam`), the framework-parity constructors
(`torch.SGD`, `keras.Adam`) and every schedule (`cosine_decay_schedule`, `torch.OneCycleLR`,
`keras.CosineDecay`). No string is ever looked up as an attribute: an unknown name is an error
that suggests the closest known one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from jopt._src import registry

OPTIMIZERS: Mapping[str, Callable[..., Any]] = {
    **{name: entry.factory for name, entry in registry.OPTIMIZERS.items()},
    **{key: twin.factory for key, twin in registry.TWINS.items()},
}

SCHEDULES: Mapping[str, Callable[..., Any]] = registry.SCHEDULES


def hparams(name: str) -> Any:
    """The declarations of optimizer `name`'s hyperparameters (a `jopt.hparams.Spec`), or None
    for a framework twin, whose arguments follow the framework's names."""
    entry = registry.OPTIMIZERS.get(name)
    return None if entry is None else entry.hparams


def _entry(name: str) -> Any:
    """The catalogue's entry of optimizer `name`, or of the one a framework twin mirrors."""
    twin = registry.TWINS.get(name)
    return registry.OPTIMIZERS[twin.mirrors] if twin is not None else registry.OPTIMIZERS[name]


def eval_params(name: str) -> Callable[[Any, Any], Any] | None:
    """(optimizer state, params) -> the params to evaluate at, for optimizer `name` when they
    are not its params (schedule-free's average x, averaged SGD's average), else None; a twin
    (`keras.ScheduleFreeAdamW`, `torch.ASGD`) is evaluated where the optimizer it mirrors is."""
    return _entry(name).eval_params


def reads_value(name: str) -> bool:
    """Whether optimizer `name`'s update reads the training loss (`value=`: Polyak, MoMo,
    L-BFGS's line search)."""
    return _entry(name).reads_value


def closest(name: str, known: Any) -> str:
    """' (did you mean X?)' for the closest known name, or '' if none is close."""
    same_but_case = [k for k in known if str(k).lower() == str(name).lower()]
    match = same_but_case or difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""
