"""A population of trials in one program against the same trials run one after the other.

    python benchmarks/population_speed.py [--workloads mlp,cnn] [--members 16] [--steps 200]
                                          [--repeats 3] [--write FILE.md]

The digits MLP and CNN of the lab (`mlp` and `cnn` on 8x8 digits, batch 64, default sizes)
trained with Adam at `--members` learning rates log-spaced over [1e-4, 1e-1]: once as one
population (one vmapped,
jitted step trains every member; each member's learning rate set in its state) and once member by
member (the same code with a population of one, compiled once for that size). Both are compiled
before timing; the rounds alternate the two in a new random order, and the table reports the
median wall time of each and their ratio.

Each member's trajectory is compared with its sequential run: its eval accuracy and loss at every
eval and its final parameters. On the CPU, XLA's convolutions sum in an order that depends on the
batch size, which includes the vmapped members, so the two agree to float32 rounding rather than
bitwise (on linear models they agree bitwise, which tests/lab/test_sweep.py checks); the table
reports the largest difference. Memory per member: its parameters and optimizer state.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from jopt.lab import config as config_lib
from jopt.lab import programs
from jopt.lab.search import population, space


def _experiment(workload: str, steps: int) -> config_lib.ExperimentConfig:
    return config_lib.from_dict(
        {
            "name": "population_speed",
            "workload": {"name": workload, "dataset": "digits", "batch_size": 64},
            "optimizers": [{"name": "adam", "learning_rate": 1e-3}],
            "seeds": [0],
            "steps": steps,
            "eval_every": 50,
        }
    )


def measure(workload: str, members_count: int, steps: int, repeats: int) -> dict:
    """Median wall times of the population and of the sequential runs, and their agreement."""
    experiment = _experiment(workload, steps)
    compiled = programs.compiled_workload(experiment.workload)
    program = space.apply(experiment.optimizers[0], {"learning_rate": 1e-4})
    rates = np.geomspace(1e-4, 1e-1, members_count)
    members = [population.Member(0, {"learning_rate": float(lr)}) for lr in rates]

    def together(metric="eval_accuracy"):
        return population.train(compiled, program, members, steps, experiment.eval_every, metric)

    def one_by_one(metric="eval_accuracy"):
        return [
            population.train(compiled, program, [m], steps, experiment.eval_every, metric)
            for m in members
        ]

    # Compile both sizes, and compare the trajectories.
    gaps = {}
    for metric in ("eval_accuracy", "eval_loss"):
        a, b = together(metric), one_by_one(metric)
        gaps[metric] = float(np.max(np.abs(a.metric - np.concatenate([r.metric for r in b]))))
    pairs = [
        (np.asarray(x[i]), np.asarray(y[0]))
        for i, r in enumerate(b)
        for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(r.params), strict=True)
    ]
    bitwise = all(np.array_equal(x, y) for x, y in pairs)
    gap = max(float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-30)) for x, y in pairs)

    times = {"population": [], "sequential": []}
    runners = {"population": together, "sequential": one_by_one}
    for _ in range(repeats):
        order = list(runners)
        random.shuffle(order)
        for name in order:
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
    median = {k: statistics.median(v) for k, v in times.items()}
    return {
        "workload": workload,
        **median,
        "speedup": median["sequential"] / median["population"],
        "kib": a.bytes_per_member / 1024,
        "bitwise": bitwise,
        "params_gap": gap,
        **gaps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="mlp,cnn")
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", type=Path, help="also write the result as Markdown")
    args = parser.parse_args()
    rows = [measure(w, args.members, args.steps, args.repeats) for w in args.workloads.split(",")]
    lines = [
        "# A population in one program against sequential runs",
        "",
        f"`python benchmarks/population_speed.py --workloads {args.workloads} --members "
        f"{args.members} --steps {args.steps} --repeats {args.repeats}`, "
        f"{datetime.date.today()}, jax {jax.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores.",
        "",
        f"{args.members} learning rates of Adam, {args.steps} steps each, compiled before "
        "timing; median wall time of the rounds. Agreement: the largest difference between a "
        "member and its sequential run (final parameters: relative to the largest parameter; "
        "eval metrics: absolute, over members and evals).",
        "",
        "| workload | one program | one after the other | speed-up | memory per member | "
        "final parameters | eval accuracy | eval loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        agreement = "bitwise" if r["bitwise"] else f"{r['params_gap']:.1e}"
        lines.append(
            f"| {r['workload']} | {r['population']:.2f} s | {r['sequential']:.2f} s | "
            f"**{r['speedup']:.1f}×** | {r['kib']:.1f} KiB | {agreement} | "
            f"{r['eval_accuracy']:.1e} | {r['eval_loss']:.1e} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
