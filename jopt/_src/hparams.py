"""Hyperparameters in the optimizer state: read them, change them, vmap over them.

Every jopt transform keeps its numeric hyperparameters (learning rate, betas, momentum, eps,
weight decay...) as arrays in an `HParams` node of its state, from `init` on. Because they are
data, not constants baked into the compiled program, a jitted train step can be given a new
learning rate without recompiling, and `jax.vmap` can run a batch of hyperparameter values:

    state = jopt.set_hparams(state, learning_rate=3e-4)       # same compiled step
    jopt.current_lr(state)                                    # the value used at the last step
    states = jax.vmap(lambda lr: jopt.set_hparams(tx.init(params), learning_rate=lr))(lrs)

Exactness. optax bakes Python floats into the program, where `1 - b1` is computed in float64 and
rounded once. Computing `1 - b1` in float32 from a stored float32 `b1` rounds twice and differs by
up to 2 ulp (for b1 = 0.9: 0.10000002 instead of 0.1), which is why `optax.inject_hyperparams`
drifts from `optax.adam` (1e-6 after 500 steps). An `HParams` node therefore also keeps, for each
decay rate, its complement `1 - rate` computed in float64 when the value is a concrete number, so
that jopt's trajectories are bitwise identical to the same optimizer with the constants baked in.

A hyperparameter may also be a schedule, a function of the step count: `update` evaluates it
and stores the value it used, so that reading it shows the schedule's current value.

What each hyperparameter is (its kind, range, derived values) is declared once per transform, in
a `jopt.hparams.Spec` (see `jopt._src.spec`); the node's static data is those declarations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from jopt._src.errors import ArgumentError, ArgumentTypeError
from jopt._src.validation import Range


def default_float() -> np.dtype:
    """The dtype of hyperparameters and schedules: float32, or float64 under `jax_enable_x64`."""
    return np.dtype(jnp.zeros([]).dtype)


@dataclasses.dataclass(frozen=True)
class Derived:
    """A value kept next to the hyperparameters, computed from one of them: `key = fn(source)`."""

    key: str
    source: str
    fn: Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class Meta:
    """Static facts about an `HParams` node (its pytree auxiliary data, hashable): the
    declarations (`jopt.hparams.HParam`) of the numbers it holds, which of them follow a
    schedule, and the values derived from them. Two transforms that compute the same thing have
    equal metadata, and so states of the same tree structure."""

    hparams: tuple[Any, ...]  # HParam declarations, in the order the values are packed
    scheduled: frozenset[str]
    derived: tuple[Derived, ...]
    names: tuple[str, ...] = dataclasses.field(init=False, repr=False, compare=False)
    index: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        names = tuple(h.name for h in self.hparams)
        keys = (*names, *(rule.key for rule in self.derived))
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "index", {key: i for i, key in enumerate(keys)})

    def declaration(self, name: str) -> Any:
        return self.hparams[self.index[name]]


def store(fn: str, name: str, value: Any, allowed: Range, dtype: Any = None) -> jax.Array:
    """`value` as a scalar array of `dtype` (default: the state's float), checked again against
    `allowed` after rounding when concrete.

    b1 = 0.99999999 passes the check as a Python float but rounds to 1.0 in float32, where the
    bias correction 1 - b1**t is 0 and the first step is infinite.
    """
    array = jnp.asarray(value, default_float() if dtype is None else dtype)
    if not isinstance(array, jax.core.Tracer) and float(array) not in allowed:
        raise ArgumentError(
            fn,
            f"{name}={value!r} becomes {float(array)!r} when stored as {array.dtype}, "
            f"which is not {allowed.describe()}.",
            argument=name,
            value=value,
            allowed=allowed,
        )
    return array


def derive(fn: Callable[[Any], Any], value: Any, dtype: np.dtype) -> jax.Array:
    """`fn(value)`, rounded once from float64 when `value` is concrete, else in `dtype`."""
    if isinstance(value, jax.core.Tracer):
        return jnp.asarray(fn(jnp.asarray(value, dtype)), dtype)
    return jnp.asarray(fn(np.float64(value)), dtype=dtype)


@jax.tree_util.register_pytree_with_keys_class
class HParams:
    """The hyperparameters of one transform: a mapping name -> scalar array, kept in its state.

    The values (and the values derived from them, such as `1 - b1`) are packed into one array,
    last axis in the order of `meta.index`: a jitted step then takes and returns one buffer per
    transform instead of one per hyperparameter, which is most of a small model's step time.
    Integer hyperparameters are stored exactly in that float array and read back as int32.
    """

    __slots__ = ("meta", "packed")

    def __init__(self, packed: Any, meta: Meta):
        self.packed = packed
        self.meta = meta

    @classmethod
    def pack(
        cls,
        meta: Meta,
        values: Mapping[str, Any],
        raw: Mapping[str, Any],
        derived: Mapping[str, Any],
    ) -> HParams:
        """A node of `values` (arrays in the state's float dtype), re-deriving from `raw` (the
        values as given, in float64 when concrete) what depends on the names it holds; the other
        derived values are taken from `derived`."""
        derived = dict(derived)
        for rule in meta.derived:
            if rule.source in raw:
                dtype = jnp.result_type(values[rule.source])
                derived[rule.key] = derive(rule.fn, raw[rule.source], dtype)
        arrays = [values[name] for name in meta.names] + [derived[r.key] for r in meta.derived]
        if not arrays:
            return cls(jnp.zeros((0,), default_float()), meta)
        return cls(jnp.stack(jnp.broadcast_arrays(*arrays), axis=-1), meta)

    # -- pytree protocol -------------------------------------------------------------------------
    def tree_flatten_with_keys(self):
        return [(jax.tree_util.GetAttrKey("packed"), self.packed)], self.meta

    def tree_flatten(self):
        return [self.packed], self.meta

    @classmethod
    def tree_unflatten(cls, meta: Meta, children):
        node = object.__new__(cls)
        node.packed, node.meta = children[0], meta
        return node

    # -- reading ---------------------------------------------------------------------------------
    def _column(self, key: str) -> jax.Array:
        return self.packed[..., self.meta.index[key]]

    def __getitem__(self, name: str) -> jax.Array:
        if name not in self.meta.names:
            raise KeyError(name)
        value = self._column(name)
        return value.astype(jnp.int32) if self.meta.declaration(name).kind == "int" else value

    def __contains__(self, name: object) -> bool:
        return name in self.meta.names

    def complement(self, name: str) -> jax.Array:
        """`1 - value` of decay rate `name`, correctly rounded from float64."""
        return self._column("1-" + name)

    @property
    def values(self) -> dict[str, jax.Array]:
        return {name: self[name] for name in self.meta.names}

    @property
    def raw_values(self) -> dict[str, jax.Array]:
        """The values as stored, all in the state's float dtype (integers too)."""
        return {name: self._column(name) for name in self.meta.names}

    @property
    def derived(self) -> dict[str, jax.Array]:
        return {rule.key: self._column(rule.key) for rule in self.meta.derived}

    def __repr__(self) -> str:
        packed = self.packed
        if isinstance(packed, (np.ndarray, jax.Array)) and not isinstance(packed, jax.core.Tracer):
            return f"HParams({', '.join(f'{n}={self[n]!r}' for n in self.meta.names)})"
        # Abstract (jax.eval_shape, tracing) or a placeholder (optax's masked states): no values.
        shape = getattr(packed, "shape", None)
        dtype = getattr(packed, "dtype", None)
        return f"HParams({', '.join(self.meta.names)}; packed {dtype}{list(shape or [])})"

    # -- writing ---------------------------------------------------------------------------------
    def replace(self, where: str = "", **new: Any) -> HParams:
        """A copy with some values changed, checked against their declarations (`where` is the
        node's key path in the state, for errors)."""
        fn = "jopt.set_hparams"
        values = self.raw_values
        dtype = jnp.result_type(self.packed)
        for name, value in new.items():
            hparam = self.meta.declaration(name)
            at = f" (the hyperparameters at {where})" if where else ""
            if name in self.meta.scheduled:
                scale = f" set {hparam.scale} to scale it," if hparam.scale else ""
                raise ArgumentError(
                    fn,
                    f"{name}{at} follows a schedule and is recomputed at every step;{scale} build "
                    "the optimizer with a number to set it, or with another schedule.",
                    argument=name,
                    value=value,
                )
            if jnp.shape(value) != ():
                raise ArgumentError(
                    fn,
                    f"{name} must be a scalar, got shape {jnp.shape(value)}; to run a batch of "
                    "values, set a scalar inside jax.vmap.",
                    argument=name,
                    value=value,
                )
            if isinstance(value, jax.core.Tracer):
                # Traced values cannot be checked while tracing; under `checkify.checkify` this
                # check reports a value out of range, elsewhere it compiles to nothing.
                checkify.check(
                    hparam.allowed.contains_traced(value),
                    f"{fn}: {name}{at} must be {hparam.allowed.describe_finite()}, got {{value}}.",
                    value=value,
                    debug=True,
                )
                if hparam.kind == "int" and not jnp.issubdtype(value.dtype, jnp.integer):
                    raise ArgumentTypeError(
                        fn,
                        f"{name} is an integer; a traced value must have an integer dtype, got "
                        f"{value.dtype}.",
                        argument=name,
                        value=value,
                        allowed=hparam.allowed,
                    )
            else:
                value = hparam.check_value(fn, value)
            # A state stacked outside vmap (one node for many seeds) gets the value in every row.
            batch = jnp.shape(self.packed)[:-1]
            values[name] = jnp.broadcast_to(store(fn, name, value, hparam.allowed, dtype), batch)
        return HParams.pack(self.meta, values, new, self.derived)
