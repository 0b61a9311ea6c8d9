"""Adam on flat params (`jopt.flatten_params`) against Adam on the tree, jopt's and optax's:
compile time and step time of a donated, jitted update + apply, on trees of 10, 100 and 1,000
leaves holding the same number of float32 parameters.

    .venv/bin/python benchmarks/flat_params_speed.py --write benchmarks/results/flat_params_cpu.md

The three runners are checked to compute the same params first (the flat one within an ulp per
step, see tests/test_flat_params.py), then timed in interleaved rounds in shuffled order; the
result is medians and ratios from the same run. A compile time is the first call of a fresh
`jax.jit` (tracing, lowering and XLA's compilation), measured once per runner and tree: on 2
noisy cores, read its ratios to a factor of about 1.2.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jopt

LEAVES = (10, 100, 1000)


def tree(leaves: int, total: int) -> dict[str, jax.Array]:
    size = total // leaves
    return {f"w{i:04d}": jnp.full((size,), 0.5 + i / leaves, jnp.float32) for i in range(leaves)}


def runner(tx, params):
    """A donated jitted `(params, state, grads) -> (params, state)`, its first call timed."""

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    jitted = jax.jit(step, donate_argnums=(0, 1), keep_unused=True)
    state = tx.init(params)
    grads = jax.tree.map(lambda p: jnp.sin(p) * 1e-3, params)
    params = jax.tree.map(jnp.copy, params)
    start = time.perf_counter()
    params, state = jax.block_until_ready(jitted(params, state, grads))
    compile_seconds = time.perf_counter() - start
    box = {"p": params, "s": state}

    def run():
        box["p"], box["s"] = jitted(box["p"], box["s"], grads)
        jax.block_until_ready(box["p"])

    return run, compile_seconds, box


def measure(leaves: int, total: int, rounds: int, repeats: int) -> dict[str, dict[str, float]]:
    params = tree(leaves, total)
    flat = jopt.flatten_params(params)
    runners = {
        "jopt flat": runner(jopt.adam(1e-3), flat),
        "jopt tree": runner(jopt.adam(1e-3), params),
        "optax tree": runner(optax.adam(1e-3), params),
    }
    _check_same(runners, flat)
    times = {name: [] for name in runners}
    for _ in range(rounds):
        order = list(runners)
        random.shuffle(order)
        for name in order:
            run = runners[name][0]
            start = time.perf_counter()
            for _ in range(repeats):
                run()
            times[name].append((time.perf_counter() - start) / repeats)
    return {
        name: {"step": statistics.median(times[name]), "compile": runners[name][1]}
        for name in runners
    }


def _check_same(runners, flat) -> None:
    """After the first (timed) call, the three runners hold the same params to an ulp."""
    flat_box = runners["jopt flat"][2]
    unflat = jopt.FlatParams(flat_box["p"].buffers, flat.treedef, flat.slots).unflatten()
    for name in ("jopt tree", "optax tree"):
        for a, b in zip(
            jax.tree.leaves(unflat), jax.tree.leaves(runners[name][2]["p"]), strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=2e-7, atol=0, err_msg=name)


def report(results: dict[int, dict[str, dict[str, float]]], total: int) -> str:
    lines = [
        f"# Adam on flat params: {total / 1e6:.1f}M float32 parameters, {platform.machine()}, "
        f"{jax.devices()[0].device_kind}, jax {jax.__version__}, optax {optax.__version__}",
        "",
        "| leaves | optax step ÷ flat step | jopt tree step ÷ flat step | flat Mparam/s | "
        "optax compile ÷ flat compile | jopt tree compile ÷ flat compile | flat compile (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for leaves, r in results.items():
        flat, ours, theirs = r["jopt flat"], r["jopt tree"], r["optax tree"]
        lines.append(
            f"| {leaves} | {theirs['step'] / flat['step']:.2f} | {ours['step'] / flat['step']:.2f} "
            f"| {total / flat['step'] / 1e6:.0f} | {theirs['compile'] / flat['compile']:.1f} | "
            f"{ours['compile'] / flat['compile']:.1f} | {flat['compile']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total", type=int, default=16 * 2**20, help="parameters in each tree")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", help="write the markdown table to this file")
    args = parser.parse_args()
    random.seed(0)
    results = {n: measure(n, args.total, args.rounds, args.repeats) for n in LEAVES}
    text = report(results, args.total)
    print(text)
    if args.write:
        with open(args.write, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
