"""The search space of a `search:` section: its dimensions, addressed by the optimizer's own
argument names, and the optimizer configs they give.

A dimension is a range `{low, high}` (floats or integers; `log: true`; `step` or `count` to
discretize it, which a grid needs) or a list of choices. It is addressed by the optimizer's
argument (`learning_rate`, `momentum`, `b1`, `weight_decay`), an argument of the schedule an
argument follows (`learning_rate.warmup_steps`), or an item of a list argument (`betas[0]` of
`torch.Adam`). Each bound and each choice is checked by building the optimizer with it, so a
range the optimizer refuses is refused here, at `search.space.NAME.low`, with the
optimizer's own message. `search_section` reads the rest of the section.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jopt.lab import config_values as checks
from jopt.lab import registry
from jopt.lab.config_optimizers import OptimizerConfig, ScheduleConfig, optimizer, to_data
from jopt.lab.config_values import ConfigError

_PATH = re.compile(r"^([A-Za-z_]\w*)(?:\[(\d+)\])?(?:\.([A-Za-z_]\w*))?$")


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: a range of kind "float" or "int", or a list of choices."""

    name: str  # its address in the optimizer: 'learning_rate', 'learning_rate.warmup_steps'
    kind: str  # "float", "int" or "choice"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    count: int | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value optuna's `trial` draws for this dimension."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.count is not None:  # a discretized range: its points, in order
            return trial.suggest_categorical(self.name, list(self.grid()))
        if self.kind == "int":
            return trial.suggest_int(
                self.name, self.low, self.high, step=self.step or 1, log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> tuple[Any, ...]:
        """The points a grid search visits (a range needs `step` or `count`)."""
        if self.kind == "choice":
            return self.choices
        if self.count is not None:
            space = np.geomspace if self.log else np.linspace
            points = space(self.low, self.high, self.count)
            if self.kind == "int":
                return tuple(dict.fromkeys(int(round(p)) for p in points))
            return tuple(float(p) for p in points)
        step = self.step if self.step is not None else 1
        n = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        points = [self.low + i * step for i in range(n)]
        return tuple(int(p) if self.kind == "int" else float(p) for p in points)

    @property
    def is_discrete(self) -> bool:
        return self.kind != "float" or self.step is not None or self.count is not None


# -- reading -------------------------------------------------------------------------------------


def spaces(
    common: Any, per_optimizer: Any, optimizers: Sequence[OptimizerConfig], method: str
) -> dict[str, tuple[Dimension, ...]]:
    common = dict(checks.mapping("search.space", common if common is not None else {}))
    per_optimizer = dict(
        checks.mapping("search.per_optimizer", per_optimizer if per_optimizer is not None else {})
    )
    labels = [o.label for o in optimizers]
    checks.reject_unknown("search.per_optimizer", per_optimizer, labels)
    spaces = {}
    for index, config in enumerate(optimizers):
        own = dict(
            checks.mapping(
                f"search.per_optimizer.{config.label}", per_optimizer.get(config.label, {})
            )
        )
        entries = [(f"search.space.{k}", k, v) for k, v in common.items()]
        entries += [(f"search.per_optimizer.{config.label}.{k}", k, v) for k, v in own.items()]
        if not entries:
            raise ConfigError(
                "search.space",
                f"nothing to search for optimizer {config.label!r}: give search.space or "
                f"search.per_optimizer.{config.label}.",
            )
        names = [name for _, name, _ in entries]
        for path, name, _ in entries:
            if names.count(name) > 1:
                raise ConfigError(path, f"{name!r} is searched twice for {config.label!r}.")
        spaces[config.label] = tuple(
            _dimension(path, name, value, config, f"optimizers[{index}]", method)
            for path, name, value in entries
        )
    return spaces


def _dimension(
    path: str, name: str, raw: Any, config: OptimizerConfig, where: str, method: str
) -> Dimension:
    match = _PATH.match(str(name))
    if match is None:
        raise ConfigError(
            path,
            f"{name!r} is not an argument address: use ARGUMENT, ARGUMENT.SCHEDULE_ARGUMENT or "
            "ARGUMENT[INDEX].",
        )
    argument, index, sub = match.group(1), match.group(2), match.group(3)
    parameters = inspect.signature(registry.OPTIMIZERS[config.name]).parameters
    if argument not in parameters:
        raise ConfigError(
            path,
            f"optimizer {config.label!r} ({config.name}, {where}) has no argument {argument!r}"
            f"{registry.closest(argument, parameters)}; its arguments: "
            f"{', '.join(parameters)}.",
        )
    kind = _kind(path, name, argument, index, sub, config)
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(path, "a list of choices must not be empty.")
        choices = tuple(_plain(f"{path}[{i}]", v) for i, v in enumerate(raw))
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(path, f"choices must be distinct, got {raw!r}.")
        dimension = Dimension(name, "choice", choices=choices)
        for i, choice in enumerate(choices):
            _check_value(f"{path}[{i}]", dimension, choice, config)
        return dimension
    raw = dict(checks.mapping(path, raw))
    checks.reject_unknown(path, raw, {"low", "high", "log", "step", "count"})
    for key in ("low", "high"):
        if key not in raw:
            raise ConfigError(f"{path}.{key}", "is required (or give a list of choices).")
    number = int if kind == "int" else float
    low = checks.number(f"{path}.low", raw["low"], number)
    high = checks.number(f"{path}.high", raw["high"], number)
    if kind == "float":
        low, high = float(low), float(high)
    for key, value in (("low", low), ("high", high)):
        if not math.isfinite(value):
            raise ConfigError(f"{path}.{key}", f"must be finite, got {value!r}.")
    if not low < high:
        raise ConfigError(
            path, f"the range is empty or reversed: low must be < high, got [{low}, {high}]."
        )
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{path}.log", f"expected true or false, got {log!r}.")
    if log and low <= 0:
        raise ConfigError(f"{path}.low", f"a log range needs low > 0, got {low}.")
    step, count = raw.get("step"), raw.get("count")
    if step is not None and count is not None:
        raise ConfigError(path, "give step or count, not both.")
    if step is not None:
        if log:
            raise ConfigError(f"{path}.step", "a log range is discretized by count, not step.")
        step = checks.number(f"{path}.step", step, number)
        if not (math.isfinite(step) and 0 < step <= high - low):
            raise ConfigError(
                f"{path}.step", f"must be in (0, high - low] = (0, {high - low}], got {step!r}."
            )
    if count is not None:
        count = checks.integer(f"{path}.count", count, 2)
    if method == "grid" and kind == "float" and step is None and count is None:
        raise ConfigError(
            path,
            "a grid needs the points of a continuous range: give step (linear) or count "
            "(points, log-spaced with log: true), or a list of values.",
        )
    dimension = Dimension(name, kind, low, high, log, step, count)
    _check_value(f"{path}.low", dimension, low, config)
    _check_value(f"{path}.high", dimension, high, config)
    return dimension


def _kind(
    path: str, name: str, argument: str, index: str | None, sub: str | None, config: OptimizerConfig
) -> str:
    """'int' or 'float' for a range at `name`, from the optimizer's declarations, the schedule's
    annotations or the base value."""
    base = _base(config, argument)
    if sub is not None:
        if index is not None:
            base = base[int(index)] if isinstance(base, tuple) and int(index) < len(base) else None
        if not isinstance(base, ScheduleConfig):
            raise ConfigError(
                path,
                f"{name!r} addresses an argument of the schedule that {argument!r} follows, but "
                f"{argument!r} of {config.label!r} is not a schedule in the config (it is "
                f"{to_data(base)!r}).",
            )
        schedule = registry.SCHEDULES[base.name]
        parameters = inspect.signature(schedule).parameters
        if sub not in parameters:
            raise ConfigError(
                path,
                f"schedule {base.name!r} has no argument {sub!r}"
                f"{registry.closest(sub, parameters)}; its arguments: {', '.join(parameters)}.",
            )
        hint = typing.get_type_hints(schedule).get(sub)
        return "int" if hint is int else "float"
    if index is not None:
        if not isinstance(base, tuple) or int(index) >= len(base):
            raise ConfigError(
                path,
                f"{name!r} addresses item {index} of {argument!r}, which {config.label!r} does "
                f"not set as a list of more than {index} values (it is {to_data(base)!r}).",
            )
        return (
            "int"
            if isinstance(base[int(index)], int) and not isinstance(base[int(index)], bool)
            else "float"
        )
    declarations = registry.hparams(config.name)
    if declarations is not None and argument in declarations:
        return "int" if declarations[argument].kind == "int" else "float"
    return "int" if isinstance(base, int) and not isinstance(base, bool) else "float"


def _base(config: OptimizerConfig, argument: str) -> Any:
    """The value of `argument` in the config, else the constructor's default (None if none)."""
    if argument in config.hparams:
        return config.hparams[argument]
    parameter = inspect.signature(registry.OPTIMIZERS[config.name]).parameters[argument]
    default = None if parameter.default is inspect.Parameter.empty else parameter.default
    return tuple(default) if isinstance(default, list) else default


def _plain(path: str, value: Any) -> Any:
    """A choice: a number (numeric strings converted), a string, true/false or null."""
    if isinstance(value, str):
        try:
            return checks.number(path, value)
        except ConfigError:
            return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise ConfigError(
        path, f"a choice must be a number, string, true/false or null, got {value!r}."
    )


def _check_value(path: str, dimension: Dimension, value: Any, config: OptimizerConfig) -> None:
    try:
        apply(config, {dimension.name: value})
    except ConfigError as e:
        message = str(e).partition(": ")[2]
        raise ConfigError(path, message) from None


# -- applying ------------------------------------------------------------------------------------


def apply(config: OptimizerConfig, values: Mapping[str, Any]) -> OptimizerConfig:
    """`config` with the searched `values` set (by address), validated as the config loader
    validates an optimizer: an invalid combination raises a `ConfigError`."""
    raw: dict[str, Any] = config.to_data()
    copied: set[str] = set()  # arguments whose base value is copied (items set in the copy)
    for name, value in values.items():
        argument, index, sub = _PATH.match(name).groups()
        if index is None and sub is None:
            raw[argument] = value
            continue
        if argument not in copied:
            raw[argument] = to_data(_base(config, argument))
            copied.add(argument)
        holder = raw[argument]
        if index is not None:
            if sub is None:
                holder[int(index)] = value
                continue
            holder = holder[int(index)]
        holder[sub] = value
    return optimizer("optimizer", raw)


def in_state(config: OptimizerConfig, dimension: Dimension) -> bool:
    """Whether every value of `dimension` is a number the optimizer keeps in its state, so that
    trials differing only in it run as one program (values set with `jopt.set_hparams`).

    Only declared hyperparameters qualify (the jopt optimizers'; a framework twin's arguments
    follow the framework's names), and only plain numbers: a schedule's argument, an option or
    None (a block switched off) changes the program.
    """
    declarations = registry.hparams(config.name)
    if declarations is None or dimension.name not in declarations:
        return False
    declared = declarations[dimension.name]
    numbers = all(
        isinstance(c, (int, float)) and not isinstance(c, bool) for c in dimension.choices
    )
    return declared.is_number and declared.in_state and numbers
