"""Rules that pick parameters by their key paths, for parameter groups (`jopt.Group`).

A leaf's path is its JAX key path written with "/" (`{"head": {"kernel": w}}` -> "head/kernel",
a list index as its number), without flax nnx's trailing ".value" (a Variable's payload), so
that one rule fits plain dicts and nnx states. A rule is

- a glob: `*` and `?` within one path segment, `**` across segments ("**/bias", "layers/*/kernel"),
  `[...]` and `[!...]` as in fnmatch;
- a regular expression, as "re:..." or an `re.Pattern`, matched against the whole path;
- a function `(path, leaf) -> bool`;
- or a tuple of these, any of which matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import optax

from jopt._src.errors import ArgumentError

Rule = Any  # a glob or "re:" string, an re.Pattern, a function (path, leaf) -> bool, or a tuple
Matcher = Callable[[str, Any], bool]


def _is_masked(x: Any) -> bool:
    return isinstance(x, optax.MaskedNode)


def path_string(path: Sequence[Any]) -> str:
    """A key path as "a/b/0/c", without flax nnx's trailing `.value`."""
    keys = list(path)
    if keys and isinstance(keys[-1], jax.tree_util.GetAttrKey) and keys[-1].name == "value":
        keys.pop()
    parts = []
    for key in keys:
        for attribute in ("key", "name", "idx"):
            if hasattr(key, attribute):
                parts.append(str(getattr(key, attribute)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def leaves(tree: Any) -> list[tuple[str, Any]]:
    """(path string, leaf) of every leaf, optax's masked-out placeholders left out."""
    flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_masked)[0]
    return [(path_string(path), leaf) for path, leaf in flat if not _is_masked(leaf)]


def assign(
    fn: str,
    tree: Any,
    rules: Sequence[tuple[str, Matcher]],
    default: str | None,
    *,
    exclusive: bool = False,
) -> list[tuple[str, str]]:
    """(path, name) for every leaf of `tree`: the name of the first rule that matches it, or
    `default`; a leaf no rule matches without a default is an error naming it, and with
    `exclusive` (torch's param groups), so is a leaf that two rules match."""
    out, unmatched = [], []
    for path, leaf in leaves(tree):
        matched = [name for name, matches in rules if matches(path, leaf)]
        if exclusive and len(matched) > 1:
            raise ValueError(
                f"{fn}: some parameters appear in more than one parameter group: {path} is in "
                f"groups {', '.join(matched)}."
            )
        name = matched[0] if matched else default
        if name is None:
            unmatched.append(path or "<root>")
        out.append((path, name))
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else "")
        raise ValueError(
            f"{fn}: {len(unmatched)} leaves match no group and there is no default group "
            f"(default=None): {shown}. Add a group for them, or give default= a name."
        )
    return out


def labels(
    fn: str,
    rules: Sequence[tuple[str, Matcher]],
    default: str | None,
    tree: Any,
    *,
    exclusive: bool = False,
) -> Any:
    """`tree` with each leaf replaced by its name (`assign`); optax's masked-out leaves stay."""
    names = iter(name for _, name in assign(fn, tree, rules, default, exclusive=exclusive))
    return jax.tree.map(lambda x: x if _is_masked(x) else next(names), tree, is_leaf=_is_masked)


def compile_rule(fn: str, where: str, rule: Rule) -> Matcher:
    if isinstance(rule, tuple | list):
        if not rule:
            raise ArgumentError(
                fn,
                f"{where}: an empty tuple of rules matches nothing.",
                argument="match",
                value=rule,
            )
        rules = [compile_rule(fn, f"{where}[{i}]", r) for i, r in enumerate(rule)]
        return lambda path, leaf: any(r(path, leaf) for r in rules)
    if isinstance(rule, re.Pattern):
        return lambda path, leaf: rule.fullmatch(path) is not None
    if isinstance(rule, str):
        if rule.startswith("re:"):
            try:
                pattern = re.compile(rule[3:])
            except re.error as e:
                raise ArgumentError(
                    fn,
                    f"{where}: {rule!r} is not a regular expression: {e}.",
                    argument="match",
                    value=rule,
                ) from e
            return lambda path, leaf: pattern.fullmatch(path) is not None
        pattern = re.compile(glob_regex(rule))
        return lambda path, leaf: pattern.fullmatch(path) is not None
    if callable(rule):
        return rule
    raise ArgumentError(
        fn,
        f"{where} must be a glob, 're:' + a regular expression, an re.Pattern, a function "
        f"(path, leaf) -> bool, or a tuple of these, got {rule!r}.",
        argument="match",
        value=rule,
    )


def glob_regex(glob: str) -> str:
    """A path glob as a regular expression: `**` across "/", `*` and `?` within a segment."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[":
            end = glob.find("]", i + 1)
            if end < 0:
                out.append(re.escape(glob[i]))
                i += 1
            else:  # a character class, "[!...]" negated as in fnmatch
                members = glob[i + 1 : end]
                if members.startswith("!"):
                    members = "^" + members[1:]
                out.append("[" + members.replace("\\", "\\\\") + "]")
                i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)
