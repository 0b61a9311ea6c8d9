"""The study loop of `jopt sweep`: one optuna study per optimizer of the config.

For each optimizer, batches of `population` trials are asked from optuna (its sampler draws the
values), turned into optimizer configs (an invalid combination fails that trial alone), grouped
by program (trials differing only in numbers the optimizer keeps in its state share one) and
trained as populations, one member per (trial, seed). Each trial is told its objective (the mean
over its seeds) or its failure, with what was measured as user attributes:

    status      done, pruned, diverged (a seed's loss was not finite), nan (no finite
                objective), failed (the optimizer refused the values: `error`), interrupted
    objective_per_seed, spread (std over seeds), seconds (its share of its population's time),
    steps, curve (the objective metric at each eval, mean over seeds)

Diverged, NaN and failed trials are told as optuna's FAIL, so they never count as best; pruned
ones as PRUNED. Trials stopped by Ctrl-C are told FAIL with status `interrupted` and queued again
(`study.enqueue_trial`), so `jopt sweep --resume` runs them first; trials a killed process left
RUNNING are treated the same way on resume. The budget counts every trial but the interrupted.

Storage is optuna's: a journal file in the study directory by default (no server), or any
database URL optuna takes (`postgresql://...`) for workers on several machines.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from jopt.lab import config as config_lib
from jopt.lab.config_values import ConfigError
from jopt.lab.programs import compiled_experiment, compiled_workload, steps_per_epoch
from jopt.lab.progress import bar as progress_bar
from jopt.lab.search import optuna_setup, population, space
from jopt.lab.search.section import Objective
from jopt.lab.search.space import Dimension

# -- scoring -------------------------------------------------------------------------------------


def score(objective: Objective, steps: Sequence[int], curve: np.ndarray) -> float:
    """One member's objective from its metric at each eval (NaN where not evaluated)."""
    finite = np.isfinite(curve)
    if not finite.any():
        return math.nan
    if objective.at == "final":
        return float(curve[np.flatnonzero(finite)[-1]])
    if objective.at == "best":
        return float(np.nanmax(curve) if objective.mode == "max" else np.nanmin(curve))
    reached = curve >= objective.target if objective.mode == "max" else curve <= objective.target
    hits = np.flatnonzero(finite & reached)
    return float(steps[hits[0]]) if hits.size else math.inf


# -- the loop ------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Proposal:
    trial: optuna.Trial
    values: dict[str, Any]  # the trial's, by dimension name
    program: Any  # the OptimizerConfig its group's program is built from
    pruned: bool = False


@dataclasses.dataclass(frozen=True)
class Context:
    """What every optimizer's study shares in one `jopt sweep` process."""

    experiment: config_lib.ExperimentConfig  # epochs resolved
    study_dir: Path
    storage: Any
    worker: str  # host:study_dir of this process, to recognize its own stale trials
    stop: Callable[[], bool]
    progress: bool
    shared: bool = False  # a database other workers may use too


def sampler_seed(seed: int, context: Context, trials_so_far: int) -> int:
    """The seed of this worker's sampler: `seed` for a new study in the journal file (so that a
    sweep is reproducible), else one drawn from (seed, worker, trials so far), so that workers
    sharing a database, and a resumed sweep, do not replay the same draws."""
    if not context.shared and trials_so_far == 0:
        return seed
    words = [seed, zlib.crc32(context.worker.encode()), trials_so_far]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def retried(study: optuna.Study) -> set[int]:
    """The numbers of trials queued again after an interruption."""
    trials = study.get_trials(deepcopy=False)
    return {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}


def status(trial: optuna.trial.FrozenTrial, retried_numbers: set[int]) -> str:
    """A trial's status (see the module docstring); `running` or `waiting` if not finished."""
    if trial.number in retried_numbers:
        return "interrupted"
    if trial.state == optuna.trial.TrialState.RUNNING:
        return "running"
    if trial.state == optuna.trial.TrialState.WAITING:
        return "waiting"
    return trial.user_attrs.get("status", trial.state.name.lower())


def counted(study: optuna.Study) -> int:
    """Trials that count against the budget: finished ones (but the interrupted) and those
    running now (in another worker)."""
    again = retried(study)
    return sum(
        status(t, again) not in ("interrupted", "waiting") for t in study.get_trials(deepcopy=False)
    )


