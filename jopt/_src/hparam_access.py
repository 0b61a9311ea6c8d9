"""Reading and setting hyperparameters on any optimizer state: `get_hparams`, `set_hparams`,
`current_lr`, over optax chains and wrappers (`optax.MultiSteps`, `jopt.skip_nonfinite`...).

A state with parameter groups (`jopt.param_groups`, or any `optax.partition` of jopt
optimizers) holds one `optax.PartitionState`; its hyperparameters are then read per group:

    jopt.current_lr(state)                    # {"head": 0.01, "default": 0.001}
    jopt.get_hparams(state)["head"]["b1"]
    jopt.set_hparams(state, learning_rate=3e-3, group="head")   # that group only
    jopt.set_hparams(state, learning_rate=3e-3)                 # every group

A hyperparameter of a block outside the partition (a `clip_by_global_norm` chained before it)
acts on every group: it is in every group's mapping, and is set without `group=`. A frozen
group has no hyperparameters (an empty mapping, and no learning rate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import optax

from jopt._src.errors import ArgumentError
from jopt._src.hparams import HParams

Group = str | None  # the parameter group a node acts on; None: all of them (or no groups)


def _is_hparams(node: Any) -> bool:
    return isinstance(node, HParams)


def _is_partition(node: Any) -> bool:
    return isinstance(node, optax.transforms.PartitionState)


def _map(state: Any, visit: Callable[[str, HParams, Group], HParams], group: Group = None) -> Any:
    """`state` with `visit(path, node, group)` applied to every HParams node; `group` is the
    name of the parameter group the node is in (nested partitions count as their outer group)."""

    def one(path, node):
        if _is_hparams(node):
            return visit(jax.tree_util.keystr(path), node, group)
        if _is_partition(node):
            inner = {
                label: _map(sub, _under(visit, path, label), group or label)
                for label, sub in node.inner_states.items()
            }
            return node._replace(inner_states=inner)
        return node

    return jax.tree_util.tree_map_with_path(
        one, state, is_leaf=lambda n: _is_hparams(n) or _is_partition(n)
    )


def _under(visit, path, label):
    """`visit` with paths relative to a group's state prefixed by the partition's."""
    prefix = f"{jax.tree_util.keystr(path)}.inner_states[{label!r}]"
    return lambda sub_path, node, group: visit(prefix + sub_path, node, group)


def nodes(state: Any) -> list[tuple[str, HParams, Group]]:
    """(key path, node, parameter group or None) of every HParams node in `state`."""
    found = []

    def record(path, node, group):
        found.append((path, node, group))
        return node

    _map(state, record)
    return found


def groups(state: Any) -> list[str] | None:
    """The names of the parameter groups of `state`, sorted (as jax orders a dict's keys, so
    that the order does not change when a state comes out of `jit`), or None without groups."""
    partitions = [
        n for n in jax.tree.leaves(state, is_leaf=_is_partition) if _is_partition(n)
    ]  # outermost only: leaves stop at the first partition on each path
    if not partitions:
        return None
    return sorted({label for partition in partitions for label in partition.inner_states})


def get_hparams(state: Any) -> dict[str, Any]:
    """All hyperparameters in `state`: `{name: array}`, or with parameter groups
    `{group: {name: array}}` (int32 for integer hyperparameters, the state's float dtype
    otherwise). A name held by two transforms acting on the same leaves (say two chained
    `trace`s) is an error: read those through the sub-states, `get_hparams(state[0])`."""
    names = groups(state)
    found = nodes(state)
    if names is None:
        return _collect(found)
    return {name: _collect([n for n in found if n[2] in (None, name)]) for name in names}


def _collect(found: Sequence[tuple[str, HParams, Group]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    where: dict[str, str] = {}
    for path, node, _ in found:
        for name in node.meta.names:
            if name in out:
                raise ValueError(
                    f"jopt.get_hparams: {name!r} is held by two transforms, at {where[name]} "
                    f"and at {path}; read it from a sub-state instead."
                )
            out[name], where[name] = node[name], path
    return out


def set_hparams(state: Any, *, group: str | Sequence[str] | None = None, **values: Any) -> Any:
    """Returns `state` with hyperparameters changed: `set_hparams(state, learning_rate=1e-4)`.

    Works on any state tree (optax chains, `optax.MultiSteps`...), inside or outside `jit` and
    `vmap`. Concrete values are checked against the same rules as the constructor (an integer
    hyperparameter takes integers); every transform holding a name gets the new value, or with
    `group` (a name or several) only those in these parameter groups. Unknown names, unknown
    groups and scheduled hyperparameters (recomputed each step) raise an `ArgumentError`.
    """
    chosen = _chosen_groups(state, group)
    hit: set[str] = set()
    shared: set[str] = set()

    def visit(path: str, node: HParams, in_group: Group) -> HParams:
        mine = {k: v for k, v in values.items() if k in node}
        if chosen is not None and in_group not in chosen:
            shared.update(mine if in_group is None else ())
            return node
        hit.update(mine)
        return node.replace(path, **mine) if mine else node

    new_state = _map(state, visit)
    unknown = sorted(set(values) - hit)
    if unknown and set(unknown) <= shared:
        raise ArgumentError(
            "jopt.set_hparams",
            f"{', '.join(map(repr, unknown))} belongs to a block outside the parameter groups, "
            "which acts on every group: set it without group=.",
            argument=unknown[0],
            value=values[unknown[0]],
        )
    if unknown:
        scope = [n for n in nodes(state) if chosen is None or n[2] in chosen]
        available = sorted({name for _, node, _ in scope for name in node.meta.names})
        where = "this state" if chosen is None else f"group {', '.join(map(repr, chosen))}"
        raise ArgumentError(
            "jopt.set_hparams",
            f"no hyperparameter named {', '.join(map(repr, unknown))} in {where}; it holds: "
            f"{', '.join(available) or 'none'}. A block switched off at construction "
            "(momentum=None, weight_decay=None) has none: build the optimizer with a value, 0.0 "
            "included, to set it later.",
            argument=unknown[0],
            value=values[unknown[0]],
            allowed=tuple(available),
        )
    return new_state


def _chosen_groups(state: Any, group: str | Sequence[str] | None) -> set[str] | None:
    if group is None:
        return None
    chosen = [group] if isinstance(group, str) else list(group)
    names = groups(state)
    if names is None:
        raise ArgumentError(
            "jopt.set_hparams",
            f"group={group!r} given, but this state has no parameter groups (no "
            "jopt.param_groups or optax.partition in it).",
            argument="group",
            value=group,
        )
    unknown = [g for g in chosen if g not in names]
    if unknown or not chosen:
        raise ArgumentError(
            "jopt.set_hparams",
            f"no parameter group {unknown[0] if unknown else group!r} in this state; its groups "
            f"are {', '.join(map(repr, names))}.",
            argument="group",
            value=group,
            allowed=tuple(names),
        )
    return set(chosen)


def current_lr(state: Any) -> Any:
    """The learning rate used at the last step (with a schedule: its value at that step), or
    with parameter groups `{group: rate}` (frozen groups, which have none, left out).

    Before the first step, the learning rate the first step will use.
    """
    names = groups(state)
    found = [(node, group) for _, node, group in nodes(state) if "learning_rate" in node]
    if names is None:
        return _one_rate([node for node, _ in found])
    rates = {}
    for name in names:
        mine = [node for node, group in found if group in (None, name)]
        if mine:
            rates[name] = _one_rate(mine, f" in group {name!r}")
    if not rates:
        raise ValueError("jopt.current_lr: no parameter group of this state has a learning rate.")
    return rates


def _one_rate(found: Sequence[HParams], where: str = "") -> jax.Array:
    if not found:
        raise ValueError("jopt.current_lr: this state holds no learning rate.")
    if len(found) > 1:
        raise ValueError(
            f"jopt.current_lr: this state holds {len(found)} learning rates{where} (one per "
            "chained transform that scales by one); read them with jopt.get_hparams on "
            "sub-states."
        )
    return found[0]["learning_rate"]
