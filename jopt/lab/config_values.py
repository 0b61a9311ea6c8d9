"""The values of a config, converted one by one: every mistake a `ConfigError` at its dotted
path (numbers, integers, strings, mappings, unknown keys, typed workload options, and the
errors of constructors placed at the argument they name).
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from jopt._src.errors import ArgumentError
from jopt.lab import registry


class ConfigError(ValueError):
    """A config that cannot run; `path` is the dotted path of the offending key."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"config error at {path or '<root>'}: {message}")


def number(path: str, value: Any, kind: type = float) -> Any:
    """`value` as an int or float, converting numeric strings such as '1e-2'."""
    if isinstance(value, bool):
        raise ConfigError(path, f"expected a number, got the bool {value!r}.")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(path, f"expected a number, got the string {value!r}.") from None
    if not isinstance(value, (int, float)):
        raise ConfigError(path, f"expected a number, got {value!r}.")
    if kind is int:
        if not math.isfinite(value) or float(value) != int(value):
            raise ConfigError(path, f"expected an integer, got {value!r}.")
        return int(value)
    return float(value) if isinstance(value, float) else value


def integer(path: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    n = number(path, value, int)
    if n < minimum or (maximum is not None and n > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ConfigError(path, f"must be an integer {allowed}, got {value!r}.")
    return n


def string(path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(path, f"expected a string, got {value!r}.")
    return value


def mapping(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(path, f"expected a mapping of keys to values, got {value!r}.")
    return value


def reject_unknown(path: str, given: Mapping[str, Any], known: Any) -> None:
    for key in given:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(where, f"unknown key {key!r}{registry.closest(key, known)}.")


def blame(path: str, error: Exception, keys: Any) -> ConfigError:
    """A ConfigError at `path.ARGUMENT` for an argument a constructor refused.

    Optimizers, schedules and workload options raise `jopt.ArgumentError`s that name the
    argument they refuse (with an index such as `hidden_sizes[1]` where the message gives one);
    the error is placed at that key when it is one of `keys`, else at `path` (a condition on
    several arguments, or any other error).
    """
    argument = error.argument if isinstance(error, ArgumentError) else None
    if argument is not None and argument.partition("[")[0] in set(map(str, keys)):
        return ConfigError(f"{path}.{argument}", str(error))
    return ConfigError(path, str(error))


def typed(path: str, value: Any, annotation: Any) -> Any:
    """Converts `value` to the annotated type of an Options field (or raises)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return typed(path, value, option)
            except ConfigError:
                pass
        raise ConfigError(path, f"expected {_describe(annotation)}, got {value!r}.")
    if origin is tuple:
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ConfigError(path, f"expected a list, got {value!r}.")
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(typed(f"{path}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(path, f"expected a list of {len(args)} values, got {value!r}.")
        return tuple(
            typed(f"{path}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {value!r}.")
        return value
    if annotation is int:
        return number(path, value, int)
    if annotation is float:
        return float(number(path, value, float))
    if annotation is str:
        return string(path, value)
    raise ConfigError(path, f"unsupported option type {annotation!r}.")


def _describe(annotation: Any) -> str:
    names = [getattr(a, "__name__", str(a)) for a in typing.get_args(annotation)]
    return " or ".join("null" if n == "NoneType" else n for n in names)
