"""What a sweep writes, read back from its studies (never from the loop's memory):

    STUDY_DIR/trials.csv, trials.md   every trial: its values, objective (mean over seeds),
                                      spread (std over seeds), status, seconds
    STUDY_DIR/best.yaml               a config of each optimizer at its best trial's values, that
                                      `jopt run` reproduces; its header says the objective
                                      each optimizer should give

`jopt sweep --resume` and a finished sweep both rewrite them; a study shared by several workers
gives every worker the whole table.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml

from jopt.lab import config as config_lib
from jopt.lab import outputs
from jopt.lab.search import space, study
from jopt.lab.search.section import SearchConfig

FIXED = ("optimizer", "trial", "status", "objective", "spread", "seconds")


def rows(experiment: config_lib.ExperimentConfig, studies: Sequence[optuna.Study]) -> list[dict]:
    """One row per trial of every study (the optimizers in config order), trials in order."""
    names = dimension_names(experiment.search)
    table = []
    for config, one in zip(experiment.optimizers, studies, strict=True):
        again = study.retried(one)
        for t in one.get_trials(deepcopy=False):
            state = study.status(t, again)
            if state == "waiting":
                continue
            row = {
                "optimizer": config.label,
                "trial": t.number,
                "status": state,
                "objective": t.value if t.state == optuna.trial.TrialState.COMPLETE else None,
                "spread": t.user_attrs.get("spread"),
                "seconds": t.user_attrs.get("seconds"),
                **{name: t.params.get(name) for name in names},
                "error": t.user_attrs.get("error", ""),
            }
            table.append(row)
    return table


def dimension_names(search: SearchConfig) -> list[str]:
    """Every searched name, in the order the config gives them."""
    return list(dict.fromkeys(d.name for dims in search.spaces.values() for d in dims))


def best_trials(
    experiment: config_lib.ExperimentConfig, studies: Sequence[optuna.Study]
) -> dict[str, optuna.trial.FrozenTrial | None]:
    """Each optimizer's best complete trial (None when none completed)."""
    found = {}
    for config, one in zip(experiment.optimizers, studies, strict=True):
        complete = one.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        found[config.label] = one.best_trial if complete else None
    return found


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "∞" if math.isinf(value) else f"{value:.{digits}g}"
    return str(value)


def markdown(experiment: config_lib.ExperimentConfig, table: list[dict]) -> str:
    search = experiment.search
    objective = search.objective
    what = f"{objective.at.replace('_', ' ')} {objective.metric}"
    if objective.at == "steps_to_target":
        what = f"steps until {objective.metric} reaches {objective.target}"
    seeds = list(search.seeds or experiment.seeds)
    lines = [
        f"# Sweep {experiment.name}",
        "",
        f"Method `{search.method}`, objective: {what} ({search.objective.direction}), mean over "
        f"seeds {seeds}, spread = std over seeds; workload `{experiment.workload.name}`, "
        f"{experiment.steps} steps. Trials sorted best first per optimizer.",
    ]
    names = dimension_names(search)
    for config in experiment.optimizers:
        mine = [r for r in table if r["optimizer"] == config.label]
        sign = -1 if search.objective.direction == "maximize" else 1
        mine.sort(
            key=lambda r: (
                r["objective"] is None,
                sign * r["objective"] if r["objective"] is not None else 0,
            )
        )
        own = [d.name for d in search.spaces[config.label]]
        columns = ["trial", *[n for n in names if n in own], "objective", "spread", "status", "s"]
        lines += ["", f"## {config.label}", "", "| " + " | ".join(columns) + " |"]
        lines += ["|" + "---|" * len(columns)]
        for r in mine:
            cells = [
                str(r["trial"]),
                *[_number(r[n]) for n in names if n in own],
                _number(r["objective"]),
                _number(r["spread"], 2),
                r["status"] + (f": {r['error']}" if r["error"] else ""),
                _number(r["seconds"], 3),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(study_dir: Path, experiment: config_lib.ExperimentConfig, studies) -> str:
    """Writes trials.csv and trials.md; returns the Markdown."""
    table = rows(experiment, studies)
    buffer = io.StringIO()
    fields = [*FIXED, *dimension_names(experiment.search), "error"]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(table)
    outputs.write_atomic(study_dir / "trials.csv", buffer.getvalue())
    text = markdown(experiment, table)
    outputs.write_atomic(study_dir / "trials.md", text)
    return text


def best_experiment(
    experiment: config_lib.ExperimentConfig,
    optimizers: Sequence[Any],
    name: str,
    description: str,
    target: config_lib.TargetConfig | None,
) -> config_lib.ExperimentConfig:
    """The config that trains a sweep's best: `optimizers` at their best values, on the seeds
    each trial had, without the search section."""
    return dataclasses.replace(
        experiment,
        name=name,
        description=description,
        optimizers=tuple(optimizers),
        seeds=experiment.search.seeds or experiment.seeds,
        target=target,
        search=None,
    )


def best_config(
    experiment: config_lib.ExperimentConfig, studies: Sequence[optuna.Study], study_dir: Path
) -> str:
    """best.yaml's text: the config at each optimizer's best values, headed by the command that
    runs it and the objective each optimizer should give."""
    search = experiment.search
    objective = search.objective
    best = best_trials(experiment, studies)
    optimizers, notes = [], []
    for config in experiment.optimizers:
        trial = best[config.label]
        if trial is None:
            optimizers.append(config)
            notes.append(f"#   {config.label}: no complete trial; the config's own values")
            continue
        optimizers.append(space.apply(config, trial.params))
        spread = trial.user_attrs.get("spread")
        notes.append(
            f"#   {config.label}: trial {trial.number}, {_number(trial.value)}"
            + (f" ± {_number(spread, 2)}" if spread is not None else "")
        )
    values = [t.value for t in best.values() if t is not None and math.isfinite(t.value)]
    target = experiment.target
    if objective.at == "steps_to_target":
        target = config_lib.TargetConfig(objective.metric, objective.target, objective.mode)
    elif target is None or target.metric != objective.metric:
        if values:
            pick = max if objective.mode == "max" else min
            target = config_lib.TargetConfig(objective.metric, pick(values), objective.mode)
    result = best_experiment(
        experiment,
        optimizers,
        f"{experiment.name}-best",
        f"The best trial of each optimizer in the sweep {experiment.name}.",
        target,
    )
    measure = {
        "final": "final",
        "best": "best",
        "steps_to_target": "steps to target",
    }[objective.at]
    header = [
        f"# jopt run {study_dir / 'best.yaml'}",
        f"# The sweep's objective, {objective.at.replace('_', ' ')} {objective.metric} (mean over "
        f"seeds), which summary.md shows as '{measure}':",
        *notes,
    ]
    return "\n".join(header) + "\n" + yaml.safe_dump(config_lib.to_dict(result), sort_keys=False)


def write(study_dir: Path, experiment: config_lib.ExperimentConfig, studies) -> str:
    """Writes the tables and best.yaml; returns trials.md's text."""
    text = write_tables(study_dir, experiment, studies)
    outputs.write_atomic(study_dir / "best.yaml", best_config(experiment, studies, study_dir))
    return text
