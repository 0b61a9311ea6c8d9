"""Golden trajectories of torch optimizers whose momentum a OneCycleLR or CyclicLR cycles.

Run from the repository root (needs torch):

    .venv/bin/python -m tests.golden.make_cycled_momentum_fixtures

It writes `tests/golden/cycled_momentum.json` (the cases, the versions that made them, each
case's measured amplification) and `cycled_momentum.npz` (per case: the learning rate and the
momentum torch used at each step; per case and dtype: the iterates every EVERY steps). The tests
in `tests/conventions/test_torch_cycled_momentum.py` read them without torch.

torch's OneCycleLR and CyclicLR with `cycle_momentum=True` overwrite the optimizer's
`param_groups[i]["momentum"]` (SGD, RMSprop) or `["betas"][0]` (Adam and its variants) when they
are built and at every `scheduler.step()`. The recorded momentum is that value as each
`optimizer.step()` reads it. The cases give the optimizer a momentum of its own (0 included,
which torch's SGD and RMSprop then ignore) to show that the scheduler's wins.

The problem (the quadratic `grad = a * (x - c)` on shapes (3,) and (2, 4)), the float64 and
float32 runs, and the amplification check (each case run again from a perturbed start; cases
that amplify rounding differences beyond MAX_AMPLIFICATION are refused) are those of
`make_optimizer_fixtures`, whose helpers this script uses; 200 steps instead of 1000.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from tests.golden import make_optimizer_fixtures as gen
from tests.golden.make_optimizer_fixtures import Case

STEPS = 200
EVERY = 10
SHAPES = gen.SHAPES
OUT = Path(__file__).resolve().parent / "cycled_momentum"


def one_cycle(max_lr: float, **kwargs: Any) -> dict[str, Any]:
    return {"name": "OneCycleLR", "max_lr": max_lr, "total_steps": STEPS, **kwargs}


def cyclic(base_lr: float, max_lr: float, **kwargs: Any) -> dict[str, Any]:
    return {"name": "CyclicLR", "base_lr": base_lr, "max_lr": max_lr, **kwargs}


# `lr` is the optimizer's own learning rate, which the scheduler overwrites at construction.
# RMSprop's eps is large enough to bound `lr / sqrt(v)` near the minimum, where a small eps
# makes momentum RMSprop amplify last-bit differences (see make_optimizer_fixtures).
CASES = [
    Case("sgd_momentum0_onecycle_cos", "SGD", 0.05, {"momentum": 0.0}, one_cycle(0.05)),
    Case("sgd_dampening_weight_decay_onecycle_linear_three_phase", "SGD", 0.05,
        {"momentum": 0.9, "dampening": 0.2, "weight_decay": 0.01},
        one_cycle(0.05, anneal_strategy="linear", three_phase=True, base_momentum=0.8,
                  max_momentum=0.9)),
    Case("sgd_nesterov_cyclic_triangular", "SGD", 0.05, {"momentum": 0.9, "nesterov": True},
        cyclic(0.005, 0.05, step_size_up=25, step_size_down=40)),
    Case("rmsprop_momentum_onecycle_cos", "RMSprop", 0.01,
        {"momentum": 0.5, "alpha": 0.95, "eps": 1e-2}, one_cycle(0.01, pct_start=0.25)),
    Case("rmsprop_centered_momentum0_cyclic_exp_range", "RMSprop", 0.01,
        {"centered": True, "eps": 1e-2},
        cyclic(0.001, 0.01, step_size_up=20, mode="exp_range", gamma=0.995)),
    Case("adam_onecycle_cos", "Adam", 0.01, {}, one_cycle(0.02)),
    Case("adam_amsgrad_weight_decay_cyclic_exp_range", "Adam", 0.01,
        {"amsgrad": True, "weight_decay": 0.01},
        cyclic(0.002, 0.02, step_size_up=30, mode="exp_range", gamma=0.99, base_momentum=0.7)),
    Case("adamw_onecycle_linear_three_phase", "AdamW", 0.01,
        {"weight_decay": 0.05, "betas": (0.9, 0.99)},
        one_cycle(0.02, anneal_strategy="linear", three_phase=True)),
    Case("adamw_cyclic_triangular2", "AdamW", 0.01, {},
        cyclic(0.001, 0.02, step_size_up=25, mode="triangular2")),
    Case("adamax_weight_decay_onecycle_cos", "Adamax", 0.01, {"weight_decay": 0.01},
        one_cycle(0.02)),
    Case("nadam_cyclic_triangular", "NAdam", 0.01, {}, cyclic(0.002, 0.02, step_size_up=40)),
    Case("radam_onecycle_linear", "RAdam", 0.01, {},
        one_cycle(0.02, anneal_strategy="linear", pct_start=0.4)),
]  # fmt: skip


def momentum_of(group: dict[str, Any]) -> float:
    """The value a torch scheduler cycles: `betas[0]` if the optimizer has betas, else
    `momentum`."""
    return float(group["betas"][0] if "betas" in group else group["momentum"])


def run_torch(
    case: Case, dtype: str, steps: int, every: int, shapes=SHAPES, perturb: float = 0.0
) -> dict[str, np.ndarray]:
    """Runs `case` with torch.optim and its scheduler: {"iterates": (steps // every + 1, n),
    "lr": (steps,), "momentum": (steps,)}, as `make_optimizer_fixtures.run_torch`."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        a, c, x0 = gen.start(case, dtype, shapes, perturb)
        params = [torch.nn.Parameter(torch.from_numpy(x)) for x in x0]
        make = getattr(torch.optim, case.optimizer)
        optimizer = make(params, lr=case.lr, **gen._torch_optimizer_kwargs(case))
        scheduler = gen._torch_scheduler(torch, optimizer, case.schedule)
        group = optimizer.param_groups[0]
        lrs, momenta = [], []
        iterates = [gen._flat(p.detach().numpy() for p in params)]
        for step in range(1, steps + 1):
            lrs.append(float(group["lr"]))
            momenta.append(momentum_of(group))
            for p, ai, ci in zip(params, a, c, strict=True):
                p.grad = torch.from_numpy(gen.gradient(p.detach().numpy(), ai, ci, case.grad_sign))
            optimizer.step()
            scheduler.step()
            if step % every == 0:
                iterates.append(gen._flat(p.detach().numpy() for p in params))
    finally:
        torch.set_default_dtype(previous)
    return {
        "iterates": np.stack(iterates),
        "lr": np.asarray(lrs),
        "momentum": np.asarray(momenta),
    }


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    for seed in sorted({c.seed for c in CASES}):
        for key, value in gen.problem(seed, SHAPES).items():
            arrays[f"problem{seed}/{key}"] = value
    amplifications, refused = {}, []
    for case in CASES:
        amplifications[case.id] = {}
        for dtype in gen.DTYPES:
            result = run_torch(case, dtype, STEPS, EVERY)
            perturbed = run_torch(case, dtype, STEPS, EVERY, perturb=gen.PERTURBATION[dtype])
            arrays[f"{case.id}/{dtype}/iterates"] = result["iterates"].astype(dtype)
            for field in ("lr", "momentum"):  # torch's schedulers keep Python floats
                previous = arrays.setdefault(f"{case.id}/{field}", result[field])
                assert np.array_equal(previous, result[field]), f"{case.id}: {field} by dtype"
            amp = gen.amplification(result["iterates"], perturbed["iterates"], dtype)
            amplifications[case.id][dtype] = float(f"{amp:.3g}")
            if not amp <= gen.MAX_AMPLIFICATION[dtype]:
                refused.append(f"{case.id} ({dtype}): {amp:.3g}")
    if refused:
        raise SystemExit(f"amplification above {gen.MAX_AMPLIFICATION}: {refused}")
    manifest = {
        "made_by": "python -m tests.golden.make_cycled_momentum_fixtures",
        "versions": gen._versions("torch"),
        "steps": STEPS,
        "every": EVERY,
        "shapes": [list(s) for s in SHAPES],
        "gradient": "grad_sign * a * (x - c), in the parameters' dtype",
        "perturbation": gen.PERTURBATION,
        "max_amplification": gen.MAX_AMPLIFICATION,
        "cases": [dataclasses.asdict(c) for c in CASES],
        "amplification": amplifications,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(manifest, indent=1) + "\n")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    OUT.with_suffix(".npz").write_bytes(buffer.getvalue())
    print(f"wrote {OUT}.json and .npz ({len(buffer.getvalue()) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
