"""Golden trajectories of every torch optimizer with two parameter groups of different options.

Run from the repository root (needs torch):

    .venv/bin/python -m tests.golden.make_param_groups_fixtures

It writes `tests/golden/param_groups.json` (the cases and the torch version) and
`param_groups.npz` (per case: the iterates of both tensors every EVERY steps, float64).
`tests/conventions/test_torch_param_groups.py` reads them without torch, and runs `run_torch`
live where torch is installed.

The problem is `make_optimizer_fixtures`' quadratic on a (3,) tensor "w" and a (2, 4) tensor
"v". Each case passes torch two param groups, `[{"params": [w], **first}, {"params": [v],
**second}]`, and constructor arguments that the groups' own options override (learning rate,
betas or momentum, weight decay, eps...), as a torch user does.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from tests.golden import make_optimizer_fixtures as gen

STEPS = 300
EVERY = 10
SHAPES = ((3,), (2, 4))
NAMES = ("w", "v")
OUT = Path(__file__).resolve().parent / "param_groups"


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    optimizer: str  # torch.optim class
    kwargs: dict[str, Any]  # the constructor's arguments: every group's defaults
    groups: tuple[dict[str, Any], dict[str, Any]]  # the options of w's group, then v's


CASES = [
    Case("sgd", "SGD", {"lr": 0.05, "momentum": 0.9},
         ({}, {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.01, "nesterov": True})),
    Case("rmsprop", "RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-3},
         ({"momentum": 0.5}, {"lr": 0.003, "weight_decay": 0.05, "centered": True})),
    Case("adam", "Adam", {"lr": 0.02},
         ({"betas": (0.8, 0.99)}, {"lr": 0.005, "weight_decay": 0.01, "amsgrad": True})),
    Case("adamw", "AdamW", {"lr": 0.02, "weight_decay": 0.05},
         ({}, {"lr": 0.005, "betas": (0.85, 0.995), "weight_decay": 0.0})),
    Case("adamax", "Adamax", {"lr": 0.02},
         ({"weight_decay": 0.01}, {"lr": 0.05, "betas": (0.7, 0.99)})),
    Case("nadam", "NAdam", {"lr": 0.01},
         ({"momentum_decay": 0.002}, {"lr": 0.02, "betas": (0.8, 0.99), "weight_decay": 0.01})),
    Case("radam", "RAdam", {"lr": 0.01},
         ({"betas": (0.9, 0.99)}, {"lr": 0.03, "weight_decay": 0.01})),
    Case("adagrad", "Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.1},
         ({"lr_decay": 0.001}, {"lr": 0.3, "weight_decay": 0.01})),
    Case("adadelta", "Adadelta", {"lr": 1.0},
         ({"rho": 0.95}, {"lr": 0.5, "weight_decay": 0.01, "eps": 1e-5})),
    Case("asgd", "ASGD", {"lr": 0.05, "lambd": 0.01, "t0": 20.0},
         ({"alpha": 0.6}, {"lr": 0.02, "weight_decay": 0.01, "lambd": 0.001})),
    Case("rprop", "Rprop", {"lr": 0.01},
         ({"etas": (0.4, 1.3)}, {"lr": 0.05, "step_sizes": (1e-4, 0.5)})),
    Case("adafactor", "Adafactor", {"lr": 0.01},
         ({"beta2_decay": -0.9},
          {"lr": 0.05, "weight_decay": 0.1, "d": 2.0, "eps": (1e-10, 1e-2)})),
]  # fmt: skip


def run_torch(case: Case) -> dict[str, np.ndarray]:
    """torch's run: {"w": (STEPS // EVERY + 1, 3), "v": (..., 2, 4)} iterates, float64."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch's scalar state (NAdam's mu_product) too
    try:
        return _run_torch(torch, case)
    finally:
        torch.set_default_dtype(previous)


def _run_torch(torch, case: Case) -> dict[str, np.ndarray]:
    a, c, x0 = gen.start(gen.Case(case.id, case.optimizer, 0.0), "float64", SHAPES, 0.0)
    params = [torch.nn.Parameter(torch.from_numpy(x)) for x in x0]
    groups = [
        {"params": [p], **{k: tuple(v) if k == "betas" else v for k, v in options.items()}}
        for p, options in zip(params, case.groups, strict=True)
    ]
    optimizer = getattr(torch.optim, case.optimizer)(groups, **case.kwargs, foreach=False)
    iterates = {name: [p.detach().numpy().copy()] for name, p in zip(NAMES, params, strict=True)}
    for step in range(1, STEPS + 1):
        for p, ai, ci in zip(params, a, c, strict=True):
            p.grad = torch.from_numpy(gen.gradient(p.detach().numpy(), ai, ci, 1.0))
        optimizer.step()
        if step % EVERY == 0:
            for name, p in zip(NAMES, params, strict=True):
                iterates[name].append(p.detach().numpy().copy())
    return {name: np.stack(x) for name, x in iterates.items()}


def main() -> None:
    import torch

    arrays = {}
    for case in CASES:
        for name, value in run_torch(case).items():
            arrays[f"{case.id}/{name}"] = value
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    OUT.with_suffix(".npz").write_bytes(buffer.getvalue())
    record = {
        "torch": torch.__version__,
        "steps": STEPS,
        "every": EVERY,
        "cases": [dataclasses.asdict(case) for case in CASES],
    }
    OUT.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
