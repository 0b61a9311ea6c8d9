"""Optimizer step speed: jopt against optax, torch.optim and the memory-bandwidth limit.

    python benchmarks/optimizer_speed.py [--trees mlp,convnet,wide] [--optimizers adam,sgd]
                                         [--repeats 15] [--no-torch] [--write FILE.md]

A step is `updates, state = tx.update(grads, state, params); params += updates`, jitted with the
params and the state donated, on three parameter trees: `mlp` (85k parameters in 6 leaves: per-step
overhead dominates), `convnet` (1.8M in 100 leaves: per-leaf overhead) and `wide` (16.8M in 4
leaves: memory traffic dominates). Each jopt optimizer runs next to its optax twin (the same
function name and arguments), and its `jopt.torch` twin next to `torch.optim` (foreach, and fused
where torch has it); the catalogue's other optimizers with an optax twin join with their
registry example. Before timing, each pair is checked to compute the same parameters.

Timings are noisy, so every runner is measured in each of `--repeats` rounds, in a new random
order each round, and the table reports medians, as ratios to jopt measured in the same run.

The bandwidth limit: an element-wise optimizer must at least read params, gradients and each state
buffer once and write params and each state buffer once. `arrays` counts those tensors (read off the
size of the optimizer's state), the byte count is arrays * parameters * 4, and the limit is that
count divided by the bandwidth of a jitted STREAM triad (`a + 0.5 * b`, three arrays moved) of the
tree's size, measured in the same rounds. "% of limit" is the limit's time over the measured time:
100% is as fast as memory allows. It is shown for `wide` only: the smaller trees fit in the caches
or are bound by the per-step dispatch, where the triad measures neither memory nor the optimizer's
work.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import inspect
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any directory
import jopt  # noqa: E402
from jopt._src import registry  # noqa: E402

TREES: dict[str, list[tuple[int, ...]]] = {
    "mlp": [(64, 256), (256,), (256, 256), (256,), (256, 10), (10,)],
    "convnet": [(3, 3, 64, 64), (64,)] * 50,
    "wide": [(2048, 2048)] * 4,
}
MEMORY_BOUND = {"wide"}  # trees far larger than the caches: "% of limit" is meaningful


@dataclasses.dataclass(frozen=True)
class Case:
    """One optimizer: its jopt and optax constructors, and torch's class and arguments."""

    name: str
    jopt: Callable[[], optax.GradientTransformation]
    optax: Callable[[], optax.GradientTransformation]
    torch: tuple[str, dict[str, Any]] | None  # torch.optim class and kwargs (also jopt.torch's)


