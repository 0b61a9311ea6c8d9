"""Golden Muon trajectories from the real torch.optim.Muon and keras.optimizers.Muon.

Run from the repository root (needs torch and keras):

    .venv/bin/python -m tests.golden.make_muon_fixtures [--only torch|keras]

It writes `tests/golden/muon/{torch,keras}.json` (cases, versions, leaves, amplifications) and
`.npz` (problems and trajectories), in the format of `make_optimizer_fixtures` (whose problem,
gradient and amplification measure it uses), which `tests/conventions/test_muon_twins.py` reads
without torch or keras.

The leaves differ from the other fixtures' (3,) and (2, 4): torch's Muon takes matrices only,
here a wide and a tall one; Keras' gives some leaves to AdamW by rank and by path, so its
leaves are named as a model's layers, in the order jopt flattens the dict of them:
dense/bias (4,), dense/kernel (2, 4), embedding/embeddings (3, 2), head/kernel (4, 3).

Each case runs STEPS steps in float64 (and, with Keras, float32), the iterate recorded every
EVERY steps.
Muon steps every matrix by about lr in spectral norm whatever its gradient: near a minimum its
normalized direction turns with every rounding, so the rates are small enough that no matrix
gets there within the run (the amplification, measured as in `make_optimizer_fixtures`, stays
below its bound). torch iterates in bfloat16: a perturbation that changes no bfloat16 rounding
is not amplified, one that does moves an update by a bfloat16 ulp, which the measure would
show.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tests.golden.make_optimizer_fixtures import (
    MAX_AMPLIFICATION,
    PERTURBATION,
    Case,
    amplification,
    gradient,
    keras_environment,
    start,
    write,
)

STEPS = 200
EVERY = 10
# torch's Muon iterates in bfloat16: in a float32 run, a last-bit difference anywhere before it
# (a fused multiply-add) flips a bfloat16 rounding now and then, and moves the update by a
# bfloat16 ulp (2**-8 of it); the float32 trajectory amplifies a 1e-6 perturbation 95-fold. In
# float64 such differences are 1e-16 and flip nothing: torch's fixtures are float64 only.
DTYPES = {"torch": ("float64",), "keras": ("float64", "float32")}
OUT = Path(__file__).resolve().parent / "muon"
TORCH_SHAPES = ((2, 4), (3, 2))
KERAS_LEAVES = (
    ("dense/bias", (4,)),
    ("dense/kernel", (2, 4)),
    ("embedding/embeddings", (3, 2)),
    ("head/kernel", (4, 3)),
)
KERAS_SHAPES = tuple(shape for _, shape in KERAS_LEAVES)

TORCH_CASES = [
    Case("muon", "Muon", 0.004),
    Case("muon_match_rms_adamw_momentum", "Muon", 0.004,
        {"adjust_lr_fn": "match_rms_adamw", "momentum": 0.9, "weight_decay": 0.01}),
    Case("muon_plain_momentum_three_steps", "Muon", 0.004,
        {"nesterov": False, "ns_steps": 3, "eps": 1e-3, "weight_decay": 0.0,
         "ns_coefficients": (3.0, -3.2, 1.2)}),
]  # fmt: skip
# Keras keeps the learning rate in a float32 variable: powers of two are exact there.
KERAS_CASES = [
    Case("muon", "Muon", 2**-8),
    Case("muon_exclude_head_keep_embeddings_no_rms", "Muon", 2**-9,
        {"exclude_layers": ["head"], "exclude_embeddings": False, "rms_rate": None,
         "nesterov": False, "adam_lr_ratio": 0.5, "weight_decay": 0.01,
         "adam_weight_decay": None, "momentum": 0.9}),
]  # fmt: skip


def _flat(arrays) -> np.ndarray:
    return np.concatenate([np.array(x).reshape(-1) for x in arrays])


def run_torch(case: Case, dtype: str, steps: int, every: int, perturb: float = 0.0):
    """`case` with torch.optim.Muon on TORCH_SHAPES: {"iterates": (steps // every + 1, n)}."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        a, c, x0 = start(case, dtype, TORCH_SHAPES, perturb)
        params = [torch.nn.Parameter(torch.from_numpy(x)) for x in x0]
        kwargs = dict(case.kwargs)
        if "ns_coefficients" in kwargs:
            kwargs["ns_coefficients"] = tuple(kwargs["ns_coefficients"])
        optimizer = torch.optim.Muon(params, lr=case.lr, **kwargs)
        iterates = [_flat(p.detach().numpy() for p in params)]
        for step in range(1, steps + 1):
            for p, ai, ci in zip(params, a, c, strict=True):
                p.grad = torch.from_numpy(gradient(p.detach().numpy(), ai, ci, case.grad_sign))
            optimizer.step()
            if step % every == 0:
                iterates.append(_flat(p.detach().numpy() for p in params))
    finally:
        torch.set_default_dtype(previous)
    return {"iterates": np.stack(iterates)}


def run_keras(case: Case, dtype: str, steps: int, every: int, perturb: float = 0.0):
    """`case` with keras.optimizers.Muon (jax backend) on KERAS_LEAVES, named by their paths;
    needs `keras_environment` (use `run_keras_subprocess`). A jitted `stateless_apply` per step,
    as Keras' JAX training step."""
    import jax
    import keras

    a, c, x0 = start(case, dtype, KERAS_SHAPES, perturb)
    variables = []
    for (path, _), x in zip(KERAS_LEAVES, x0, strict=True):
        scope, name = path.split("/")
        with keras.name_scope(scope):
            variables.append(keras.Variable(x, dtype=dtype, name=name))
    assert [v.path for v in variables] == [path for path, _ in KERAS_LEAVES]
    optimizer = keras.optimizers.Muon(learning_rate=case.lr, **case.kwargs)
    optimizer.build(variables)
    step_fn = jax.jit(optimizer.stateless_apply)
    values = [v.value for v in variables]
    state = [v.value for v in optimizer.variables]
    iterates = [_flat(np.asarray(x) for x in values)]
    for step in range(1, steps + 1):
        grads = [
            gradient(np.asarray(x), ai, ci, case.grad_sign)
            for x, ai, ci in zip(values, a, c, strict=True)
        ]
        values, state = step_fn(state, grads, values)
        if step % every == 0:
            iterates.append(_flat(np.asarray(x) for x in values))
    assert {str(np.asarray(x).dtype) for x in values} == {dtype}
    return {"iterates": np.stack(iterates)}


def run_keras_subprocess(cases: list[Case], dtype: str, steps: int, every: int, perturb=0.0):
    """`cases` with Keras in a fresh Python (x64 on for float64 only): {case id: results}."""
    spec = {
        "dtype": dtype,
        "steps": steps,
        "every": every,
        "perturb": perturb,
        "cases": [dataclasses.asdict(c) for c in cases],
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.npz"
        subprocess.run(
            [sys.executable, "-m", "tests.golden.make_muon_fixtures", "--worker", str(out)],
            input=json.dumps(spec), text=True, check=True, env=keras_environment(dtype),
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
        with np.load(out) as data:
            return {key.rsplit("/", 1)[0]: {"iterates": value} for key, value in data.items()}


def _worker(out: str) -> None:
    spec = json.load(sys.stdin)
    arrays = {}
    for raw in spec["cases"]:
        case = Case(**raw)
        result = run_keras(case, spec["dtype"], spec["steps"], spec["every"], spec["perturb"])
        arrays[f"{case.id}/iterates"] = result["iterates"]
    np.savez(out, **arrays)


def _runs(framework: str, cases: list[Case], perturb: dict[str, float] | None):
    results: dict[tuple[str, str], Any] = {}
    for dtype in DTYPES[framework]:
        delta = 0.0 if perturb is None else perturb[dtype]
        if framework == "torch":
            for case in cases:
                results[case.id, dtype] = run_torch(case, dtype, STEPS, EVERY, delta)
        else:
            runs = run_keras_subprocess(cases, dtype, STEPS, EVERY, delta)
            results.update({(case_id, dtype): r for case_id, r in runs.items()})
    return results


def _versions(framework: str) -> dict[str, str]:
    import importlib.metadata as md

    names = {"torch": ["torch", "numpy"], "keras": ["keras", "jax", "numpy"]}[framework]
    return {name: md.version(name) for name in names}


def make(framework: str, cases: list[Case]) -> None:
    """Runs `cases` (and again from a perturbed start) and writes the framework's files."""
    from tests.golden.make_optimizer_fixtures import problem

    shapes = TORCH_SHAPES if framework == "torch" else KERAS_SHAPES
    results, perturbed = _runs(framework, cases, None), _runs(framework, cases, PERTURBATION)
    arrays: dict[str, np.ndarray] = {}
    for seed in sorted({c.seed for c in cases}):
        for key, value in problem(seed, shapes).items():
            arrays[f"problem{seed}/{key}"] = value
    amplifications, refused = {}, []
    for case in cases:
        amplifications[case.id] = {}
        for dtype in DTYPES[framework]:
            iterates = results[case.id, dtype]["iterates"]
            arrays[f"{case.id}/{dtype}/iterates"] = iterates.astype(dtype)
            amp = amplification(iterates, perturbed[case.id, dtype]["iterates"], dtype)
            amplifications[case.id][dtype] = float(f"{amp:.3g}")
            if not amp <= MAX_AMPLIFICATION[dtype]:
                refused.append(f"{case.id} ({dtype}): {amp:.3g}")
    if refused:
        raise SystemExit(f"{framework}: amplification above {MAX_AMPLIFICATION}: {refused}")
    manifest = {
        "made_by": "python -m tests.golden.make_muon_fixtures",
        "versions": _versions(framework),
        "steps": STEPS,
        "every": EVERY,
        "dtypes": list(DTYPES[framework]),
        "shapes": [list(s) for s in shapes],
        "paths": [path for path, _ in KERAS_LEAVES] if framework == "keras" else None,
        "gradient": "grad_sign * a * (x - c), in the parameters' dtype",
        "perturbation": PERTURBATION,
        "max_amplification": MAX_AMPLIFICATION,
        "cases": [dataclasses.asdict(c) for c in cases],
        "amplification": amplifications,
    }
    write(OUT, framework, manifest, arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["torch", "keras"], help="make one framework's fixtures")
    parser.add_argument("--worker", metavar="OUT.npz", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker)
        return
    if args.only in (None, "torch"):
        make("torch", TORCH_CASES)
    if args.only in (None, "keras"):
        make("keras", KERAS_CASES)


if __name__ == "__main__":
    main()
