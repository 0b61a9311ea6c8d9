"""Experiment configs: YAML in, frozen dataclasses out, every mistake caught before any compute.

Validation reads no data; the few options only the data can refute (a batch larger than the
training split, MNIST files missing from `data_dir`) fail as `ConfigError`s at `workload` when the
runner loads the data, still before anything is written or compiled.

A config names a workload and its options, a list of optimizers with their hyperparameters (each a
number or a schedule), the seeds, the training length (`steps`, or `epochs` of the workload's
training split, turned into steps once the data is loaded) and how often to evaluate, log and
checkpoint. Errors carry the dotted path of the offending key and, for names, the closest valid
one:

    jopt: config error at optimizers[1].momentum: jopt.sgd: momentum must be in [0, 1), got 1.5.
    jopt: config error at workload.name: unknown workload 'cnnn' (did you mean 'cnn'?).

PyYAML reads `1e-2` as a string (YAML 1.1 wants `1.0e-2`); where a number is expected, numeric
strings are converted, anything else is rejected.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from jopt.lab import config_values as checks
from jopt.lab import outputs, registry
from jopt.lab.config_optimizers import (
    OptimizerConfig,
    ScheduleConfig,
    build_optimizer,
    build_schedule,
    build_value,
    optimizer,
)
from jopt.lab.config_values import ConfigError
from jopt.lab.search import section as search_section
from jopt.lab.search.section import SearchConfig

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "TargetConfig",
    "WorkloadConfig",
    "apply_override",
    "build_optimizer",
    "build_schedule",
    "build_value",
    "from_dict",
    "load",
    "metric_names",
    "to_dict",
    "with_epochs_resolved",
    "workload_error",
]
from jopt.lab.workloads import WORKLOADS


@dataclasses.dataclass(frozen=True)
class WorkloadConfig:
    name: str
    options: Any  # the workload module's Options dataclass


@dataclasses.dataclass(frozen=True)
class TargetConfig:
    """The metric and value that define "reached the target" (steps and seconds to it)."""

    metric: str
    value: float
    mode: str  # "max" (accuracy) or "min" (a loss)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    name: str
    workload: WorkloadConfig
    optimizers: tuple[OptimizerConfig, ...]
    seeds: tuple[int, ...] = (0,)
    steps: int = 100  # with `epochs`: the steps of those epochs, set by `with_epochs_resolved`
    epochs: int | None = None
    eval_every: int = 10
    log_every: int = 1
    checkpoint_every: int = 0  # 0: only at the end (and on Ctrl-C)
    target: TargetConfig | None = None
    output_dir: str = "runs"
    description: str = ""
    search: SearchConfig | None = None  # what `jopt sweep` searches; `jopt run` ignores it
    data_parallel: int | str = 1  # devices each step's batch is split over, or "all" (local)


_TOP_KEYS = {f.name for f in dataclasses.fields(ExperimentConfig)}
MAX_STEPS = 2**31 - 1  # an optimizer's step count is int32 (it saturates there)
MAX_SEED = 2**32 - 1  # jax.random.key keeps 32 bits: seed 2**32 would repeat seed 0


# -- sections --------------------------------------------------------------------------------------


def _workload(raw: Any) -> WorkloadConfig:
    raw = dict(checks.mapping("workload", raw))
    name = checks.string("workload.name", raw.pop("name", None))
    if name not in WORKLOADS:
        raise ConfigError(
            "workload.name",
            f"unknown workload {name!r}{registry.closest(name, WORKLOADS)}; "
            f"known: {', '.join(sorted(WORKLOADS))}.",
        )
    options_type = WORKLOADS[name].Options
    hints = typing.get_type_hints(options_type)
    fields = {f.name for f in dataclasses.fields(options_type)}
    checks.reject_unknown("workload", raw, fields | {"name"})
    values = {key: checks.typed(f"workload.{key}", value, hints[key]) for key, value in raw.items()}
    try:
        options = options_type(**values)
    except (TypeError, ValueError) as e:
        raise checks.blame("workload", e, fields) from e
    return WorkloadConfig(name, options)


def workload_error(workload: WorkloadConfig, error: Exception) -> ConfigError:
    """The ConfigError for an option only the data could refute (at the option it names)."""
    fields = {f.name for f in dataclasses.fields(workload.options)}
    return checks.blame("workload", error, fields)


def metric_names(workload: WorkloadConfig) -> tuple[str, ...]:
    """The metrics a target may name: `train_loss`, and `eval_M` for each metric M of the
    workload (the keys of the metrics.jsonl rows)."""
    names = WORKLOADS[workload.name].metric_names(workload.options)
    return ("train_loss", *(f"eval_{name}" for name in names))


def _check_plateau_metrics(optimizers, workload: WorkloadConfig) -> None:
    """A plateau decay's metric is one the workload evaluates (on the validation split)."""
    known = WORKLOADS[workload.name].metric_names(workload.options)
    for i, config in enumerate(optimizers):
        plateau = config.wrappers.plateau
        if plateau is not None and plateau.metric not in known:
            raise ConfigError(
                f"optimizers[{i}].plateau.metric",
                f"unknown metric {plateau.metric!r}{registry.closest(plateau.metric, known)} "
                f"for workload {workload.name!r}; it evaluates: {', '.join(known)}.",
            )


