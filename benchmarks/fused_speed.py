"""The fused kernels' step speed: jopt (plain, fused, flat + fused) against optax and torch.optim
(foreach and fused), as Mparam/s and as a share of the memory bandwidth measured in the same run,
with compile times and state bytes per parameter.

    python benchmarks/fused_speed.py --write benchmarks/results/fused_speed_cpu.md
    python benchmarks/fused_speed.py --optimizers adam --trees 1x16M,1000x16k --no-torch

A step is one donated, jitted update of params and state from fixed gradients, for the
optimizers with a fused kernel (`jopt._src.fused_rules`; plain SGD, which has none, for
reference), on trees of 16.8M float32 parameters
in 1, 10, 100 and 1,000 leaves, one of 67M in one leaf, and a transformer-like tree (17.3M in 99
leaves: embeddings, 8 blocks of attention and MLP matrices, biases and norm scales). Runners:

  optax         optax's optimizer of the same name and arguments
  jopt          jopt's update then `optax.apply_updates` (XLA's code)
  jopt fused    the same step with the per-parameter work in the kernel (`jopt.train_step`'s)
  flat          jopt's plain step on `jopt.flatten_params` buffers (one per dtype)
  flat fused    the kernel on those buffers (`jopt.flat_train_step`'s)
  torch foreach, torch fused   torch.optim's implementations (fused where torch has one)

Before timing, jopt fused and flat fused are checked against jopt (within 1e-5 relative) and jopt
against optax. Every runner is measured in each of `--repeats` rounds in shuffled order; the
table gives medians. The bandwidth is a jitted STREAM triad (`a + 0.5 * b` on the tree's size:
12 bytes per element) in the same rounds; an optimizer's least traffic is its params and
gradients read, params written, and each state buffer read and written (Adam: 28 bytes per
parameter), and "% of bandwidth" is that traffic at the triad's rate over the measured time.
Compile time is the first call of each jitted step (tracing, lowering and XLA's compilation).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
import optimizer_speed  # noqa: E402  (the torch runner, the triad, the rounds, the output)

import jopt  # noqa: E402
from jopt._src import fused  # noqa: E402

M = 1 << 20


def _transformer(width: int = 384, blocks: int = 8, vocab: int = 8192) -> list[tuple[int, ...]]:
    block = [(width, 3 * width), (3 * width,), (width, width), (width,), (width, 4 * width)]
    block += [(4 * width,), (4 * width, width), (width,), (width,), (width,), (width,), (width,)]
    return [(vocab, width)] + block * blocks + [(width,), (width,)]


TREES: dict[str, list[tuple[int, ...]]] = {
    "1x16M": [(16 * M,)],
    "1x64M": [(64 * M,)],
    "10x1.6M": [(16 * M // 10,)] * 10,
    "100x160k": [(16 * M // 100,)] * 100,
    "1000x16k": [(16 * M // 1000,)] * 1000,
    "transformer": _transformer(),
}
# name: (the optimizer from a module, jopt or optax; torch.optim's class and arguments)
OPTIMIZERS: dict[str, tuple[Callable[[Any], Any], tuple[str, dict] | None]] = {
    "sgd": (lambda m: m.sgd(1e-2), ("SGD", {"lr": 1e-2})),
    "momentum": (lambda m: m.sgd(1e-2, 0.9), ("SGD", {"lr": 1e-2, "momentum": 0.9})),
    "nesterov": (
        lambda m: m.sgd(1e-2, 0.9, nesterov=True),
        ("SGD", {"lr": 1e-2, "momentum": 0.9, "nesterov": True}),
    ),
    "rmsprop": (lambda m: m.rmsprop(1e-3), ("RMSprop", {"lr": 1e-3})),
    "adagrad": (lambda m: m.adagrad(1e-2), ("Adagrad", {"lr": 1e-2})),
    "adam": (lambda m: m.adam(1e-3), ("Adam", {"lr": 1e-3})),
    "adamw": (lambda m: m.adamw(1e-3, weight_decay=1e-2), ("AdamW", {"lr": 1e-3})),
    "amsgrad": (lambda m: m.amsgrad(1e-3), ("Adam", {"lr": 1e-3, "amsgrad": True})),
    "nadam": (lambda m: m.nadam(1e-3), None),  # torch's NAdam has a momentum schedule
    "lion": (lambda m: m.lion(1e-4), None),
}


def _twin(torch_name: str, torch_kwargs: dict, same_in_optax: Callable[[], Any]):
    """An OPTIMIZERS entry for a `jopt.torch` twin: the twin from jopt; from optax, the optax
    optimizer that computes the same numbers (a weight decay of 0 is a block of its own in the
    twin, and exactly nothing)."""
    lr = torch_kwargs["lr"]
    kwargs = {k: v for k, v in torch_kwargs.items() if k != "lr"}

    def make(module):
        return getattr(jopt.torch, torch_name)(lr, **kwargs) if module is jopt else same_in_optax()

    return make, (torch_name, torch_kwargs)


OPTIMIZERS |= {
    "torch.SGD": _twin("SGD", {"lr": 1e-2, "momentum": 0.9}, lambda: optax.sgd(1e-2, 0.9)),
    "torch.RMSprop": _twin(
        "RMSprop", {"lr": 1e-3}, lambda: optax.rmsprop(1e-3, 0.99, 1e-8, eps_in_sqrt=False)
    ),
    "torch.Adam": _twin("Adam", {"lr": 1e-3}, lambda: optax.adam(1e-3)),
    "torch.AdamW": _twin("AdamW", {"lr": 1e-3}, lambda: optax.adamw(1e-3, weight_decay=1e-2)),
}


class Runner(optimizer_speed.JaxRunner):
    """A donated jitted step of `tx` (plain, or with its fused kernel), its first call timed."""

    def __init__(self, tx, shapes, *, use_kernel: bool, flat: bool = False, kernel_call=None):
        """`kernel_call`: the kernels `fused.apply` calls (default: the backend's)."""
        params = [jnp.asarray(p) for p in optimizer_speed._tree(shapes, 0)]
        grads = [jnp.asarray(g) * 1e-2 for g in optimizer_speed._tree(shapes, 1)]
        if flat:
            params, grads = jopt.flatten_params(params), jopt.flatten_params(grads)
        rule = fused.rule_of(tx) if use_kernel else None

        def step(p, s, g):
            if rule is not None:
                return fused.apply(tx, rule, g, s, p, kernel_call=kernel_call)
            updates, s = tx.update(g, s, p)
            return optax.apply_updates(p, updates), s

        self.step = jax.jit(step, donate_argnums=(0, 1), keep_unused=True)
        self.params, self.grads, self.state = params, grads, tx.init(params)
        self.state_bytes = sum(x.nbytes for x in jax.tree.leaves(self.state))
        start = time.perf_counter()
        self.run(1)
        self.compile_seconds = time.perf_counter() - start

    def result(self) -> list[np.ndarray]:
        tree = self.params.unflatten() if isinstance(self.params, jopt.FlatParams) else self.params
        return [np.asarray(p) for p in tree]


def _check(name: str, shapes) -> None:
    """jopt fused and flat fused follow jopt's plain step, which follows optax's."""
    make, _ = OPTIMIZERS[name]
    small = [tuple(max(1, d // 64) for d in s) for s in shapes[:50]]
    want = Runner(make(jopt), small, use_kernel=False)
    others = {
        "jopt fused": Runner(make(jopt), small, use_kernel=True),
        "flat fused": Runner(make(jopt), small, use_kernel=True, flat=True),
        "optax": Runner(make(optax), small, use_kernel=False),
    }
    want.run(3)
    for label, runner in others.items():
        runner.run(3)
        for x, y in zip(runner.result(), want.result(), strict=True):
            if not np.allclose(x, y, rtol=1e-5, atol=1e-7):
                raise AssertionError(f"{name}: {label} computes other params than jopt")


def bench(name: str, tree: str, args: argparse.Namespace) -> dict[str, Any]:
    make, torch_case = OPTIMIZERS[name]
    shapes = TREES[tree]
    runners: dict[str, Any] = {
        "optax": Runner(make(optax), shapes, use_kernel=False),
        "jopt": Runner(make(jopt), shapes, use_kernel=False),
        "jopt fused": Runner(make(jopt), shapes, use_kernel=True),
        "flat": Runner(make(jopt), shapes, use_kernel=False, flat=True),
        "flat fused": Runner(make(jopt), shapes, use_kernel=True, flat=True),
        "triad": optimizer_speed.TriadRunner(shapes),
    }
    if torch_case and not args.no_torch:
        for impl in optimizer_speed._torch_impls(*torch_case):
            runners[f"torch {impl}"] = optimizer_speed.TorchRunner(*torch_case, shapes, impl)
    median = optimizer_speed.measure(runners, args.repeats, args.seconds, args.seed)
    size = sum(math.prod(shape) for shape in shapes)
    state_bytes = runners["jopt fused"].state_bytes
    arrays = 3 + 2 * round(state_bytes / (4 * size))
    triad = 3 * 4 * size / median.pop("triad")
    return {
        "optimizer": name,
        "tree": tree,
        "size": size,
        "leaves": len(shapes),
        "mparams": {k: size / t / 1e6 for k, t in median.items()},
        "bandwidth": {k: arrays * 4 * size / triad / t for k, t in median.items()},
        "compile": {k: r.compile_seconds for k, r in runners.items() if isinstance(r, Runner)},
        "state_bytes": state_bytes / size,
        "triad_gb_per_s": triad / 1e9,
    }


COLUMNS = ("optax", "jopt", "jopt fused", "flat", "flat fused", "torch foreach", "torch fused")


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    import jaxlib

    versions = f"jax {jax.__version__}, jaxlib {jaxlib.__version__}, optax {optax.__version__}"
    if not args.no_torch:
        import torch

        versions += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    command = " ".join(["python benchmarks/fused_speed.py", *sys.argv[1:]])
    lines = [
        f"Measured {datetime.date.today()} on {platform.machine()} {jax.devices()[0].platform}, "
        f"{os.cpu_count()} CPU cores; {versions}.",
        "",
        f"Command: `{command}`. Medians over {args.repeats} interleaved rounds.",
        "",
        "Mparam/s (and % of the triad's bandwidth):",
        "",
        "| optimizer | tree | " + " | ".join(COLUMNS) + " | fused ÷ optax | fused ÷ torch fused |",
        "|---|---|" + "---:|" * (len(COLUMNS) + 2),
    ]
    for row in rows:
        cells = [
            f"{row['mparams'][c]:,.0f} ({100 * row['bandwidth'][c]:.0f}%)"
            if c in row["mparams"]
            else "—"
            for c in COLUMNS
        ]
        torch_fused = row["mparams"].get("torch fused")
        vs_torch = f"{row['mparams']['jopt fused'] / torch_fused:.2f}" if torch_fused else "—"
        vs_optax = row["mparams"]["jopt fused"] / row["mparams"]["optax"]
        lines.append(
            f"| {row['optimizer']} | {row['tree']} | " + " | ".join(cells) + f" | {vs_optax:.2f} | "
            f"{vs_torch} |"
        )
    lines += [
        "",
        "Compile seconds (first call) and state bytes per parameter (jopt):",
        "",
        "| optimizer | tree | optax | jopt | jopt fused | flat | flat fused | state B/param |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        c = row["compile"]
        lines.append(
            f"| {row['optimizer']} | {row['tree']} | {c['optax']:.2f} | {c['jopt']:.2f} | "
            f"{c['jopt fused']:.2f} | {c['flat']:.2f} | {c['flat fused']:.2f} | "
            f"{row['state_bytes']:.2f} |"
        )
    triads = optimizer_speed.medians_by_tree(rows, "triad_gb_per_s", 1)
    lines += ["", f"Triad bandwidth (GB/s): {triads}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = optimizer_speed.step_benchmark_parser(__doc__, list(TREES), list(OPTIMIZERS), 7, 0.2)
    parser.add_argument("--no-torch", action="store_true", help="skip torch.optim")
    args = parser.parse_args(argv)
    trees = optimizer_speed._names(args.trees, list(TREES), "--trees")
    names = optimizer_speed._names(args.optimizers, list(OPTIMIZERS), "--optimizers")
    if fused.unavailable() is not None:
        raise SystemExit(f"jopt: {fused.unavailable()}")
    if not args.no_torch:
        optimizer_speed.require_torch()
    rows = []
    for name in names:
        _check(name, TREES["transformer"])
        for tree in trees:
            rows.append(bench(name, tree, args))
            m = rows[-1]["mparams"]
            print(f"{name:>9} {tree:>11}: " + ", ".join(f"{k} {v:,.0f}" for k, v in m.items()))
    optimizer_speed.publish(markdown(rows, args), args.write)


if __name__ == "__main__":
    main()
