"""The `search:` section of an experiment config: what to search, how, for how long, and how a
trial is scored. Validated before any compute, every mistake a `ConfigError` at its dotted path.

    search:
      method: tpe                 # grid, random, quasirandom, tpe, gp, cmaes, pbt
      trials: 24                  # per optimizer; and/or seconds: 600
      population: 8               # trials trained together as one vmapped program
      seeds: [0, 1]               # each trial's seeds (default: the config's); objective = mean
      objective: {metric: eval_accuracy, mode: max, at: final}   # at: final, best, steps_to_target
      pruner: {name: median}      # median, successive_halving, hyperband (on eval points)
      space:                      # for every optimizer of the config, by its own argument names
        learning_rate: {low: 1.0e-4, high: 1.0, log: true}
      per_optimizer:              # more dimensions for one optimizer, by its label
        momentum: {momentum: {low: 0.5, high: 0.99}}

A dimension is a range `{low, high}` (floats or integers; `log: true`; `step` or `count` to
discretize it, which a grid needs) or a list of choices. It is addressed by the optimizer's
argument (`learning_rate`, `momentum`, `b1`, `weight_decay`), an argument of the schedule an
argument follows (`learning_rate.warmup_steps`), or an item of a list argument (`betas[0]` of
`torch.Adam`). Each bound and each choice is checked by building the optimizer with it, so a
range the optimizer refuses is refused here, at `search.space.NAME.low`, with the
optimizer's own message.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import math
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jopt.lab import config_values as checks
from jopt.lab import registry
from jopt.lab.config_optimizers import OptimizerConfig, ScheduleConfig, optimizer, to_data
from jopt.lab.config_values import ConfigError

METHODS = ("grid", "random", "quasirandom", "tpe", "gp", "cmaes", "pbt")
AT = ("final", "best", "steps_to_target")
PRUNERS = ("none", "median", "successive_halving", "hyperband")
_KEYS = {
    "method",
    "trials",
    "seconds",
    "population",
    "seeds",
    "seed",
    "objective",
    "pruner",
    "space",
    "per_optimizer",
    "pbt",
    "folds",
}
_PATH = re.compile(r"^([A-Za-z_]\w*)(?:\[(\d+)\])?(?:\.([A-Za-z_]\w*))?$")


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: a range of kind "float" or "int", or a list of choices."""

    name: str  # its address in the optimizer: 'learning_rate', 'learning_rate.warmup_steps'
    kind: str  # "float", "int" or "choice"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    count: int | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value optuna's `trial` draws for this dimension."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.count is not None:  # a discretized range: its points, in order
            return trial.suggest_categorical(self.name, list(self.grid()))
        if self.kind == "int":
            return trial.suggest_int(
                self.name, self.low, self.high, step=self.step or 1, log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> tuple[Any, ...]:
        """The points a grid search visits (a range needs `step` or `count`)."""
        if self.kind == "choice":
            return self.choices
        if self.count is not None:
            space = np.geomspace if self.log else np.linspace
            points = space(self.low, self.high, self.count)
            if self.kind == "int":
                return tuple(dict.fromkeys(int(round(p)) for p in points))
            return tuple(float(p) for p in points)
        step = self.step if self.step is not None else 1
        n = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        points = [self.low + i * step for i in range(n)]
        return tuple(int(p) if self.kind == "int" else float(p) for p in points)

    @property
    def is_discrete(self) -> bool:
        return self.kind != "float" or self.step is not None or self.count is not None


@dataclasses.dataclass(frozen=True)
class Objective:
    """How a trial is scored: `metric` (a key of metrics.jsonl) at the final eval, its best eval,
    or the first eval step at which it reaches `target` (infinite when it never does)."""

    metric: str
    mode: str  # "min" or "max": the metric's good direction
    at: str = "final"
    target: float | None = None

    @property
    def direction(self) -> str:
        """optuna's direction for the objective (steps to a target are minimized)."""
        if self.at == "steps_to_target":
            return "minimize"
        return "maximize" if self.mode == "max" else "minimize"


@dataclasses.dataclass(frozen=True)
class PbtConfig:
    """Population-based training: every `interval` steps the bottom `quantile` of the population
    copies a top-`quantile` member and multiplies each searched float by one of `factors`."""

    interval: int
    quantile: float = 0.25
    factors: tuple[float, ...] = (0.8, 1.2)


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    method: str
    objective: Objective
    spaces: Mapping[str, tuple[Dimension, ...]]  # optimizer label -> its dimensions
    trials: int | None = None
    seconds: float | None = None
    population: int = 1
    seeds: tuple[int, ...] | None = None  # None: the experiment's seeds
    seed: int = 0  # the sampler's
    pruner: str = "none"
    pbt: PbtConfig | None = None
    folds: int | None = None  # k-fold cross-validation: each trial trains once per fold

    def budget(self, label: str) -> float:
        """The trials of optimizer `label`'s study: `trials` (infinite for a time budget alone),
        at most its grid's size for a grid search (where a grid alone gives that size)."""
        trials = math.inf if self.trials is None else self.trials
        if self.method == "grid":
            return min(trials, math.prod(len(d.grid()) for d in self.spaces[label]))
        return trials


# -- reading -------------------------------------------------------------------------------------


def from_dict(
    raw: Any,
    optimizers: Sequence[OptimizerConfig],
    metrics: Sequence[str],
    max_seed: int,
    workload: Any = None,
) -> SearchConfig | None:
    """Validates a `search:` section against the experiment's optimizers, metric names and
    workload (a `WorkloadConfig`: cross-validation needs one with fold options)."""
    if raw is None:
        return None
    raw = dict(checks.mapping("search", raw))
    checks.reject_unknown("search", raw, _KEYS)
    method = _one_of("search.method", raw.get("method", "tpe"), METHODS, "method")
    if method == "gp" and importlib.util.find_spec("torch") is None:
        raise ConfigError(
            "search.method",
            "method 'gp' is optuna's GPSampler, which needs PyTorch: pip install torch (or pick "
            "tpe, which needs nothing more).",
        )
    trials = raw.get("trials")
    seconds = raw.get("seconds")
    if method == "pbt" and (trials is not None or seconds is not None):
        raise ConfigError(
            "search.trials" if trials is not None else "search.seconds",
            "population-based training trains `population` trials for the config's steps: "
            "its budget is population x steps.",
        )
    if trials is None and seconds is None and method not in ("grid", "pbt"):
        raise ConfigError("search", "give a budget: trials (per optimizer), seconds, or both.")
    trials = None if trials is None else checks.integer("search.trials", trials, 1)
    if seconds is not None:
        seconds = float(checks.number("search.seconds", seconds))
        if not (math.isfinite(seconds) and seconds > 0):
            raise ConfigError("search.seconds", f"must be a number > 0, got {seconds!r}.")
    population = checks.integer("search.population", raw.get("population", 1), 1)
    seeds = raw.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, list) or not seeds:
            raise ConfigError(
                "search.seeds", f"must be a non-empty list of integers, got {seeds!r}."
            )
        seeds = tuple(
            checks.integer(f"search.seeds[{i}]", s, 0, max_seed) for i, s in enumerate(seeds)
        )
        if len(set(seeds)) != len(seeds):
            raise ConfigError("search.seeds", f"must be distinct, got {list(seeds)}.")
    objective = _objective(raw.get("objective"), metrics)
    pruner = _pruner(raw.get("pruner"), objective, method)
    spaces = _spaces(raw.get("space"), raw.get("per_optimizer"), optimizers, method)
    pbt = _pbt(raw.get("pbt"), method, population)
    folds = _folds(raw.get("folds"), workload, pruner, method)
    if pbt is not None:
        for config, (label, dims) in zip(optimizers, spaces.items(), strict=True):
            for d in dims:
                if not (in_state(config, d) and d.kind != "choice"):
                    raise ConfigError(
                        f"search.per_optimizer.{label}.{d.name}",
                        f"population-based training perturbs numbers the optimizer keeps in its "
                        f"state; {d.name!r} of {label!r} ({config.name}) is not one (a schedule's "
                        "argument, an option, a list of choices or a framework twin's argument).",
                    )
    return SearchConfig(
        method=method,
        objective=objective,
        spaces=spaces,
        trials=trials,
        seconds=seconds,
        population=population,
        seeds=seeds,
        seed=checks.integer("search.seed", raw.get("seed", 0), 0, max_seed),
        pruner=pruner,
        pbt=pbt,
        folds=folds,
    )


