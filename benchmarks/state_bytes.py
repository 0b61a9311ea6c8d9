"""Bytes of optimizer state: Adafactor's factored second moments against Adam's two moments.

    python benchmarks/state_bytes.py

Builds each state with `jax.eval_shape` (no memory is allocated) for float32 params and counts
the bytes of every array in it, step counts and hyperparameters included: a 4-layer MLP
784-1024-1024-10 (weights and biases; its (1024, 10) output weight has a second-largest axis of
10 < 128, so Adafactor keeps it whole) and one (4096, 4096) matrix. Printed (jax 0.10.2, optax
0.2.8, jopt 0.1.0):

| tree | params (B) | jopt.adam (B) | jopt.adafactor (B) | adafactor / adam | optax.adafactor (B) |
|---|---:|---:|---:|---:|---:|
| mlp 784-1024-1024-10 | 7,454,760 | 14,909,556 | 64,688 | 0.43% | 64,660 |
| matrix 4096 x 4096 | 67,108,864 | 134,217,764 | 32,804 | 0.024% | 32,776 |

Adafactor's state is n + m numbers for a factored (n, m) leaf (plus a 1-element placeholder in
each of the other two trees), where Adam's is 2 n m; the MLP's (1024, 10) output weight and its
biases are kept whole (12,298 of its 16,154 numbers), hence 0.43% rather than 0.02%. jopt's
states are 28 bytes larger than optax's: the hyperparameters they keep.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any directory
import jopt  # noqa: E402


def mlp(sizes: tuple[int, ...]) -> dict[str, jax.ShapeDtypeStruct]:
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        params[f"w{i}"] = jax.ShapeDtypeStruct((n_in, n_out), jnp.float32)
        params[f"b{i}"] = jax.ShapeDtypeStruct((n_out,), jnp.float32)
    return params


TREES = {
    "mlp 784-1024-1024-10": mlp((784, 1024, 1024, 10)),
    "matrix 4096 x 4096": {"w": jax.ShapeDtypeStruct((4096, 4096), jnp.float32)},
}
OPTIMIZERS = {
    "jopt.adam": lambda: jopt.adam(1e-3),
    "jopt.adafactor": lambda: jopt.adafactor(1e-3),
    "optax.adafactor": lambda: optax.adafactor(1e-3),
}


def nbytes(tree) -> int:
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def main() -> None:
    print(
        "| tree | params (B) | jopt.adam (B) | jopt.adafactor (B) | adafactor / adam "
        "| optax.adafactor (B) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, params in TREES.items():
        sizes = {
            key: nbytes(jax.eval_shape(make().init, params)) for key, make in OPTIMIZERS.items()
        }
        ratio = sizes["jopt.adafactor"] / sizes["jopt.adam"]
        print(
            f"| {name} | {nbytes(params):,} | {sizes['jopt.adam']:,} | "
            f"{sizes['jopt.adafactor']:,} | {100 * ratio:.2g}% | {sizes['optax.adafactor']:,} |"
        )


if __name__ == "__main__":
    main()
