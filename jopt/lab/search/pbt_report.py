"""What PBT did, read and written from its rows (`jopt.lab.search.pbt` makes them).

A `Row` is one trial at one step: step 0, each exploit and the end. From the rows alone come
each trial's lineage (the copies its final parameters went through, traced back from its last
row), the best trial, and these files in STUDY_DIR (text atomically; when Ctrl-C stops the
sweep, the first three files with what was done):

    pbt.csv                   optimizer, trial, step, each searched value, score, parent: one row
                              per trial at step 0, at each exploit and at the end. `score` is the
                              trial's objective at `step` before that step's exploit (empty: it
                              diverged); `parent` the trial it copied at `step` (empty if none);
                              the values are those it trains with from `step` on
    pbt_lineage.json          per optimizer: the best trial, and for each trial its final score
                              and values, its `chain` of copies ({step, into, from}, oldest
                              first), its lineage's `schedule` ({step, trial, values}) and scores
    pbt.md                    the summary `pbt.run` returns
    pbt_best.yaml             a config `jopt run` reproduces each best lineage with, bitwise: the
                              values that change as `piecewise_constant` schedules. Only for the
                              optimizers whose changing values are schedulable and have nothing
                              derived from them (learning_rate, weight_decay: a decay rate's
                              `1 - x` is rounded differently from a schedule); its header says
                              which are left out
    figures/pbt_hparams-LABEL.png  each searched value against step, one colour per trial (log
                              axis where the range is log); black: the best trial's lineage
    figures/pbt_scores-LABEL.png   each trial's score against step (a copy continues from its
                              parent's score); black: the best trial's lineage
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from jopt.lab import config as config_lib
from jopt.lab import outputs, registry
from jopt.lab.config_optimizers import OptimizerConfig
from jopt.lab.search import report, space

CSV = "pbt.csv"
LINEAGE = "pbt_lineage.json"
SUMMARY = "pbt.md"
BEST = "pbt_best.yaml"


@dataclasses.dataclass(frozen=True)
class Row:
    """One trial at one step: a line of pbt.csv (see the module docstring)."""

    trial: int
    step: int
    values: Mapping[str, Any]  # what it trains with from `step` on
    score: float  # its objective at `step`, before the exploit; NaN: none (diverged)
    parent: int | None  # the trial it copied at `step`


# -- reading the rows ----------------------------------------------------------------------------


def ranking(scores: Sequence[float], direction: str) -> list[int]:
    """The trials best first: scored ones by score (ties: lower trial first), then the rest (the
    order of the tables here, and of `pbt.select`'s winners and losers)."""
    sign = -1.0 if direction == "maximize" else 1.0
    return sorted(
        range(len(scores)),
        key=lambda k: (
            math.isnan(scores[k]),
            0.0 if math.isnan(scores[k]) else sign * scores[k],
            k,
        ),
    )


def lineage(rows: Sequence[Row], trial: int, end: int | None = None) -> dict[str, Any]:
    """`trial`'s lineage, traced back from its last row: `chain` ({step, into, from}: the copies
    its final parameters went through, oldest first), `schedule` ({step, trial, values...}: the
    values they trained with from each step on, and the trial that held them), `scores` ({step,
    trial, score}: their score at each step, before that step's exploit). `end`: the last step of
    the run (its schedule entry, which starts nothing, is left out)."""
    at = {(r.trial, r.step): r for r in rows}
    steps = sorted({r.step for r in rows})
    owner, chain, schedule, scores = trial, [], [], []
    for step in reversed(steps):
        row = at[(owner, step)]
        before = owner if row.parent is None else row.parent
        if step != end:
            schedule.append({"step": step, "trial": owner, **row.values})
        scores.append({"step": step, "trial": before, "score": at[(before, step)].score})
        if row.parent is not None:
            chain.append({"step": step, "into": owner, "from": row.parent})
        owner = before
    return {"chain": chain[::-1], "schedule": schedule[::-1], "scores": scores[::-1]}


def best_trial(rows: Sequence[Row], direction: str) -> int | None:
    """The trial with the best score at the last step (None: none has one)."""
    last = max(r.step for r in rows)
    final = sorted((r for r in rows if r.step == last), key=lambda r: r.trial)
    best = ranking([r.score for r in final], direction)[0]
    return None if math.isnan(final[best].score) else final[best].trial


# -- writing -------------------------------------------------------------------------------------


def _names(experiment: config_lib.ExperimentConfig) -> list[str]:
    spaces = experiment.search.spaces
    return list(dict.fromkeys(d.name for dims in spaces.values() for d in dims))


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else value


def write_csv(study_dir: Path, experiment, records: Mapping[str, Sequence[Row]]) -> None:
    names = _names(experiment)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["optimizer", "trial", "step", *names, "score", "parent"])
    for label, rows in records.items():
        for r in sorted(rows, key=lambda r: (r.step, r.trial)):
            values = [_cell(r.values.get(n)) for n in names]
            writer.writerow([label, r.trial, r.step, *values, _cell(r.score), _cell(r.parent)])
    outputs.write_atomic(study_dir / CSV, buffer.getvalue())


