"""The optimizers of a config, and the schedules their hyperparameters follow: validated into
frozen dataclasses (`OptimizerConfig`, `ScheduleConfig`), built into optax transforms.

An optimizer is a registry name (`adam`, `torch.SGD`), an optional label, and keyword arguments
of its constructor. The jopt optimizers' hyperparameters are declared in the library's registry
and read by their declared kind (numbers, integers, true/false, choices, schedules where one is
allowed); every value is then checked by calling the constructor, and an error it raises is
placed at the argument it names.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

from jopt.lab import config_values as checks
from jopt.lab import config_wrappers, registry
from jopt.lab.config_values import ConfigError


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """A hyperparameter that follows a schedule: `{schedule: NAME, arg: value, ...}`."""

    name: str
    args: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """One optimizer to compare: a registry name, a label for tables and plots, hyperparameters,
    and what is built around it (parameter groups, L1, accumulation, plateau, an average)."""

    name: str
    label: str
    hparams: Mapping[str, Any]  # numbers, bools, strings, lists, or ScheduleConfig
    wrappers: config_wrappers.Wrappers = config_wrappers.Wrappers()

    def to_data(self) -> dict[str, Any]:
        """The entry as config data (what `optimizer` reads back)."""
        return {
            "name": self.name,
            "label": self.label,
            **{k: to_data(v) for k, v in self.hparams.items()},
            **config_wrappers.to_data(self.wrappers),
        }

    @property
    def program_key(self) -> str:
        """What its compiled program depends on: everything but the label."""
        return repr((self.name, sorted(self.hparams.items()), self.wrappers))


def schedule(path: str, raw: Mapping[str, Any]) -> ScheduleConfig:
    raw = dict(raw)
    name = checks.string(f"{path}.schedule", raw.pop("schedule"))
    if name not in registry.SCHEDULES:
        raise ConfigError(
            f"{path}.schedule",
            f"unknown schedule {name!r}{registry.closest(name, registry.SCHEDULES)}.",
        )
    parameters = set(inspect.signature(registry.SCHEDULES[name]).parameters)
    checks.reject_unknown(path, raw, parameters)
    config = ScheduleConfig(name, {k: hparam(f"{path}.{k}", v) for k, v in raw.items()})
    try:
        build_schedule(config)
    except (TypeError, ValueError) as e:
        raise checks.blame(path, e, [*parameters, *config_wrappers.KEYS]) from e
    return config


def hparam(path: str, value: Any) -> Any:
    """A hyperparameter value: a number (numeric strings converted), bool, string, list, None,
    or a schedule mapping `{schedule: NAME, ...}`."""
    if isinstance(value, Mapping):
        if "schedule" not in value:
            raise ConfigError(path, "a mapping here must name a schedule: {schedule: NAME, ...}.")
        return schedule(path, value)
    if isinstance(value, str):
        try:
            return checks.number(path, value)
        except ConfigError:
            return value  # a choice such as momentum_form: lr_inside
    if isinstance(value, (list, tuple)):
        return tuple(hparam(f"{path}[{i}]", v) for i, v in enumerate(value))
    return value


def declared_value(path: str, value: Any, declaration: Any) -> Any:
    """A value of a declared hyperparameter (a `jopt.hparams.HParam`), converted by its kind:
    numbers (numeric strings too), integers, true/false, one of the choices, or a schedule
    mapping where the hyperparameter may follow one."""
    if value is None and declaration.optional:
        return None
    if declaration.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {value!r}.")
        return value
    if declaration.kind == "choice":
        if value not in declaration.allowed:
            raise ConfigError(
                path,
                f"expected one of {', '.join(map(repr, declaration.allowed))}, got {value!r}"
                f"{registry.closest(value, declaration.allowed)}.",
            )
        return value
    if isinstance(value, Mapping):
        if not declaration.schedulable:
            raise ConfigError(path, f"{declaration.name} takes a number here, not a schedule.")
        return hparam(path, value)
    kind = int if declaration.kind == "int" else float
    what = "an integer" if kind is int else "a number"
    if declaration.schedulable:
        what += " or a schedule"
    if isinstance(value, str):
        try:
            return checks.number(path, value, kind)
        except ConfigError:
            raise ConfigError(path, f"expected {what}, got the string {value!r}.") from None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(path, f"expected {what}, got {value!r}.")
    return checks.number(path, value, kind)


def optimizer(path: str, raw: Any) -> OptimizerConfig:
    raw = dict(checks.mapping(path, raw))
    name = checks.string(f"{path}.name", raw.pop("name", None))
    if name not in registry.OPTIMIZERS:
        raise ConfigError(
            f"{path}.name",
            f"unknown optimizer {name!r}{registry.closest(name, registry.OPTIMIZERS)}.",
        )
    label = checks.string(f"{path}.label", raw.pop("label", name))
    parameters = inspect.signature(registry.OPTIMIZERS[name]).parameters
    declarations = registry.hparams(name)

    def read(where: str, key: str, value: Any) -> Any:
        if declarations is not None and key in declarations:
            return declared_value(where, value, declarations[key])
        return hparam(where, value)

    wrappers = config_wrappers.parse(path, raw, read)
    checks.reject_unknown(path, raw, [*parameters, *config_wrappers.KEYS])
    if wrappers.plateau is not None and registry.reads_value(name):
        raise ConfigError(
            f"{path}.plateau",
            f"{name} reads the training loss as its update's value=, which a plateau decay's "
            "metric would replace: use a schedule for its learning rate instead.",
        )
    hparams = {key: read(f"{path}.{key}", key, value) for key, value in raw.items()}
    config = OptimizerConfig(name, label, hparams, wrappers)
    try:
        _build(path, config)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise checks.blame(path, e, [*parameters, *config_wrappers.KEYS]) from e
    return config


def to_data(value: Any) -> Any:
    """A hyperparameter value as plain data (what `hparam` reads back)."""
    if isinstance(value, ScheduleConfig):
        return {"schedule": value.name, **{k: to_data(v) for k, v in value.args.items()}}
    if isinstance(value, tuple):
        return [to_data(v) for v in value]
    return value


def build_schedule(config: ScheduleConfig) -> Any:
    args = {k: build_value(v) for k, v in config.args.items()}
    return registry.SCHEDULES[config.name](**args)


def build_value(value: Any) -> Any:
    if isinstance(value, ScheduleConfig):
        return build_schedule(value)
    if isinstance(value, tuple):
        return tuple(build_value(v) for v in value)
    return value


def build_optimizer(config: OptimizerConfig) -> Any:
    """The optax transform an OptimizerConfig describes (validated by its constructor)."""
    return _build("optimizer", config)


def _build(path: str, config: OptimizerConfig) -> Any:
    kwargs = {k: build_value(v) for k, v in config.hparams.items()}
    factory = registry.OPTIMIZERS[config.name]
    return config_wrappers.build(path, factory, kwargs, config.wrappers)
