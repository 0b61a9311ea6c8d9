"""Smaller optimizer state: moments kept in bfloat16 with stochastic rounding, or in 8 bits with
block-wise dynamic quantization (Dettmers et al. 2022, "8-bit Optimizers via Block-wise
Quantization").

Block-wise quantization. A leaf, flattened, is cut into blocks of BLOCK_SIZE = 2048 entries (the
last one shorter); each block keeps its largest magnitude `absmax` (float32) and, per entry, the
index (uint8) of the value of the dynamic map nearest to `x / absmax`:

    q_i = argmin_j |map_j - x_i / absmax|,         x_i ~ map[q_i] * absmax

The codes keep the leaf's shape, so that they can be sharded as the leaf is (`state_shardings`
gives them its sharding; a shard that holds whole blocks quantizes them where it lives, XLA
moves the entries of a block split between devices). The blocks' `absmax`, 1/512 of the
codes' bytes, are replicated.

The dynamic map (Dettmers 2016, "8-Bit Approximations for Parallelism in Deep Learning": dynamic
tree quantization) holds 256 values, signed for first moments or unsigned for second moments
(which are >= 0): for e = 0..6, the midpoints of a uniform grid of 0.1..1 scaled by 10**(e - 6),
2**e of them per sign (signed) or 2**(e + 1) (unsigned), and 0 and 1. The signed map's most
negative value is -0.993 (there is no -1), as in the paper's implementation.
Small values keep their relative precision down to 1e-7 of the block's largest, which a linear
map would round to 0. A state of 1 byte per entry plus 4 bytes per 2048 entries: 2.004 bytes per
parameter for Adam's two moments, against 8 in float32. Leaves of fewer than MIN_8BIT_SIZE =
4096 entries stay in float32, as in the paper's implementation (bitsandbytes): their state is
small, and they are often the most sensitive (biases, norms).

Stochastic rounding to bfloat16. `x` (float32) is rounded up or down to its two bfloat16
neighbours with probabilities proportional to its distance from each, so that the rounding is
unbiased: an EMA with decay 0.999, whose increments are below bfloat16's resolution, still moves.
The key is derived from the step count and the leaf's position (reproducible, no key in the state).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

BLOCK_SIZE = 2048
MIN_8BIT_SIZE = 4096
FORMATS = ("float", "bfloat16", "8bit")


def dynamic_map(signed: bool) -> np.ndarray:
    """The 256 sorted values of the dynamic quantization map (the module docstring)."""
    values = [0.0, 1.0]
    for e in range(7):
        count = 2**e if signed else 2 ** (e + 1)
        grid = np.linspace(0.1, 1.0, count + 1)
        means = (grid[:-1] + grid[1:]) / 2 * 10.0 ** (e - 6)
        values += list(means) + (list(-means) if signed else [])
    assert len(values) == 256, len(values)
    return np.sort(np.asarray(values, np.float32))


_MAPS = {signed: dynamic_map(signed) for signed in (True, False)}


class BlockQuantized(NamedTuple):
    """A leaf in 8 bits: the codes of its blocks and each block's largest magnitude."""

    codes: jax.Array  # uint8, one per entry, shaped like the leaf
    absmax: jax.Array  # float32, one per block of BLOCK_SIZE entries


def is_quantized(x: Any) -> bool:
    return isinstance(x, BlockQuantized)