def _target(raw: Any, workload: WorkloadConfig) -> TargetConfig | None:
    if raw is None:
        return None
    raw = dict(checks.mapping("target", raw))
    checks.reject_unknown("target", raw, {"metric", "value", "mode"})
    metric = checks.string("target.metric", raw.get("metric"))
    known = metric_names(workload)
    if metric not in known:
        raise ConfigError(
            "target.metric",
            f"unknown metric {metric!r}{registry.closest(metric, known)} for workload "
            f"{workload.name!r}; known: {', '.join(known)}.",
        )
    value = float(checks.number("target.value", raw.get("value")))
    if not math.isfinite(value):
        raise ConfigError("target.value", f"must be a finite number, got {value!r}.")
    default_mode = "max" if "accuracy" in metric else "min"
    mode = checks.string("target.mode", raw.get("mode", default_mode))
    if mode not in ("min", "max"):
        raise ConfigError("target.mode", f"must be 'min' or 'max', got {mode!r}.")
    return TargetConfig(metric, value, mode)


def _name(raw: Any) -> str:
    """The experiment's name, which names its run directory: one non-empty path component."""
    name = checks.string("name", raw)
    if not name.strip() or name in (".", "..") or "/" in name or "\\" in name:
        raise ConfigError(
            "name", f"must be a non-empty folder name without '/' or '\\', got {name!r}."
        )
    return name


def from_dict(raw: Any) -> ExperimentConfig:
    """Validates a parsed YAML document into an ExperimentConfig."""
    raw = dict(checks.mapping("", raw))
    checks.reject_unknown("", raw, _TOP_KEYS)
    for required in ("name", "workload", "optimizers"):
        if required not in raw:
            raise ConfigError(required, "is required.")
    optimizers = raw["optimizers"]
    if not isinstance(optimizers, list) or not optimizers:
        raise ConfigError("optimizers", "must be a non-empty list.")
    optimizer_configs = tuple(optimizer(f"optimizers[{i}]", o) for i, o in enumerate(optimizers))
    names = [outputs.safe_name(o.label) for o in optimizer_configs]
    for i, name in enumerate(names):
        if names.index(name) != i:
            first = optimizer_configs[names.index(name)].label
            raise ConfigError(
                f"optimizers[{i}].label",
                f"label {optimizer_configs[i].label!r} names the same trial folder ({name!r}) as "
                f"{first!r}; give each optimizer a distinct label.",
            )
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError("seeds", f"must be a non-empty list of integers, got {seeds!r}.")
    seeds = tuple(checks.integer(f"seeds[{i}]", s, 0, MAX_SEED) for i, s in enumerate(seeds))
    if len(set(seeds)) != len(seeds):
        raise ConfigError("seeds", f"must be distinct, got {list(seeds)}.")
    workload = _workload(raw["workload"])
    _check_plateau_metrics(optimizer_configs, workload)
    steps, epochs = _length(raw, workload)
    config = ExperimentConfig(
        name=_name(raw["name"]),
        workload=workload,
        optimizers=optimizer_configs,
        seeds=seeds,
        steps=steps,
        epochs=epochs,
        eval_every=checks.integer("eval_every", raw.get("eval_every", 10), 1),
        log_every=checks.integer("log_every", raw.get("log_every", 1), 1),
        checkpoint_every=checks.integer("checkpoint_every", raw.get("checkpoint_every", 0), 0),
        target=_target(raw.get("target"), workload),
        output_dir=checks.string("output_dir", raw.get("output_dir", "runs")),
        description=checks.string("description", raw.get("description", "")),
        search=search_section.from_dict(
            raw.get("search"), optimizer_configs, metric_names(workload), MAX_SEED, workload
        ),
        data_parallel=_data_parallel(raw.get("data_parallel", 1), workload),
    )
    return config


