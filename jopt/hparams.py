"""Hyperparameters in the optimizer state: read and set them, and declare them for your own
transforms.

Reading and setting, on the state of any jopt optimizer (optax chains and wrappers included):
`get_hparams`, `set_hparams`, `current_lr` (also at the top level, `jopt.set_hparams`...).

Declaring: a transform written outside jopt gets the same machinery by declaring its
hyperparameters once, as data (`Spec` of `Float`, `Int`, `Flag`, `Choice`), binding its
constructor's arguments (`Spec.bind`, which validates them) and building the transform from one
step function (`stateful_transform`). See docs/hparams.md for a worked example.
"""

from jopt._src.errors import ArgumentError, ArgumentTypeError
from jopt._src.hparam_access import current_lr, get_hparams, set_hparams
from jopt._src.hparams import HParams
from jopt._src.spec import Bound, Choice, Flag, Float, HParam, Int, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.validation import ANY_FINITE, DECAY, NON_NEGATIVE, POSITIVE, UNIT, Range

__all__ = [
    "ANY_FINITE",
    "DECAY",
    "NON_NEGATIVE",
    "POSITIVE",
    "UNIT",
    "ArgumentError",
    "ArgumentTypeError",
    "Bound",
    "Choice",
    "Flag",
    "Float",
    "HParam",
    "HParams",
    "Int",
    "Range",
    "Spec",
    "current_lr",
    "get_hparams",
    "set_hparams",
    "stateful_transform",
]
