"""torch's parameter groups for `jopt.torch`'s optimizers: a list of dicts, path rules in place
of tensors.

    # torch:  torch.optim.Adam([{"params": model.body.parameters()},
    #                           {"params": model.head.parameters(), "lr": 1e-2}], lr=1e-3)
    tx = jopt.torch.Adam(lr=1e-3, param_groups=[{"params": "body/**"},
                                                {"params": "head/**", "lr": 1e-2}])

Each dict's "params" is a rule on the leaves' key paths (`jopt.Group`'s: a glob, "re:" and a
regular expression, a function `(path, leaf) -> bool`, or a tuple of these); its other keys are
the optimizer's arguments for that group, the rest coming from the constructor's, as in torch.
As torch, a leaf in two groups is an error, and so is a leaf in none (torch leaves parameters it
was not given alone; give them a group with `"lr": 0.0`, or use `jopt.param_groups` with
`frozen=True`). The groups are named by their index ("0", "1"... zero-padded beyond 10, so that
sorted names keep torch's order): `jopt.current_lr(state)` is `{"0": ..., "1": ...}`, and
`jopt.set_hparams(state, learning_rate=..., group="1")` is torch's `param_groups[1]["lr"] = ...`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optax

from jopt._src import errors, path_rules
from jopt._src.errors import ArgumentError


def groupable(*, constructor_only: tuple[str, ...] = ()):
    """Adds a keyword-only `param_groups=None` to a `jopt.torch` optimizer (see the module
    docstring). `constructor_only` names the arguments torch reads from the constructor alone,
    ignoring a group's (Adagrad's `initial_accumulator_value`): a group giving one is refused."""
    return functools.partial(_groupable, constructor_only=constructor_only)


def _groupable(
    factory: Callable[..., optax.GradientTransformation], constructor_only: tuple[str, ...]
):
    signature = inspect.signature(factory)
    parameters = list(signature.parameters.values())
    extra = inspect.Parameter("param_groups", inspect.Parameter.KEYWORD_ONLY, default=None)

    @functools.wraps(factory)
    def build(*args: Any, param_groups: Sequence[Mapping[str, Any]] | None = None, **kwargs: Any):
        if param_groups is None:
            return factory(*args, **kwargs)
        fn = errors.current_function()
        defaults = signature.bind_partial(*args, **kwargs).arguments
        groups = _check(fn, param_groups, signature, constructor_only)
        names = _names(len(groups))
        transforms, rules = {}, []
        for index, (name, group) in enumerate(zip(names, groups, strict=True)):
            options = {k: v for k, v in group.items() if k != "params"}
            try:
                transforms[name] = factory(**{**defaults, **options})
            except ArgumentError as e:
                raise ArgumentError(
                    fn,
                    f"param_groups[{index}]: {e.detail}",
                    argument=e.argument,
                    value=e.value,
                    allowed=e.allowed,
                ) from e
            rules.append((name, path_rules.compile_rule(fn, f"param_groups[{index}]['params']",
                                                        group["params"])))  # fmt: skip
        labels = functools.partial(path_rules.labels, fn, rules, None, exclusive=True)
        return optax.partition(transforms, labels)

    build.__signature__ = signature.replace(parameters=[*parameters, extra])  # type: ignore[attr-defined]
    return build


def _check(
    fn: str, groups: Any, signature: inspect.Signature, constructor_only: tuple[str, ...]
) -> list[Mapping[str, Any]]:
    if isinstance(groups, Mapping) or not isinstance(groups, Sequence) or not groups:
        raise ArgumentError(
            fn,
            f"param_groups must be a non-empty list of dicts, each with 'params' (a path rule) "
            f"and the group's arguments, got {groups!r}.",
            argument="param_groups",
            value=groups,
        )
    accepted = set(signature.parameters)
    for index, group in enumerate(groups):
        if not isinstance(group, Mapping) or "params" not in group:
            raise ArgumentError(
                fn,
                f"param_groups[{index}] must be a dict with 'params' (a path rule: a glob, "
                f"'re:' and a regular expression, or a function (path, leaf) -> bool), got "
                f"{group!r}.",
                argument="param_groups",
                value=group,
            )
        unknown = sorted(set(group) - accepted - {"params"})
        if unknown:
            raise ArgumentError(
                fn,
                f"param_groups[{index}] has {', '.join(map(repr, unknown))}, which is not an "
                f"argument of the optimizer; it takes {', '.join(accepted)}.",
                argument="param_groups",
                value=group,
                allowed=tuple(accepted),
            )
        ignored = [name for name in constructor_only if name in group]
        if ignored:
            raise ArgumentError(
                fn,
                f"param_groups[{index}] gives {ignored[0]}, which torch takes from the "
                "constructor only (it ignores a group's, and starts every group from the "
                f"constructor's): give it to {fn} itself.",
                argument=ignored[0],
                value=group[ignored[0]],
            )
    return list(groups)


def _names(count: int) -> list[str]:
    """ "0", "1", ...: zero-padded to one width, so that sorted names are in the list's order."""
    width = len(str(count - 1))
    return [str(i).zfill(width) for i in range(count)]
