"""Golden optimizer trajectories from the real torch.optim and keras.optimizers.

Run from the repository root (needs the `parity` extra: torch and keras):

    .venv/bin/python -m tests.golden.make_optimizer_fixtures [--only torch|keras]

It writes `tests/golden/optimizers/{torch,keras}.json` (the cases: constructor, arguments,
schedule, problem seed; the versions that made them; each case's measured amplification) and
`{torch,keras}.npz` (the problems, the trajectories and the learning rates). The tests in
`tests/conventions/` read them without torch or keras.

The problem: parameters of shapes (3,) and (2, 4), and the gradient of the separable quadratic
`f(x) = sum_i a_i (x_i - c_i)^2 / 2`, `g = a * (x - c)`, computed in NumPy in the parameters'
dtype. A subtraction and a multiplication are exactly rounded in every framework, so torch, Keras
and jopt see bitwise the same gradient for the same iterate. With `maximize=True` the gradient
is that of `-f` (`grad_sign=-1`), so that ascent converges too.

Each case runs 1000 steps in float64 and in float32; the iterate is recorded every 50th step
(step 0 included), and the learning rate used at every step:
- torch: `param_groups[0]["lr"]` before each `optimizer.step()`; a schedule is a torch
  lr_scheduler stepped after every optimizer step. Float64 runs set
  `torch.set_default_dtype(torch.float64)`, since torch keeps some scalar state (the step, NAdam's
  `mu_product`) in the default dtype.
- keras: `optimizer.learning_rate` as each step (a jitted `stateless_apply`, as in Keras' JAX
  training step) sees it. Keras keeps a constant rate in a float32 variable, even for float64
  variables, and evaluates its schedules in float32 (with x64 some, like ExponentialDecay, in
  float64). Keras runs in a subprocess per dtype, with `KERAS_BACKEND=jax` and
  `JAX_ENABLE_X64` on for float64 only, as a Keras user would.
The learning rates are stored once per case where both dtypes used the same (always with torch),
else per dtype; in float32 where that is exact.

Amplification. Two correct implementations of one optimizer differ in the last bits (operation
order, fused multiply-adds, scalars in float64 or in the parameters' dtype); a comparison at 1e-10
is only meaningful if the trajectory does not amplify such differences. Adam-like steps near a
minimum are `~ lr * sign(g)`: once a coordinate is within ~lr of its minimum, the map
`x -> x - lr g / sqrt(v)` can expand perturbations by 2x per step, and a last-bit difference
grows to 1e-2. NAdam at its defaults on a coordinate that starts at its minimum does exactly
this: torch against itself, started 1e-15 apart, drifts 2e-8 apart within 50 steps, and jopt,
equal to torch to 1e-15 on a well-conditioned problem, drifted 3e-7 (float64) and 6e-3 (float32)
from it. So every coordinate starts
0.5 to 1.5 away from its minimum, and each case's amplification is measured: the framework run
again from `x0 * (1 + delta * r)` (r = +-1 at random, delta = PERTURBATION[dtype]), the largest
`|x' - x| / max(1, |x|) / delta` over the recorded steps. The generator refuses a case whose
amplification exceeds MAX_AMPLIFICATION[dtype]; the tests check the manifest for the same bound.

The same runners serve `tests/conventions/test_live_parity.py` (torch in-process; Keras through
`run_keras_subprocess`, the `--worker` mode: a JSON spec on stdin, results in an .npz file).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

STEPS = 1000
EVERY = 50  # record the iterate every EVERY steps
SHAPES = ((3,), (2, 4))
DTYPES = ("float64", "float32")
OUT = Path(__file__).resolve().parent / "optimizers"
# Relative perturbation of the start that measures a case's amplification, and the largest
# amplification accepted: with it, rounding-level differences stay well inside the tests'
# tolerances (1e-10 in float64, 1e-5 in float32, relative to max(1, |x|)).
PERTURBATION = {"float64": 1e-10, "float32": 1e-6}
MAX_AMPLIFICATION = {"float64": 100.0, "float32": 10.0}


@dataclasses.dataclass(frozen=True)
class Case:
    """One optimizer configuration, as both the framework and its jopt twin take it."""

    id: str
    optimizer: str  # the name in torch.optim / keras.optimizers, and in jopt.torch / jopt.keras
    lr: float  # the (initial) learning rate
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)  # all other arguments
    schedule: dict[str, Any] | None = None  # {"name": scheduler class, **its arguments}
    seed: int = 0  # of `problem`
    grad_sign: float = 1.0  # -1: the gradient of -f (for maximize=True)


def problem(seed: int, shapes=SHAPES) -> dict[str, np.ndarray]:
    """Flat float64 vectors: `a ~ U(0.5, 2)`, `c ~ N(0, 1)`, `x0 = c +- U(0.5, 1.5)`."""
    n = sum(int(np.prod(s)) for s in shapes)
    rng = np.random.default_rng(seed)
    a, c = rng.uniform(0.5, 2.0, n), rng.standard_normal(n)
    offset = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.5, n)
    return {"a": a, "c": c, "x0": c + offset}


def split(vec: np.ndarray, shapes) -> list[np.ndarray]:
    sizes = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
    return [
        part.reshape(shape).copy() for part, shape in zip(np.split(vec, sizes), shapes, strict=True)
    ]


def start(case: Case, dtype: str, shapes, perturb: float) -> tuple[list, list, list]:
    """(a, c, x0) split into `shapes` in `dtype`; x0 moved to `x0 * (1 + perturb * r)`."""
    prob = problem(case.seed, shapes)
    signs = np.random.default_rng(12345).choice([-1.0, 1.0], prob["x0"].shape)
    x0 = prob["x0"] * (1 + perturb * signs)
    return tuple(split(v.astype(dtype), shapes) for v in (prob["a"], prob["c"], x0))


def gradient(x: np.ndarray, a: np.ndarray, c: np.ndarray, sign: float) -> np.ndarray:
    """`sign * a * (x - c)` in x's dtype (a and c already cast to it)."""
    g = a * (x - c)
    return -g if sign < 0 else g


