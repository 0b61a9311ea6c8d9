"""Grid, random, quasi-random, TPE and CMA-ES at equal budgets: the best objective found
against trials, over several seeds of the search itself.

    python experiments/search_methods/compare.py [--seeds 5] [--output-dir runs]

Runs experiments/search_methods/config.yaml once per (method, search seed) in this process (the
workload and its step compile once), each sweep in `OUTPUT_DIR/search_methods-METHOD-seedS-sweep`,
then writes `best_so_far.png` and `summary.md` next to this script: for each method, the best
final validation accuracy after 5, 10 and 20 trials, mean and range over the search seeds. The
grid is 5 log-spaced learning rates by 4 momenta (20 points, visited in an order the search seed
shuffles).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import optuna

from jopt.lab import config as config_lib
from jopt.lab import runner
from jopt.lab.plots import plt, save_figure
from jopt.lab.search import optuna_setup, study

HERE = Path(__file__).resolve().parent
METHODS = ("grid", "random", "quasirandom", "tpe", "cmaes")
GRID = ("search.space.learning_rate.count=5", "search.space.momentum=[0.0, 0.5, 0.8, 0.9]")
CHECKPOINTS = (5, 10, 20)


def best_so_far(method: str, seed: int, output_dir: str) -> np.ndarray:
    """The best objective after each trial of one sweep."""
    overrides = [f"search.method={method}", f"search.seed={seed}", f"output_dir={output_dir}"]
    overrides += list(GRID) if method == "grid" else []
    experiment = config_lib.load(HERE / "config.yaml", overrides)
    experiment = dataclasses.replace(experiment, name=f"search_methods-{method}-seed{seed}")
    study_dir = runner.new_run_dir(experiment, "-sweep")
    study_dir.mkdir(parents=True)
    storage = optuna_setup.open_storage(study_dir, None)
    (one,) = study.sweep(study.resolved(experiment), study_dir, storage, progress=False)
    values = [
        t.value if t.state == optuna.trial.TrialState.COMPLETE else np.nan
        for t in sorted(one.get_trials(), key=lambda t: t.number)
    ]
    return np.fmax.accumulate(np.asarray(values, float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--output-dir", default="runs")
    args = parser.parse_args()
    curves = {
        m: np.stack([best_so_far(m, s, args.output_dir) for s in range(args.seeds)])
        for m in METHODS
    }
    fig, ax = plt.subplots(figsize=(6, 4))
    lines = [
        f"`python experiments/search_methods/compare.py --seeds {args.seeds}`: the best final "
        "validation accuracy found after n trials, mean [min, max] over the search seeds.",
        "",
        "| method | " + " | ".join(f"after {n}" for n in CHECKPOINTS) + " |",
        "|---|" + "---|" * len(CHECKPOINTS),
    ]
    for method, c in curves.items():
        trials = np.arange(1, c.shape[1] + 1)
        (line,) = ax.plot(trials, c.mean(axis=0), label=method)
        ax.fill_between(trials, c.min(axis=0), c.max(axis=0), color=line.get_color(), alpha=0.15)
        cells = [
            f"{c[:, n - 1].mean():.3f} [{c[:, n - 1].min():.3f}, {c[:, n - 1].max():.3f}]"
            for n in CHECKPOINTS
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    ax.set_xlabel("trials")
    ax.set_ylabel("best final validation accuracy")
    ax.set_title(f"search methods, mean and range over {args.seeds} search seeds")
    ax.set_ylim(0.8, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, HERE / "best_so_far.png")
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