def lineages(experiment, records: Mapping[str, Sequence[Row]]) -> dict[str, Any]:
    """pbt_lineage.json's content."""
    search = experiment.search
    direction = search.objective.direction
    out = {}
    for index, config in enumerate(experiment.optimizers):
        rows = records.get(config.label)
        if not rows:
            continue
        last = max(r.step for r in rows)
        trials = []
        for r in sorted((r for r in rows if r.step == last), key=lambda r: r.trial):
            trials.append(
                {
                    "trial": r.trial,
                    "final_score": r.score,
                    "final_values": dict(r.values),
                    **lineage(rows, r.trial, experiment.steps),
                }
            )
        out[config.label] = {
            "best_trial": best_trial(rows, direction),
            "last_step": last,
            "objective": dataclasses.asdict(search.objective),
            "direction": direction,
            "seeds": list(search.seeds or experiment.seeds),
            "exploit_random_seed": [search.seed, index],
            "trials": trials,
        }
    return out


def _exact(config: OptimizerConfig, name: str) -> bool:
    """Whether a `piecewise_constant` schedule of `name` computes exactly what its values set
    in the state compute: a schedulable float from which nothing is derived (a decay rate's
    complement `1 - x` is rounded once from float64 for a number, but computed in float32 from
    a schedule's value)."""
    spec = registry.hparams(config.name)
    return (
        spec is not None
        and name in spec
        and spec[name].schedulable
        and not any(rule.source == name for rule in spec.derived)
    )


