"""The Pallas kernels' step speed on a GPU (`jopt._src.fused_pallas`): against optax and jopt's
plain XLA step, as Mparam/s and as a share of the device-to-device copy bandwidth measured in
the same run.

    python benchmarks/fused_gpu_speed.py --write benchmarks/results/fused_speed_gpu.md
    python benchmarks/fused_gpu_speed.py --optimizers adam --trees 1x16M --block 2048 --warps 8
    python benchmarks/fused_gpu_speed.py --smoke     # the script itself, on the CPU, in seconds

A step is one donated, jitted update of params and state from fixed gradients, for momentum,
RMSProp, Adagrad, Adam and Lion, on float32 trees of 16.8M parameters in 1, 10 and 100 leaves,
67M in one, and the 100-leaf tree kept flat (`jopt.flatten_params`: one 16.8M buffer). Runners:

  optax    optax's optimizer of the same name and arguments
  jopt     jopt's update then `optax.apply_updates` (XLA's code: one fused loop per leaf)
  pallas   jopt's step with the per-parameter work in `fused_pallas.call`, one Pallas (Triton)
           kernel per leaf, with the scalars from the optimizer's fused rule
  copy     a device-to-device copy of the tree's size (8 bytes moved per parameter)

Before timing, pallas is checked against jopt, and jopt against optax (within 1e-5 relative).
Every runner is measured in each of `--repeats` rounds in shuffled order; the table gives
medians. An optimizer's least traffic is its params and gradients read, params written, and each
state buffer read and written (Adam: 28 bytes per parameter); "% of copy" is that traffic at the
copy's rate over the measured time. Compile time is the first call of each jitted step.

Without a GPU the script stops, unless `--smoke`: tiny trees (at most 3 leaves, sizes / 4096),
the kernels in interpret mode on the CPU, one round: a check that the script runs, not a timing.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import math
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any directory
sys.path.insert(0, str(Path(__file__).resolve().parent))
import fused_speed  # noqa: E402  (the CPU benchmark's trees, optimizers and runner)
import optimizer_speed  # noqa: E402  (the rounds, the output)

import jopt  # noqa: E402
from jopt._src import fused_pallas  # noqa: E402

# name: (shapes, kept flat)
TREES: dict[str, tuple[list[tuple[int, ...]], bool]] = {
    "1x16M": (fused_speed.TREES["1x16M"], False),
    "1x64M": (fused_speed.TREES["1x64M"], False),
    "10x1.6M": (fused_speed.TREES["10x1.6M"], False),
    "100x160k": (fused_speed.TREES["100x160k"], False),
    "100x160k flat": (fused_speed.TREES["100x160k"], True),
}
OPTIMIZERS = ["momentum", "rmsprop", "adagrad", "adam", "lion"]
COLUMNS = ("optax", "jopt", "pallas")


class CopyRunner:
    """A device-to-device copy of one float32 array of `size` elements (not donated: XLA writes
    a new buffer)."""

    def __init__(self, size: int):
        self.a = jnp.ones(size, jnp.float32)
        self.copy = jax.jit(lambda a: a.copy())
        self.b = self.copy(self.a)

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.b = self.copy(self.a)
        self.b.block_until_ready()
        return (time.perf_counter() - start) / steps


def _shapes(tree: str, smoke: bool) -> list[tuple[int, ...]]:
    shapes, _ = TREES[tree]
    return [tuple(max(1, d // 4096) for d in s) for s in shapes[:3]] if smoke else shapes


def _check(name: str, tree: str, args: argparse.Namespace) -> None:
    """pallas follows jopt's plain step, which follows optax's (on a smaller tree)."""
    make, _ = fused_speed.OPTIMIZERS[name]
    shapes, flat = TREES[tree]
    small = (
        _shapes(tree, True) if args.smoke else [tuple(max(1, d // 64) for d in s) for s in shapes]
    )
    want = fused_speed.Runner(make(jopt), small, use_kernel=False, flat=flat)
    others = {
        "pallas": fused_speed.Runner(
            make(jopt), small, use_kernel=True, flat=flat, kernel_call=_pallas(args)
        ),
        "optax": fused_speed.Runner(make(optax), small, use_kernel=False, flat=flat),
    }
    want.run(3)
    for label, runner in others.items():
        runner.run(3)
        for x, y in zip(runner.result(), want.result(), strict=True):
            if not np.allclose(x, y, rtol=1e-5, atol=1e-7):
                raise AssertionError(f"{name} on {tree}: {label} computes other params than jopt")


def _pallas(args: argparse.Namespace):
    """The Pallas kernels as `fused.apply` calls them, with the launch shape asked for."""
    return functools.partial(
        fused_pallas.call, interpret=args.smoke, block=args.block, num_warps=args.warps
    )


def bench(name: str, tree: str, args: argparse.Namespace) -> dict[str, Any]:
    make, _ = fused_speed.OPTIMIZERS[name]
    shapes, flat = _shapes(tree, args.smoke), TREES[tree][1]
    size = sum(math.prod(shape) for shape in shapes)
    runners: dict[str, Any] = {
        "optax": fused_speed.Runner(make(optax), shapes, use_kernel=False, flat=flat),
        "jopt": fused_speed.Runner(make(jopt), shapes, use_kernel=False, flat=flat),
        "pallas": fused_speed.Runner(
            make(jopt), shapes, use_kernel=True, flat=flat, kernel_call=_pallas(args)
        ),
        "copy": CopyRunner(size),
    }
    median = optimizer_speed.measure(runners, args.repeats, args.seconds, args.seed)
    copy = 2 * 4 * size / median.pop("copy")  # bytes per second
    arrays = 3 + 2 * round(runners["pallas"].state_bytes / (4 * size))
    return {
        "optimizer": name,
        "tree": tree,
        "mparams": {k: size / t / 1e6 for k, t in median.items()},
        "bandwidth": {k: arrays * 4 * size / copy / t for k, t in median.items()},
        "compile": {k: runners[k].compile_seconds for k in COLUMNS},
        "copy_gb_per_s": copy / 1e9,
    }


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    import jaxlib

    device = jax.devices()[0]
    versions = f"jax {jax.__version__}, jaxlib {jaxlib.__version__}, optax {optax.__version__}"
    command = " ".join(["python benchmarks/fused_gpu_speed.py", *sys.argv[1:]])
    kernel = "interpret mode (smoke run: not a timing)" if args.smoke else "Triton"
    lines = [
        f"Measured {datetime.date.today()} on {device.device_kind} ({device.platform}); "
        f"{versions}; Pallas kernels: {kernel}, block {args.block}, {args.warps} warps.",
        "",
        f"Command: `{command}`. Medians over {args.repeats} interleaved rounds.",
        "",
        "Mparam/s (and % of the copy's bandwidth); compile seconds of the first call:",
        "",
        "| optimizer | tree | " + " | ".join(COLUMNS) + " | pallas ÷ jopt | pallas ÷ optax "
        "| compile optax / jopt / pallas |",
        "|---|---|" + "---:|" * (len(COLUMNS) + 3),
    ]
    for row in rows:
        m, c = row["mparams"], row["compile"]
        cells = [f"{m[k]:,.0f} ({100 * row['bandwidth'][k]:.0f}%)" for k in COLUMNS]
        lines.append(
            f"| {row['optimizer']} | {row['tree']} | " + " | ".join(cells) + " | "
            f"{m['pallas'] / m['jopt']:.2f} | {m['pallas'] / m['optax']:.2f} | "
            f"{c['optax']:.1f} / {c['jopt']:.1f} / {c['pallas']:.1f} |"
        )
    copies = optimizer_speed.medians_by_tree(rows, "copy_gb_per_s", 0)
    lines += ["", f"Device-to-device copy bandwidth (GB/s): {copies}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = optimizer_speed.step_benchmark_parser(__doc__, list(TREES), OPTIMIZERS, 9, 0.2)
    parser.add_argument("--block", type=int, default=fused_pallas.BLOCK, help="elements/program")
    parser.add_argument("--warps", type=int, default=fused_pallas.NUM_WARPS, help="per program")
    parser.add_argument("--smoke", action="store_true", help="tiny, interpret mode, on the CPU")
    args = parser.parse_args(argv)
    trees = optimizer_speed._names(args.trees, list(TREES), "--trees")
    names = optimizer_speed._names(args.optimizers, OPTIMIZERS, "--optimizers")
    if args.smoke:
        args.repeats, args.seconds = 1, 0.01
    elif jax.default_backend() != "gpu":
        raise SystemExit(
            f"fused_gpu_speed.py times the Pallas kernels on a GPU, and JAX's backend here is "
            f"{jax.default_backend()!r} (install jax[cuda12] on a machine with an NVIDIA GPU). "
            "Pass --smoke to check the script on the CPU (tiny trees, interpret mode, no timing)."
        )
    rows = []
    for name in names:
        _check(name, trees[0], args)
        for tree in trees:
            rows.append(bench(name, tree, args))
            m = rows[-1]["mparams"]
            print(f"{name:>9} {tree:>13}: " + ", ".join(f"{k} {v:,.0f}" for k, v in m.items()))
    optimizer_speed.publish(markdown(rows, args), args.write)


if __name__ == "__main__":
    main()