# The learning-rate schedules of the fixtures (one that changes the learning rate every step).
TORCH_EXP = {"name": "ExponentialLR", "gamma": 0.997}
TORCH_COS = {"name": "CosineAnnealingLR", "T_max": STEPS, "eta_min": 1e-4}
KERAS_EXP = {"name": "ExponentialDecay", "decay_steps": 100, "decay_rate": 0.7}
KERAS_COS = {"name": "CosineDecay", "decay_steps": STEPS, "alpha": 0.01}

TORCH_CASES = [
    Case("sgd", "SGD", 0.05),
    Case("sgd_exp", "SGD", 0.05, {}, TORCH_EXP),
    Case("sgd_momentum_dampening_exp", "SGD", 0.05, {"momentum": 0.9, "dampening": 0.3}, TORCH_EXP),
    Case("sgd_momentum_weight_decay", "SGD", 0.05, {"momentum": 0.9, "weight_decay": 0.01}),
    Case("sgd_momentum_weight_decay_cos", "SGD", 0.05, {"momentum": 0.9, "weight_decay": 0.01},
        TORCH_COS),
    Case("sgd_nesterov_weight_decay", "SGD", 0.05,
        {"momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    Case("sgd_nesterov_cos", "SGD", 0.05, {"momentum": 0.9, "nesterov": True}, TORCH_COS),
    Case("sgd_maximize_momentum_exp", "SGD", 0.05,
        {"momentum": 0.5, "weight_decay": 0.01, "maximize": True}, TORCH_EXP, grad_sign=-1.0),
    Case("rmsprop", "RMSprop", 0.01, {"eps": 0.01}),
    Case("rmsprop_cos", "RMSprop", 0.01, {}, TORCH_COS),
    Case("rmsprop_alpha_weight_decay_exp", "RMSprop", 0.01,
        {"alpha": 0.9, "eps": 1e-3, "weight_decay": 0.01}, TORCH_EXP),
    Case("rmsprop_momentum", "RMSprop", 0.003, {"momentum": 0.9, "eps": 0.01}),
    Case("rmsprop_centered_momentum_cos", "RMSprop", 0.003,
        {"momentum": 0.9, "centered": True, "weight_decay": 0.01}, TORCH_COS),
    Case("rmsprop_centered", "RMSprop", 0.01, {"centered": True, "eps": 0.01}),
    Case("adam", "Adam", 0.01),
    Case("adam_weight_decay_exp", "Adam", 0.01, {"weight_decay": 0.1}, TORCH_EXP),
    Case("adam_amsgrad_weight_decay", "Adam", 0.01,
        {"amsgrad": True, "weight_decay": 0.01, "betas": (0.8, 0.99)}),
    Case("adam_amsgrad_cos", "Adam", 0.01, {"amsgrad": True}, TORCH_COS),
    Case("adam_decoupled_weight_decay_cos", "Adam", 0.01,
        {"weight_decay": 0.1, "decoupled_weight_decay": True}, TORCH_COS),
    Case("adam_maximize", "Adam", 0.01, {"maximize": True, "eps": 1e-6}, grad_sign=-1.0),
    Case("adamw", "AdamW", 0.01, {"weight_decay": 0.1}),
    Case("adamw_exp", "AdamW", 0.01, {}, TORCH_EXP),
    Case("adamw_amsgrad_cos", "AdamW", 0.01, {"amsgrad": True, "weight_decay": 0.05, "eps": 1e-6},
        TORCH_COS),
    Case("adamax", "Adamax", 0.02),
    Case("adamax_weight_decay_exp", "Adamax", 0.02, {"weight_decay": 0.01, "betas": (0.8, 0.99)},
        TORCH_EXP),
    Case("nadam", "NAdam", 0.01),
    Case("nadam_momentum_decay_weight_decay_exp", "NAdam", 0.01,
        {"momentum_decay": 0.01, "weight_decay": 0.01}, TORCH_EXP),
    Case("nadam_decoupled_weight_decay_cos", "NAdam", 0.01,
        {"weight_decay": 0.1, "decoupled_weight_decay": True}, TORCH_COS),
    Case("radam", "RAdam", 0.01),
    Case("radam_weight_decay_exp", "RAdam", 0.01, {"weight_decay": 0.01}, TORCH_EXP),
    Case("radam_decoupled_weight_decay_cos", "RAdam", 0.01,
        {"weight_decay": 0.1, "decoupled_weight_decay": True, "betas": (0.8, 0.99)}, TORCH_COS),
    Case("adagrad", "Adagrad", 0.1),
    Case("adagrad_lr_decay_initial_accumulator", "Adagrad", 0.1,
        {"lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    Case("adagrad_lr_decay_weight_decay_cos", "Adagrad", 0.1,
        {"lr_decay": 0.001, "weight_decay": 0.01}, TORCH_COS),
    Case("adadelta", "Adadelta", 1.0),
    Case("adadelta_rho_weight_decay_exp", "Adadelta", 1.0,
        {"rho": 0.95, "eps": 1e-5, "weight_decay": 0.01}, TORCH_EXP),
    Case("asgd_lambd_t0", "ASGD", 0.05, {"lambd": 0.01, "t0": 100.0}),
    Case("asgd_alpha_weight_decay_exp", "ASGD", 0.05,
        {"lambd": 0.005, "alpha": 0.6, "weight_decay": 0.01}, TORCH_EXP),
    Case("asgd_maximize_cos", "ASGD", 0.05, {"maximize": True, "t0": 10.0}, TORCH_COS,
        grad_sign=-1.0),
    # Rprop reads lr once: under a schedule torch's trajectory is the constant-lr one.
    Case("rprop", "Rprop", 0.01),
    Case("rprop_etas_step_sizes_cos", "Rprop", 0.01,
        {"etas": (0.4, 1.3), "step_sizes": (1e-3, 0.5)}, TORCH_COS),
    # lr above step_sizes[1]: torch clamps the first step size.
    Case("rprop_maximize_clamped_lr", "Rprop", 2.0, {"step_sizes": (1e-3, 0.5), "maximize": True},
        grad_sign=-1.0),
    # Adafactor at beta2_decay -0.6 (V forgets faster) takes steps ~ rho * sign(g) near the
    # minimum, amplifying rounding 1e7-fold: its cases keep beta2_decay <= -0.8.
    Case("adafactor", "Adafactor", 0.01),
    Case("adafactor_weight_decay_d_exp", "Adafactor", 0.01, {"weight_decay": 0.1, "d": 2.0},
        TORCH_EXP),
    Case("adafactor_eps_beta2_decay_maximize_cos", "Adafactor", 0.05,
        {"eps": (1e-10, 1e-2), "beta2_decay": -0.9, "maximize": True}, TORCH_COS, grad_sign=-1.0),
]  # fmt: skip

# Keras' learning rates are powers of two, exact in its float32 learning-rate variable. Keras'
# RMSprop at epsilon=1e-7 with momentum is chaotic near the minimum: there `v ~ g**2`, so the step
# is ~ lr * sign(g), and the momentum buffer turns that into an oscillation that amplifies
# last-bit differences (25x in float32 over 1000 steps); its momentum cases use a larger epsilon,
# which bounds `lr / sqrt(v + eps)` (and rmsprop_eps a large one, where its place matters).
# Lion's step is `lr * sign(.)`, discontinuous: its seed is one where no sign decision is within
# the perturbation of zero (seed 0 flips one in float32).
KERAS_CASES = [
    Case("sgd", "SGD", 2**-4),
    Case("sgd_momentum_exp", "SGD", 2**-4, {"momentum": 0.9}, KERAS_EXP),
    Case("sgd_momentum_weight_decay", "SGD", 2**-4, {"momentum": 0.9, "weight_decay": 0.01}),
    Case("sgd_nesterov_weight_decay_cos", "SGD", 2**-4,
        {"momentum": 0.8, "nesterov": True, "weight_decay": 0.1}, KERAS_COS),
    Case("sgd_clipnorm_cos", "SGD", 2**-4, {"clipnorm": 0.5}, KERAS_COS),
    Case("rmsprop_cos", "RMSprop", 2**-7, {}, KERAS_COS),
    Case("rmsprop_eps", "RMSprop", 2**-7, {"epsilon": 0.1}),
    Case("rmsprop_momentum_centered_weight_decay_exp", "RMSprop", 2**-8,
        {"momentum": 0.9, "centered": True, "weight_decay": 0.01, "epsilon": 1e-3}, KERAS_EXP),
    Case("rmsprop_momentum", "RMSprop", 2**-8, {"momentum": 0.9, "rho": 0.95, "epsilon": 0.01}),
    Case("rmsprop_centered_clipvalue", "RMSprop", 2**-7,
        {"centered": True, "epsilon": 1e-3, "clipvalue": 0.5}),
    Case("adam", "Adam", 2**-7),
    Case("adam_amsgrad_clipnorm_exp", "Adam", 2**-7, {"amsgrad": True, "clipnorm": 1.0}, KERAS_EXP),
    Case("adam_weight_decay_clipvalue", "Adam", 2**-7,
        {"weight_decay": 0.05, "clipvalue": 0.5, "beta_1": 0.8}),
    Case("adamw", "AdamW", 2**-7),
    Case("adamw_amsgrad_global_clipnorm_cos", "AdamW", 2**-7,
        {"amsgrad": True, "weight_decay": 0.05, "global_clipnorm": 1.0}, KERAS_COS),
    Case("adamax", "Adamax", 2**-6),
    Case("adamax_weight_decay_clipvalue_exp", "Adamax", 2**-6,
        {"weight_decay": 0.01, "clipvalue": 0.5}, KERAS_EXP),
    Case("nadam", "Nadam", 2**-7),
    Case("nadam_weight_decay_global_clipnorm_cos", "Nadam", 2**-7,
        {"weight_decay": 0.05, "global_clipnorm": 1.0, "beta_2": 0.99}, KERAS_COS),
    Case("adagrad", "Adagrad", 2**-3),
    Case("adagrad_weight_decay_exp", "Adagrad", 2**-3,
        {"weight_decay": 0.01, "initial_accumulator_value": 0.5}, KERAS_EXP),
    Case("adadelta", "Adadelta", 1.0),
    Case("adadelta_weight_decay_clipnorm_cos", "Adadelta", 1.0,
        {"rho": 0.9, "weight_decay": 0.01, "clipnorm": 1.0}, KERAS_COS),
    Case("sgd_momentum_gradient_accumulation", "SGD", 2**-4,
        {"momentum": 0.9, "gradient_accumulation_steps": 3}),
    Case("adamw_gradient_accumulation_clipnorm", "AdamW", 2**-7,
        {"weight_decay": 0.05, "clipnorm": 1.0, "gradient_accumulation_steps": 4}),
    Case("adam_ema_overwrite_exp", "Adam", 2**-7,
        {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 5}, KERAS_EXP),
    Case("sgd_momentum_accumulation_ema_overwrite", "SGD", 2**-4,
        {"momentum": 0.9, "gradient_accumulation_steps": 2, "use_ema": True, "ema_momentum": 0.8,
         "ema_overwrite_frequency": 3}),
    Case("lion", "Lion", 2**-10, {}, None, 6),
    Case("lion_weight_decay_exp", "Lion", 2**-9, {"weight_decay": 0.05, "beta_2": 0.95}, KERAS_EXP,
        6),
    Case("ftrl", "Ftrl", 2**-3),
    Case("ftrl_regularized_weight_decay_exp", "Ftrl", 2**-2,
        {"learning_rate_power": -0.7, "initial_accumulator_value": 0.5,
         "l1_regularization_strength": 0.01, "l2_regularization_strength": 0.05,
         "l2_shrinkage_regularization_strength": 0.02, "beta": 0.5, "weight_decay": 0.01},
        KERAS_EXP),
    # Lamb's step is ~ lr * ||theta|| along a normalized direction: near a minimum it
    # oscillates and amplifies rounding (1e8-fold at 2**-7). At these rates no coordinate
    # reaches its minimum within the 1000 steps.
    Case("lamb", "Lamb", 2**-12),
    Case("lamb_weight_decay_clipnorm_cos", "Lamb", 2**-13, {"weight_decay": 0.05, "clipnorm": 1.0},
        KERAS_COS),
    Case("adafactor", "Adafactor", 2**-5),
    Case("adafactor_weight_decay_clipvalue_exp", "Adafactor", 2**-4,
        {"weight_decay": 0.05, "beta_2_decay": -0.9, "clip_threshold": 2.0, "epsilon_2": 1e-2,
         "clipvalue": 0.5}, KERAS_EXP),
    Case("schedule_free_adamw", "ScheduleFreeAdamW", 2**-7),
    Case("schedule_free_adamw_warmup_weight_decay_cos", "ScheduleFreeAdamW", 2**-6,
        {"weight_decay": 0.05, "warmup_steps": 20, "beta_1": 0.8}, KERAS_COS),
]  # fmt: skip


def _flat(arrays) -> np.ndarray:
    return np.concatenate([np.array(x).reshape(-1) for x in arrays])


# ------------------------------------------------------------------------------------------- torch


def _torch_optimizer_kwargs(case: Case) -> dict[str, Any]:
    kwargs = dict(case.kwargs)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    kwargs["foreach"] = False  # the single-tensor loop (CPU's default anyway)
    return kwargs


def _torch_scheduler(torch, optimizer, schedule: dict[str, Any] | None):
    if schedule is None:
        return None
    spec = dict(schedule)
    name = spec.pop("name")
    if name == "SequentialLR":  # {"schedulers": [specs], "milestones": [...]}
        inner = [_torch_scheduler(torch, optimizer, s) for s in spec.pop("schedulers")]
        return torch.optim.lr_scheduler.SequentialLR(optimizer, inner, **spec)
    return getattr(torch.optim.lr_scheduler, name)(optimizer, **spec)


def run_torch(
    case: Case, dtype: str, steps: int, every: int, shapes=SHAPES, perturb: float = 0.0
) -> dict[str, np.ndarray]:
    """Runs `case` with torch.optim: {"iterates": (steps // every + 1, n), "lr": (steps,)}."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        a, c, x0 = start(case, dtype, shapes, perturb)
        params = [torch.nn.Parameter(torch.from_numpy(x)) for x in x0]
        make = getattr(torch.optim, case.optimizer)
        optimizer = make(params, lr=case.lr, **_torch_optimizer_kwargs(case))
        scheduler = _torch_scheduler(torch, optimizer, case.schedule)
        lrs, iterates = [], [_flat(p.detach().numpy() for p in params)]
        for step in range(1, steps + 1):
            lrs.append(float(optimizer.param_groups[0]["lr"]))
            for p, ai, ci in zip(params, a, c, strict=True):
                p.grad = torch.from_numpy(gradient(p.detach().numpy(), ai, ci, case.grad_sign))
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if step % every == 0:
                iterates.append(_flat(p.detach().numpy() for p in params))
    finally:
        torch.set_default_dtype(previous)
    return {"iterates": np.stack(iterates), "lr": np.asarray(lrs)}


# ------------------------------------------------------------------------------------------- keras


def _keras_learning_rate(keras, case: Case):
    if case.schedule is None:
        return case.lr
    spec = dict(case.schedule)
    name = spec.pop("name")
    return getattr(keras.optimizers.schedules, name)(case.lr, **spec)


def run_keras(
    case: Case, dtype: str, steps: int, every: int, shapes=SHAPES, perturb: float = 0.0
) -> dict[str, np.ndarray]:
    """Runs `case` with keras.optimizers (jax backend); needs the environment of
    `keras_environment` (use `run_keras_subprocess`). Returns as `run_torch`.

    Each step is the optimizer's `stateless_apply` under `jax.jit`, as in Keras' own JAX training
    step (`model.fit`). The learning rate is read inside the same jitted function: XLA fuses a
    float32 schedule differently there than in eager mode (CosineDecay differs by one float32
    ulp at 20% of the steps), and the recorded rate must be the one the step used."""
    import jax
    import keras

    a, c, x0 = start(case, dtype, shapes, perturb)
    variables = [keras.Variable(x, dtype=dtype) for x in x0]
    make = getattr(keras.optimizers, case.optimizer)
    optimizer = make(learning_rate=_keras_learning_rate(keras, case), **case.kwargs)
    optimizer.build(variables)

    @jax.jit
    def step_fn(state, grads, values):
        with keras.StatelessScope(state_mapping=list(zip(optimizer.variables, state, strict=True))):
            lr = keras.ops.convert_to_tensor(optimizer.learning_rate)
        values, state = optimizer.stateless_apply(state, grads, values)
        return values, state, lr

    values = [v.value for v in variables]
    state = [v.value for v in optimizer.variables]
    lrs, iterates = [], [_flat(np.asarray(x) for x in values)]
    for step in range(1, steps + 1):
        grads = [
            gradient(np.asarray(x), ai, ci, case.grad_sign)
            for x, ai, ci in zip(values, a, c, strict=True)
        ]
        values, state, lr = step_fn(state, grads, values)
        lrs.append(float(lr))
        if step % every == 0:
            iterates.append(_flat(np.asarray(x) for x in values))
    got = {str(np.asarray(x).dtype) for x in values}
    assert got == {dtype}, f"keras ran in {got}, not {dtype}"
    return {"iterates": np.stack(iterates), "lr": np.asarray(lrs)}


def keras_environment(dtype: str) -> dict[str, str]:
    x64 = "1" if dtype == "float64" else "0"
    return {**os.environ, "KERAS_BACKEND": "jax", "JAX_ENABLE_X64": x64, "JAX_PLATFORMS": "cpu"}


def run_keras_subprocess(
    cases: list[Case], dtype: str, steps: int, every: int, shapes=SHAPES, perturb: float = 0.0
) -> dict[str, dict[str, np.ndarray]]:
    """Runs `cases` with Keras in a fresh Python (x64 on for float64 only); {case id: results}."""
    spec = {
        "framework": "keras",
        "dtype": dtype,
        "steps": steps,
        "every": every,
        "shapes": [list(s) for s in shapes],
        "perturb": perturb,
        "cases": [dataclasses.asdict(c) for c in cases],
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.npz"
        subprocess.run(
            [sys.executable, "-m", "tests.golden.make_optimizer_fixtures", "--worker", str(out)],
            input=json.dumps(spec), text=True, check=True, env=keras_environment(dtype),
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
        with np.load(out) as data:
            arrays = dict(data)
    results: dict[str, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        case_id, field = key.rsplit("/", 1)
        results.setdefault(case_id, {})[field] = value
    return results


def _worker(out: str) -> None:
    spec = json.load(sys.stdin)
    shapes = tuple(tuple(s) for s in spec["shapes"])
    run = {"keras": run_keras, "torch": run_torch}[spec["framework"]]
    arrays = {}
    for raw in spec["cases"]:
        case = Case(**raw)
        results = run(case, spec["dtype"], spec["steps"], spec["every"], shapes, spec["perturb"])
        for field, value in results.items():
            arrays[f"{case.id}/{field}"] = value
    np.savez(out, **arrays)


# -------------------------------------------------------------------------------------------- main


def amplification(reference: np.ndarray, perturbed: np.ndarray, dtype: str) -> float:
    """`max |x' - x| / max(1, |x|) / PERTURBATION[dtype]` over the recorded iterates."""
    deviation = np.abs(perturbed - reference) / np.maximum(1.0, np.abs(reference))
    return float(deviation.max() / PERTURBATION[dtype])


def _runs(framework: str, cases: list[Case], perturb: dict[str, float] | None):
    """{(case id, dtype): results} for all cases and dtypes, from `x0 * (1 + perturb[dtype] r)`."""
    results = {}
    for dtype in DTYPES:
        delta = 0.0 if perturb is None else perturb[dtype]
        if framework == "torch":
            for case in cases:
                results[case.id, dtype] = run_torch(case, dtype, STEPS, EVERY, perturb=delta)
        else:
            runs = run_keras_subprocess(cases, dtype, STEPS, EVERY, perturb=delta)
            results.update({(case_id, dtype): r for case_id, r in runs.items()})
    return results


def _compact(values: np.ndarray) -> np.ndarray:
    """`values` as float32 if that holds them exactly (Keras' learning rates), else float64."""
    narrow = values.astype(np.float32)
    return narrow if np.array_equal(narrow, values) else values.astype(np.float64)


def _versions(framework: str) -> dict[str, str]:
    import importlib.metadata as md

    names = {"torch": ["torch", "numpy"], "keras": ["keras", "jax", "numpy"]}[framework]
    return {name: md.version(name) for name in names}


def make(framework: str, cases: list[Case]) -> None:
    """Runs `cases` (twice: also perturbed) and writes the framework's json and npz."""
    results, perturbed = _runs(framework, cases, None), _runs(framework, cases, PERTURBATION)
    arrays: dict[str, np.ndarray] = {}
    for seed in sorted({c.seed for c in cases}):
        for key, value in problem(seed).items():
            arrays[f"problem{seed}/{key}"] = value
    amplifications, refused = {}, []
    for case in cases:
        lrs = {dtype: _compact(results[case.id, dtype]["lr"]) for dtype in DTYPES}
        if all(np.array_equal(lr, lrs[DTYPES[0]]) for lr in lrs.values()):
            arrays[f"{case.id}/lr"] = lrs[DTYPES[0]]
        else:  # Keras' jitted float32 schedules can round differently with x64 on
            arrays.update({f"{case.id}/{dtype}/lr": lr for dtype, lr in lrs.items()})
        amplifications[case.id] = {}
        for dtype in DTYPES:
            iterates = results[case.id, dtype]["iterates"]
            arrays[f"{case.id}/{dtype}/iterates"] = iterates.astype(dtype)
            amp = amplification(iterates, perturbed[case.id, dtype]["iterates"], dtype)
            amplifications[case.id][dtype] = float(f"{amp:.3g}")
            if not amp <= MAX_AMPLIFICATION[dtype]:
                refused.append(f"{case.id} ({dtype}): {amp:.3g}")
    if refused:
        raise SystemExit(f"{framework}: amplification above {MAX_AMPLIFICATION}: {refused}")
    manifest = {
        "made_by": "python -m tests.golden.make_optimizer_fixtures",
        "versions": _versions(framework),
        "steps": STEPS,
        "every": EVERY,
        "shapes": [list(s) for s in SHAPES],
        "gradient": "grad_sign * a * (x - c), in the parameters' dtype",
        "perturbation": PERTURBATION,
        "max_amplification": MAX_AMPLIFICATION,
        "cases": [dataclasses.asdict(c) for c in cases],
        "amplification": amplifications,
    }
    write(OUT, framework, manifest, arrays)


def write(out: Path, framework: str, manifest: dict[str, Any], arrays: dict[str, Any]) -> None:
    """`out/FRAMEWORK.json` (the manifest) and `out/FRAMEWORK.npz` (the trajectories)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{framework}.json").write_text(json.dumps(manifest, indent=1) + "\n")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    (out / f"{framework}.npz").write_bytes(buffer.getvalue())
    print(f"wrote {out / framework}.json and .npz ({len(buffer.getvalue()) / 1e3:.0f} kB)")


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