def _one_of(path: str, value: Any, known: Sequence[str], what: str) -> str:
    """`value`, a string among `known` (else an error suggesting the closest)."""
    value = checks.string(path, value)
    if value not in known:
        raise ConfigError(
            path,
            f"unknown {what} {value!r}{registry.closest(value, known)}; known: {', '.join(known)}.",
        )
    return value


def _objective(raw: Any, metrics: Sequence[str]) -> Objective:
    if raw is None:
        raise ConfigError(
            "search.objective",
            f"is required: {{metric: NAME, mode: min or max, at: final}}; metrics: "
            f"{', '.join(metrics)}.",
        )
    raw = dict(checks.mapping("search.objective", raw))
    checks.reject_unknown("search.objective", raw, {"metric", "mode", "at", "target"})
    metric = checks.string("search.objective.metric", raw.get("metric"))
    if metric not in metrics:
        raise ConfigError(
            "search.objective.metric",
            f"the workload does not log {metric!r}{registry.closest(metric, metrics)}; "
            f"it logs: {', '.join(metrics)}.",
        )
    mode = checks.string(
        "search.objective.mode", raw.get("mode", "max" if "accuracy" in metric else "min")
    )
    if mode not in ("min", "max"):
        raise ConfigError("search.objective.mode", f"must be 'min' or 'max', got {mode!r}.")
    at = _one_of("search.objective.at", raw.get("at", "final"), AT, "objective point")
    target = raw.get("target")
    if at == "steps_to_target":
        if target is None:
            raise ConfigError(
                "search.objective.target",
                "is required with at: steps_to_target (the value to reach).",
            )
        target = float(checks.number("search.objective.target", target))
        if not math.isfinite(target):
            raise ConfigError("search.objective.target", f"must be finite, got {target!r}.")
    elif target is not None:
        raise ConfigError("search.objective.target", "is only read with at: steps_to_target.")
    return Objective(metric, mode, at, target)


