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
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt._src import validation
from jopt._src.validation import Range


def one_minus(x):
    """`1 - x`: the weight of the new sample in an EMA with decay rate x."""
    return 1 - x


@dataclasses.dataclass(frozen=True)
class _Meta:
    """Static facts about an `HParams` node (pytree auxiliary data, hashable)."""

    owner: str  # the public function that built the transform, for error messages
    names: tuple[str, ...]
    ranges: tuple[Range, ...]
    scheduled: frozenset[str]
    # (key, source name, function): values computed from a hyperparameter, e.g. ("1-b1", "b1",
    # one_minus), in float64 when the source is a concrete number.
    derived: tuple[tuple[str, str, Callable[[Any], Any]], ...]
    # The keys of the derived values, and every key's position in the packed array.
    derived_keys: tuple[str, ...] = dataclasses.field(init=False, repr=False, compare=False)
    index: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        derived_keys = tuple(key for key, _, _ in self.derived)
        object.__setattr__(self, "derived_keys", derived_keys)
        keys = (*self.names, *derived_keys)
        object.__setattr__(self, "index", {key: i for i, key in enumerate(keys)})


def _default_float() -> np.dtype:
    return np.dtype(jnp.zeros([]).dtype)  # float32, or float64 when jax_enable_x64 is on


def store(owner: str, name: str, value: Any, allowed: Range, dtype: Any = None) -> jax.Array:
    """`value` as a scalar array of `dtype` (default: the state's float), checked again after
    rounding when concrete.

    b1 = 0.99999999 passes the check as a Python float but rounds to 1.0 in float32, where the
    bias correction 1 - b1**t is 0 and the first step is infinite.
    """
    array = jnp.asarray(value, _default_float() if dtype is None else dtype)
    if not isinstance(array, jax.core.Tracer) and float(array) not in allowed:
        raise ValueError(
            f"{owner}: {name}={value!r} becomes {float(array)!r} when stored as {array.dtype}, "
            f"which is not {allowed.describe()}."
        )
    return array


def _derive(fn: Callable[[Any], Any], value: Any, dtype: np.dtype) -> jax.Array:
    """`fn(value)`, rounded once from float64 when `value` is concrete, else in `dtype`."""
    if isinstance(value, jax.core.Tracer):
        return jnp.asarray(fn(jnp.asarray(value, dtype)), dtype)
    return jnp.asarray(fn(np.float64(value)), dtype=dtype)


def _packed(meta: _Meta, values: dict[str, Any], raw: Mapping[str, Any], derived: dict) -> HParams:
    """An `HParams` of `values`, re-deriving from `raw` what depends on the names it holds."""
    for key, source, fn in meta.derived:
        if source in raw:
            derived[key] = _derive(fn, raw[source], jnp.result_type(values[source]))
    return HParams.pack(values, derived, meta)