def best_config(experiment, records: Mapping[str, Sequence[Row]], study_dir: Path) -> str | None:
    """pbt_best.yaml's text: each optimizer at its best trial's lineage schedule (values that
    change as `piecewise_constant` schedules), which `jopt run` reproduces exactly; optimizers
    whose changing values cannot be given so are left out (said in the header). None: none."""
    search = experiment.search
    optimizers, notes = [], []
    for config in experiment.optimizers:
        rows = records.get(config.label, [])
        best = best_trial(rows, search.objective.direction) if rows else None
        if best is None:
            notes.append(f"#   {config.label}: left out, no trial has a score")
            continue
        schedule = lineage(rows, best, experiment.steps)["schedule"]
        values: dict[str, Any] = {}
        for d in search.spaces[config.label]:
            boundaries, points = [], [schedule[0][d.name]]
            for entry in schedule[1:]:
                if entry[d.name] != points[-1]:
                    boundaries.append(entry["step"])
                    points.append(entry[d.name])
            values[d.name] = points[0]
            if boundaries:
                schedule_data = {"boundaries": boundaries, "values": points}
                values[d.name] = {"schedule": "piecewise_constant", **schedule_data}
        inexact = [n for n, v in values.items() if isinstance(v, dict) and not _exact(config, n)]
        final = _number(
            next(r.score for r in rows if r.trial == best and r.step == experiment.steps)
        )
        if inexact:
            notes.append(
                f"#   {config.label}: left out, trial {best}'s lineage changes "
                f"{', '.join(inexact)}, which a schedule does not compute exactly as a value in "
                f"the state does (its lineage is in {SUMMARY})"
            )
            continue
        optimizers.append(space.apply(config, values))
        notes.append(f"#   {config.label}: trial {best}, {final}")
    if not optimizers:
        return None
    result = report.best_experiment(
        experiment,
        optimizers,
        f"{experiment.name}-pbt-best",
        f"The best lineage of each optimizer in the PBT sweep {experiment.name}.",
        experiment.target,
    )
    objective = search.objective
    header = [
        f"# jopt run {study_dir / 'pbt_best.yaml'}",
        "# Trains each optimizer's best PBT trial to its final parameters, bitwise on the same",
        "# device: the values of its lineage, changing where the trials holding it did.",
        f"# Its objective ({objective.at.replace('_', ' ')} {objective.metric}, mean over seeds):",
        *notes,
    ]
    return "\n".join(header) + "\n" + yaml.safe_dump(config_lib.to_dict(result), sort_keys=False)