def _pruner(raw: Any, objective: Objective, method: str) -> str:
    if raw is None:
        return "none"
    raw = dict(checks.mapping("search.pruner", raw))
    checks.reject_unknown("search.pruner", raw, {"name"})
    name = _one_of("search.pruner.name", raw.get("name"), PRUNERS, "pruner")
    if name != "none" and method == "pbt":
        raise ConfigError(
            "search.pruner",
            "population-based training replaces its worst trials itself: it takes no pruner.",
        )
    if name != "none" and objective.at == "steps_to_target":
        raise ConfigError(
            "search.pruner",
            "pruning compares the metric at each eval, which says nothing of the steps to a "
            "target: use at: final or best, or no pruner.",
        )
    return name


def _folds(raw: Any, workload: Any, pruner: str, method: str) -> int | None:
    """k of k-fold cross-validation, for workloads with data (their `cv_folds` option)."""
    if raw is None:
        return None
    folds = checks.integer("search.folds", raw, 2)
    options = getattr(workload, "options", None)
    if not hasattr(options, "cv_folds"):
        raise ConfigError(
            "search.folds",
            f"workload {getattr(workload, 'name', None)!r} has no data to split into folds.",
        )
    if options.cv_folds is not None:
        raise ConfigError(
            "search.folds",
            f"the workload already fixes workload.cv_folds={options.cv_folds}: cross-validate "
            "with search.folds alone (each trial then trains once per fold).",
        )
    if pruner != "none" or method == "pbt":
        raise ConfigError(
            "search.folds",
            "cross-validation trains each trial once per fold, one fold after the other; it "
            "does not combine with pruning or population-based training.",
        )
    return folds


