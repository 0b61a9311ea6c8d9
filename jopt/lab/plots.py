"""Figures drawn from a run directory's files (never from the runner's memory).

    curves.png          train loss, then each eval metric, against steps: the mean over seeds
                        and a band from the lowest to the highest seed
    learning_rate.png   the learning rate each optimizer used (from jopt.current_lr)
    paths.png           2-D workloads: each optimizer's path over the function's contours

`jopt plot RUN_DIR` redraws them.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from jopt.lab import outputs  # noqa: E402


def _load(run_dir: Path) -> tuple[dict[str, Any], dict[str, list[list[dict[str, Any]]]]]:
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"no run at {run_dir} (no config.yaml)")
    config = yaml.safe_load(config_path.read_text())
    runs: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for optimizer in config["optimizers"]:
        for seed in config["seeds"]:
            trial = run_dir / "trials" / outputs.trial_name(optimizer["label"], seed)
            rows = outputs.read_metrics(trial / "metrics.jsonl")
            if rows:
                runs[optimizer["label"]].append(rows)
    return config, runs


def _series(seeds: list[list[dict[str, Any]]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and a (seeds, steps) array of `key`, NaN where a seed has no value."""
    steps = sorted({r["step"] for rows in seeds for r in rows if r.get(key) is not None})
    index = {s: i for i, s in enumerate(steps)}
    values = np.full((len(seeds), len(steps)), np.nan)
    for i, rows in enumerate(seeds):
        for r in rows:
            if r.get(key) is not None and r["step"] in index:
                values[i, index[r["step"]]] = r[key]
    return np.asarray(steps), values


def save_figure(fig, path: Path) -> Path:
    """Writes `fig` as a PNG at `path`, atomically, and closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    outputs.write_atomic(path, buffer.getvalue())
    return path


def _band(ax, steps, values, label, color, log: bool) -> None:
    if values.size == 0 or np.all(np.isnan(values)):
        return
    with np.errstate(all="ignore"):
        mean = np.nanmean(values, axis=0)
        lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    ax.plot(steps, mean, label=label, color=color, lw=1.5)
    if values.shape[0] > 1:
        ax.fill_between(steps, lo, hi, color=color, alpha=0.2, lw=0)
    if log and np.nanmin(values) > 0:
        ax.set_yscale("log")


def plot_curves(run_dir: Path, config, runs) -> Path:
    keys = ["train_loss"] + sorted(
        {
            k
            for seeds in runs.values()
            for rows in seeds
            for r in rows
            for k in r
            if k.startswith("eval_")
        }
    )
    fig, axes = plt.subplots(
        1, len(keys), figsize=(4.5 * len(keys), 3.8), squeeze=False, layout="constrained"
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes[0], keys, strict=True):
        for i, (label, seeds) in enumerate(runs.items()):
            steps, values = _series(seeds, key)
            _band(ax, steps, values, label, colors[i % len(colors)], log="loss" in key)
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    seeds = len(config["seeds"])
    fig.suptitle(
        f"{config['name']} — {config['workload']['name']}, mean and range over {seeds} "
        f"seed{'s' if seeds > 1 else ''}",
        fontsize=10,
    )
    return save_figure(fig, run_dir / "curves.png")


def plot_learning_rates(run_dir: Path, config, runs) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, seeds in runs.items():
        steps, values = _series(seeds[:1], "learning_rate")
        if values.size and not np.all(np.isnan(values)):
            ax.plot(steps, values[0], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title("learning rate used at each step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, run_dir / "learning_rate.png")


def plot_paths(run_dir: Path, config, runs) -> Path | None:
    """Optimizer paths over the contours of a 2-D workload's function."""
    from jopt.lab import config as config_lib
    from jopt.lab.workloads import WORKLOADS

    if not any("params" in r for seeds in runs.values() for r in seeds[0]):
        return None  # only 2-D workloads record parameters; building another may load data
    experiment = config_lib.from_dict(config)
    workload = WORKLOADS[experiment.workload.name].build(experiment.workload.options)
    info = workload.info
    if not workload.record_params or "window" not in info or "value" not in info:
        return None
    (x0, x1), (y0, y1) = info["window"]
    xs, ys = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    zs = np.asarray(info["value"](xs, ys), dtype=float)
    fig, ax = plt.subplots(figsize=(6, 5))
    positive = zs - np.nanmin(zs) + 1e-3
    levels = np.geomspace(np.nanmin(positive), np.nanmax(positive), 30)
    ax.contour(
        xs,
        ys,
        positive,
        levels=levels,
        cmap="Greys",
        linewidths=0.6,
        norm=matplotlib.colors.LogNorm(),
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, seeds) in enumerate(runs.items()):
        path = np.asarray([r["params"] for r in seeds[0] if r.get("params") is not None])
        if len(path):
            ax.plot(
                path[:, 0], path[:, 1], ".-", ms=2, lw=1, color=colors[i % len(colors)], label=label
            )
    if info.get("minimizer") is not None:
        ax.plot(*info["minimizer"], "*", color="k", ms=12, label="minimum")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(
        f"{info.get('function', workload.name)}: paths from the same start (seed "
        f"{config['seeds'][0]})",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, run_dir / "paths.png")


def plot_run(run_dir: Path) -> list[Path]:
    """Draws every figure of a run; returns the files written."""
    run_dir = Path(run_dir)
    config, runs = _load(run_dir)
    if not runs:
        return []
    written = [plot_curves(run_dir, config, runs), plot_learning_rates(run_dir, config, runs)]
    paths = plot_paths(run_dir, config, runs)
    if paths is not None:
        written.append(paths)
    return written