def plot(study_dir: Path, experiment, label: str, rows: Sequence[Row]) -> list[Path]:
    """pbt_hparams-LABEL.png and pbt_scores-LABEL.png (one colour per trial; black: the best
    trial's lineage)."""
    from jopt.lab.plots import plt, save_figure

    search = experiment.search
    dimensions = search.spaces[label]
    trials = sorted({r.trial for r in rows})
    mine = {t: sorted((r for r in rows if r.trial == t), key=lambda r: r.step) for t in trials}
    at = {(r.trial, r.step): r for r in rows}
    last = max(r.step for r in rows)
    best = best_trial(rows, search.objective.direction)
    path = lineage(rows, best, experiment.steps) if best is not None else None
    name = outputs.safe_name(label)
    figures = study_dir / "figures"

    fig, axes = plt.subplots(
        len(dimensions), 1, figsize=(7, 1 + 2.2 * len(dimensions)), sharex=True, squeeze=False
    )
    for ax, d in zip(axes[:, 0], dimensions, strict=True):
        for t in trials:
            steps, values = [r.step for r in mine[t]], [r.values[d.name] for r in mine[t]]
            ax.step(steps, values, where="post", color=f"C{t % 10}", alpha=0.6, label=f"trial {t}")
        if path is not None:
            steps = [e["step"] for e in path["schedule"]]
            values = [e[d.name] for e in path["schedule"]]
            ax.step(
                [*steps, last],
                [*values, values[-1]],
                where="post",
                color="black",
                lw=2.2,
                label=f"trial {best}'s lineage",
            )
        if d.log:
            ax.set_yscale("log")
        ax.set_ylabel(d.name)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=2)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title(f"{experiment.name} / {label}: PBT values from each step on", fontsize=10)
    written = [save_figure(fig, figures / f"pbt_hparams-{name}.png")]

    fig, ax = plt.subplots(figsize=(7, 4))
    for t in trials:
        # A copy starts a new segment at the parent's score: the parameters the trial now holds.
        xs, ys = [], []
        for r in mine[t]:
            xs.append(r.step)
            ys.append(r.score)
            if r.parent is not None:
                ax.plot(xs, ys, color=f"C{t % 10}", marker=".", alpha=0.6)
                xs, ys = [r.step], [at[(r.parent, r.step)].score]
        ax.plot(xs, ys, color=f"C{t % 10}", marker=".", alpha=0.6, label=f"trial {t}")
    if path is not None:
        ax.plot(
            [e["step"] for e in path["scores"]],
            [e["score"] for e in path["scores"]],
            color="black",
            lw=2.2,
            marker="o",
            label=f"trial {best}'s lineage",
        )
    scores = np.asarray([r.score for r in rows], float)
    finite = scores[np.isfinite(scores)]
    if finite.size and finite.min() > 0 and finite.max() > 100 * finite.min():
        ax.set_yscale("log")
    objective = search.objective
    ax.set_xlabel("step")
    ax.set_ylabel(f"{objective.at.replace('_', ' ')} {objective.metric} (mean over seeds)")
    ax.set_title(
        f"{experiment.name} / {label}: PBT scores (a copy continues from its parent's)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    written.append(save_figure(fig, figures / f"pbt_scores-{name}.png"))
    return written


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(experiment, records: Mapping[str, Sequence[Row]], best_yaml: bool = False) -> str:
    search, pbt = experiment.search, experiment.search.pbt
    objective = search.objective
    lines = [
        f"# PBT sweep {experiment.name}",
        "",
        f"Population-based training: {search.population} trials x seeds "
        f"{list(search.seeds or experiment.seeds)}, exploit and explore every {pbt.interval} "
        f"steps (quantile {pbt.quantile}, factors {list(pbt.factors)}); score: "
        f"{objective.at.replace('_', ' ')} {objective.metric} ({objective.direction}), mean over "
        f"seeds; workload `{experiment.workload.name}`, {experiment.steps} steps.",
    ]
    for config in experiment.optimizers:
        rows = records.get(config.label)
        if not rows:
            continue
        names = [d.name for d in search.spaces[config.label]]
        last = max(r.step for r in rows)
        final = {r.trial: r for r in rows if r.step == last}
        order = ranking([final[t].score for t in sorted(final)], objective.direction)
        lines += ["", f"## {config.label}", "", f"At step {last}, best first (— : diverged):", ""]
        header = ["trial", "score", *names, "copies"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for t in order:
            chain = lineage(rows, t, experiment.steps)["chain"]
            cells = [str(t), _number(final[t].score), *[_number(final[t].values[n]) for n in names]]
            lines.append("| " + " | ".join([*cells, str(len(chain))]) + " |")
        best = best_trial(rows, objective.direction)
        if best is None:
            lines += ["", "No trial has a score."]
            continue
        lines += [
            "",
            f"Trial {best}'s final parameters trained with these values, from each step on, "
            f"in the trial that held them (its lineage; all of it in {LINEAGE}):",
            "",
            "| from step | in trial | " + " | ".join(names) + " |",
            "|" + "---|" * (len(names) + 2),
        ]
        previous = None
        for e in lineage(rows, best, experiment.steps)["schedule"]:
            if e | {"step": None} == previous:
                continue  # the same trial with the same values
            previous = e | {"step": None}
            cells = [str(e["step"]), str(e["trial"]), *[_number(e[n]) for n in names]]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Rows: {CSV}; lineages: {LINEAGE}; figures: figures/pbt_*.png."]
    if best_yaml:
        lines += [f"{BEST}: a config `jopt run` trains the best lineages with (see its header)."]
    return "\n".join(lines) + "\n"


def write(study_dir: Path, experiment, records: Mapping[str, Sequence[Row]], *, done: bool) -> str:
    """Writes pbt.csv, pbt_lineage.json and pbt.md, and once `done` the figures and
    pbt_best.yaml; returns the summary."""
    write_csv(study_dir, experiment, records)
    outputs.write_json(study_dir / LINEAGE, lineages(experiment, records))
    best = best_config(experiment, records, study_dir) if done else None
    if best is not None:
        outputs.write_atomic(study_dir / BEST, best)
    text = markdown(experiment, records, best is not None)
    outputs.write_atomic(study_dir / SUMMARY, text)
    if done:
        for label, rows in records.items():
            plot(study_dir, experiment, label, rows)
    return text