@jax.tree_util.register_pytree_with_keys_class
class HParams:
    """The hyperparameters of one transform: a mapping name -> scalar array, kept in its state.

    The values (and the values derived from them, such as `1 - b1`) are packed into one array,
    last axis in the order of `meta.index`: a jitted step then takes and returns one buffer per
    transform instead of one per hyperparameter, which is most of a small model's step time.
    """

    __slots__ = ("packed", "meta")

    def __init__(self, packed: Any, meta: _Meta):
        self.packed = packed
        self.meta = meta

    @classmethod
    def pack(cls, values: Mapping[str, Any], derived: Mapping[str, Any], meta: _Meta) -> HParams:
        arrays = [values[k] for k in meta.names] + [derived[k] for k in meta.derived_keys]
        if not arrays:
            return cls(jnp.zeros((0,), _default_float()), meta)
        return cls(jnp.stack(jnp.broadcast_arrays(*arrays), axis=-1), meta)

    # -- pytree protocol -------------------------------------------------------------------------
    def tree_flatten_with_keys(self):
        return [(jax.tree_util.GetAttrKey("packed"), self.packed)], self.meta

    def tree_flatten(self):
        return [self.packed], self.meta

    @classmethod
    def tree_unflatten(cls, meta: _Meta, children):
        node = object.__new__(cls)
        node.packed, node.meta = children[0], meta
        return node

    # -- reading ---------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> jax.Array:
        if name not in self.meta.names:
            raise KeyError(name)
        return self.packed[..., self.meta.index[name]]

    def __contains__(self, name: str) -> bool:
        return name in self.meta.names

    def complement(self, name: str) -> jax.Array:
        """`1 - value` of decay rate `name`, correctly rounded from float64."""
        return self.packed[..., self.meta.index["1-" + name]]

    @property
    def values(self) -> dict[str, jax.Array]:
        return {name: self[name] for name in self.meta.names}

    @property
    def derived(self) -> dict[str, jax.Array]:
        return {key: self.packed[..., self.meta.index[key]] for key in self.meta.derived_keys}

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={self[n]!r}" for n in self.meta.names)
        return f"HParams({inner})"

    # -- writing ---------------------------------------------------------------------------------
    def _with(self, values: dict[str, Any], raw: Mapping[str, Any]) -> HParams:
        """A node with `values`, re-deriving what depends on the names in `raw` (given values)."""
        return _packed(self.meta, values, raw, self.derived)

    def replace(self, **new: Any) -> HParams:
        """A copy with some values changed, checked against the constructor's rules."""
        values = dict(self.values)
        ranges = dict(zip(self.meta.names, self.meta.ranges, strict=True))
        for name, value in new.items():
            if name in self.meta.scheduled:
                raise ValueError(
                    f"jopt.set_hparams: {name} of {self.meta.owner} follows a schedule and is "
                    "recomputed at every step; build the optimizer with a number to set it, or "
                    "with another schedule."
                )
            if jnp.shape(value) != ():
                raise ValueError(
                    f"jopt.set_hparams: {name} must be a scalar, got shape {jnp.shape(value)}; "
                    "to run a batch of values, set a scalar inside jax.vmap."
                )
            if not isinstance(value, jax.core.Tracer):
                validation.check_number(
                    f"jopt.set_hparams ({self.meta.owner})", name, value, ranges[name]
                )
            dtype = jnp.result_type(self.packed)
            values[name] = store("jopt.set_hparams", name, value, ranges[name], dtype)
        return self._with(values, new)


class Spec:
    """A transform's hyperparameters as given to its constructor: numbers or schedules.

    Built once at construction, after validation. `init` turns it into the `HParams` node of a
    fresh state; `resolve` gives the values to use at a step (evaluating schedules).

    `decays` names the decay rates whose complement `1 - rate` the transform reads
    (`hparams.complement(name)`); `derived` maps further keys to (source name, function).
    """

    def __init__(
        self,
        owner: str,
        values: Mapping[str, float | Callable[[Any], Any]],
        ranges: Mapping[str, Range],
        decays: tuple[str, ...] = (),
        derived: Mapping[str, tuple[str, Callable[[Any], Any]]] | None = None,
    ):
        self.given = dict(values)
        self.schedules = {n: v for n, v in values.items() if callable(v)}
        names = tuple(values)
        rules = [("1-" + name, name, one_minus) for name in decays]
        rules += [(key, source, fn) for key, (source, fn) in (derived or {}).items()]
        self.meta = _Meta(
            owner=owner,
            names=names,
            ranges=tuple(ranges[n] for n in names),
            scheduled=frozenset(self.schedules),
            derived=tuple(rules),
        )
        for name, value in self.given.items():  # reject values that round out of range now
            if name not in self.schedules:
                store(owner, name, value, ranges[name], _default_float())

    def init(self) -> HParams:
        dtype = _default_float()
        count = jnp.zeros([], jnp.int32)
        raw = {
            name: self.schedules[name](count) if name in self.schedules else value
            for name, value in self.given.items()
        }
        ranges = dict(zip(self.meta.names, self.meta.ranges, strict=True))
        values = {
            name: jnp.asarray(value, dtype)
            if name in self.schedules
            else store(self.meta.owner, name, value, ranges[name], dtype)
            for name, value in raw.items()
        }
        return _packed(self.meta, values, raw, {})

    def resolve(self, hparams: HParams, count: jax.Array) -> HParams:
        """The values in effect at step `count`: scheduled ones evaluated, the rest as stored."""
        if not self.schedules:
            return hparams
        values = dict(hparams.values)
        ranges = dict(zip(self.meta.names, self.meta.ranges, strict=True))
        for name, schedule in self.schedules.items():
            value = jnp.asarray(schedule(count), jnp.result_type(values[name]))
            floor = ranges[name].lo
            if math.isfinite(floor) and not ranges[name].lo_open:
                # Under jit, XLA may turn `count / 10` into `count * 0.1`: a schedule decaying to
                # 0 can end at -7e-10, and a negative learning rate would ascend.
                value = jnp.maximum(value, jnp.asarray(floor, value.dtype))
            values[name] = value
        return hparams._with(values, {name: values[name] for name in self.schedules})