def requeue_stale(study: optuna.Study, worker: str) -> int:
    """Trials this study directory's worker left RUNNING (killed): failed and queued again."""
    stale = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if t.user_attrs.get("worker") == worker
    ]
    for t in stale:
        _interrupt(study, t.number, t.params)
    return len(stale)


def _interrupt(study: optuna.Study, number: int, params: dict[str, Any]) -> None:
    study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    study.enqueue_trial(params, user_attrs={"retry_of": number})


def _tell(study: optuna.Study, trial: optuna.Trial, status: str, value: float | None) -> None:
    trial.set_user_attr("status", status)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            if status == "done":
                study.tell(trial, value)
            elif status == "pruned":
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        except RuntimeError as e:
            # GridSampler stops the study after its last point, which raises outside
            # `optimize` once the trial is stored (optuna's documented ask/tell caveat).
            if "Study.stop" not in str(e):
                raise


def search_optimizer(context: Context, index: int) -> optuna.Study:
    """Runs the study of the config's optimizer `index` until its budget is spent."""
    experiment, search = context.experiment, context.experiment.search
    base = experiment.optimizers[index]
    dimensions = search.spaces[base.label]
    study = optuna.create_study(
        study_name=optuna_setup.study_name(experiment, base.label),
        storage=context.storage,
        sampler=optuna_setup.sampler(search, dimensions),
        pruner=optuna_setup.pruner(search, experiment.steps, experiment.eval_every),
        direction=search.objective.direction,
        load_if_exists=True,
    )
    seed = sampler_seed(search.seed, context, len(study.get_trials(deepcopy=False)))
    if seed != search.seed:
        study.sampler = optuna_setup.sampler(dataclasses.replace(search, seed=seed), dimensions)
    requeue_stale(study, context.worker)
    budget = search.budget(base.label)
    started = None  # the clock of `seconds` starts with this process's first population
    total = None if budget == math.inf else budget
    bar = progress_bar(context.progress, base.label, total, counted(study), unit="trial")
    try:
        while True:
            remaining = budget - counted(study)
            if remaining <= 0:
                break
            if search.seconds is not None and started is not None:
                if time.perf_counter() - started >= search.seconds:
                    break
            started = time.perf_counter() if started is None else started
            asked = [study.ask() for _ in range(int(min(search.population, remaining)))]
            groups = _groups(study, base, dimensions, asked, context.worker)
            for i, group in enumerate(groups):
                try:
                    _run_group(context, study, base, dimensions, group)
                except population.Stopped:
                    for proposal in (p for later in groups[i + 1 :] for p in later):
                        proposal.trial.set_user_attr("status", "interrupted")
                        _interrupt(study, proposal.trial.number, proposal.trial.params)
                    raise
            if bar is not None:
                bar.n = counted(study)
                bar.set_postfix_str(_best(study), refresh=False)
                bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    return study


def _groups(study, base, dimensions, asked, worker) -> list[list[_Proposal]]:
    """The asked trials with their configs, grouped by program; invalid ones failed now."""
    by_program: dict[str, list[_Proposal]] = {}
    shared = [d for d in dimensions if space.in_state(base, d)]
    for trial in asked:
        trial.set_user_attr("worker", worker)
        values = {d.name: d.suggest(trial) for d in dimensions}
        try:
            space.apply(base, values)  # the trial's own config: the combination may be refused
            program = space.apply(base, {**values, **{d.name: _anchor(d) for d in shared}})
        except ConfigError as e:
            trial.set_user_attr("error", str(e).partition(": ")[2])
            _tell(study, trial, "failed", None)
            continue
        key = program.program_key
        by_program.setdefault(key, []).append(_Proposal(trial, values, program))
    return list(by_program.values())


def _anchor(dimension: Dimension) -> Any:
    """The value a shared program is built with (each member's own is set in its state)."""
    return dimension.choices[0] if dimension.kind == "choice" else dimension.low


