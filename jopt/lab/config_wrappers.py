"""What an optimizer entry of a config adds around the optimizer: parameter groups, an L1
penalty, gradient accumulation, plateau decay on an evaluated metric, and an average of the
params to evaluate at.

    optimizers:
      - name: adamw
        learning_rate: 1.0e-3
        weight_decay: 1.0e-2
        groups:                                   # jopt.param_groups, first match wins
          - {name: head, match: "output/**", learning_rate: 1.0e-2}
          - {name: no_decay, match: ["**/bias"], weight_decay: 0.0}
          - {name: convs, match: "convs/**", lr_scale: 0.5, l1: 1.0e-5}
          - {name: frozen, match: "re:embed/.*", frozen: true}
        l1: 1.0e-6                                # jopt.add_l1_penalty on every param
        accumulate: 4                             # jopt.accumulate_gradients
        plateau: {metric: loss, mode: min, factor: 0.5, patience: 3}   # on eval_loss
        average: {ema: 0.999}                     # or {swa: {start: 500, every: 10}}

Each part is checked where it is written (`optimizers[0].groups[1].b1: ...`), by building it.
The transform is built in this order: groups (or the optimizer alone), L1 chained before them,
accumulation around that, plateau decay around that, and the average outermost. The runner feeds
the plateau the evaluation metric it logs (`eval_<metric>`, on the validation split) at the update
after each evaluation, and evaluates at the average when there is one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import jax
import optax

import jopt
from jopt._src import path_rules
from jopt.lab import config_values as checks
from jopt.lab.config_values import ConfigError

KEYS = ("groups", "l1", "accumulate", "plateau", "average")
GROUP_KEYS = ("name", "match", "frozen", "lr_scale", "l1")
PLATEAU_KEYS = ("metric", "mode", "factor", "patience", "threshold", "threshold_mode",
                "cooldown", "min_lr", "eps")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class GroupConfig:
    name: str
    match: tuple[str, ...]  # globs or "re:" regular expressions
    frozen: bool = False
    lr_scale: float | None = None
    l1: float | None = None
    overrides: tuple[tuple[str, Any], ...] = ()  # the optimizer's arguments, sorted by name


@dataclasses.dataclass(frozen=True)
class PlateauConfig:
    metric: str  # a metric of the workload, evaluated on the validation split
    mode: str  # "min" or "max"
    args: tuple[tuple[str, Any], ...] = ()  # reduce_on_plateau's other arguments


@dataclasses.dataclass(frozen=True)
class AverageConfig:
    kind: str  # "ema" or "swa"
    decay: float | None = None  # ema
    start: int = 1
    every: int = 1


@dataclasses.dataclass(frozen=True)
class Wrappers:
    groups: tuple[GroupConfig, ...] = ()
    l1: float | None = None
    accumulate: int | None = None
    plateau: PlateauConfig | None = None
    average: AverageConfig | None = None


def parse(path: str, raw: dict[str, Any], read_value) -> Wrappers:
    """Pops the wrapper keys from an optimizer entry `raw` (checked at `path.KEY`);
    `read_value(path, name, value)` reads an optimizer argument of a group's overrides."""
    found = {key: raw.pop(key) for key in KEYS if key in raw}
    groups = found.get("groups")
    return Wrappers(
        groups=_groups(f"{path}.groups", groups, read_value) if groups is not None else (),
        l1=_number(f"{path}.l1", found["l1"]) if "l1" in found else None,
        accumulate=(
            checks.integer(f"{path}.accumulate", found["accumulate"], 1)
            if "accumulate" in found
            else None
        ),
        plateau=_plateau(f"{path}.plateau", found["plateau"]) if "plateau" in found else None,
        average=_average(f"{path}.average", found["average"]) if "average" in found else None,
    )


def build(path: str, factory, kwargs: Mapping[str, Any], wrappers: Wrappers) -> Any:
    """The optax transform: `factory(**kwargs)` with the wrappers around it; an argument a
    constructor refuses is a ConfigError at its place in the config."""
    base = functools.partial(factory, **kwargs)
    if wrappers.groups:
        groups = [_group(f"{path}.groups[{i}]", base, g) for i, g in enumerate(wrappers.groups)]
        tx = jopt.param_groups(base, *groups)
    else:
        tx = base()
    if wrappers.l1 is not None:
        tx = optax.chain(jopt.add_l1_penalty(wrappers.l1), tx)
    if wrappers.accumulate is not None:
        tx = jopt.accumulate_gradients(tx, wrappers.accumulate)
    if wrappers.plateau is not None:
        plateau = wrappers.plateau
        try:
            tx = jopt.reduce_on_plateau(tx, mode=plateau.mode, **dict(plateau.args))
        except jopt.ArgumentError as e:
            raise checks.blame(f"{path}.plateau", e, PLATEAU_KEYS) from e
    average = wrappers.average
    if average is not None and average.kind == "ema":
        tx = jopt.ema_params(tx, average.decay, start=average.start, every=average.every)
    elif average is not None:
        tx = jopt.swa_params(tx, start=average.start, every=average.every)
    return tx


def to_data(wrappers: Wrappers) -> dict[str, Any]:
    """The wrappers as config data (what `parse` reads back)."""
    out: dict[str, Any] = {}
    if wrappers.groups:
        out["groups"] = [
            {
                "name": g.name,
                "match": list(g.match),
                **({"frozen": True} if g.frozen else {}),
                **({"lr_scale": g.lr_scale} if g.lr_scale is not None else {}),
                **({"l1": g.l1} if g.l1 is not None else {}),
                **dict(g.overrides),
            }
            for g in wrappers.groups
        ]
    if wrappers.l1 is not None:
        out["l1"] = wrappers.l1
    if wrappers.accumulate is not None:
        out["accumulate"] = wrappers.accumulate
    if wrappers.plateau is not None:
        p = wrappers.plateau
        out["plateau"] = {"metric": p.metric, "mode": p.mode, **dict(p.args)}
    if wrappers.average is not None:
        a = wrappers.average
        schedule = {"start": a.start, "every": a.every}
        out["average"] = {"ema": a.decay, **schedule} if a.kind == "ema" else {"swa": schedule}
    return out


