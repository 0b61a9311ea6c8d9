"""The kinds of record the catalogue (`jopt._src.registry`) is made of: an optimizer's entry, its
examples and convergence configuration, and a framework's twin of it."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
from collections.abc import Callable, Mapping
from typing import Any

import optax

from jopt._src.spec import Spec

Factory = Callable[..., optax.GradientTransformation]


def frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(mapping))


@dataclasses.dataclass(frozen=True)
class Example:
    """A configuration of an optimizer that exercises one of its conventions.

    `optax`: optax's function of the optimizer's `optax` name computes the same trajectory,
    given the arguments it takes (the others are jopt's options at their optax-compatible values).
    """

    kwargs: Mapping[str, Any]
    optax: bool = False

    def __post_init__(self):
        object.__setattr__(self, "kwargs", frozen(self.kwargs))


@dataclasses.dataclass(frozen=True)
class Convergence:
    """A configuration that brings the test problems (an ill-conditioned quadratic and the
    Rosenbrock function, tests/reference/problems.py) within 1e-3 of their minimum, in float64,
    and the steps it took when it was chosen; the tests allow 1.5 times as many."""

    kwargs: Mapping[str, Any]
    quadratic: int
    rosenbrock: int

    def __post_init__(self):
        object.__setattr__(self, "kwargs", frozen(self.kwargs))


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """One optimizer of the catalogue."""

    name: str  # jopt.<name>, and its name in lab configs
    factory: Factory
    hparams: Spec  # its arguments that are hyperparameters or options, by argument name
    paper: str
    optax: str | None  # the optax function of the same convention, if any: "adam", "contrib.adopt"
    examples: Mapping[str, Example]  # by id; the first is the optimizer's defaults
    convergence: Mapping[str, Convergence]  # by id
    scale_invariant: bool = False  # with eps = 0, invariant to rescaling the gradients
    reads_params: bool = False  # `update` needs the params even without weight decay
    # `update` needs the loss at the params, `value=` (a line search also `grad=`, `value_fn=`)
    reads_value: bool = False
    # (state, params) -> the params to evaluate the model at, where they are not the params the
    # optimizer trains (schedule-free: the average x, not y where gradients are taken)
    eval_params: Callable[[Any, Any], Any] | None = None

    def __post_init__(self):
        object.__setattr__(self, "examples", frozen(self.examples))
        object.__setattr__(self, "convergence", frozen(self.convergence))

    @property
    def optax_function(self) -> Factory | None:
        """optax's function `optax` names (dotted below the `optax` module), or None."""
        if self.optax is None:
            return None
        return functools.reduce(getattr, self.optax.split("."), optax)

    @property
    def defaults(self) -> dict[str, Any]:
        """The declared hyperparameters' defaults, read from the factory's signature: the one
        place they are written (None: the block the value belongs to is off by default)."""
        parameters = inspect.signature(self.factory).parameters
        return {
            h.name: parameters[h.name].default
            for h in self.hparams
            if parameters[h.name].default is not inspect.Parameter.empty
        }


@dataclasses.dataclass(frozen=True)
class Twin:
    """A framework's optimizer under its own name, arguments and defaults (`jopt.torch.Adam`)."""

    framework: str  # "torch" or "keras"
    name: str  # the class name in torch.optim / keras.optimizers, and in jopt.<framework>
    factory: Factory
    mirrors: str  # the jopt optimizer it is the framework's version of

    @property
    def key(self) -> str:
        """Its name in lab configs: "torch.Adam"."""
        return f"{self.framework}.{self.name}"