def _run_group(context, study, base, dimensions, group: list[_Proposal]) -> None:
    experiment, search = context.experiment, context.experiment.search
    seeds = search.seeds or experiment.seeds
    shared = [d.name for d in dimensions if space.in_state(base, d)]
    members = [
        population.Member(seed, {name: p.values[name] for name in shared})
        for p in group
        for seed in seeds
    ]
    per_trial = len(seeds)

    def on_eval(step: int, values: np.ndarray) -> np.ndarray | None:
        if search.pruner == "none":
            return None
        mask = np.ones(len(members), bool)
        for i, proposal in enumerate(group):
            if proposal.pruned:
                mask[i * per_trial : (i + 1) * per_trial] = False
                continue
            mean = float(np.nanmean(values[i * per_trial : (i + 1) * per_trial]))
            if math.isfinite(mean):
                proposal.trial.report(mean, step)
                if proposal.trial.should_prune():
                    proposal.pruned = True
                    mask[i * per_trial : (i + 1) * per_trial] = False
        return mask

    workloads = folds(experiment)
    results = []
    try:
        for workload in workloads:
            results.append(
                population.train(
                    compiled_workload(workload, experiment.data_parallel),
                    group[0].program,
                    members,
                    experiment.steps,
                    experiment.eval_every,
                    search.objective.metric,
                    size=search.population * per_trial,
                    on_eval=on_eval,
                    stop=context.stop,
                )
            )
    except population.Stopped:
        for proposal in group:
            proposal.trial.set_user_attr("status", "interrupted")
            _interrupt(study, proposal.trial.number, proposal.trial.params)
        raise
    for i, proposal in enumerate(group):
        rows = slice(i * per_trial, (i + 1) * per_trial)
        _record(study, proposal, search.objective, results, rows, len(group))


def folds(experiment: config_lib.ExperimentConfig) -> list[config_lib.WorkloadConfig]:
    """The workload of each cross-validation fold (the workload itself without folds)."""
    k = experiment.search.folds
    if k is None:
        return [experiment.workload]
    options = experiment.workload.options
    return [
        dataclasses.replace(
            experiment.workload,
            options=dataclasses.replace(options, cv_folds=k, cv_fold=i),
        )
        for i in range(k)
    ]


def _record(study, proposal: _Proposal, objective: Objective, results, rows, n_trials) -> None:
    """Tells `proposal`'s trial its objective: the mean over its seeds (and folds)."""
    trial = proposal.trial
    steps = results[0].steps
    curves = np.concatenate([r.metric[rows] for r in results])
    scores = [score(objective, steps, c) for c in curves]
    finite = [s for s in scores if not math.isnan(s)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        curve = np.nanmean(curves, axis=0)
    trial.set_user_attr("seconds", sum(r.seconds for r in results) / n_trials)
    trial.set_user_attr("steps", list(steps))
    trial.set_user_attr("curve", [None if math.isnan(v) else float(v) for v in curve])
    trial.set_user_attr("objective_per_seed", [_json_number(s) for s in scores])
    diverged = np.concatenate([r.diverged_at[rows] for r in results])
    if (diverged >= 0).any():
        trial.set_user_attr("diverged_at_step", int(diverged[diverged >= 0].min()) + 1)
        _tell(study, trial, "diverged", None)
    elif proposal.pruned:
        _tell(study, trial, "pruned", None)
    elif len(finite) < len(scores):
        _tell(study, trial, "nan", None)
    else:
        spread = float(np.std(scores)) if all(map(math.isfinite, scores)) else None
        trial.set_user_attr("spread", spread)
        _tell(study, trial, "done", float(np.mean(scores)))


def _json_number(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def _best(study: optuna.Study) -> str:
    try:
        return f"best {study.best_value:.4g}"
    except ValueError:
        return "best —"


def worker_id(study_dir: Path) -> str:
    """The worker a study directory stands for: its host and real path."""
    return f"{socket.gethostname()}:{os.path.realpath(study_dir)}"


def resolved(experiment: config_lib.ExperimentConfig) -> config_lib.ExperimentConfig:
    """`experiment` with `epochs` turned into steps (loading the workload's data once)."""
    compiled = compiled_experiment(experiment)
    return config_lib.with_epochs_resolved(experiment, steps_per_epoch(compiled.workload) or 1)


def sweep(
    experiment: config_lib.ExperimentConfig,
    study_dir: Path,
    storage: Any,
    *,
    stop: Callable[[], bool] = lambda: False,
    progress: bool = True,
) -> list[optuna.Study]:
    """Runs every optimizer's study (or what is left of it); returns the studies.

    `experiment` has its epochs turned into steps (`resolved`)."""
    context = Context(
        experiment,
        study_dir,
        storage,
        worker_id(study_dir),
        stop,
        progress,
        shared=isinstance(storage, optuna.storages.RDBStorage),
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return [search_optimizer(context, i) for i in range(len(experiment.optimizers))]
