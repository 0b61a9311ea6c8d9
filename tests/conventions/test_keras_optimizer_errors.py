"""Bad arguments to the jopt.keras optimizers raise at construction, under Keras' names.

One row per (constructor, bad argument): the message must be exactly
`jopt.keras.<Constructor>: <Keras' argument name> must be <range>, got <value>.`, never the name
of the jopt block underneath (`b1`, `eps`, `decay`, `jopt.scale_by_adam`). Every argument of every
constructor has a row (`test_every_argument_of_every_optimizer_has_a_row`), and so do Keras' rules
on combinations: at most one of clipnorm, clipvalue and global_clipnorm; AdamW's weight_decay set.

Each row also records what Keras 3 does with the same arguments: its message where it refuses them
too, None where it accepts them (jopt is stricter: negative or non-finite numbers, decay rates
outside [0, 1), non-bool flags, clip thresholds <= 0). With Keras installed,
`test_keras_agrees_with_the_table` checks that record against keras.optimizers.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import math
import re
import subprocess
import sys
from typing import Any

import pytest

import jopt
from tests.golden import make_optimizer_fixtures as gen

NAN, INF = math.nan, math.inf
OPTIMIZERS = ("SGD", "RMSprop", "Adam", "AdamW", "Adamax", "Nadam", "Adagrad", "Adadelta", "Lion")
OPTIMIZERS += ("Ftrl", "Lamb", "Adafactor", "ScheduleFreeAdamW")
MASK = "weight_decay_mask"  # jopt's general form of Keras' exclude_from_weight_decay
EXCLUDE = "exclude_from_weight_decay"  # Keras' method, an argument here: not Keras' constructor's


@dataclasses.dataclass(frozen=True)
class Row:
    optimizer: str  # the same name in keras.optimizers and jopt.keras
    argument: str  # the bad argument, or the rule a combination breaks
    kwargs: dict[str, Any]
    message: str  # jopt's whole message after "jopt.keras.<optimizer>: "
    error: type[Exception] = ValueError
    keras: str | None = None  # Keras' message (a regex) where it refuses too; None: it accepts

    @property
    def id(self) -> str:
        return f"{self.optimizer}-{self.argument}"


def _bad(name: str, value: Any, allowed: str) -> tuple[dict[str, Any], str, type[Exception]]:
    return {name: value}, f"{name} must be {allowed}, got {value!r}.", ValueError


def _not_bool(name: str, value: Any) -> tuple[dict[str, Any], str, type[Exception]]:
    return {name: value}, f"{name} must be True or False, got {value!r}.", TypeError


# One bad value per argument name, the same for every constructor that takes the argument;
# the values vary in kind (negative, on an open end, nan, inf, wrong type).
BAD = {
    "learning_rate": _bad("learning_rate", -0.001, ">= 0"),
    "momentum": _bad("momentum", 1.0, "in [0, 1)"),
    "nesterov": _not_bool("nesterov", "yes"),
    "rho": _bad("rho", 1.0, "in [0, 1)"),
    "epsilon": _bad("epsilon", -1e-7, ">= 0"),
    "centered": _not_bool("centered", 1),
    "beta_1": _bad("beta_1", 1.0, "in [0, 1)"),
    "beta_2": _bad("beta_2", NAN, "in [0, 1)"),
    "amsgrad": _not_bool("amsgrad", "no"),
    "initial_accumulator_value": _bad("initial_accumulator_value", -0.1, ">= 0"),
    "weight_decay": _bad("weight_decay", -0.004, ">= 0"),
    "clipnorm": _bad("clipnorm", 0.0, "> 0"),
    "clipvalue": _bad("clipvalue", -1.0, "> 0"),
    "global_clipnorm": _bad("global_clipnorm", INF, "a finite number > 0"),
    "learning_rate_power": _bad("learning_rate_power", 0.5, "<= 0"),
    "l1_regularization_strength": _bad("l1_regularization_strength", -0.1, ">= 0"),
    "l2_regularization_strength": _bad("l2_regularization_strength", -0.1, ">= 0"),
    "l2_shrinkage_regularization_strength": _bad(
        "l2_shrinkage_regularization_strength", -0.1, ">= 0"
    ),
    "beta": _bad("beta", -1.0, ">= 0"),
    "beta_2_decay": _bad("beta_2_decay", 0.5, "<= 0"),
    "epsilon_1": _bad("epsilon_1", -1e-30, ">= 0"),
    "epsilon_2": _bad("epsilon_2", NAN, ">= 0"),
    "clip_threshold": _bad("clip_threshold", 0.0, "> 0"),
    "relative_step": _not_bool("relative_step", "yes"),
    "warmup_steps": _bad("warmup_steps", -1, "an integer >= 0"),
    "use_ema": _not_bool("use_ema", "yes"),
    "ema_momentum": _bad("ema_momentum", 1.5, "in [0, 1)"),
    "ema_overwrite_frequency": _bad("ema_overwrite_frequency", 0, "an integer >= 1"),
    "gradient_accumulation_steps": _bad("gradient_accumulation_steps", 1, "an integer >= 2"),
    EXCLUDE: (
        {EXCLUDE: "bias"},
        f"{EXCLUDE} must be a non-empty list of names (Keras' var_names), got 'bias'.",
        TypeError,
    ),
    MASK: (
        {MASK: "bias"},
        f"{MASK} must be None, a callable params -> tree of bools, or a tree of bools shaped "
        "like the params, got 'bias'.",
        TypeError,
    ),
}
# Where a constructor's range differs from the table above (Lion's beta_1 is in (0, 1)).
SPECIAL = {
    ("Lion", "beta_1"): _bad("beta_1", 1.0, "in (0, 1)"),
    ("ScheduleFreeAdamW", "beta_1"): _bad("beta_1", 1.0, "in (0, 1)"),
}
# Keras' own refusals of the rows above (the rest it accepts: it checks ema_momentum and
# ema_overwrite_frequency only with use_ema=True, and takes any truthy use_ema).
KERAS_REFUSES = {
    "gradient_accumulation_steps": r"`gradient_accumulation_steps` must be an integer >= 2",
    "learning_rate_power": r"`learning_rate_power` needs to be negative or zero",
    "l1_regularization_strength": r"`l1_regularization_strength` needs to be positive or zero",
    "l2_regularization_strength": r"`l2_regularization_strength` needs to be positive or zero",
    "l2_shrinkage_regularization_strength": (
        r"`l2_shrinkage_regularization_strength` needs to be positive or zero"
    ),
    # Keras' Ftrl checks its initial accumulator (its Adagrad does not).
    ("Ftrl", "initial_accumulator_value"): r"`initial_accumulator_value` needs to be positive",
}

_LION_BETA_1 = r"Argument `beta_1` must be in the \[0, 1\] range"
_SGD_MOMENTUM = r"`momentum` must be a float between \[0, 1\]"
_ONE_CLIP = r"Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set"


def _parameters(optimizer: str) -> list[str]:
    return list(inspect.signature(getattr(jopt.keras, optimizer)).parameters)


def _argument_rows() -> list[Row]:
    rows = []
    for optimizer in OPTIMIZERS:
        for name in _parameters(optimizer):
            kwargs, message, error = SPECIAL.get((optimizer, name), BAD[name])
            keras = KERAS_REFUSES.get((optimizer, name), KERAS_REFUSES.get(name))
            rows.append(Row(optimizer, name, kwargs, message, error, keras))
    return rows


def _one_clip(optimizer: str) -> Row:
    return Row(
        optimizer, "two_clip_options", {"clipnorm": 1.0, "global_clipnorm": 2.0},
        "only one of clipnorm, clipvalue and global_clipnorm may be set, got clipnorm=1.0, "
        "global_clipnorm=2.0.", keras=_ONE_CLIP,
    )  # fmt: skip


_MASK_WITH_MOMENTUM = (
    "weight_decay_mask is not supported with momentum > 0 (the decay shares the momentum "
    "block's learning rate)."
)

ROWS = [
    *_argument_rows(),
    *(_one_clip(name) for name in OPTIMIZERS),
    # Values of other kinds, and the ones Keras refuses as well.
    Row("Adam", "learning_rate_str", {"learning_rate": "0.01"},
        "learning_rate must be a number or a schedule (a function of the step count), got the "
        "string '0.01'.", TypeError, r"Argument `learning_rate` should be float"),
    Row("Nadam", "learning_rate_inf", {"learning_rate": INF},
        "learning_rate must be a finite number >= 0, got inf."),
    Row("RMSprop", "epsilon_nan", {"epsilon": NAN}, "epsilon must be >= 0, got nan."),
    Row("Adadelta", "rho_negative", {"rho": -0.5}, "rho must be in [0, 1), got -0.5."),
    Row("SGD", "momentum_negative", {"momentum": -0.5}, "momentum must be in [0, 1), got -0.5.",
        keras=_SGD_MOMENTUM),
    Row("SGD", "momentum_above_1", {"momentum": 1.5}, "momentum must be in [0, 1), got 1.5.",
        keras=_SGD_MOMENTUM),
    Row("Lion", "beta_1_zero", {"beta_1": 0.0}, "beta_1 must be in (0, 1), got 0.0.",
        keras=_LION_BETA_1),
    Row("Lion", "beta_1_above_1", {"beta_1": 1.5}, "beta_1 must be in (0, 1), got 1.5.",
        keras=_LION_BETA_1),
    Row("Adam", "weight_decay_bool", {"weight_decay": True},
        "weight_decay must be a real number, got the bool True.", TypeError),
    # Combinations.
    Row("AdamW", "weight_decay_none", {"weight_decay": None},
        "weight_decay must be a real scalar, got None.", TypeError,
        r"Argument `weight_decay` must be a float"),
    Row("SGD", "mask_with_momentum", {"momentum": 0.9, "weight_decay": 0.01, MASK: {}},
        _MASK_WITH_MOMENTUM),
    Row("RMSprop", "mask_with_momentum", {"momentum": 0.9, "weight_decay": 0.01, MASK: {}},
        _MASK_WITH_MOMENTUM),
    Row("AdamW", "exclude_and_mask", {EXCLUDE: ["bias"], MASK: {}},
        "give exclude_from_weight_decay or weight_decay_mask, not both."),
    Row("Adam", "ema_momentum_with_use_ema", {"use_ema": True, "ema_momentum": 1.5},
        "ema_momentum must be in [0, 1), got 1.5.", keras=r"`ema_momentum` must be in the range"),
]  # fmt: skip

# Both accept these: closed ends of the ranges, and Keras' no-ops.
ACCEPTED = [
    ("SGD", {"learning_rate": 0.0, "momentum": 0.0, "nesterov": True, "weight_decay": 0.0}),
    ("SGD", {"momentum": 0.9, "nesterov": True, "clipvalue": 0.5}),
    ("RMSprop", {"rho": 0.0, "momentum": 0.0, "epsilon": 0.0, "centered": True}),
    ("Adam", {"beta_1": 0.0, "beta_2": 0.0, "epsilon": 0.0, "amsgrad": True, "clipnorm": 1.0}),
    ("AdamW", {"weight_decay": 0.0, "global_clipnorm": 1.0}),
    ("Adamax", {"beta_1": 0.0, "beta_2": 0.0, "epsilon": 0.0}),
    ("Nadam", {"beta_1": 0.0, "beta_2": 0.0, "epsilon": 0.0}),
    ("Adagrad", {"initial_accumulator_value": 0.0, "epsilon": 0.0}),
    ("Adadelta", {"rho": 0.0, "epsilon": 0.0}),
    ("Lion", {"beta_1": 1e-3, "beta_2": 0.0, "weight_decay": 0.0}),
    ("Ftrl", {"learning_rate_power": 0.0, "initial_accumulator_value": 0.0, "beta": 0.0,
              "l1_regularization_strength": 0.0, "l2_shrinkage_regularization_strength": 0.0}),
    ("Lamb", {"beta_1": 0.0, "beta_2": 0.0, "epsilon": 0.0, "weight_decay": 0.0}),
    ("Adafactor", {"beta_2_decay": 0.0, "epsilon_1": 0.0, "epsilon_2": 0.0,
                   "relative_step": False}),
    ("ScheduleFreeAdamW", {"warmup_steps": 0, "beta_2": 0.0, "epsilon": 0.0,
                           "weight_decay": 0.0}),
]  # fmt: skip


def test_every_argument_of_every_optimizer_has_a_row():
    assert set(OPTIMIZERS) == set(jopt.keras.__all__) - {
        "CosineDecay", "CosineDecayRestarts", "ExponentialDecay", "InverseTimeDecay",
        "PiecewiseConstantDecay", "PolynomialDecay",
        "Muon",  # its refusals: tests/conventions/test_muon_twins.py
    }  # fmt: skip
    covered = {(row.optimizer, row.argument) for row in ROWS}
    missing = [(o, p) for o in OPTIMIZERS for p in _parameters(o) if (o, p) not in covered]
    assert not missing
    assert len({row.id for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_bad_argument_raises_at_construction_under_keras_names(row):
    whole = f"jopt.keras.{row.optimizer}: {row.message}"
    with pytest.raises(row.error, match=f"^{re.escape(whole)}$"):
        getattr(jopt.keras, row.optimizer)(**row.kwargs)


@pytest.mark.parametrize(
    ("optimizer", "kwargs"), ACCEPTED, ids=[f"{name}-{i}" for i, (name, _) in enumerate(ACCEPTED)]
)
def test_accepted_at_the_edges_of_the_ranges(optimizer, kwargs):
    assert callable(getattr(jopt.keras, optimizer)(**kwargs).update)


# Run in a fresh Python: Keras picks its backend at import.
_KERAS_OUTCOMES = """
import json, sys
import keras
outcomes = []
for optimizer, kwargs in json.load(sys.stdin):
    try:
        getattr(keras.optimizers, optimizer)(**kwargs)
        outcomes.append(None)
    except ValueError as e:
        outcomes.append(str(e))
print(json.dumps(outcomes))
"""


def test_keras_agrees_with_the_table():
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    rows = [row for row in ROWS if MASK not in row.kwargs and EXCLUDE not in row.kwargs]
    calls = [(row.optimizer, row.kwargs) for row in rows] + ACCEPTED
    done = subprocess.run(
        [sys.executable, "-c", _KERAS_OUTCOMES], input=json.dumps(calls), text=True,
        capture_output=True, check=True, env=gen.keras_environment("float32"),
    )  # fmt: skip
    outcomes = json.loads(done.stdout.splitlines()[-1])
    for row, got in zip(rows, outcomes[: len(rows)], strict=True):
        if row.keras is None:
            assert got is None, f"{row.id}: Keras now refuses it: {got}"
        else:
            assert got is not None and re.search(row.keras, got), f"{row.id}: Keras says {got}"
    for (optimizer, kwargs), got in zip(ACCEPTED, outcomes[len(rows) :], strict=True):
        assert got is None, f"Keras refuses {optimizer} {kwargs}: {got}"
