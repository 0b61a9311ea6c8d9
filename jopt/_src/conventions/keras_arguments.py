"""The arguments every `jopt.keras` optimizer shares, checked under Keras' names: the learning
rate, weight decay (and the mask that leaves leaves out of it), and the three clip options, at
most one of which may be set, as Keras requires."""

from __future__ import annotations

import dataclasses
from typing import Any

from jopt._src import validation
from jopt._src.base import ScalarOrSchedule, Transform
from jopt._src.transforms.clipping import clip, clip_by_global_norm, clip_by_leaf_norm


@dataclasses.dataclass(frozen=True)
class Globals:
    """Keras' arguments common to every optimizer, checked."""

    learning_rate: ScalarOrSchedule
    weight_decay: ScalarOrSchedule | None
    mask: Any
    clipping: list[Transform]


def check_globals(
    fn: str,
    learning_rate: Any,
    weight_decay: Any,
    clipnorm: Any,
    clipvalue: Any,
    global_clipnorm: Any,
    weight_decay_mask: Any,
) -> Globals:
    """Checks Keras' common arguments under their Keras names: weight_decay None or >= 0, each
    clip option None or > 0 and at most one set (as Keras requires). `learning_rate` comes
    checked by `check_learning_rate`, first, as it comes first in every signature."""
    if weight_decay is not None:
        weight_decay = validation.check_number_or_schedule(
            fn, "weight_decay", weight_decay, validation.NON_NEGATIVE
        )
    given = {
        name: value
        for name, value in (
            ("clipnorm", clipnorm),
            ("clipvalue", clipvalue),
            ("global_clipnorm", global_clipnorm),
        )
        if value is not None
    }
    validation.require(
        fn,
        len(given) <= 1,
        "only one of clipnorm, clipvalue and global_clipnorm may be set, got "
        + ", ".join(f"{name}={value!r}" for name, value in given.items())
        + ".",
    )
    clips = {
        name: validation.check_number(fn, name, value, validation.POSITIVE)
        for name, value in given.items()
    }
    mask = validation.check_mask(fn, "weight_decay_mask", weight_decay_mask)
    return Globals(learning_rate, weight_decay, mask, clipping(clips))


def check_learning_rate(fn: str, learning_rate: Any) -> ScalarOrSchedule:
    return validation.check_number_or_schedule(
        fn, "learning_rate", learning_rate, validation.NON_NEGATIVE
    )


def clipping(clips: dict[str, float]) -> list[Transform]:
    if "clipnorm" in clips:
        return [clip_by_leaf_norm(clips["clipnorm"])]
    if "global_clipnorm" in clips:
        return [clip_by_global_norm(clips["global_clipnorm"])]
    if "clipvalue" in clips:
        return [clip(clips["clipvalue"])]
    return []