def _pbt(raw: Any, method: str, population: int) -> PbtConfig | None:
    if method != "pbt":
        if raw is not None:
            raise ConfigError("search.pbt", "is only read with method: pbt.")
        return None
    raw = dict(checks.mapping("search.pbt", raw if raw is not None else {}))
    checks.reject_unknown("search.pbt", raw, {"interval", "quantile", "factors"})
    if population < 2:
        raise ConfigError(
            "search.population", f"population-based training needs >= 2 members, got {population}."
        )
    if "interval" not in raw:
        raise ConfigError("search.pbt.interval", "is required: the steps between exploits.")
    interval = checks.integer("search.pbt.interval", raw["interval"], 1)
    quantile = float(checks.number("search.pbt.quantile", raw.get("quantile", 0.25)))
    if not 0 < quantile <= 0.5:
        raise ConfigError("search.pbt.quantile", f"must be in (0, 0.5], got {quantile!r}.")
    factors = raw.get("factors", [0.8, 1.2])
    if not isinstance(factors, list) or not factors:
        raise ConfigError("search.pbt.factors", f"must be a non-empty list, got {factors!r}.")
    factors = tuple(
        float(checks.number(f"search.pbt.factors[{i}]", f)) for i, f in enumerate(factors)
    )
    for i, f in enumerate(factors):
        if not (math.isfinite(f) and f > 0):
            raise ConfigError(f"search.pbt.factors[{i}]", f"must be a number > 0, got {f!r}.")
    return PbtConfig(interval, quantile, factors)


def _spaces(
    common: Any, per_optimizer: Any, optimizers: Sequence[OptimizerConfig], method: str
) -> dict[str, tuple[Dimension, ...]]:
    common = dict(checks.mapping("search.space", common if common is not None else {}))
    per_optimizer = dict(
        checks.mapping("search.per_optimizer", per_optimizer if per_optimizer is not None else {})
    )
    labels = [o.label for o in optimizers]
    checks.reject_unknown("search.per_optimizer", per_optimizer, labels)
    spaces = {}
    for index, config in enumerate(optimizers):
        own = dict(
            checks.mapping(
                f"search.per_optimizer.{config.label}", per_optimizer.get(config.label, {})
            )
        )
        entries = [(f"search.space.{k}", k, v) for k, v in common.items()]
        entries += [(f"search.per_optimizer.{config.label}.{k}", k, v) for k, v in own.items()]
        if not entries:
            raise ConfigError(
                "search.space",
                f"nothing to search for optimizer {config.label!r}: give search.space or "
                f"search.per_optimizer.{config.label}.",
            )
        names = [name for _, name, _ in entries]
        for path, name, _ in entries:
            if names.count(name) > 1:
                raise ConfigError(path, f"{name!r} is searched twice for {config.label!r}.")
        spaces[config.label] = tuple(
            _dimension(path, name, value, config, f"optimizers[{index}]", method)
            for path, name, value in entries
        )
    return spaces


