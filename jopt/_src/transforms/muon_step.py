"""The update direction of one leaf in Muon (Jordan et al. 2024; see muon.py): on a matrix, its
orthogonalized momentum, with t = 1 at the first update,

    m = beta * m + (1 - beta) * G                        an EMA of the gradients
    M = beta * m_hat' + (1 - beta) * G_hat  (nesterov)   or  m_hat
    O = NS_k(M / (||M||_F + eps))                        (newton_schulz.py)
    O <- <M, O> O                                        (adaptive: Bernstein & Newhouse 2024)

m_hat = m / (1 - beta**t), m_hat' = m / (1 - beta**(t+1)), G_hat = G / (1 - beta**t) as optax
(with `bias_correction=False`, Jordan's: m and G as they are); on any other leaf, (N)Adam's
m_hat / (sqrt(v_hat + adam_eps_root) + eps), its moments with `adam_b1` and `adam_b2`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt._src import base, tree_math
from jopt._src.transforms.newton_schulz import orthogonalize


def _momentum_direction(g, m, hp, count, options) -> tuple[jax.Array, jax.Array]:
    """(M, the new m) of one matrix leaf, in the wider of their dtypes."""
    nesterov, corrected = options["nesterov"], options["bias_correction"]
    m = tree_math.moment(g, m, hp["beta"], hp.complement("beta"))
    g = g.astype(m.dtype)
    if not corrected:
        direction = _mix(m, g, hp["beta"], hp.complement("beta")) if nesterov else m
        return direction, m
    correction = tree_math.bias_correction(hp["beta"], count)
    if not nesterov:
        return tree_math.debias(m, correction), m
    ahead = tree_math.bias_correction(hp["beta"], base.increment(count))
    g_hat, m_ahead = tree_math.debias(g, correction), tree_math.debias(m, ahead)
    return _mix(m_ahead, g_hat, hp["beta"], hp.complement("beta")), m


def _mix(m: jax.Array, g: jax.Array, beta: jax.Array, complement: jax.Array) -> jax.Array:
    """Nesterov's look-ahead `beta * m + (1 - beta) * g`, its terms in optax's order: under jit,
    XLA may fuse a product into the sum (a fused multiply-add), and which one it fuses follows
    the order written."""
    return beta.astype(m.dtype) * m + complement.astype(m.dtype) * g


def muon_leaf(g, m, dims, coeffs, hp, count, options) -> tuple[jax.Array, jax.Array]:
    """(O, the new m) of one matrix leaf: the orthogonalized (and, `adaptive`, rescaled)
    momentum direction."""
    direction, m = _momentum_direction(g, m, hp, count, options)
    out = orthogonalize(
        direction, coeffs, options["ns_steps"], options["preconditioning"], options["eps"], dims
    )
    if options["adaptive"]:
        # Scaled by <M, O>, the dual norm of M (Bernstein & Newhouse 2024, "Old Optimizer, New
        # Norm: An Anthology").
        out = jnp.sum(direction.conj() * out) * out
    return out, m


def adam_leaf(g, m, v, hp, count, options) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(the direction, the new m, the new v) of a leaf that is not a matrix: (N)Adam's
    m_hat / (sqrt(v_hat + eps_root) + eps)."""
    b1, b2 = hp["adam_b1"], hp["adam_b2"]
    m = tree_math.moment(g, m, b1, hp.complement("adam_b1"))
    v = tree_math.moment(g, v, b2, hp.complement("adam_b2"), 2)
    g = g.astype(m.dtype)
    correction = tree_math.bias_correction(b1, count)
    if options["nesterov"]:
        ahead = tree_math.bias_correction(b1, base.increment(count))
        m_ahead, g_hat = tree_math.debias(m, ahead), tree_math.debias(g, correction)
        m_hat = _mix(m_ahead, g_hat, b1, hp.complement("adam_b1"))
    else:
        m_hat = tree_math.debias(m, correction)
    v_hat = tree_math.debias(v, tree_math.bias_correction(b2, count))
    dt = v_hat.dtype
    root = jnp.sqrt(v_hat + hp["adam_eps_root"].astype(dt))
    return m_hat / (root + options["eps"]), m, v