# -- public functions over any state tree --------------------------------------------------------


def _is_hparams(node: Any) -> bool:
    return isinstance(node, HParams)


def _nodes(state: Any) -> list[HParams]:
    return [n for n in jax.tree.leaves(state, is_leaf=_is_hparams) if _is_hparams(n)]


def get_hparams(state: Any) -> dict[str, jax.Array]:
    """All hyperparameters in `state` (any optimizer state tree, optax chains included).

    Returns a dict name -> array. A name held by two transforms (say two chained `trace`s) is an
    error: read those through the sub-states, `get_hparams(state[0])`.
    """
    found: dict[str, jax.Array] = {}
    owners: dict[str, str] = {}
    for node in _nodes(state):
        for name in node.meta.names:
            if name in found:
                raise ValueError(
                    f"jopt.get_hparams: {name!r} is held by both {owners[name]} and "
                    f"{node.meta.owner}; read it from a sub-state instead."
                )
            found[name], owners[name] = node[name], node.meta.owner
    return found


def set_hparams(state: Any, **values: Any) -> Any:
    """Returns `state` with hyperparameters changed: `set_hparams(state, learning_rate=1e-4)`.

    Works on any state tree (optax chains, `optax.MultiSteps`...), inside or outside `jit` and
    `vmap`. Concrete values are checked against the same rules as the constructor; every
    transform holding a name gets the new value. Unknown names and scheduled hyperparameters
    (recomputed each step) raise a `ValueError`.
    """
    hit: set[str] = set()

    def visit(node: Any) -> Any:
        if not _is_hparams(node):
            return node
        mine = {k: v for k, v in values.items() if k in node}
        hit.update(mine)
        return node.replace(**mine) if mine else node

    new_state = jax.tree.map(visit, state, is_leaf=_is_hparams)
    unknown = sorted(set(values) - hit)
    if unknown:
        available = sorted({n for node in _nodes(state) for n in node.meta.names})
        raise ValueError(
            f"jopt.set_hparams: no hyperparameter named {', '.join(map(repr, unknown))} in this "
            f"state; it holds: {', '.join(available) or 'none'}. A block switched off at "
            "construction (momentum=None, weight_decay=None) has none: build the optimizer "
            "with a value, 0.0 included, to set it later."
        )
    return new_state


def current_lr(state: Any) -> jax.Array:
    """The learning rate used at the last step (with a schedule: its value at that step).

    Before the first step, the learning rate the first step will use.
    """
    rates = [node["learning_rate"] for node in _nodes(state) if "learning_rate" in node]
    if not rates:
        raise ValueError("jopt.current_lr: this state holds no learning rate.")
    if len(rates) > 1:
        raise ValueError(
            f"jopt.current_lr: this state holds {len(rates)} learning rates (one per chained "
            "transform that scales by one); read them with jopt.get_hparams on sub-states."
        )
    return rates[0]
