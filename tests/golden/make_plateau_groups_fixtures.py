"""Golden trajectories of torch's ReduceLROnPlateau on an optimizer with two parameter groups,
after a warmup scheduler, as a torch user writes the loop.

Run from the repository root (needs torch):

    .venv/bin/python -m tests.golden.make_plateau_groups_fixtures

It writes `tests/golden/plateau_groups.json` (the cases and the torch version that made them)
and `plateau_groups.npz` (per case: each group's learning rate at every step, and the iterates
of both groups after every step, float64). `tests/schedules/test_plateau_groups.py` reads them
without torch, and runs `run_torch` live where torch is installed.

Each step: `optimizer.step()` on the gradient of a fixed quadratic, then the warmup scheduler's
`step()`, then every EVERY steps `plateau.step(metric)` with the case's next metric (a fixed
sequence with plateaus, so that reductions fall inside and after the warmup):

    for step in range(STEPS):
        optimizer.zero_grad(); loss(params).backward(); optimizer.step()
        warmup.step()
        if (step + 1) % EVERY == 0:
            plateau.step(metrics[(step + 1) // EVERY - 1])

The warmup is torch's LinearLR, or a ChainedScheduler of LinearLR and ExponentialLR: both step
recursively (each multiplies the group's current learning rate), so the learning rate is the
warmup's times the product of the plateau's reductions, which is jopt's `schedule * lr_scale`.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

STEPS = 200
EVERY = 10
OUT = Path(__file__).resolve().parent / "plateau_groups"
# The quadratic 0.5 * sum(a * (x - c)**2) of each group's tensor, and where it starts.
PROBLEM = {
    "w": {"a": [1.0, 2.5, 0.4], "c": [1.0, -2.0, 0.5], "x0": [0.0, 0.5, -1.0]},
    "v": {"a": [3.0, 0.7], "c": [-0.5, 2.0], "x0": [1.0, 1.0]},
}
# One metric per plateau.step: flat stretches (no 5% improvement) trigger reductions.
METRICS = [1.0, 1.0, 1.0, 0.9, 0.6, 0.6, 0.6, 0.6, 0.5, 0.3,
           0.3, 0.3, 0.29, 0.2, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    optimizer: str  # torch.optim class
    groups: tuple[dict[str, Any], dict[str, Any]]  # torch's param group options for w, then v
    warmup: dict[str, Any]  # LinearLR's arguments, and ExponentialLR's gamma if chained
    plateau: dict[str, Any]  # ReduceLROnPlateau's arguments


CASES = [
    Case(
        "sgd_momentum_linear_warmup",
        "SGD",
        ({"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}, {"lr": 0.02, "momentum": 0.5}),
        {"start_factor": 0.1, "total_iters": 50},
        {"factor": 0.5, "patience": 1, "threshold": 0.05, "min_lr": [1e-3, 4e-3]},
    ),
    Case(
        "adamw_chained_warmup_exponential",
        "AdamW",
        (
            {"lr": 0.05, "betas": (0.9, 0.999), "weight_decay": 0.01},
            {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.0},
        ),
        {"start_factor": 0.25, "total_iters": 100, "gamma": 0.995},
        {"factor": 0.3, "patience": 2, "threshold": 0.01, "threshold_mode": "abs", "cooldown": 1},
    ),
]


def run_torch(case: Case) -> dict[str, np.ndarray]:
    """torch's run of `case`: {"lr": (STEPS, 2) rates used, "w"/"v": (STEPS + 1, n) iterates}."""
    import torch

    tensors = {
        name: torch.tensor(p["x0"], dtype=torch.float64, requires_grad=True)
        for name, p in PROBLEM.items()
    }
    a = {n: torch.tensor(p["a"], dtype=torch.float64) for n, p in PROBLEM.items()}
    c = {n: torch.tensor(p["c"], dtype=torch.float64) for n, p in PROBLEM.items()}
    groups = [{"params": [tensors[n]], **o} for n, o in zip(PROBLEM, case.groups, strict=True)]
    optimizer = getattr(torch.optim, case.optimizer)(groups)
    warmup_args = {k: v for k, v in case.warmup.items() if k != "gamma"}
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, **warmup_args)
    if "gamma" in case.warmup:
        decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=case.warmup["gamma"])
        warmup = torch.optim.lr_scheduler.ChainedScheduler([warmup, decay])
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **case.plateau)
    rates, iterates = [], {n: [t.detach().clone().numpy()] for n, t in tensors.items()}
    for step in range(STEPS):
        optimizer.zero_grad()
        loss = sum(0.5 * (a[n] * (t - c[n]) ** 2).sum() for n, t in tensors.items())
        loss.backward()
        rates.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        warmup.step()
        if (step + 1) % EVERY == 0:
            plateau.step(METRICS[(step + 1) // EVERY - 1])
        for n, t in tensors.items():
            iterates[n].append(t.detach().clone().numpy())
    return {"lr": np.asarray(rates), **{n: np.stack(x) for n, x in iterates.items()}}


def main() -> None:
    import torch

    arrays, cases = {}, []
    for case in CASES:
        for key, value in run_torch(case).items():
            arrays[f"{case.id}/{key}"] = value
        cases.append(dataclasses.asdict(case))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    OUT.with_suffix(".npz").write_bytes(buffer.getvalue())
    record = {"torch": torch.__version__, "steps": STEPS, "every": EVERY, "cases": cases}
    OUT.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