def _data_parallel(raw: Any, workload: WorkloadConfig) -> int | str:
    """The devices to split each step's batch over: an integer >= 1, or "all" the local ones
    (`true` means "all", `false` 1). Whether that many are there is seen when the run starts."""
    if raw is True or raw == "all":
        value: int | str = "all"
    elif raw is False:
        value = 1
    else:
        try:
            value = checks.integer("data_parallel", raw, 1)
        except ConfigError:
            raise ConfigError(
                "data_parallel", f"must be an integer >= 1, 'all' or a bool, got {raw!r}."
            ) from None
    if value != 1 and not hasattr(workload.options, "batch_size"):
        raise ConfigError(
            "data_parallel",
            f"workload {workload.name!r} has no training data to split over devices: "
            f"data_parallel must be 1, got {raw!r}.",
        )
    return value


def _length(raw: Mapping[str, Any], workload: WorkloadConfig) -> tuple[int, int | None]:
    """(steps, epochs): `steps` (default 100), or `epochs` of a workload with training data."""
    steps, epochs = raw.get("steps"), raw.get("epochs")
    if epochs is None:
        return checks.integer("steps", 100 if steps is None else steps, 1, MAX_STEPS), None
    if steps is not None:
        raise ConfigError(
            "epochs",
            f"give either steps or epochs, not both (got steps={steps!r}, epochs={epochs!r}); "
            "to override one with the other, set it to null: steps=null epochs=3.",
        )
    epochs = checks.integer("epochs", epochs, 1, MAX_STEPS)
    if not hasattr(workload.options, "batch_size"):
        raise ConfigError(
            "epochs",
            f"workload {workload.name!r} has no training data to count epochs of: use steps.",
        )
    return 0, epochs


def with_epochs_resolved(config: ExperimentConfig, steps_per_epoch: int) -> ExperimentConfig:
    """`config` with `steps` = epochs * steps_per_epoch (and epochs dropped); unchanged without."""
    if config.epochs is None:
        return config
    steps = config.epochs * steps_per_epoch
    if steps > MAX_STEPS:
        raise ConfigError(
            "epochs",
            f"{config.epochs} epochs of {steps_per_epoch} steps are {steps} steps, more than an "
            f"optimizer's step count holds ({MAX_STEPS}).",
        )
    return dataclasses.replace(config, steps=steps, epochs=None)


# -- overrides and files ---------------------------------------------------------------------------


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Applies `a.b.c=value` (list items by index: `optimizers.0.learning_rate=0.1`) in place.

    The value is parsed as YAML, so `seeds=[0,1]` gives a list and `steps=50` an integer.
    """
    key, equals, text = override.partition("=")
    parts = key.strip().split(".")
    if not equals or not all(parts):
        raise ConfigError(
            key.strip(), f"an override must look like key.sub=value, got {override!r}."
        )
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(where, f"no list item {part!r} (the list has {len(node)}).")
            node = node[int(part)]
        elif isinstance(node, dict):
            if node.get(part) is None and depth == 0 and part in _TOP_KEYS:
                node[part] = {}  # e.g. `target.value=0.9` on a config without a target
            if part not in node:
                known = set(node) | (_TOP_KEYS if depth == 0 else set())
                raise ConfigError(where, f"unknown key {part!r}{registry.closest(part, known)}.")
            node = node[part]
        else:
            raise ConfigError(where, "cannot descend into a value.")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(key, f"the value {text!r} is not valid YAML: {e}") from None
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(key, f"no list item {last!r} (the list has {len(node)}).")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(key, "cannot set a key inside a value.")


def load(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Reads, overrides and validates a YAML config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("", f"no config file at {path}.")
    with path.open() as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ConfigError("", f"{path} is not valid YAML: {e}") from e
    raw = dict(checks.mapping("", raw))
    for override in overrides:
        apply_override(raw, override)
    return from_dict(raw)


def to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The config as plain data (what `from_dict` reads back), for saving with results.

    Epochs are saved as given; the runner saves its config after `with_epochs_resolved`, so a run
    directory records the steps that ran.
    """

    workload = {"name": config.workload.name, **dataclasses.asdict(config.workload.options)}
    workload = {k: list(v) if isinstance(v, tuple) else v for k, v in workload.items()}
    return {
        "name": config.name,
        "description": config.description,
        "workload": workload,
        "optimizers": [o.to_data() for o in config.optimizers],
        "seeds": list(config.seeds),
        **({"epochs": config.epochs} if config.epochs is not None else {"steps": config.steps}),
        "eval_every": config.eval_every,
        "log_every": config.log_every,
        "checkpoint_every": config.checkpoint_every,
        "target": dataclasses.asdict(config.target) if config.target else None,
        "output_dir": config.output_dir,
        **({"data_parallel": config.data_parallel} if config.data_parallel != 1 else {}),
        **({"search": search_section.to_dict(config.search)} if config.search else {}),
    }
