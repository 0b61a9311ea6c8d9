"""Construction-time argument checks that raise clear errors.

Every check names the function, the argument, the value it got and what is allowed, so that
`jopt.adam(1e-3, b1=1.5)` fails before any compute with

    ValueError: jopt.adam: b1 must be in [0, 1), got 1.5.

The error is an `ArgumentError` (a ValueError) holding those four facts as attributes (see
`jopt._src.errors`); an argument of the wrong type (a string learning rate, a schedule where a
number is needed) raises `ArgumentTypeError`, both a TypeError and an ArgumentError: `except
ValueError` catches every argument jopt refuses.

A `Range` is also kept (as static metadata) next to each hyperparameter in the optimizer state, so
that `jopt.set_hparams` applies the same rules as the constructor.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jopt._src.base import ScheduleFn
from jopt._src.errors import ArgumentError, ArgumentTypeError


@dataclasses.dataclass(frozen=True)
class Range:
    """The real numbers a hyperparameter may take: an interval, open or closed at each end."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        # NaN fails both comparisons; infinities are rejected unless a bound is infinite and closed,
        # which `describe` never offers.
        return bool(above and below) and math.isfinite(value)

    def contains_traced(self, value: Any) -> Any:
        """`value in self` for a traced array: a boolean array (finite, within the bounds)."""
        import jax.numpy as jnp

        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above & below & jnp.isfinite(value)

    def describe_finite(self) -> str:
        """`describe`, saying "a finite number" where a bound is infinite (">= 0" would read as
        allowing infinity: the words for an infinite value, or one not known yet)."""
        described = self.describe()
        return f"a finite number {described}" if described[0] in "<>" else described

    def describe(self) -> str:
        """The range in words, as error messages print it: "> 0", "in [0, 1)", "a finite number"."""
        if self.lo == -math.inf and self.hi == math.inf:
            return "a finite number"
        if self.hi == math.inf:
            return f"{'>' if self.lo_open else '>='} {_fmt(self.lo)}"
        if self.lo == -math.inf:
            return f"{'<' if self.hi_open else '<='} {_fmt(self.hi)}"
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"in {left}{_fmt(self.lo)}, {_fmt(self.hi)}{right}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


NON_NEGATIVE = Range(0.0)
POSITIVE = Range(0.0, lo_open=True)
DECAY = Range(0.0, 1.0, hi_open=True)  # betas, momentum, EMA decay rates
UNIT = Range(0.0, 1.0)  # dampening, fractions
ANY_FINITE = Range()


def _scalar(fn: str, name: str, value: Any, allowed: Any = "a real number") -> float:
    """Returns `value` as a Python float, or raises if it is not a concrete real scalar."""

    def refuse(detail: str) -> ArgumentTypeError:
        return ArgumentTypeError(fn, detail, argument=name, value=value, allowed=allowed)

    if isinstance(value, bool):
        raise refuse(f"{name} must be a real number, got the bool {value!r}.")
    if isinstance(value, jax.core.Tracer):
        raise refuse(
            f"{name} must be a concrete number at construction, got a traced value. "
            "To vary it inside jit or vmap, build the optimizer with a number and change it in "
            "the state with jopt.set_hparams."
        )
    try:
        array = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - anything that is not array-like
        raise refuse(f"{name} must be a real number, got {value!r}.") from e
    if array.shape != () or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise refuse(f"{name} must be a real scalar, got {value!r}.")
    return float(array)


def out_of_range(fn: str, name: str, value: Any, allowed: Range) -> ArgumentError:
    """The error for a number outside `allowed`: `{fn}: {name} must be {allowed}, got {value}.`"""
    infinite = isinstance(value, (int, float)) and math.isinf(value)
    described = allowed.describe_finite() if infinite else allowed.describe()
    return ArgumentError(
        fn,
        f"{name} must be {described}, got {value!r}.",
        argument=name,
        value=value,
        allowed=allowed,
    )


def check_number(fn: str, name: str, value: Any, allowed: Range) -> float:
    """Checks that `value` is a real scalar in `allowed`; returns it as a float."""
    x = _scalar(fn, name, value, allowed)
    if x not in allowed:
        raise out_of_range(fn, name, value, allowed)
    return x


