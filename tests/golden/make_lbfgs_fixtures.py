"""Golden L-BFGS trajectories from the real torch.optim.LBFGS.

Run from the repository root (needs torch):

    .venv/bin/python -m tests.golden.make_lbfgs_fixtures

It writes `tests/golden/lbfgs/torch.json` (cases, versions, amplifications) and `.npz` (for each
case and dtype: the params after every step, flattened in torch's parameter order, the loss
`step(closure)` returned, and torch's `func_evals` and `n_iter` after every step), which
`tests/conventions/test_torch_lbfgs.py` reads without torch.

Each case runs `steps` steps of `optimizer.step(closure)` on a problem of `lbfgs_problems`, in
float64 and (unless the case says otherwise) float32, with an lr_scheduler stepped after every
step where the case has one.
L-BFGS amplifies rounding differences (a last-bit change of a gradient moves the next direction
by the Hessian approximation's condition number): each case's steps stop where a relative
perturbation of the start of PERTURBATION[dtype] moves no recorded iterate by more than
MAX_AMPLIFICATION[dtype] times as much (the measure of `make_optimizer_fixtures`), so that the
tests' tolerances hold with a margin.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from tests.golden.lbfgs_problems import problem
from tests.golden.make_optimizer_fixtures import MAX_AMPLIFICATION, PERTURBATION, write

OUT = Path(__file__).resolve().parent / "lbfgs"
DTYPES = ("float64", "float32")


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    problem: str  # a name of lbfgs_problems.problem
    steps: int
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)  # LBFGS's arguments
    gamma: float | None = None  # an ExponentialLR(gamma) stepped after every step
    seed: int = 0  # of the problem's data
    # False: float64 only. A step that reaches the optimum to float32's resolution ends on
    # loss changes of a rounding's size, and where it stops depends on the last bits of the
    # line search's cubic interpolation, which torch computes partly in Python floats (float64).
    float32: bool = True


STRONG_WOLFE = {"line_search_fn": "strong_wolfe"}
CASES = [
    Case("logistic_defaults", "logistic", 3, float32=False),
    Case("logistic_five_iterations", "logistic", 5, {"max_iter": 5}, float32=False),
    Case("logistic_strong_wolfe", "logistic", 3, STRONG_WOLFE, float32=False),
    Case("logistic_strong_wolfe_two_iterations", "logistic", 5, {**STRONG_WOLFE, "max_iter": 2}),
    Case("logistic_three_iterations_exponential_lr", "logistic", 6, {"max_iter": 3}, gamma=0.5),
    Case("rosenbrock_strong_wolfe", "rosenbrock", 2, {**STRONG_WOLFE, "max_iter": 8}),
    Case("rosenbrock_strong_wolfe_short_history", "rosenbrock", 2,
         {**STRONG_WOLFE, "lr": 0.5, "history_size": 3, "max_iter": 7}),
    Case("rosenbrock_fixed_step_two_pairs", "rosenbrock", 12,
         {"lr": 0.01, "history_size": 2, "max_iter": 5}),
    Case("rosenbrock_three_evaluations", "rosenbrock", 5, {**STRONG_WOLFE, "max_eval": 3}),
    Case("quadratic_tolerances", "quadratic", 6,
         {**STRONG_WOLFE, "max_iter": 4, "tolerance_grad": 1e-4, "tolerance_change": 1e-6}),
]  # fmt: skip


def run_torch(case: Case, dtype: str, perturb: float) -> dict[str, np.ndarray]:
    """`case` in torch from its start times `1 + perturb * r` (r = +-1 at random)."""
    import torch

    start, loss_fn = problem(case.problem, case.seed)
    signs = np.random.default_rng(12345)
    moved = [x * (1 + perturb * signs.choice([-1.0, 1.0], x.shape)) for x in start]
    params = [torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True) for x in moved]
    optimizer = torch.optim.LBFGS(params, **case.kwargs)
    scheduler = (
        None
        if case.gamma is None
        else torch.optim.lr_scheduler.ExponentialLR(optimizer, case.gamma)
    )

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(torch, params)
        loss.backward()
        return loss

    def flat():
        return np.concatenate([p.detach().numpy().ravel() for p in params]).astype(np.float64)

    iterates, losses, func_evals, n_iter = [flat()], [], [], []
    for _ in range(case.steps):
        losses.append(optimizer.step(closure).item())
        if scheduler is not None:
            scheduler.step()
        state = optimizer.state[params[0]]
        iterates.append(flat())
        func_evals.append(state["func_evals"])
        n_iter.append(state["n_iter"])
    return {
        "iterates": np.stack(iterates),
        "losses": np.asarray(losses),
        "func_evals": np.asarray(func_evals, np.int64),
        "n_iter": np.asarray(n_iter, np.int64),
    }


def dtypes(case: Case) -> tuple[str, ...]:
    return DTYPES if case.float32 else ("float64",)


def amplification(reference: np.ndarray, perturbed: np.ndarray, dtype: str) -> float:
    deviation = np.abs(perturbed - reference) / np.maximum(1.0, np.abs(reference))
    return float(deviation.max() / PERTURBATION[dtype])


def main() -> None:
    import importlib.metadata as md

    arrays, amplifications, refused = {}, {}, []
    for case in CASES:
        for dtype in dtypes(case):
            run = run_torch(case, dtype, 0.0)
            moved = run_torch(case, dtype, PERTURBATION[dtype])
            amp = amplification(run["iterates"], moved["iterates"], dtype)
            amplifications[f"{case.id}/{dtype}"] = amp
            if not amp <= MAX_AMPLIFICATION[dtype]:
                refused.append(f"{case.id} ({dtype}): {amp:.3g}")
            arrays |= {f"{case.id}/{dtype}/{name}": value for name, value in run.items()}
    if refused:
        raise SystemExit(f"amplification above {MAX_AMPLIFICATION}: {refused}")
    manifest = {
        "versions": {name: md.version(name) for name in ("torch", "numpy")},
        "cases": [dataclasses.asdict(case) for case in CASES],
        "perturbation": PERTURBATION,
        "max_amplification": MAX_AMPLIFICATION,
        "amplification": amplifications,
    }
    write(OUT, "torch", manifest, arrays)


if __name__ == "__main__":
    main()