def quantize(x: jax.Array, signed: bool) -> BlockQuantized:
    """`x` block-wise in 8 bits (the module docstring)."""
    flat = jnp.ravel(x).astype(jnp.float32)
    blocks = -(-flat.size // BLOCK_SIZE)
    flat = jnp.pad(flat, (0, blocks * BLOCK_SIZE - flat.size)).reshape(blocks, BLOCK_SIZE)
    absmax = jnp.max(jnp.abs(flat), axis=1)
    scale = jnp.where(absmax > 0, absmax, jnp.ones_like(absmax))
    normalized = flat / scale[:, None]
    table = jnp.asarray(_MAPS[signed])
    upper = jnp.clip(jnp.searchsorted(table, normalized), 1, table.size - 1)
    nearer_below = normalized - table[upper - 1] <= table[upper] - normalized
    codes = jnp.where(nearer_below, upper - 1, upper).astype(jnp.uint8)
    return BlockQuantized(codes.reshape(-1)[: x.size].reshape(jnp.shape(x)), absmax)


def dequantize(q: BlockQuantized, like: jax.Array, signed: bool) -> jax.Array:
    """The float32 values of `q`, shaped like `like`."""
    table = jnp.asarray(_MAPS[signed])
    codes = jnp.pad(jnp.ravel(q.codes), (0, q.absmax.size * BLOCK_SIZE - q.codes.size))
    values = table[codes.astype(jnp.int32)].reshape(-1, BLOCK_SIZE) * q.absmax[:, None]
    return values.reshape(-1)[: like.size].reshape(like.shape)


def stochastic_round_bf16(x: jax.Array, key: jax.Array) -> jax.Array:
    """`x` rounded to bfloat16 up or down at random, unbiased (the module docstring)."""
    x = x.astype(jnp.float32)
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    noise = jax.random.bits(key, x.shape, jnp.uint32) >> 16
    mask = jnp.asarray(0xFFFF0000, jnp.uint32)
    rounded = jax.lax.bitcast_convert_type((bits + noise) & mask, jnp.float32)
    return jnp.where(jnp.isfinite(x), rounded, x).astype(jnp.bfloat16)


def encode_tree(tree: Any, state_format: str, signed: bool, count: jax.Array, salt: int) -> Any:
    """A tree of float moments in `state_format` ("float": unchanged). `salt` tells the moments of
    one step apart in the stochastic rounding's keys."""
    if state_format == "float":
        return tree
    leaves, treedef = jax.tree.flatten(tree)
    if state_format == "bfloat16":
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), count), salt)
        keys = jax.random.split(key, max(len(leaves), 1))[: len(leaves)]
        rounded = [stochastic_round_bf16(x, k) for x, k in zip(leaves, keys, strict=True)]
        return treedef.unflatten(rounded)
    return treedef.unflatten(
        [quantize(x, signed) if x.size >= MIN_8BIT_SIZE else x for x in leaves]
    )


def check_like(fn: str, updates: Any, moments: Any) -> None:
    """Raises a ValueError unless `updates` has the tree structure of the stored `moments`."""
    want = jax.tree.structure(moments, is_leaf=is_quantized)
    got = jax.tree.structure(updates)
    if got != want:
        raise ValueError(
            f"{fn}: the gradients' tree does not match the state's moments: {got} against "
            f"{want}. Was the state made for other params?"
        )


def decode_tree(tree: Any, like: Any, signed: bool) -> Any:
    """The float32 moments of a tree in any format, shaped like `like` (the gradients)."""

    def leaf(x, g):
        if is_quantized(x):
            return dequantize(x, g, signed)
        return x.astype(jnp.float32) if x.dtype == jnp.bfloat16 else x

    return jax.tree.map(leaf, tree, like, is_leaf=is_quantized)


def initial(params: Any, state_format: str, signed: bool) -> Any:
    """Zero moments for `params` in `state_format`."""
    if state_format == "bfloat16":
        return jax.tree.map(lambda p: jnp.zeros_like(p, jnp.bfloat16), params)
    if state_format == "8bit":
        return jax.tree.map(lambda p: _zeros_8bit(p, signed), params)
    return jax.tree.map(jnp.zeros_like, params)


def _zeros_8bit(param: jax.Array, signed: bool) -> Any:
    """`quantize(zeros_like(param))`, built where `param` lives: each code is the map's 0, on
    `param`'s devices with its sharding, as `zeros_like` places a float moment."""
    if param.size < MIN_8BIT_SIZE:
        return jnp.zeros_like(param)
    zero = int(np.flatnonzero(_MAPS[signed] == 0.0)[0])
    blocks = -(-param.size // BLOCK_SIZE)
    return BlockQuantized(jnp.full_like(param, zero, jnp.uint8), jnp.zeros(blocks, jnp.float32))
