"""Steps each optimizer needs to get within 1e-3 of the minimum: the budgets of test_convergence.

    python benchmarks/convergence_budgets.py [--max-steps N] [--only NAME ...]

Runs every convergence configuration of the registry (`jopt/_src/registry.py`, run by
`tests/test_convergence.py` in float64), or those named with --only, on the ill-conditioned
quadratic and on Rosenbrock for up to N steps, and prints a Markdown table of the measured steps
and the budgets ceil(1.5 * measured). A row marked "changed" no longer matches the steps stored
in the registry.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `tests`, from any directory

from tests.test_convergence import (  # noqa: E402
    BUDGET_FACTOR,
    CONFIGS,
    PROBLEMS,
    distances,
    steps_to_tolerance,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=100_000)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="convergence configuration ids")
    args = parser.parse_args()
    configs = [c for c in CONFIGS if args.only is None or c.name in args.only]
    if not configs:
        parser.error(
            f"--only: no configuration named {args.only}; there are {[c.name for c in CONFIGS]}"
        )

    header = ["optimizer", "hyperparameters"]
    for problem in PROBLEMS:
        header += [f"{problem}: steps", "budget"]
    print("| " + " | ".join(header) + " |")
    print("|---|---|" + "---:|---:|" * len(PROBLEMS))
    start = time.perf_counter()
    changed = []
    for config in configs:
        row = [config.name, config.describe()]
        for problem in PROBLEMS:
            steps = steps_to_tolerance(distances(config, problem, args.max_steps))
            if steps is None:
                row += [f"> {args.max_steps}", "-"]
            else:
                row += [str(steps), str(math.ceil(BUDGET_FACTOR * steps))]
            if steps != config.measured[problem]:
                changed.append(f"{config.name} on {problem}: {config.measured[problem]} -> {steps}")
        print("| " + " | ".join(row) + " |", flush=True)
    print(f"\n{time.perf_counter() - start:.1f} s", file=sys.stderr)
    for line in changed:
        print(f"changed: {line}", file=sys.stderr)


if __name__ == "__main__":
    main()
