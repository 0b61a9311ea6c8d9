"""The fused optimizer steps for the GPU: `kernels/fused_cpu.cc`'s kernels as Pallas kernels.

`call` has `fused.call`'s contract: the same kernel names, option bits and scalars (the layout
fused_cpu.cc defines and `fused_rules` computes), the same `(new params, [new leaves of each
state buffer])`. Each kernel's elementwise formula is written once below, as a function on
arrays in fused_cpu.cc's order of operations, each option bit resolved at trace time so that a
variant compiles only its branch; the Pallas kernel loads a block of each stream, applies it and
stores the block back. It compiles through Triton (`pallas_call` with Triton's compiler
parameters); `interpret=True` evaluates the same kernel with XLA on any backend, for the tests.

One launch per leaf, over its flat view (`reshape(-1)`, which moves nothing): the grid runs over
blocks of `BLOCK` elements and each param and state buffer is updated in place (its output
aliases its input; XLA copies it first unless the program's input is donated). Gathering the
leaves into one buffer would copy every stream each step; a launch costs microseconds, and a tree
of many small leaves can be kept in one buffer already (`jopt.flatten_params`).

The formulas are the CPU kernels' operation for operation: evaluated one operation at a time,
they equal bit for bit the NumPy evaluation that the CPU kernels equal (tests/test_fused.py,
tests/test_fused_pallas.py). Compiled, they are not: Triton divides float32 with `div.full.f32`
(within 2 ulps, not correctly rounded; float64's division and both square roots are), and LLVM
may contract a product and a sum into a fused multiply-add; in interpret mode XLA contracts some
and rewrites `1 / sqrt` as `rsqrt`. The tests hold interpret mode within 2 ulps of each leaf's
scale; on a GPU the kernels are unchecked so far. float32 and float64 both lower for Triton.

Why a GPU path at all: on the GPU, XLA already fuses each leaf's step into one loop that reads
each stream once, which is what the CPU kernels won on the CPU. What a hand-written kernel gains
there is to be measured: it is untimed so far (`benchmarks/fused_gpu_speed.py` measures it
against optax, jopt's XLA step and a device-to-device copy).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

from jopt._src import fused
from jopt._src.fused import FLOAT_DTYPES, KERNELS

BLOCK = 1024  # elements per program (a power of two, as Triton's arrays must be)
NUM_WARPS = 4


def _maximum(a, b):
    """max(a, b), NaN if either is NaN (Triton's maximum returns the other operand)."""
    return jnp.where((a > b) | (a != a), a, b)


def _sign(x):
    """sign(x), with sign(+-0) = +-0 and sign(NaN) = NaN, as fused_cpu.cc's."""
    return jnp.where(x > 0, 1, jnp.where(x < 0, -1, x))


def _inverse_root(a, eps, eps_in_sqrt):
    """1 / sqrt(a + eps) (eps inside the root) or 1 / (sqrt(a) + eps)."""
    return 1 / jnp.sqrt(a + eps) if eps_in_sqrt else 1 / (jnp.sqrt(a) + eps)


# The elementwise kernels: (scalars c, options, p, g, state buffers) -> (p, state buffers). The
# formulas, option bits and scalars are fused_cpu.cc's (its comments give the update rules).


def _momentum(c, options, p, g, s):
    """g' = g + wd p (bit 0); m = w g' + mu m; p += -lr m (bit 1, Nesterov: -lr (w g' + mu m))."""
    neg_lr, wd, mu, w = c
    if options & 1:
        g = g + wd * p
    m = w * g + mu * s[0]
    return p + neg_lr * (w * g + mu * m if options & 2 else m), [m]


def _adam(c, options, p, g, s):
    """m = (1-b1) g + b1 m; v = (1-b2) g^2 + b2 v; p += -lr (m_hat / (sqrt(v_hat + eps_root) +
    eps) [+ wd p, bit 0]). Bit 1: AMSGrad's v_max = max(v_max, v) (bit 2: of v_hat); bit 3: NAdam's
    look-ahead m_hat = (1-b1) g / c1 + b1 m / c1' (it overrides AMSGrad, as the C++ table does);
    bit 4: torch's coupled L2, g' = g + wd p before the moments (it overrides bits 0 and 3)."""
    b1, cb1, b2, cb2, inv_c1, inv_c2, eps_root, eps, wd, neg_lr, inv_ahead = c
    coupled = options & 16
    nesterov = options & 8 and not coupled
    amsgrad = options & 2 and not nesterov
    max_corrected = amsgrad and options & 4
    if coupled:
        g = g + wd * p
    m = cb1 * g + b1 * s[0]
    v = cb2 * (g * g) + b2 * s[1]
    v_hat, out = v * inv_c2, [m, v]
    if amsgrad:
        top = _maximum(s[2], v_hat if max_corrected else v)
        v_hat, out = (top if max_corrected else top * inv_c2), [m, v, top]
    m_hat = cb1 * (g * inv_c1) + b1 * (m * inv_ahead) if nesterov else m * inv_c1
    u = m_hat / (jnp.sqrt(v_hat + eps_root) + eps)
    if options & 1 and not coupled:
        u = u + wd * p
    return p + neg_lr * u, out


def _rmsprop(c, options, p, g, s):
    """g' = g + wd p (bit 0); n = (1-d) g'^2 + d n; u = inverse_root(s, eps) g' (bit 1: eps inside
    the root) with s = n, or centered (bit 2) m = (1-d) g' + d m, s = n - m^2; p += -lr u, or with
    momentum (bit 3) v = -lr u + mu v, p += v (bit 4, Nesterov: -lr u + mu v)."""
    wd, d, cd, eps, neg_lr, mu = c
    if options & 1:
        g = g + wd * p
    n = cd * (g * g) + d * s[0]
    spread, out = n, [n]
    if options & 4:
        m = cd * g + d * s[1]
        spread, out = n - m * m, [n, m]
    u = _inverse_root(spread, eps, options & 2) * g
    if not options & 8:
        return p + neg_lr * u, out
    v = neg_lr * u + mu * s[len(out)]
    return p + (neg_lr * u + mu * v if options & 16 else v), [*out, v]


def _adagrad(c, options, p, g, s):
    """a = g^2 + a; p += -lr (inverse_root(a, eps) g), the root's inverse 0 where a + eps is 0
    (bit 0: eps inside the root)."""
    eps, neg_lr = c
    a = g * g + s[0]
    r = _inverse_root(a, eps, options & 1)
    if options & 1:
        r = jnp.where(a + eps > 0, r, jnp.zeros_like(r))
    return p + neg_lr * (r * g), [a]


def _lion(c, options, p, g, s):
    """u = sign((1-b1) g + b1 m) + wd p; m = (1-b2) g + b2 m; p += -lr u."""
    b1, cb1, b2, cb2, wd, neg_lr = c
    u = _sign(cb1 * g + b1 * s[0]) + wd * p
    return p + neg_lr * u, [cb2 * g + b2 * s[0]]


_Math = Callable[[Sequence, int, jax.Array, jax.Array, list], tuple[jax.Array, list]]
_FORMULAS: dict[str, _Math] = {
    "momentum": _momentum,
    "adam": _adam,
    "rmsprop": _rmsprop,
    "adagrad": _adagrad,
    "lion": _lion,
}
assert set(_FORMULAS) == set(KERNELS)


def call(
    kernel: str,
    options: int,
    scalars: jax.Array,
    params: Sequence[jax.Array],
    grads: Sequence[jax.Array],
    buffers: Sequence[Sequence[jax.Array]],
    *,
    interpret: bool = False,
    block: int = BLOCK,
    num_warps: int = NUM_WARPS,
) -> tuple[list[jax.Array], list[list[jax.Array]]]:
    """The kernel on lists of leaves: `(new params, [new leaves of each state buffer])`, as
    `fused.call`, by one Pallas kernel per leaf (see the module docstring).

    `buffers` holds exactly the state buffers the variant updates (Adam: mu, nu [, nu_max];
    RMSProp: nu [, mu] [, trace]; the others one). `interpret=True` runs the kernel with XLA on
    any backend instead of compiling it with Triton; `block` (a power of two) and `num_warps` are
    Triton's launch shape. Under `jax.vmap`, one launch per leaf covers every member (Pallas adds
    a grid axis), each member with its own scalars.
    """
    fused.check_signature(kernel, options, scalars, buffers)
    math = _FORMULAS[kernel]
    if block < 1 or block & (block - 1):
        raise ValueError(f"block must be a power of two, got {block}.")
    new_params, new_buffers = [], [[] for _ in buffers]
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        state = [b[i] for b in buffers]
        _check_leaf(scalars, p, g, state)
        p, state = _leaf(math, options, scalars, p, g, state, interpret, block, num_warps)
        new_params.append(p)
        for whole, leaf in zip(new_buffers, state, strict=True):
            whole.append(leaf)
    return new_params, new_buffers


def _check_leaf(scalars, p, g, state) -> None:
    """The checks fused_cpu.cc makes at run time, made here at trace time."""
    dtype = jnp.dtype(p.dtype)
    if dtype not in FLOAT_DTYPES or jnp.dtype(scalars.dtype) != dtype:
        raise ValueError(
            f"the fused kernels take float32 or float64 leaves and scalars of the same dtype, "
            f"got leaves of {dtype.name} and scalars of {jnp.dtype(scalars.dtype).name}."
        )
    for x in (g, *state):
        if x.shape != p.shape or jnp.dtype(x.dtype) != dtype:
            raise ValueError(
                f"a gradient or state buffer ({x.dtype}{list(x.shape)}) differs from its param "
                f"({dtype}{list(p.shape)}) in shape or dtype."
            )


def _leaf(math, options, scalars, p, g, state, interpret, block, num_warps):
    """One leaf's step: one `pallas_call` over its flat view, in place."""
    size = p.size
    if size == 0:
        return p, state
    block = min(block, 1 << (size - 1).bit_length())  # a small leaf: one block just over it
    if pl.cdiv(size, block) * block > 2**31:
        raise ValueError(
            f"a leaf of {size:,} elements is too large for the Pallas kernels, whose offsets are "
            "int32: split it, or keep it below 2**31 elements less a block."
        )
    spec = pl.BlockSpec((block,), lambda i: (i,))
    owned = 1 + len(state)  # the param and the buffers: inputs 1, 3, 4... alias outputs 0, 1, 2...
    aliases = {1: 0, **{3 + k: 1 + k for k in range(len(state))}}
    out = pl.pallas_call(
        functools.partial(_body, math, options, size, block),
        out_shape=[jax.ShapeDtypeStruct((size,), p.dtype)] * owned,
        grid=(pl.cdiv(size, block),),
        # The scalars are read one at a time (no block of them is loaded), so their count
        # need not be a power of two.
        in_specs=[pl.BlockSpec(scalars.shape, lambda i: (0,)), *[spec] * (owned + 1)],
        out_specs=[spec] * owned,
        input_output_aliases=aliases,
        interpret=interpret,
        name=f"jopt_fused{math.__name__}",  # jopt_fused_adam... in profiles
        compiler_params=plt.CompilerParams(num_warps=num_warps, num_stages=1),
    )(scalars, *(x.reshape(-1) for x in (p, g, *state)))
    return out[0].reshape(p.shape), [x.reshape(p.shape) for x in out[1:]]


def _body(math, options, size, block, c_ref, p_ref, g_ref, *refs):
    """The Pallas kernel on one block. Triton does not mask the last, partial block of a
    BlockSpec: the loads and stores past the leaf's end are masked here."""
    n = len(refs) // 2  # refs: the n state buffers, then the param's and the buffers' outputs
    state_refs, (p_out, *state_out) = refs[:n], refs[n:]
    mask = None
    if size % block:
        offsets = pl.program_id(0) * block + jax.lax.broadcasted_iota(jnp.int32, (block,), 0)
        mask = offsets < size
    c = [c_ref[k] for k in range(c_ref.shape[0])]
    p, state = math(
        c,
        options,
        plt.load(p_ref, mask=mask),
        plt.load(g_ref, mask=mask),
        [plt.load(ref, mask=mask) for ref in state_refs],
    )
    plt.store(p_out, p, mask=mask)
    for ref, x in zip(state_out, state, strict=True):
        plt.store(ref, x, mask=mask)
