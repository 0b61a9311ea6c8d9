"""Parameter groups: other hyperparameters, another optimizer, or none, for some parameters,
chosen by rules on their key paths.

    tx = jopt.param_groups(
        functools.partial(jopt.adamw, learning_rate=1e-3, weight_decay=1e-2),
        jopt.Group("head", "head/**", learning_rate=1e-2),
        jopt.Group("no_decay", ("**/bias", "**/scale"), weight_decay=0.0),
        jopt.Group("embedding", "embed/**", frozen=True),
    )

A rule picks leaves by their key paths written with "/" ("head/kernel"): a glob ("**/bias",
with `*` within a segment and `**` across), "re:" and a regular expression, a function
`(path, leaf) -> bool`, or a tuple of these (`jopt._src.path_rules`).

Each leaf goes to the first group, in the order given, whose rule matches it; unmatched leaves
go to the default group (the base optimizer as given), or are an error with `default=None`.
A group either overrides arguments of the base optimizer (any of its arguments, plus `lr_scale`,
a factor on its learning rate or schedule, and `l1`, an L1 penalty added to the gradients), or
brings its own `optimizer`, or is `frozen`: zero updates and no optimizer state at all.

The result is `optax.partition` over the groups (its state an `optax.PartitionState` keyed by
group name), so `jopt.get_hparams`, `jopt.current_lr` and `jopt.set_hparams(..., group=)` read and
set each group's hyperparameters (`jopt._src.hparam_access`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optax

from jopt._src import errors, path_rules, per_leaf, validation
from jopt._src.errors import ArgumentError
from jopt._src.schedules.schedule import Schedule
from jopt._src.transforms.regularization import add_l1_penalty
from jopt._src.validation import NON_NEGATIVE, POSITIVE

LEARNING_RATE_NAMES = ("learning_rate", "lr")  # jopt's and optax's name, torch's


class Group:
    """One parameter group: a name, the rule that picks its leaves, and what it changes.

    Args:
      name: the group's name (a key of the state's `inner_states`, and of `get_hparams`).
      match: the rule (see the module docstring).
      optimizer: a transform of its own for the group, in place of the base optimizer.
      frozen: no updates (zeros) and no optimizer state for the group's leaves.
      lr_scale: a factor > 0 on the base optimizer's learning rate (on each value of a schedule).
      l1: an L1 penalty >= 0, `l1 * sign(theta)` added to the group's gradients.
      **overrides: arguments of the base optimizer that differ in this group
        (`learning_rate=1e-2`, `weight_decay=0.0`, `b1=0.8`...).
    """

    __slots__ = ("frozen", "l1", "lr_scale", "match", "name", "optimizer", "overrides")

    def __init__(
        self,
        name: str,
        match: path_rules.Rule,
        *,
        optimizer: optax.GradientTransformation | None = None,
        frozen: bool = False,
        lr_scale: float | None = None,
        l1: float | None = None,
        **overrides: Any,
    ):
        if not isinstance(name, str) or not name:
            raise ArgumentError(
                "jopt.Group",
                f"name must be a non-empty string, got {name!r}.",
                argument="name",
                value=name,
            )
        fn = f"jopt.Group({name!r})"
        self.name = name
        self.match = path_rules.compile_rule(fn, "match", match)
        self.optimizer = optimizer
        self.frozen = validation.check_bool(fn, "frozen", frozen)
        self.lr_scale = validation.check_optional_number(fn, "lr_scale", lr_scale, POSITIVE)
        self.l1 = validation.check_optional_number(fn, "l1", l1, NON_NEGATIVE)
        self.overrides = dict(overrides)
        changes = [k for k in ("lr_scale", "l1") if getattr(self, k) is not None]
        changes += list(self.overrides)
        if optimizer is not None and not isinstance(optimizer, optax.GradientTransformation):
            raise ArgumentError(
                fn,
                f"optimizer must be an optax.GradientTransformation (a built "
                f"optimizer such as jopt.sgd(0.1)), got {optimizer!r}.",
                argument="optimizer",
                value=optimizer,
            )
        if (frozen or optimizer is not None) and changes:
            what = "a frozen group" if frozen else "a group with its own optimizer"
            raise ArgumentError(
                fn,
                f"{what} takes no overrides of the base optimizer, got {', '.join(changes)}.",
                argument=changes[0],
            )
        if frozen and optimizer is not None:
            raise ArgumentError(fn, "frozen=True takes no optimizer.", argument="optimizer")

    def __repr__(self) -> str:
        extras = [f"{k}={getattr(self, k)!r}" for k in ("lr_scale", "l1") if getattr(self, k)]
        extras += [f"{k}={v!r}" for k, v in self.overrides.items()]
        extras += ["frozen=True"] if self.frozen else []
        extras += [f"optimizer={self.optimizer!r}"] if self.optimizer is not None else []
        return f"Group({', '.join([repr(self.name), *extras])})"


@errors.public("jopt.param_groups")
def param_groups(
    optimizer: Callable[..., optax.GradientTransformation] | optax.GradientTransformation,
    *groups: Group,
    default: str | None = "default",
) -> optax.GradientTransformationExtraArgs:
    """Parameter groups over a base optimizer (see the module docstring).

    Args:
      optimizer: the base optimizer, as a function of its arguments with their values bound
        (`functools.partial(jopt.adamw, learning_rate=1e-3)`, or a factory called with none),
        which groups with overrides call with theirs; or a built transform, which groups can
        only replace (`optimizer=`) or freeze.
      *groups: the groups, in the order their rules are tried.
      default: the name of the group of unmatched leaves (the base optimizer as given), or None
        to make an unmatched leaf an error.

    Returns:
      `optax.partition` of one transform per group, in an `optax.PartitionState` keyed by name.
    """
    fn = errors.current_function()
    groups = _check_groups(fn, groups, default)
    transforms = {group.name: _group_transform(fn, optimizer, group) for group in groups}
    if default is not None:
        transforms[default] = _base(fn, optimizer, {})
    rules = [(group.name, group.match) for group in groups]
    partitioned = optax.partition(
        transforms, functools.partial(path_rules.labels, fn, rules, default)
    )
    return per_leaf.declare(partitioned, "hyperparameters chosen by each leaf's path")


@errors.public("jopt.assign_groups")
def assign_groups(params: Any, *groups: Group, default: str | None = "default") -> dict[str, str]:
    """`{path: group name}` for every leaf of `params`, as `param_groups` assigns them."""
    fn = errors.current_function()
    groups = _check_groups(fn, groups, default)
    return dict(_assign(fn, params, groups, default))


@errors.public("jopt.describe_groups")
def describe_groups(params: Any, *groups: Group, default: str | None = "default") -> str:
    """A Markdown table of the groups: leaves, parameters and the first paths of each."""
    fn = errors.current_function()
    groups = _check_groups(fn, groups, default)
    sizes = {path: int(np.size(leaf)) for path, leaf in path_rules.leaves(params)}
    members: dict[str, list[str]] = {g.name: [] for g in groups}
    if default is not None:
        members[default] = []
    for path, name in _assign(fn, params, groups, default):
        members[name].append(path)
    rows = ["| group | leaves | parameters | paths |", "|---|---:|---:|---|"]
    for name, paths in members.items():
        shown = ", ".join(paths[:3]) + (f", ... ({len(paths) - 3} more)" if len(paths) > 3 else "")
        rows.append(f"| {name} | {len(paths)} | {sum(sizes[p] for p in paths):,} | {shown} |")
    return "\n".join(rows)


# -- building --------------------------------------------------------------------------------


def _assign(fn: str, tree: Any, groups: Sequence[Group], default: str | None):
    return path_rules.assign(fn, tree, [(g.name, g.match) for g in groups], default)


def _check_groups(fn: str, groups: Sequence[Any], default: str | None) -> tuple[Group, ...]:
    names = []
    for i, group in enumerate(groups):
        if not isinstance(group, Group):
            raise ArgumentError(
                fn,
                f"groups[{i}] must be a jopt.Group, got {group!r}.",
                argument="groups",
                value=group,
            )
        names.append(group.name)
    if default is not None and (not isinstance(default, str) or not default):
        raise ArgumentError(
            fn,
            f"default must be a group name or None, got {default!r}.",
            argument="default",
            value=default,
        )
    taken = [*names, *([default] if default is not None else [])]
    twice = sorted({n for n in taken if taken.count(n) > 1})
    if twice:
        raise ArgumentError(
            fn,
            f"group names must be unique, got {', '.join(map(repr, twice))} more than once "
            f"(the default group is named {default!r}; rename it with default=).",
            argument="groups",
            value=twice,
        )
    if not groups and default is None:
        raise ArgumentError(
            fn, "no groups and no default group: nothing to optimize.", argument="groups"
        )
    return tuple(groups)


def _group_transform(fn: str, optimizer: Any, group: Group) -> optax.GradientTransformation:
    if group.frozen:
        return optax.set_to_zero()
    if group.optimizer is not None:
        return group.optimizer
    tx = _base(fn, optimizer, _arguments(fn, optimizer, group), group.name)
    return tx if group.l1 is None else optax.chain(add_l1_penalty(group.l1), tx)


def _arguments(fn: str, optimizer: Any, group: Group) -> dict[str, Any]:
    """The group's arguments for the base optimizer: its overrides, and its scaled rate."""
    arguments = dict(group.overrides)
    if group.lr_scale is None:
        return arguments
    name, rate = _learning_rate(fn, optimizer, group)
    arguments[name] = _scaled(rate, group.lr_scale)
    return arguments


