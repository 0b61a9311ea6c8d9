"""The fused CPU kernels in programs over several devices: each device updates its own shards.

A custom call is opaque to XLA's partitioner, which would gather every sharded operand whole onto
each device to run it. The kernels are elementwise, so `jax.experimental.custom_partitioning`
tells the partitioner so (a sharding rule in which each leaf's param, gradient and buffers share
their dimensions) and lowers the call, per device, to the same kernel on the local shards: each
leaf's gradient and buffers take its param's sharding (XLA reshards them where they differ, a
slice of a replicated gradient costing no communication), the scalars are replicated, and the
results keep the params' shardings. Nothing is gathered and nothing is communicated; every
element is computed as on one device, so the sharded step is one device's bitwise.

`custom_partitioning` has no batching rule: under `jax.vmap` the call runs once per member
(`lax.map`), as the single-device call's `vmap_method="sequential"` does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec

# `call(kernel, options, scalars, params, grads, buffers) -> (params, buffers)` on one device.
Call = Callable[..., tuple[list[jax.Array], list[list[jax.Array]]]]


def call(
    one_device: Call,
    kernel: str,
    options: int,
    scalars: jax.Array,
    params: Sequence[jax.Array],
    grads: Sequence[jax.Array],
    buffers: Sequence[Sequence[jax.Array]],
) -> tuple[list[jax.Array], list[list[jax.Array]]]:
    """`one_device`'s call, partitioned as the params are (see the module docstring)."""
    n_buffers = len(buffers)
    flat = []
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        flat += [p, g, *(b[i] for b in buffers)]
    ranks = tuple(jnp.ndim(p) for p in params)
    out = _partitioned(one_device, kernel, options, n_buffers, ranks)(scalars, *flat)
    per_leaf = 1 + n_buffers
    return list(out[0::per_leaf]), [list(out[1 + k :: per_leaf]) for k in range(n_buffers)]


@functools.cache
def _partitioned(one_device: Call, kernel: str, options: int, n_buffers: int, ranks: tuple):
    """The call on leaves of these ranks: `(scalars, *[p, g, *buffers for each leaf]) ->
    (*[p, *buffers for each leaf])`."""
    taken, given = 2 + n_buffers, 1 + n_buffers  # arrays per leaf, in and out

    def local(scalars, *flat):
        params, grads = list(flat[0::taken]), list(flat[1::taken])
        buffers = [list(flat[2 + k :: taken]) for k in range(n_buffers)]
        new_params, new_buffers = one_device(kernel, options, scalars, params, grads, buffers)
        return tuple(x for i, p in enumerate(new_params) for x in (p, *(b[i] for b in new_buffers)))

    def shardings(arg_shapes):
        """Each leaf's param sharding, for its arrays in and out."""
        return [arg_shapes[1 + taken * i].sharding for i in range(len(ranks))]

    def infer(mesh, arg_shapes, result_shape):
        return tuple(s for s in shardings(arg_shapes) for _ in range(given))

    def partition(mesh, arg_shapes, result_shape):
        leaves = shardings(arg_shapes)
        replicated = NamedSharding(mesh, PartitionSpec())
        args = (replicated, *(s for s in leaves for _ in range(taken)))
        return mesh, local, tuple(s for s in leaves for _ in range(given)), args

    partitioned = custom_partitioning(local)
    # Einsum-like: one factor per dimension of each leaf, shared by its param, gradient and
    # buffers; the scalars' one dimension is never split.
    dims = [" ".join(f"l{i}d{d}" for d in range(rank)) for i, rank in enumerate(ranks)]
    operands = ["scalars", *(x for x in dims for _ in range(taken))]
    results = [x for x in dims for _ in range(given)]
    partitioned.def_partition(
        partition=partition,
        infer_sharding_from_operands=infer,
        sharding_rule=f"{', '.join(operands)} -> {', '.join(results)}",
        need_replication_factors=("scalars",),
    )

    @jax.custom_batching.custom_vmap
    def run(scalars, *flat):
        return partitioned(scalars, *flat)

    @run.def_vmap
    def _once_per_member(axis_size, in_batched, scalars, *flat):
        args = [
            x if batched else jnp.broadcast_to(x, (axis_size, *jnp.shape(x)))
            for x, batched in zip((scalars, *flat), in_batched, strict=True)
        ]
        out = jax.lax.map(lambda member: run(*member), tuple(args))
        return out, (True,) * len(out)

    return run