def _dimension(
    path: str, name: str, raw: Any, config: OptimizerConfig, where: str, method: str
) -> Dimension:
    match = _PATH.match(str(name))
    if match is None:
        raise ConfigError(
            path,
            f"{name!r} is not an argument address: use ARGUMENT, ARGUMENT.SCHEDULE_ARGUMENT or "
            "ARGUMENT[INDEX].",
        )
    argument, index, sub = match.group(1), match.group(2), match.group(3)
    parameters = inspect.signature(registry.OPTIMIZERS[config.name]).parameters
    if argument not in parameters:
        raise ConfigError(
            path,
            f"optimizer {config.label!r} ({config.name}, {where}) has no argument {argument!r}"
            f"{registry.closest(argument, parameters)}; its arguments: "
            f"{', '.join(parameters)}.",
        )
    kind = _kind(path, name, argument, index, sub, config)
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(path, "a list of choices must not be empty.")
        choices = tuple(_plain(f"{path}[{i}]", v) for i, v in enumerate(raw))
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(path, f"choices must be distinct, got {raw!r}.")
        dimension = Dimension(name, "choice", choices=choices)
        for i, choice in enumerate(choices):
            _check_value(f"{path}[{i}]", dimension, choice, config)
        return dimension
    raw = dict(checks.mapping(path, raw))
    checks.reject_unknown(path, raw, {"low", "high", "log", "step", "count"})
    for key in ("low", "high"):
        if key not in raw:
            raise ConfigError(f"{path}.{key}", "is required (or give a list of choices).")
    number = int if kind == "int" else float
    low = checks.number(f"{path}.low", raw["low"], number)
    high = checks.number(f"{path}.high", raw["high"], number)
    if kind == "float":
        low, high = float(low), float(high)
    for key, value in (("low", low), ("high", high)):
        if not math.isfinite(value):
            raise ConfigError(f"{path}.{key}", f"must be finite, got {value!r}.")
    if not low < high:
        raise ConfigError(
            path, f"the range is empty or reversed: low must be < high, got [{low}, {high}]."
        )
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{path}.log", f"expected true or false, got {log!r}.")
    if log and low <= 0:
        raise ConfigError(f"{path}.low", f"a log range needs low > 0, got {low}.")
    step, count = raw.get("step"), raw.get("count")
    if step is not None and count is not None:
        raise ConfigError(path, "give step or count, not both.")
    if step is not None:
        if log:
            raise ConfigError(f"{path}.step", "a log range is discretized by count, not step.")
        step = checks.number(f"{path}.step", step, number)
        if not (math.isfinite(step) and 0 < step <= high - low):
            raise ConfigError(
                f"{path}.step", f"must be in (0, high - low] = (0, {high - low}], got {step!r}."
            )
    if count is not None:
        count = checks.integer(f"{path}.count", count, 2)
    if method == "grid" and kind == "float" and step is None and count is None:
        raise ConfigError(
            path,
            "a grid needs the points of a continuous range: give step (linear) or count "
            "(points, log-spaced with log: true), or a list of values.",
        )
    dimension = Dimension(name, kind, low, high, log, step, count)
    _check_value(f"{path}.low", dimension, low, config)
    _check_value(f"{path}.high", dimension, high, config)
    return dimension


def _kind(
    path: str, name: str, argument: str, index: str | None, sub: str | None, config: OptimizerConfig
) -> str:
    """'int' or 'float' for a range at `name`, from the optimizer's declarations, the schedule's
    annotations or the base value."""
    base = _base(config, argument)
    if sub is not None:
        if index is not None:
            base = base[int(index)] if isinstance(base, tuple) and int(index) < len(base) else None
        if not isinstance(base, ScheduleConfig):
            raise ConfigError(
                path,
                f"{name!r} addresses an argument of the schedule that {argument!r} follows, but "
                f"{argument!r} of {config.label!r} is not a schedule in the config (it is "
                f"{to_data(base)!r}).",
            )
        schedule = registry.SCHEDULES[base.name]
        parameters = inspect.signature(schedule).parameters
        if sub not in parameters:
            raise ConfigError(
                path,
                f"schedule {base.name!r} has no argument {sub!r}"
                f"{registry.closest(sub, parameters)}; its arguments: {', '.join(parameters)}.",
            )
        hint = typing.get_type_hints(schedule).get(sub)
        return "int" if hint is int else "float"
    if index is not None:
        if not isinstance(base, tuple) or int(index) >= len(base):
            raise ConfigError(
                path,
                f"{name!r} addresses item {index} of {argument!r}, which {config.label!r} does "
                f"not set as a list of more than {index} values (it is {to_data(base)!r}).",
            )
        return (
            "int"
            if isinstance(base[int(index)], int) and not isinstance(base[int(index)], bool)
            else "float"
        )
    declarations = registry.hparams(config.name)
    if declarations is not None and argument in declarations:
        return "int" if declarations[argument].kind == "int" else "float"
    return "int" if isinstance(base, int) and not isinstance(base, bool) else "float"