CASES = [
    Case("sgd", lambda: jopt.sgd(0.01), lambda: optax.sgd(0.01), ("SGD", {"lr": 0.01})),
    Case(
        "momentum",
        lambda: jopt.sgd(0.01, momentum=0.9),
        lambda: optax.sgd(0.01, momentum=0.9),
        ("SGD", {"lr": 0.01, "momentum": 0.9}),
    ),
    Case(
        "nesterov",
        lambda: jopt.sgd(0.01, momentum=0.9, nesterov=True),
        lambda: optax.sgd(0.01, momentum=0.9, nesterov=True),
        ("SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    ),
    Case(
        "rmsprop",
        lambda: jopt.rmsprop(1e-3),
        lambda: optax.rmsprop(1e-3),
        ("RMSprop", {"lr": 1e-3}),
    ),
    Case("adam", lambda: jopt.adam(1e-3), lambda: optax.adam(1e-3), ("Adam", {"lr": 1e-3})),
    Case(
        "adamw",
        lambda: jopt.adamw(1e-3, weight_decay=1e-2),
        lambda: optax.adamw(1e-3, weight_decay=1e-2),
        ("AdamW", {"lr": 1e-3, "weight_decay": 1e-2}),
    ),
    Case(
        "amsgrad",
        lambda: jopt.amsgrad(1e-3),
        lambda: optax.amsgrad(1e-3),
        ("Adam", {"lr": 1e-3, "amsgrad": True}),
    ),
    Case(
        "adamax",
        lambda: jopt.adamax(1e-3),
        lambda: optax.adamax(1e-3),
        ("Adamax", {"lr": 1e-3}),
    ),
    Case("nadam", lambda: jopt.nadam(1e-3), lambda: optax.nadam(1e-3), ("NAdam", {"lr": 1e-3})),
    Case(
        "nadamw",
        lambda: jopt.nadamw(1e-3, weight_decay=1e-2),
        lambda: optax.nadamw(1e-3, weight_decay=1e-2),
        ("NAdam", {"lr": 1e-3, "weight_decay": 1e-2, "decoupled_weight_decay": True}),
    ),
    Case("radam", lambda: jopt.radam(1e-3), lambda: optax.radam(1e-3), ("RAdam", {"lr": 1e-3})),
    Case(
        "adagrad",
        lambda: jopt.adagrad(1e-2),
        lambda: optax.adagrad(1e-2),
        ("Adagrad", {"lr": 1e-2}),
    ),
    Case(
        "adadelta",
        lambda: jopt.adadelta(1.0),
        lambda: optax.adadelta(1.0),
        ("Adadelta", {"lr": 1.0}),
    ),
    Case("lion", lambda: jopt.lion(1e-4), lambda: optax.lion(1e-4), None),
    # No optax twin: the nearest baselines, SGD and Adagrad.
    Case("asgd", lambda: jopt.asgd(0.01), lambda: optax.sgd(0.01), ("ASGD", {"lr": 0.01})),
    Case("ftrl", lambda: jopt.ftrl(0.1), lambda: optax.adagrad(0.1), None),
]


def _catalogue_cases(listed: set[str]) -> list[Case]:
    """A case for each optimizer of the catalogue with an optax twin that CASES leaves out: its
    first optax example (`jopt/_src/registry.py`), with optax given the arguments it takes."""
    cases = []
    for name, entry in registry.OPTIMIZERS.items():
        examples = [e.kwargs for e in entry.examples.values() if e.optax]
        if name in listed or not examples:
            continue
        takes = inspect.signature(entry.optax_function).parameters
        kwargs = dict(examples[0])
        optax_kwargs = {k: v for k, v in kwargs.items() if k in takes}
        cases.append(
            Case(
                name,
                functools.partial(entry.factory, **kwargs),
                functools.partial(entry.optax_function, **optax_kwargs),
                None,
            )
        )
    return cases


CASES += _catalogue_cases({case.name for case in CASES})


# -- runners: each `run(steps)` does that many steps and returns seconds per step ----------------


def _tree(shapes: list[tuple[int, ...]], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape, dtype=np.float32) for shape in shapes]


def _half_square(tree) -> jax.Array:
    return 0.5 * sum(jnp.sum(x * x) for x in jax.tree.leaves(tree))


def _jax_step(tx: optax.GradientTransformation) -> Callable:
    # The loss, for the optimizers that read it (Polyak, MoMo, L-BFGS's line search): a stand-in
    # that the others' programs drop, since they never read it.
    tx = optax.with_extra_args_support(tx)

    def step(params, state, grads):
        loss = {"value": _half_square(grads), "grad": grads, "value_fn": _half_square}
        updates, state = tx.update(grads, state, params, **loss)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


class JaxRunner:
    def __init__(self, tx: optax.GradientTransformation, shapes: list[tuple[int, ...]]):
        self.step = _jax_step(tx)
        self.params = [jnp.asarray(p) for p in _tree(shapes, 0)]
        self.grads = [jnp.asarray(g) * 1e-2 for g in _tree(shapes, 1)]
        self.state = tx.init(self.params)

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.params, self.state = self.step(self.params, self.state, self.grads)
        jax.block_until_ready((self.params, self.state))
        return (time.perf_counter() - start) / steps

    def result(self) -> list[np.ndarray]:
        return [np.asarray(p) for p in self.params]


class TorchRunner:
    def __init__(self, name: str, kwargs: dict[str, Any], shapes, impl: str):
        import torch

        self.params = [torch.tensor(p, requires_grad=True) for p in _tree(shapes, 0)]
        self.grads = [torch.tensor(g) * 1e-2 for g in _tree(shapes, 1)]
        for p, g in zip(self.params, self.grads, strict=True):
            p.grad = g.clone()
        flag = {"foreach": {"foreach": True}, "fused": {"fused": True}}[impl]
        self.optimizer = getattr(torch.optim, name)(self.params, **kwargs, **flag)

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.optimizer.step()
        return (time.perf_counter() - start) / steps

    def run_exact(self, steps: int) -> None:
        """Steps with the original gradients: torch's foreach Nesterov SGD adds the momentum
        buffer to `p.grad` in place (harmless in training, where gradients are recomputed)."""
        for _ in range(steps):
            for p, g in zip(self.params, self.grads, strict=True):
                p.grad.copy_(g)
            self.optimizer.step()

    def result(self) -> list[np.ndarray]:
        return [p.detach().numpy().copy() for p in self.params]


class TriadRunner:
    """STREAM triad `a = a + 0.5 * b` on one array of the tree's total size."""

    def __init__(self, shapes: list[tuple[int, ...]]):
        size = sum(math.prod(shape) for shape in shapes)
        self.a = jnp.ones(size, jnp.float32)
        self.b = jnp.ones(size, jnp.float32)
        self.step = jax.jit(lambda a, b: a + 0.5 * b, donate_argnums=0)

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.a = self.step(self.a, self.b)
        self.a.block_until_ready()
        return (time.perf_counter() - start) / steps


def _torch_impls(name: str, kwargs: dict[str, Any]) -> list[str]:
    """foreach always; fused where this torch build supports it on the CPU."""
    impls = ["foreach"]
    try:
        TorchRunner(name, kwargs, [(2,)], "fused").run(1)
        impls.append("fused")
    except (RuntimeError, TypeError, ValueError):
        pass
    return impls


def _check_same(case: Case, a, b, what: str) -> None:
    for runner in (a, b):
        getattr(runner, "run_exact", runner.run)(3)
    for x, y in zip(a.result(), b.result(), strict=True):
        if not np.allclose(x, y, rtol=1e-5, atol=1e-6):
            raise AssertionError(f"{case.name}: {what} compute different parameters")


# -- measurement ----------------------------------------------------------------------------------


def _steps_for(runner, seconds: float) -> int:
    """Steps that take about `seconds`, after a compile-and-warm-up call."""
    runner.run(2)
    per_step = runner.run(3)
    return max(2, round(seconds / per_step))


def measure(runners: dict[str, Any], repeats: int, seconds: float, seed: int) -> dict[str, float]:
    """Median seconds per step of each runner, measured round by round in shuffled order."""
    steps = {key: _steps_for(runner, seconds) for key, runner in runners.items()}
    times: dict[str, list[float]] = {key: [] for key in runners}
    order = list(runners)
    shuffle = random.Random(seed).shuffle
    for _ in range(repeats):
        shuffle(order)
        for key in order:
            times[key].append(runners[key].run(steps[key]))
    return {key: statistics.median(values) for key, values in times.items()}


def _arrays(tx: optax.GradientTransformation, shapes: list[tuple[int, ...]]) -> int:
    """Tensors of the params' size an element-wise step moves at the least: params and gradients
    read, params written, and each state buffer read and written (read off the state's size)."""
    params = [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in shapes]
    state_size = sum(leaf.size for leaf in jax.tree.leaves(jax.eval_shape(tx.init, params)))
    return 3 + 2 * round(state_size / sum(math.prod(shape) for shape in shapes))


def bench(case: Case, tree: str, args: argparse.Namespace) -> dict[str, Any]:
    shapes = TREES[tree]
    runners: dict[str, Any] = {
        "jopt": JaxRunner(case.jopt(), shapes),
        "optax": JaxRunner(case.optax(), shapes),
        "triad": TriadRunner(shapes),
    }
    torch_impls: list[str] = []
    if case.torch and not args.no_torch:
        name, kwargs = case.torch
        runners["jopt.torch"] = JaxRunner(getattr(jopt.torch, name)(**kwargs), shapes)
        torch_impls = _torch_impls(name, kwargs)
        for impl in torch_impls:
            runners[f"torch {impl}"] = TorchRunner(name, kwargs, shapes, impl)
    if tree == args.trees[0]:  # like for like: the pairs agree (checked once per optimizer)
        _check_same(case, JaxRunner(case.jopt(), shapes), JaxRunner(case.optax(), shapes), "optax")
        for impl in torch_impls:
            jopt_torch = JaxRunner(getattr(jopt.torch, case.torch[0])(**case.torch[1]), shapes)
            _check_same(case, jopt_torch, TorchRunner(*case.torch, shapes, impl), f"torch {impl}")

    median = measure(runners, args.repeats, args.seconds, args.seed)
    size = sum(math.prod(shape) for shape in shapes)
    arrays = _arrays(case.jopt(), shapes)
    bandwidth = 3 * size * 4 / median["triad"]
    row = {
        "optimizer": case.name,
        "tree": tree,
        "parameters": size,
        "leaves": len(shapes),
        "arrays": arrays,
        "seconds": median,
        "triad_gb_per_s": bandwidth / 1e9,
        "limit_fraction": arrays * size * 4 / bandwidth / median["jopt"],
        "optax_over_jopt": median["optax"] / median["jopt"],
    }
    for impl in torch_impls:
        row[f"torch_{impl}_over_jopt_torch"] = median[f"torch {impl}"] / median["jopt.torch"]
    return row


# -- report ---------------------------------------------------------------------------------------


def _ratio(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.2f}" if key in row else "—"


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    import jaxlib

    versions = f"jax {jax.__version__}, jaxlib {jaxlib.__version__}, optax {optax.__version__}"
    if not args.no_torch:
        import torch

        versions += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    lines = [
        f"Measured {datetime.date.today()} on {platform.machine()} {jax.devices()[0].platform}, "
        f"{os.cpu_count()} CPU cores; {versions}.",
        "",
        f"Command: `python benchmarks/optimizer_speed.py {' '.join(sys.argv[1:])}`. "
        f"Medians over {args.repeats} interleaved rounds. Ratios above 1 mean jopt is faster.",
        "",
        "| optimizer | tree | jopt step (median) | optax ÷ jopt | torch foreach ÷ jopt.torch "
        "| torch fused ÷ jopt.torch | jopt % of bandwidth limit |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        limit = f"{100 * row['limit_fraction']:.0f}%" if row["tree"] in MEMORY_BOUND else "—"
        lines.append(
            f"| {row['optimizer']} | {row['tree']} | {row['seconds']['jopt'] * 1e3:.3f} ms | "
            f"{_ratio(row, 'optax_over_jopt')} | {_ratio(row, 'torch_foreach_over_jopt_torch')} | "
            f"{_ratio(row, 'torch_fused_over_jopt_torch')} | {limit} |"
        )
    described = []
    for name in args.trees:
        shapes = TREES[name]
        triad = statistics.median(r["triad_gb_per_s"] for r in rows if r["tree"] == name)
        described.append(
            f"`{name}` {sum(math.prod(s) for s in shapes):,} parameters in {len(shapes)} leaves "
            f"(triad {triad:.1f} GB/s)"
        )
    trees = ", ".join(described)
    lines += ["", f"Trees: {trees}."]
    return "\n".join(lines) + "\n"


def _names(text: str, allowed: list[str], flag: str) -> list[str]:
    names = [name for name in text.split(",") if name]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise SystemExit(f"{flag}: unknown {unknown or text!r}; choose from {', '.join(allowed)}")
    return names


def step_benchmark_parser(
    doc: str, trees: list[str], optimizers: list[str], repeats: int, seconds: float
) -> argparse.ArgumentParser:
    """The options every step benchmark takes: its trees and optimizers, the interleaved
    rounds, `--write`. `doc`: the script's docstring (its first paragraph describes it)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--trees", default=",".join(trees), help="comma-separated tree names")
    parser.add_argument("--optimizers", default=",".join(optimizers))
    parser.add_argument("--repeats", type=int, default=repeats, help="interleaved rounds (median)")
    parser.add_argument("--seconds", type=float, default=seconds, help="time per runner per round")
    parser.add_argument("--seed", type=int, default=0, help="seed of the round orders")
    parser.add_argument("--write", type=Path, help="also write the Markdown table to this file")
    return parser


def medians_by_tree(rows: list[dict[str, Any]], key: str, digits: int) -> str:
    """`tree median, ...` of `row[key]` over each tree's rows, in the rows' order of trees."""
    return ", ".join(
        f"{tree} {statistics.median(r[key] for r in rows if r['tree'] == tree):.{digits}f}"
        for tree in dict.fromkeys(r["tree"] for r in rows)
    )


def main(argv: list[str] | None = None) -> None:
    parser = step_benchmark_parser(__doc__, list(TREES), [c.name for c in CASES], 15, 0.05)
    parser.add_argument("--no-torch", action="store_true", help="skip torch.optim")
    args = parser.parse_args(argv)
    args.trees = _names(args.trees, list(TREES), "--trees")
    chosen = _names(args.optimizers, [c.name for c in CASES], "--optimizers")
    if args.repeats < 1 or args.seconds <= 0:
        raise SystemExit("--repeats must be >= 1 and --seconds > 0")
    if not args.no_torch:
        require_torch()

    rows = []
    for case in (c for c in CASES if c.name in chosen):
        for tree in args.trees:
            rows.append(bench(case, tree, args))
            print(
                f"{case.name:>9} {tree:>8}: optax/jopt {rows[-1]['optax_over_jopt']:.2f}",
                file=sys.stderr,
            )
    publish(markdown(rows, args), args.write)


def require_torch() -> None:
    """Stops with the install command where torch is missing."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        message = "torch is not installed: pip install torch==2.13.0, or pass --no-torch"
        raise SystemExit(message) from error


def publish(table: str, path: Path | None) -> None:
    """Prints the table, and writes it to `path` (write, then rename: never half a file)."""
    print(table)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(table)
        tmp.replace(path)


if __name__ == "__main__":
    main()
