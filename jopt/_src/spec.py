"""Hyperparameters declared once, as data: what construction, the state and the lab all read.

A transform declares each of its hyperparameters once, at module level:

    B1 = Float("b1", DECAY, schedulable=True, complement=True)   # in [0, 1), may follow a schedule
    EPS = Float("eps", NON_NEGATIVE)                              # a number >= 0
    PATIENCE = Int("patience", minimum=0)                         # an integer, stays an integer
    NESTEROV = Flag("nesterov")                                   # True or False: the program
    ADAM = Spec(B1, B2, EPS, EPS_ROOT, NESTEROV)

and its constructor binds the arguments it was given: `ADAM.bind(fn, b1=b1, ...)` checks every
value (raising an `ArgumentError` that names `fn`, the argument, the value and the range) and
returns a `Bound`, whose `init()` is the `HParams` node of a fresh state and whose
`resolve(hparams, count)` gives the values in effect at a step (schedules evaluated).
`jopt.set_hparams` applies the same declaration to the values it sets, so an integer stays an
integer and a decay rate stays in [0, 1); the lab reads the declarations of the registry's
optimizers to validate configs and to know what can be searched.

Kinds. Numbers ("float", "int") are kept in the state (`in_state=False`: constants such as an
initial accumulator value or RAdam's threshold), floats may follow a schedule when declared
`schedulable`. Options ("bool", "choice") select the program (nesterov, a momentum form): they are
checked like the rest but kept in the closure, since changing one means compiling another program.

Dtypes. Every number in the state is stored in the default float dtype (float32, float64 under
`jax_enable_x64`), packed into one array per transform, and cast to each leaf's arithmetic dtype
where it is used; an "int" is stored exactly (below 2**24, its range) and read back as int32.

Derived values. A decay rate's complement `1 - b1` (`complement=True`) and values such as RAdam's
`rho_inf = 2 / (1 - b2) - 1` (`derived=`) are computed from the value given, in float64, and
rounded once: the same numbers optax computes from the Python floats it bakes into the program.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jopt._src import validation
from jopt._src.errors import ArgumentError
from jopt._src.hparams import Derived, HParams, Meta, default_float, store
from jopt._src.validation import ANY_FINITE, NON_NEGATIVE, Range

NUMBER_KINDS = ("float", "int")  # kept in the state; "bool" and "choice" select the program
# An integer hyperparameter is stored in the state's float array: exact up to 2**24 in float32.
INT_LIMIT = 2**24


def one_minus(x: Any) -> Any:
    """`1 - x`: the weight of the new sample in an EMA with decay rate x."""
    return 1 - x


@dataclasses.dataclass(frozen=True)
class HParam:
    """One hyperparameter of a transform, as declared (see the module docstring).

    Build one with `Float`, `Int`, `Flag` or `Choice`. Hashable and free of message strings: the
    declarations of a transform's numbers in the state are its `HParams` node's static data.
    """

    name: str
    kind: str  # "float", "int" (numbers); "bool", "choice" (options selecting the program)
    allowed: Range | tuple[str, ...] | None  # numbers: a Range; choices: the choices
    schedulable: bool = False  # a float that may also be a schedule `count -> value`
    complement: bool = False  # also keep `1 - value`, rounded once from float64 (decay rates)
    in_state: bool = True  # numbers: kept in the state (False: a constant of the program)
    optional: bool = False  # None is allowed: it leaves the block the value belongs to out
    # A schedulable float's scale: when it follows a schedule, the state also keeps this number
    # (1 at init), and the value in effect is the schedule's times it (`lr_scale`, which
    # `jopt.reduce_on_plateau` lowers on a scheduled learning rate).
    scale: str | None = None

    @property
    def is_number(self) -> bool:
        return self.kind in NUMBER_KINDS

    def as_optional(self) -> HParam:
        """The same declaration, where None (switching its block off) is allowed too."""
        return dataclasses.replace(self, optional=True)

    def check(self, fn: str, value: Any, argument: str | None = None) -> Any:
        """`value` checked against this declaration, under the name `argument` (default: the
        hyperparameter's name): a float, an int, a schedule, a bool or a choice, or None."""
        name = argument or self.name
        if value is None and self.optional:
            return None
        if self.kind == "bool":
            return validation.check_bool(fn, name, value)
        if self.kind == "choice":
            return validation.check_choice(fn, name, value, self.allowed)
        if self.kind == "int":
            return check_integer(fn, name, value, self.allowed)
        if self.schedulable:
            return validation.check_number_or_schedule(fn, name, value, self.allowed)
        return validation.check_number(fn, name, value, self.allowed)

    def check_value(self, fn: str, value: Any) -> float | int:
        """A concrete number for this hyperparameter, as `jopt.set_hparams` takes: no schedule."""
        if self.kind == "int":
            return check_integer(fn, self.name, value, self.allowed)
        return validation.check_number(fn, self.name, value, self.allowed)


def Float(  # noqa: N802 - reads as the kind it declares
    name: str,
    allowed: Range = ANY_FINITE,
    *,
    schedulable: bool = False,
    complement: bool = False,
    in_state: bool = True,
    scale: str | None = None,
) -> HParam:
    """A real hyperparameter in `allowed`; a schedule too if `schedulable` (scaled by the number
    `scale` names, when it follows one)."""
    return HParam(name, "float", allowed, schedulable, complement, in_state, scale=scale)


def Int(name: str, minimum: int = 0, *, in_state: bool = True) -> HParam:  # noqa: N802
    """An integer hyperparameter >= `minimum` (and below 2**24, stored exactly)."""
    return HParam(name, "int", Range(float(minimum)), in_state=in_state)


def Flag(name: str) -> HParam:  # noqa: N802
    """An option that is True or False (it selects the program; not in the state)."""
    return HParam(name, "bool", None, in_state=False)


def Choice(name: str, choices: tuple[str, ...]) -> HParam:  # noqa: N802
    """An option that is one of `choices` (it selects the program; not in the state)."""
    return HParam(name, "choice", tuple(choices), in_state=False)


def check_integer(fn: str, name: str, value: Any, allowed: Range) -> int:
    """An integer in `allowed`, below 2**24 (integral floats such as 3.0 are taken as integers)."""
    x = validation.check_int(fn, name, value, int(allowed.lo))
    if x >= INT_LIMIT:
        raise ArgumentError(
            fn,
            f"{name} must be an integer below 2**24 (stored exactly in the state), got {value!r}.",
            argument=name,
            value=value,
            allowed=allowed,
        )
    return x


class Spec:
    """A transform's hyperparameters, in declaration order: `Spec(B1, B2, EPS)`.

    `derived` maps further state keys to `(source name, function)`, computed from the source's
    value in float64 (`{"rho_inf": ("b2", rho_inf)}`); a `complement=True` declaration adds
    `("1-" + name, (name, one_minus))` by itself. Functions must be module-level (they are part
    of the state's static data, compared by identity).
    """

    def __init__(self, *hparams: HParam, derived: Mapping[str, tuple[str, Callable]] | None = None):
        names = [h.name for h in hparams]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Spec: hyperparameters declared twice: {duplicates}.")
        self.hparams: dict[str, HParam] = {h.name: h for h in hparams}
        rules = [Derived("1-" + h.name, h.name, one_minus) for h in hparams if h.complement]
        rules += [Derived(key, source, fn) for key, (source, fn) in (derived or {}).items()]
        for rule in rules:
            if rule.source not in self.hparams:
                raise ValueError(f"Spec: {rule.key} is derived from undeclared {rule.source}.")
        self.derived = tuple(rules)

    def __getitem__(self, name: str) -> HParam:
        return self.hparams[name]

    def __contains__(self, name: object) -> bool:
        return name in self.hparams

    def __iter__(self) -> Iterator[HParam]:
        return iter(self.hparams.values())

    def __repr__(self) -> str:
        return f"Spec({', '.join(self.hparams)})"

    def check(self, fn: str, **values: Any) -> dict[str, Any]:
        """The constructor's `values` (a subset of the declared names), checked under `fn`."""
        unknown = sorted(set(values) - set(self.hparams))
        if unknown:
            raise TypeError(f"{fn}: {self!r} declares no {', '.join(unknown)}.")
        return {name: self.hparams[name].check(fn, value) for name, value in values.items()}

    def bind(self, fn: str, **values: Any) -> Bound:
        """`check`, then the values bound to this spec: what a transform's state starts from."""
        return Bound(self, fn, self.check(fn, **values))


class Bound:
    """A `Spec` with the values a constructor was given, checked (`Spec.bind`, or `Bound(spec,
    fn, checked)` for values already checked): what its state starts from.

    `bound[name]` is the checked value (a number, a schedule, a bool or a choice); `init()` the
    `HParams` node of a fresh state; `resolve(hparams, count)` the values in effect at a step.
    """

    def __init__(self, spec: Spec, fn: str, values: Mapping[str, Any]):
        self.spec, self.fn, self.values = spec, fn, dict(values)
        in_state = [
            spec[name]
            for name, value in values.items()
            if spec[name].in_state and spec[name].is_number and value is not None
        ]
        self.schedules = {h.name: values[h.name] for h in in_state if callable(values[h.name])}
        self.scales = {h.name: h.scale for h in in_state if h.name in self.schedules and h.scale}
        for scale in self.scales.values():
            in_state.append(Float(scale, NON_NEGATIVE))
            self.values[scale] = 1.0
        names = {h.name for h in in_state}
        self.meta = Meta(
            hparams=tuple(in_state),
            scheduled=frozenset(self.schedules),
            derived=tuple(rule for rule in spec.derived if rule.source in names),
        )
        for h in in_state:  # reject values that round out of range in the state's dtype, now
            if h.name not in self.schedules:
                store(fn, h.name, self.values[h.name], h.allowed)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def init(self) -> HParams:
        """The hyperparameters of a fresh state: schedules at step 0, numbers as given."""
        dtype = default_float()
        count = jnp.zeros([], jnp.int32)
        raw = {
            h.name: self.schedules[h.name](count)
            if h.name in self.schedules
            else self.values[h.name]
            for h in self.meta.hparams
        }
        stored = {
            h.name: jnp.asarray(raw[h.name], dtype)
            if h.name in self.schedules
            else store(self.fn, h.name, raw[h.name], h.allowed, dtype)
            for h in self.meta.hparams
        }
        return HParams.pack(self.meta, stored, raw, {})

    def resolve(self, hparams: HParams, count: jax.Array) -> HParams:
        """The values in effect at step `count`: scheduled ones evaluated, the rest as stored."""
        if not self.schedules:
            return hparams
        values = dict(hparams.raw_values)
        for name, schedule in self.schedules.items():
            value = jnp.asarray(schedule(count), values[name].dtype)
            if name in self.scales:
                value = value * values[self.scales[name]]
            floor = self.spec[name].allowed.lo
            if math.isfinite(floor) and not self.spec[name].allowed.lo_open:
                # Under jit, XLA may turn `count / 10` into `count * 0.1`: a schedule decaying to
                # 0 can end at -7e-10, and a negative learning rate would ascend.
                value = jnp.maximum(value, jnp.asarray(floor, value.dtype))
            values[name] = value
        return HParams.pack(
            self.meta, values, {name: values[name] for name in self.schedules}, hparams.derived
        )