def _base(config: OptimizerConfig, argument: str) -> Any:
    """The value of `argument` in the config, else the constructor's default (None if none)."""
    if argument in config.hparams:
        return config.hparams[argument]
    parameter = inspect.signature(registry.OPTIMIZERS[config.name]).parameters[argument]
    default = None if parameter.default is inspect.Parameter.empty else parameter.default
    return tuple(default) if isinstance(default, list) else default


def _plain(path: str, value: Any) -> Any:
    """A choice: a number (numeric strings converted), a string, true/false or null."""
    if isinstance(value, str):
        try:
            return checks.number(path, value)
        except ConfigError:
            return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise ConfigError(
        path, f"a choice must be a number, string, true/false or null, got {value!r}."
    )


def _check_value(path: str, dimension: Dimension, value: Any, config: OptimizerConfig) -> None:
    try:
        apply(config, {dimension.name: value})
    except ConfigError as e:
        message = str(e).partition(": ")[2]
        raise ConfigError(path, message) from None


# -- applying ------------------------------------------------------------------------------------


def apply(config: OptimizerConfig, values: Mapping[str, Any]) -> OptimizerConfig:
    """`config` with the searched `values` set (by address), validated as the config loader
    validates an optimizer: an invalid combination raises a `ConfigError`."""
    raw: dict[str, Any] = {
        "name": config.name,
        "label": config.label,
        **{k: to_data(v) for k, v in config.hparams.items()},
    }
    copied: set[str] = set()  # arguments whose base value is copied (items set in the copy)
    for name, value in values.items():
        argument, index, sub = _PATH.match(name).groups()
        if index is None and sub is None:
            raw[argument] = value
            continue
        if argument not in copied:
            raw[argument] = to_data(_base(config, argument))
            copied.add(argument)
        holder = raw[argument]
        if index is not None:
            if sub is None:
                holder[int(index)] = value
                continue
            holder = holder[int(index)]
        holder[sub] = value
    return optimizer("optimizer", raw)


def in_state(config: OptimizerConfig, dimension: Dimension) -> bool:
    """Whether every value of `dimension` is a number the optimizer keeps in its state, so that
    trials differing only in it run as one program (values set with `jopt.set_hparams`).

    Only declared hyperparameters qualify (the jopt optimizers'; a framework twin's arguments
    follow the framework's names), and only plain numbers: a schedule's argument, an option or
    None (a block switched off) changes the program.
    """
    declarations = registry.hparams(config.name)
    if declarations is None or dimension.name not in declarations:
        return False
    declared = declarations[dimension.name]
    numbers = all(
        isinstance(c, (int, float)) and not isinstance(c, bool) for c in dimension.choices
    )
    return declared.is_number and declared.in_state and numbers


# -- writing -------------------------------------------------------------------------------------


def to_dict(search: SearchConfig) -> dict[str, Any]:
    """The section as plain data (what `from_dict` reads back; every dimension under
    `per_optimizer`)."""

    def dimension(d: Dimension) -> Any:
        if d.kind == "choice":
            return list(d.choices)
        out: dict[str, Any] = {"low": d.low, "high": d.high}
        out.update({"log": True} if d.log else {})
        out.update({"step": d.step} if d.step is not None else {})
        out.update({"count": d.count} if d.count is not None else {})
        return out

    objective = search.objective
    data: dict[str, Any] = {
        "method": search.method,
        **({"trials": search.trials} if search.trials is not None else {}),
        **({"seconds": search.seconds} if search.seconds is not None else {}),
        "population": search.population,
        **({"seeds": list(search.seeds)} if search.seeds is not None else {}),
        "seed": search.seed,
        "objective": {
            "metric": objective.metric,
            "mode": objective.mode,
            "at": objective.at,
            **({"target": objective.target} if objective.target is not None else {}),
        },
        "pruner": {"name": search.pruner},
        "per_optimizer": {
            label: {d.name: dimension(d) for d in dims} for label, dims in search.spaces.items()
        },
    }
    if search.folds is not None:
        data["folds"] = search.folds
    if search.pbt is not None:
        data["pbt"] = {
            "interval": search.pbt.interval,
            "quantile": search.pbt.quantile,
            "factors": list(search.pbt.factors),
        }
    return data