def _learning_rate(fn: str, optimizer: Any, group: Group) -> tuple[str, Any]:
    """(argument name, value) of the learning rate a group's `lr_scale` scales."""
    if not callable(optimizer) or isinstance(optimizer, optax.GradientTransformation):
        raise _needs_factory(fn, group, "lr_scale")
    bound = dict(getattr(optimizer, "keywords", {}) or {})
    parameters = inspect.signature(optimizer).parameters
    for name in LEARNING_RATE_NAMES:
        if name in group.overrides:
            return name, group.overrides[name]
        if name in parameters and parameters[name].default is not inspect.Parameter.empty:
            return name, bound.get(name, parameters[name].default)
        if name in bound:
            return name, bound[name]
    raise ArgumentError(
        fn,
        f"group {group.name!r}: lr_scale needs the base optimizer's learning rate, and "
        f"{optimizer!r} has no learning_rate (or lr) argument with a value.",
        argument="lr_scale",
        value=group.lr_scale,
    )


def _scaled(rate: Any, scale: float) -> Any:
    if not callable(rate):
        return rate * scale
    base_lr = getattr(rate, "base_lr", None)
    return Schedule(
        lambda step: rate(step) * scale,
        name=f"{rate!r} * {scale!r}",
        momentum=getattr(rate, "momentum", None),
        base_lr=None if base_lr is None else base_lr * scale,
    )