def check_number_or_schedule(fn: str, name: str, value: Any, allowed: Range) -> float | ScheduleFn:
    """Checks a hyperparameter that may be a number in `allowed` or a schedule `step -> value`.

    A schedule is checked for being callable only: its values are checked where they are known,
    by the schedule's own constructor.
    """
    if callable(value):
        return value
    if isinstance(value, str):
        raise ArgumentTypeError(
            fn,
            f"{name} must be a number or a schedule (a function of the step count), "
            f"got the string {value!r}.",
            argument=name,
            value=value,
            allowed=allowed,
        )
    return check_number(fn, name, value, allowed)


def check_optional_number(fn: str, name: str, value: Any, allowed: Range) -> float | None:
    return None if value is None else check_number(fn, name, value, allowed)


def wrong_type(fn: str, name: str, value: Any, allowed: str) -> ArgumentTypeError:
    """The error for an argument of the wrong type: `{fn}: {name} must be {allowed}, got ...`."""
    return ArgumentTypeError(
        fn, f"{name} must be {allowed}, got {value!r}.", argument=name, value=value, allowed=allowed
    )


def check_bool(fn: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise wrong_type(fn, name, value, "True or False")
    return bool(value)


def check_choice(fn: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ArgumentError(
            fn,
            f"{name} must be one of {allowed}, got {value!r}.",
            argument=name,
            value=value,
            allowed=tuple(choices),
        )
    return value


def check_dtype(fn: str, name: str, value: Any) -> np.dtype | None:
    """Checks an optional floating dtype (`None` means: follow the parameters).

    JAX's notion of floating is used: bfloat16 (an ml_dtypes extension type, kind 'V' to NumPy,
    for which `np.issubdtype(bfloat16, np.inexact)` is False) is a floating dtype.
    """
    if value is None:
        return None
    refusal = wrong_type(fn, name, value, "a floating dtype or None")
    try:
        dtype = np.dtype(jax.dtypes.canonicalize_dtype(value))
    except TypeError as e:
        raise refusal from e
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise refusal
    return dtype


def check_mask(fn: str, name: str, value: Any) -> Any:
    """A mask is None, a callable `params -> tree of bools`, or a tree of bools."""
    if value is None or callable(value):
        return value
    leaves = jax.tree.leaves(value)
    if not all(isinstance(leaf, (bool, np.bool_)) for leaf in leaves):
        raise wrong_type(
            fn,
            name,
            value,
            "None, a callable params -> tree of bools, or a tree of bools shaped like the params",
        )
    return value


def check_callable(fn: str, name: str, value: Any, what: str = "callable") -> Any:
    """Checks that `value` can be called (a schedule, a function)."""
    if not callable(value):
        raise wrong_type(fn, name, value, what)
    return value


def check_transform(fn: str, name: str, value: Any, what: str = "") -> Any:
    """Checks that `value` is an optax transform (an optimizer to wrap)."""
    if not isinstance(value, optax.GradientTransformation):
        raise wrong_type(fn, name, value, f"an optax.GradientTransformation{what}")
    return value


def require(
    fn: str, condition: bool, message: str, *, argument: str | None = None, value: Any = None
) -> None:
    """Raises an ArgumentError with `message` (prefixed by the function name) unless `condition`.

    `argument` names the argument the error is reported against (None: the condition spans
    several), `value` its value.
    """
    if not condition:
        raise ArgumentError(fn, message, argument=argument, value=value)


def check_int(fn: str, name: str, value: Any, minimum: int = 0) -> int:
    """Checks an integer (a step count or a period) >= `minimum`; returns it as an int."""
    allowed = Range(float(minimum))
    detail = f"{name} must be an integer >= {minimum}, got {value!r}."
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise ArgumentTypeError(fn, detail, argument=name, value=value, allowed=allowed)
    if value < minimum:
        raise ArgumentError(fn, detail, argument=name, value=value, allowed=allowed)
    return int(value)


def check_increasing(fn: str, name: str, values: Any, *, strict: bool = True) -> tuple:
    """Checks a sequence of step boundaries: non-negative integers, increasing."""
    try:
        items = tuple(values)
    except TypeError as e:
        raise wrong_type(fn, name, values, "a sequence of integers") from e
    items = tuple(check_int(fn, f"{name}[{i}]", v) for i, v in enumerate(items))
    pairs = zip(items, items[1:], strict=False)
    bad = next(((a, b) for a, b in pairs if (b <= a if strict else b < a)), None)
    if bad is not None:
        order = "strictly increasing" if strict else "non-decreasing"
        raise ArgumentError(
            fn, f"{name} must be {order}, got {list(items)}.", argument=name, value=values
        )
    return items
