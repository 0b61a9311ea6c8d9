"""The `search:` section of an experiment config: how to search, for how long, and how a trial
is scored (the dimensions themselves are `space`'s). Validated before any compute, every mistake
a `ConfigError` at its dotted path.

    search:
      method: tpe                 # grid, random, quasirandom, tpe, gp, cmaes, pbt
      trials: 24                  # per optimizer; and/or seconds: 600
      population: 8               # trials trained together as one vmapped program
      seeds: [0, 1]               # each trial's seeds (default: the config's); objective = mean
      objective: {metric: eval_accuracy, mode: max, at: final}   # at: final, best, steps_to_target
      pruner: {name: median}      # median, successive_halving, hyperband (on eval points)
      folds: 5                    # k-fold cross-validation (workloads with data)
      space:                      # for every optimizer of the config, by its own argument names
        learning_rate: {low: 1.0e-4, high: 1.0, log: true}
      per_optimizer:              # more dimensions for one optimizer, by its label
        momentum: {momentum: {low: 0.5, high: 0.99}}
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Mapping, Sequence
from typing import Any

from jopt.lab import config_values as checks
from jopt.lab import registry
from jopt.lab.config_optimizers import OptimizerConfig
from jopt.lab.config_values import ConfigError
from jopt.lab.search.space import Dimension, in_state, spaces

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
    for i, config in enumerate(optimizers):
        for key in ("plateau", "average"):
            if method == "pbt" and getattr(config.wrappers, key) is not None:
                raise ConfigError(
                    f"optimizers[{i}].{key}",
                    f"population-based training does not take {key} (its exploit step copies "
                    "params and states between trials and sets their hyperparameters itself); "
                    "use another search method, or leave it out.",
                )
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
    per_label = spaces(raw.get("space"), raw.get("per_optimizer"), optimizers, method)
    pbt = _pbt(raw.get("pbt"), method, population)
    folds = _folds(raw.get("folds"), workload, pruner, method)
    if pbt is not None:
        for config, (label, dims) in zip(optimizers, per_label.items(), strict=True):
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
        spaces=per_label,
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
