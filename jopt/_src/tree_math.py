"""Per-leaf arithmetic shared by the transforms, so that each transform reads as its formula.

All functions take hyperparameters as scalar arrays from the state and cast them to the
arithmetic dtype of the leaf (at least float32, see `jopt._src.base.compute_dtype`). The order of
operations is optax's, so that float32 and float64 results are bitwise identical to optax where
the conventions agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt._src.base import wider


def moment(
    g: jax.Array, m: jax.Array, decay: jax.Array, complement: jax.Array, order: int = 1
) -> jax.Array:
    """Exponential moving average `(1 - decay) * g**order + decay * m`, in the wider dtype
    (`|g|**2` for order 2 on complex gradients).

    `complement` is `1 - decay`, kept in the state rounded once from float64.
    """
    dt = wider(g.dtype, m.dtype)
    g = g.astype(dt)
    power = abs_sq(g) if order == 2 and jnp.iscomplexobj(g) else g**order
    return complement.astype(dt) * power + decay.astype(dt) * m.astype(dt)


def abs_sq(x: jax.Array) -> jax.Array:
    """`|x|**2`, real: `x * x` for real x, `(conj(x) * x).real` for complex x (as optax's
    `numerics.abs_sq`), so that second moments of complex gradients are magnitudes, not `g**2`."""
    if jnp.iscomplexobj(x):
        return (jnp.conj(x) * x).real
    return jnp.square(x)


def bias_correction(decay: jax.Array, count: jax.Array) -> jax.Array:
    """`1 - decay**count`, in the hyperparameter dtype (float32 or wider).

    Computed before any cast to the moment's dtype: in bfloat16, `decay**count` rounds to 1 for
    decay = 0.999 and the correction would divide by zero.
    """
    return 1 - decay ** count.astype(decay.dtype)


def debias(m: jax.Array, correction: jax.Array) -> jax.Array:
    """`m / correction`, dividing in `m`'s arithmetic dtype."""
    dt = wider(m.dtype)
    return m.astype(dt) / correction.astype(dt)


def global_norm(tree) -> jax.Array:
    """The L2 norm of all leaves together, accumulated in float32 or wider.

    Squaring overflows in float32 above ~1e19 and underflows below ~1e-19; there the norm is
    recomputed from the leaves divided by their largest magnitude. Elsewhere the result is the
    plain `sqrt(sum(g**2))`, bitwise as optax computes it.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros([], jnp.float32)
    dt = wider(*(leaf.dtype for leaf in leaves))
    leaves = [leaf.astype(dt) for leaf in leaves]
    plain = jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in leaves))
    largest = jnp.max(jnp.stack([jnp.max(jnp.abs(leaf), initial=0) for leaf in leaves]))
    safe = jnp.where(largest > 0, largest, jnp.ones_like(largest))
    scaled = largest * jnp.sqrt(sum(jnp.sum(jnp.square(leaf / safe)) for leaf in leaves))
    unreliable = (~jnp.isfinite(plain) | (plain == 0)) & (largest > 0) & jnp.isfinite(largest)
    return jnp.where(unreliable, scaled, plain)
