"""What `jopt lr-find` writes and prints: the table of suggestions, the CSV of every curve,
suggestions.json, summary.md and the figure (see `jopt.lab.search.lr_find`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jopt.lab import config as config_lib
from jopt.lab import outputs
from jopt.lab.search.lr_find import CSV_COLUMNS, Curve, Options, window


def _lr(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def table(curves: Sequence[Curve], options: Options) -> str:
    """The Markdown table of the suggestions, one row per optimizer."""
    lines = [
        "| optimizer | steepest | minimum / 10 | minimum at | steps | stopped early |",
        "|---|---|---|---|---|---|",
    ]
    for c in curves:
        s = c.suggestions
        lines.append(
            f"| {c.label} | {_lr(s['steepest'])} | {_lr(s['minimum_over_10'])} | "
            f"{_lr(s['minimum'])} | {len(c.learning_rates)}/{options.steps} | "
            f"{'no' if c.stopped is None else f'yes ({c.stopped})'} |"
        )
    return "\n".join(lines) + "\n"


def write(
    out_dir: Path,
    config: config_lib.ExperimentConfig,
    curves: Sequence[Curve],
    options: Options,
    plots: bool = True,
) -> list[Path]:
    """Writes the results files (config.yaml is written before the run); returns them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in curves:
        for t in range(len(c.learning_rates)):
            row = (c.learning_rates[t], c.losses[t], c.smoothed[t])
            writer.writerow([c.label, t, *(repr(float(v)) for v in row)])
    outputs.write_atomic(out_dir / "lr_find.csv", buffer.getvalue())
    summary = {
        "options": dataclasses.asdict(options),
        "workload": config.workload.name,
        "seeds": list(config.seeds),
        "optimizers": {
            c.label: {
                "name": c.name,
                **c.suggestions,
                "steps_run": len(c.learning_rates),
                "stopped": c.stopped,
                "schedule_replaced": c.schedule_replaced,
            }
            for c in curves
        },
    }
    outputs.write_json(out_dir / "suggestions.json", summary)
    outputs.write_atomic(out_dir / "summary.md", table(curves, options))
    written = [out_dir / name for name in ("lr_find.csv", "suggestions.json", "summary.md")]
    if plots and curves:
        written.append(plot(out_dir / "lr_find.png", curves, config.name))
    return written


def plot(path: Path, curves: Sequence[Curve], title: str) -> Path:
    """Smoothed loss against learning rate (log axis), one line per optimizer, with the
    steepest point (o) and minimum / 10 (v) marked on each curve."""
    from jopt.lab import plots  # sets the Agg backend

    plt = plots.plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    shown = []  # the part `suggest` reads: the start's noise and the blow-up set no limits
    for i, c in enumerate(curves):
        color = colors[i % len(colors)]
        n = (
            len(c.smoothed)
            if np.isfinite(c.smoothed).all()
            else int(np.argmin(np.isfinite(c.smoothed)))
        )
        rates, values = c.learning_rates[:n], c.smoothed[:n]
        if not n:
            continue
        shown.append(values[window(n, c.planned // 10)])
        ax.plot(rates, values, color=color, lw=1.5, label=c.label)
        s = c.suggestions
        for key, marker in (("steepest", "o"), ("minimum_over_10", "v")):
            rate = s[key]
            if rate is not None and rates[0] <= rate <= rates[-1]:
                loss = np.interp(np.log(rate), np.log(rates), values)
                ax.plot([rate], [loss], marker, color=color, ms=7, mec="k", mew=0.6)
    if shown:
        low, high = min(v.min() for v in shown), max(v.max() for v in shown)
        margin = 0.08 * (high - low) or 0.1 * abs(high) or 1.0
        ax.set_ylim(low - margin, high + margin)
    ax.plot([], [], "o", color="grey", mec="k", label="steepest")
    ax.plot([], [], "v", color="grey", mec="k", label="minimum / 10")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed training loss")
    ax.set_title(f"{title}: learning-rate range test", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return plots.save_figure(fig, path)