def _base(
    fn: str, optimizer: Any, arguments: Mapping[str, Any], group: str | None = None
) -> optax.GradientTransformation:
    """The base optimizer called with a group's arguments (none for the default group)."""
    if isinstance(optimizer, optax.GradientTransformation):
        if arguments:
            raise _needs_factory(fn, group, ", ".join(arguments))
        return optimizer
    if not callable(optimizer):
        raise ArgumentError(
            fn,
            f"optimizer must be a built optimizer or a function of its arguments "
            f"(functools.partial(jopt.adamw, learning_rate=1e-3)), got {optimizer!r}.",
            argument="optimizer",
            value=optimizer,
        )
    where = f"group {group!r}" if group is not None else "the default group"
    parameters = inspect.signature(optimizer).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = [name for name in arguments if name not in parameters and not takes_any]
    if unknown:
        raise ArgumentError(
            fn,
            f"{where}: {_name(optimizer)} has no argument {unknown[0]!r}; it takes "
            f"{', '.join(parameters)} (and the group's lr_scale, l1, frozen, optimizer).",
            argument=unknown[0],
            value=arguments[unknown[0]],
            allowed=tuple(parameters),
        )
    try:
        tx = errors.call_as_user(optimizer, **arguments)
    except ArgumentError as e:
        raise ArgumentError(
            fn, f"{where}: {e}", argument=e.argument, value=e.value, allowed=e.allowed
        ) from e
    except TypeError as e:
        raise ArgumentError(fn, f"{where}: {_name(optimizer)}: {e}") from e
    if not isinstance(tx, optax.GradientTransformation):
        raise ArgumentError(
            fn,
            f"optimizer returned {tx!r}, not an optax.GradientTransformation.",
            argument="optimizer",
            value=optimizer,
        )
    return tx


def _needs_factory(fn: str, group: str | Group | None, what: str) -> ArgumentError:
    name = group.name if isinstance(group, Group) else group
    return ArgumentError(
        fn,
        f"group {name!r} changes {what} of the base optimizer, which was given built: give "
        "it as a function of its arguments instead, e.g. functools.partial(jopt.adamw, "
        "learning_rate=1e-3).",
        argument="optimizer",
    )


def _name(optimizer: Any) -> str:
    inner = getattr(optimizer, "func", optimizer)
    return getattr(inner, "public_name", getattr(inner, "__qualname__", repr(inner)))