def check_groups_match(optimizers, compiled) -> None:
    """Every configured group picks at least one parameter of the workload's model (a rule that
    picks none is most likely a misspelled path), before anything trains."""
    params = jax.eval_shape(compiled.workload.init_params, jax.random.key(0))
    paths = sorted(
        path_rules.path_string(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]
    )
    for i, config in enumerate(optimizers):
        groups = config.wrappers.groups
        if not groups:
            continue
        built = [jopt.Group(g.name, g.match if len(g.match) > 1 else g.match[0]) for g in groups]
        used = set(jopt.assign_groups(params, *built).values())
        for j, group in enumerate(groups):
            if group.name not in used:
                raise ConfigError(
                    f"optimizers[{i}].groups[{j}].match",
                    f"group {group.name!r} picks no parameter (the ones before it may have taken "
                    f"them); the model's parameters are: {', '.join(paths)}.",
                )


# -- parts ---------------------------------------------------------------------------------------


def _number(path: str, value: Any) -> float:
    return float(checks.number(path, value))


def _groups(path: str, raw: Any, read_value) -> tuple[GroupConfig, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(path, f"expected a list of groups ({{name, match, ...}}), got {raw!r}.")
    out = []
    for i, entry in enumerate(raw):
        where = f"{path}[{i}]"
        entry = dict(checks.mapping(where, entry))
        name = checks.string(f"{where}.name", entry.pop("name", None))
        match = entry.pop("match", None)
        patterns = [match] if isinstance(match, str) else match
        if not isinstance(patterns, list) or not patterns:
            raise ConfigError(
                f"{where}.match",
                f"expected a path glob ('output/**'), 're:' and a regular expression, or a list "
                f"of these, got {match!r}.",
            )
        for j, pattern in enumerate(patterns):
            checks.string(f"{where}.match[{j}]" if isinstance(match, list) else f"{where}.match",
                          pattern)  # fmt: skip
        frozen = entry.pop("frozen", False)
        if not isinstance(frozen, bool):
            raise ConfigError(f"{where}.frozen", f"expected true or false, got {frozen!r}.")
        lr_scale = (
            _number(f"{where}.lr_scale", entry.pop("lr_scale")) if "lr_scale" in entry else None
        )
        l1 = _number(f"{where}.l1", entry.pop("l1")) if "l1" in entry else None
        overrides = {k: read_value(f"{where}.{k}", k, v) for k, v in entry.items()}
        out.append(GroupConfig(name, tuple(patterns), frozen, lr_scale, l1,
                               tuple(sorted(overrides.items()))))  # fmt: skip
    return tuple(out)


def _group(path: str, base, config: GroupConfig) -> jopt.Group:
    """The jopt.Group of a config entry, its overrides checked by building the optimizer."""
    try:
        group = jopt.Group(
            config.name,
            config.match if len(config.match) > 1 else config.match[0],
            frozen=config.frozen,
            lr_scale=config.lr_scale,
            l1=config.l1,
            **dict(config.overrides),
        )
        jopt.param_groups(base, group)
    except jopt.ArgumentError as e:
        raise checks.blame(path, e, (*GROUP_KEYS, *dict(config.overrides))) from e
    return group


def _plateau(path: str, raw: Any) -> PlateauConfig:
    raw = dict(checks.mapping(path, raw))
    checks.reject_unknown(path, raw, PLATEAU_KEYS)
    metric = checks.string(f"{path}.metric", raw.pop("metric", None))
    default_mode = "max" if "accuracy" in metric else "min"
    mode = checks.string(f"{path}.mode", raw.pop("mode", default_mode))
    if mode not in ("min", "max"):
        raise ConfigError(f"{path}.mode", f"must be 'min' or 'max', got {mode!r}.")
    args = {}
    for key, value in raw.items():
        if key == "threshold_mode":
            args[key] = checks.string(f"{path}.{key}", value)
        elif key in ("patience", "cooldown"):
            args[key] = checks.integer(f"{path}.{key}", value, 0)
        else:
            args[key] = _number(f"{path}.{key}", value)
    return PlateauConfig(metric, mode, tuple(sorted(args.items())))


def _average(path: str, raw: Any) -> AverageConfig:
    raw = dict(checks.mapping(path, raw))
    kinds = [k for k in ("ema", "swa") if k in raw]
    if len(kinds) != 1:
        raise ConfigError(path, "give one of ema (a decay, e.g. 0.999) or swa ({start, every}).")
    if kinds == ["ema"]:
        checks.reject_unknown(path, raw, ("ema", "start", "every"))
        decay = _number(f"{path}.ema", raw["ema"])
        if not 0 <= decay < 1:
            raise ConfigError(f"{path}.ema", f"the decay must be in [0, 1), got {decay!r}.")
        schedule = raw
    else:
        checks.reject_unknown(path, raw, ("swa",))
        schedule = dict(checks.mapping(f"{path}.swa", raw["swa"] or {}))
        checks.reject_unknown(f"{path}.swa", schedule, ("start", "every"))
        decay = None
    where = path if kinds == ["ema"] else f"{path}.swa"
    start = checks.integer(f"{where}.start", schedule.get("start", 1), 1)
    every = checks.integer(f"{where}.every", schedule.get("every", 1), 1)
    return AverageConfig(kinds[0], decay, start, every)
