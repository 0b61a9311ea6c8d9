"""A sweep's figures, drawn from its studies, in STUDY_DIR/figures/:

objective-NAME.png              the objective against each searched NAME, one colour per
                                optimizer: every complete trial, and the mean per value where
                                values repeat (log axis where the range is log): for the
                                learning rate, the sensitivity curve
best_so_far.png                 the best objective against trials, per optimizer
best_curves.png                 the objective metric against steps for the 5 best trials
parallel_coordinates-LABEL.png  optuna's parallel coordinates of one optimizer's trials
importances-LABEL.png           optuna's hyperparameter importances (fANOVA; drawn when
                                at least two dimensions and two complete trials allow it)
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna

from jopt.lab import config as config_lib
from jopt.lab import outputs
from jopt.lab.plots import plt, save_figure
from jopt.lab.search.report import dimension_names

BEST_CURVES = 5


def _complete(one: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return one.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _finite(trials) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if t.value is not None and math.isfinite(t.value)]


def plot_objective(figures: Path, experiment, studies, name: str) -> Path:
    search = experiment.search
    fig, ax = plt.subplots(figsize=(6, 4))
    log = False
    categorical = False
    for config, one in zip(experiment.optimizers, studies, strict=True):
        dims = {d.name: d for d in search.spaces[config.label]}
        if name not in dims:
            continue
        log |= dims[name].log
        categorical |= dims[name].kind == "choice" and not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in dims[name].choices
        )
        trials = _finite(_complete(one))
        xs = [t.params[name] for t in trials]
        ys = [t.value for t in trials]
        if categorical:
            xs = [str(x) for x in xs]
        points = ax.scatter(xs, ys, s=14, alpha=0.6, label=config.label)
        groups = defaultdict(list)
        for x, y in zip(xs, ys, strict=True):
            groups[x].append(y)
        if any(len(v) > 1 for v in groups.values()) or dims[name].is_discrete:
            keys = list(groups) if categorical else sorted(groups)
            ax.plot(
                keys, [np.mean(groups[k]) for k in keys], color=points.get_facecolor()[0], alpha=0.9
            )
    if log:
        ax.set_xscale("log")
    labels = (
        name,
        _objective_label(search.objective),
        f"{experiment.name}: objective against {name}",
    )
    return _finish(fig, ax, labels, figures / f"objective-{outputs.safe_name(name)}.png")


def _finish(fig, ax, labels: tuple[str, str, str], path: Path, legend_size: int = 8) -> Path:
    """Axis labels and title, a grid and a legend (when something was drawn); saved at `path`."""
    xlabel, ylabel, title = labels
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.has_data():
        ax.legend(fontsize=legend_size)
    return save_figure(fig, path)


def _objective_label(objective) -> str:
    if objective.at == "steps_to_target":
        return f"steps until {objective.metric} reaches {objective.target}"
    return f"{objective.at} {objective.metric}"


def plot_best_so_far(figures: Path, experiment, studies) -> Path:
    objective = experiment.search.objective
    pick = np.fmax if objective.direction == "maximize" else np.fmin
    fig, ax = plt.subplots(figsize=(6, 4))
    for config, one in zip(experiment.optimizers, studies, strict=True):
        trials = sorted(one.get_trials(deepcopy=False), key=lambda t: t.number)
        values = [
            t.value if t.state == optuna.trial.TrialState.COMPLETE else np.nan for t in trials
        ]
        if not values:
            continue
        best = pick.accumulate(np.asarray(values, float))
        ax.step(np.arange(1, len(best) + 1), best, where="post", label=config.label)
    labels = ("trials", f"best {_objective_label(objective)}", f"{experiment.name}: best so far")
    return _finish(fig, ax, labels, figures / "best_so_far.png")


def plot_best_curves(figures: Path, experiment, studies) -> Path:
    objective = experiment.search.objective
    fig, ax = plt.subplots(figsize=(6, 4))
    for config, one in zip(experiment.optimizers, studies, strict=True):
        trials = _finite(_complete(one))
        trials.sort(key=lambda t: t.value, reverse=objective.direction == "maximize")
        for rank, t in enumerate(trials[:BEST_CURVES]):
            curve = np.asarray([np.nan if v is None else v for v in t.user_attrs["curve"]])
            ax.plot(
                t.user_attrs["steps"],
                curve,
                alpha=1.0 - 0.15 * rank,
                label=f"{config.label} #{t.number}",
            )
    labels = (
        "step",
        f"{objective.metric} (mean over seeds)",
        f"{experiment.name}: the {BEST_CURVES} best trials of each optimizer",
    )
    return _finish(fig, ax, labels, figures / "best_curves.png", legend_size=7)


def plot_optuna(figures: Path, experiment, studies) -> list[Path]:
    """optuna's parallel coordinates and importances, where they can be drawn."""
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    for config, one in zip(experiment.optimizers, studies, strict=True):
        complete = _finite(_complete(one))
        dims = experiment.search.spaces[config.label]
        name = outputs.safe_name(config.label)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
            if complete:
                ax = optuna_plots.plot_parallel_coordinate(one)
                written.append(save_figure(ax.figure, figures / f"parallel_coordinates-{name}.png"))
            if len(dims) >= 2 and len(complete) >= 2:
                ax = optuna_plots.plot_param_importances(one)
                written.append(save_figure(ax.figure, figures / f"importances-{name}.png"))
    return written


def plot_sweep(
    study_dir: Path, experiment: config_lib.ExperimentConfig, studies: Sequence[optuna.Study]
) -> list[Path]:
    """Draws every figure of the sweep; returns their paths."""
    figures = study_dir / "figures"
    written = [
        plot_objective(figures, experiment, studies, n) for n in dimension_names(experiment.search)
    ]
    written.append(plot_best_so_far(figures, experiment, studies))
    written.append(plot_best_curves(figures, experiment, studies))
    written += plot_optuna(figures, experiment, studies)
    return written
