"""Refused arguments as data, and the public function an error names.

Every argument jopt refuses at construction raises an `ArgumentError`, a ValueError whose message
names the function, the argument, the value and what is allowed,

    jopt.adam: b1 must be in [0, 1), got 1.5.

and which carries the same facts as attributes: `fn` ("jopt.adam"), `argument` ("b1"), `value`
(1.5) and `allowed` (a `Range`, a tuple of choices, or a phrase such as "a floating dtype or
None"), so that a program (the lab's config loader) can place the error without reading its
text. An argument of the wrong type raises `ArgumentTypeError`, both an ArgumentError and a
TypeError. A condition on several arguments names the one it is reported against, or none
(`argument=None`).

Which function an error names: the one the user called. An optimizer is built from building
blocks; `jopt.adam(1e-3, b1=1.5)` is refused by `scale_by_adam`'s check, but the user called
`jopt.adam`, so the error says `jopt.adam:`. Every public constructor is decorated with
`@public("jopt.NAME")`; the outermost one being called is the name `current_function()` gives,
and blocks capture it at construction for the errors of their `update` as well.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any, TypeVar

_NOTHING = object()  # `value` of an error that is about no single value
# The outermost public constructor being called: (its name, its positional and keyword arguments).
_CALLED: contextvars.ContextVar[tuple[str, tuple, dict] | None] = contextvars.ContextVar(
    "jopt_called", default=None
)

F = TypeVar("F", bound=Callable[..., Any])


class ArgumentError(ValueError):
    """An argument jopt refuses: `fn`, `argument`, `value` and `allowed` say which and why.

    `str(error)` is `"{fn}: {detail}"`; `argument` is None for a condition that no single
    argument breaks (`value` then too), `allowed` None where the detail says it in words.
    """

    def __init__(
        self,
        fn: str,
        detail: str,
        *,
        argument: str | None = None,
        value: Any = _NOTHING,
        allowed: Any = None,
    ):
        self.fn = fn
        self.detail = detail
        self.argument = argument
        self.value = None if value is _NOTHING else value
        self.allowed = allowed
        super().__init__(f"{fn}: {detail}")

    def __reduce__(self):  # picklable (pytest-xdist, multiprocessing) despite keyword arguments
        state = {"argument": self.argument, "value": self.value, "allowed": self.allowed}
        return _rebuild, (type(self), self.fn, self.detail, state)


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of the wrong type: a TypeError, and an ArgumentError like every refusal."""


def _rebuild(cls: type[ArgumentError], fn: str, detail: str, state: dict) -> ArgumentError:
    return cls(fn, detail, **state)


def public(name: str) -> Callable[[F], F]:
    """Marks a public constructor: errors raised while it runs name `name`.

    Errors raised by the constructors it calls name it too, unless it is itself called by
    another public constructor: the outermost call is the one the user made.
    """

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def called(*args: Any, **kwargs: Any) -> Any:
            if _CALLED.get() is not None:
                return function(*args, **kwargs)
            token = _CALLED.set((name, args, kwargs))
            try:
                return function(*args, **kwargs)
            finally:
                _CALLED.reset(token)

        called.public_name = name  # type: ignore[attr-defined]
        return called  # type: ignore[return-value]

    return decorate


def call_as_user(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Calls `function` as if the user had: a public constructor it is names its own errors
    (a group's optimizer, built by `jopt.param_groups`, says `jopt.adamw: b1 must be...`)."""
    token = _CALLED.set(None)
    try:
        return function(*args, **kwargs)
    finally:
        _CALLED.reset(token)


def current_function() -> str:
    """The public constructor the user called, for the errors of the one running now."""
    return _current()[0]


def current_call() -> str:
    """The call the user made, as written: `jopt.exponential_decay(0.01, 1000, 0.5)`."""
    name, args, kwargs = _current()
    words = [repr(a) for a in args] + [f"{key}={value!r}" for key, value in kwargs.items()]
    return f"{name}({', '.join(words)})"


def _current() -> tuple[str, tuple, dict]:
    called = _CALLED.get()
    if called is None:
        raise RuntimeError("jopt internal: called outside a @public constructor.")
    return called
