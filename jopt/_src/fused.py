"""Fused optimizer steps: one pass over the params, gradients and state, in a C++ kernel on the
CPU or a Pallas kernel on the GPU.

XLA compiles an optimizer's step on the CPU into several loops per leaf (Adam's m, v, then the
params reading both again) and runs a loop per leaf. The kernels in `kernels/fused_cpu.cc`,
called through `jax.ffi`, update every leaf of a dtype in one call: each parameter, gradient and
state buffer is read once and written once, in place, on XLA's intra-op threads, in vectorized
loops. They are built when jopt is installed (`hatch_build.py`, CMake and a C++17 compiler).

A fast path sits behind the plain one, never instead of it. An optimizer that has a kernel
declares a `FusedRule` when it is built (`declare`): which kernel, which fields of its chain's
state hold the per-parameter buffers, and how to read the step's scalars (learning rate, decay
rates, bias corrections) from its state. `jopt.train_step` then computes

    _, state = optimizer.update(grads, state, params)     # counts, hyperparameters, schedules
    params, buffers = kernel(scalars(state), params, grads, buffers)

in one program: the plain update's per-parameter work has no use left and XLA drops it, so the
step counts, schedules and hyperparameters in the state are the plain path's by construction. The
kernels compute each element in the plain path's order of operations, each product and sum
rounded on its own: tests/test_fused.py checks them bit for bit against NumPy, and within an ulp
of each leaf's scale against XLA's code for the plain path (which contracts some products and
sums into fused multiply-adds, differently in different programs).

Where no kernel was built (no compiler at install), `jopt.train_step` warns once and takes the
XLA path; `fused=False` or the environment variable `JOPT_FUSED=0` switches the fast path off.
It applies to trees whose leaves are all float32 or all float64, with state buffers in the
params' dtype; other steps take the plain path. Over several CPU devices each device updates its
own shards of the params and state (`fused_partitioned.py`).

On the GPU the same kernels are Pallas (Triton) kernels, `fused_pallas.py`, with the same rules
and scalars. They are taken only when a step asks for them (`fused=True`): on the GPU, XLA
already fuses each leaf's step into one loop, and the Pallas kernels have not been timed against
it on a GPU yet (`benchmarks/fused_gpu_speed.py`). They are tested on the CPU in interpret mode,
within 2 ulps of each leaf's scale, and lowered for the GPU.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import os
import pathlib
import sys
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jopt._src import fused_partitioned

LIBRARY = pathlib.Path(__file__).parent / "kernels" / "libjopt_fused.so"
# The kernel names rules use, and the library's symbol for each.
KERNELS = {
    "momentum": "JoptFusedMomentum",
    "adam": "JoptFusedAdam",
    "rmsprop": "JoptFusedRmsprop",
    "adagrad": "JoptFusedAdagrad",
    "lion": "JoptFusedLion",
}
# What each kernel takes (fused_cpu.cc's layout): its scalars, and the state buffers a variant
# updates, from its option bits. A call is checked against it before it runs.
SIGNATURES: dict[str, tuple[int, Callable[[int], int]]] = {
    "momentum": (4, lambda options: 1),
    # Adam's AMSGrad maximum is a third buffer, unless NAdam's look-ahead (bit 3) overrides it;
    # torch's coupled L2 (bit 4) overrides the look-ahead.
    "adam": (11, lambda options: 3 if options & 2 and (options & 16 or not options & 8) else 2),
    "rmsprop": (6, lambda options: 1 + (options >> 2 & 1) + (options >> 3 & 1)),
    "adagrad": (2, lambda options: 1),
    "lion": (6, lambda options: 1),
}
# XLA's compile time grows faster than linearly in the aliased operands of one custom call (2.8 s
# for 300 leaves of Adam, 60 s for 1,000): a tree is updated by calls of this many leaves.
LEAVES_PER_CALL = 64
SWITCH = "JOPT_FUSED"  # "0" turns the fast path off where a step does not choose
FLOAT_DTYPES = (jnp.dtype("float32"), jnp.dtype("float64"))


@dataclasses.dataclass(frozen=True)
class FusedRule:
    """How an optimizer's step maps onto a kernel (see the module docstring).

    kernel: a key of `KERNELS`.
    buffers: the per-parameter state buffers, in the kernel's order, as (index of the block in
      the optimizer's chain state, field of that block's state).
    options: the kernel's option bits (its variant: weight decay, momentum...).
    scalars: `(state after the plain update, leaves' dtype) -> the kernel's scalars`, each
      computed and cast as the plain path computes it.
    """

    kernel: str
    buffers: tuple[tuple[int, str], ...]
    options: int
    scalars: Callable[[tuple, Any], Sequence[jax.Array]]


_RULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def declare(tx: optax.GradientTransformation, rule: FusedRule | None):
    """`tx`, with `rule` recorded as its fused step (None: it has none). Returns `tx`."""
    if rule is not None:
        if rule.kernel not in KERNELS:
            raise ValueError(f"unknown fused kernel {rule.kernel!r}; known: {sorted(KERNELS)}.")
        _RULES[tx.update] = rule
    return tx


def rule_of(tx: optax.GradientTransformation) -> FusedRule | None:
    """The fused step `tx` declared, or None."""
    try:
        return _RULES.get(tx.update)
    except TypeError:  # an update that cannot be weakly referenced declared nothing
        return None


def unavailable() -> str | None:
    """Why this process's backend has no kernels (None: it has; on the GPU, the Pallas kernels
    come with jax)."""
    if jax.default_backend() == "gpu":
        return None
    return _cpu_kernels_unavailable()


@functools.cache
def _cpu_kernels_unavailable() -> str | None:
    """Why the CPU kernels cannot run here (None: they are loaded and registered with XLA)."""
    if not LIBRARY.exists():
        return (
            f"the fused CPU kernels were not built ({LIBRARY.name} is missing: jopt was installed "
            "without CMake or a C++17 compiler, or with JOPT_BUILD_KERNELS=0)"
        )
    try:
        library = ctypes.cdll.LoadLibrary(str(LIBRARY))
        for name, symbol in KERNELS.items():
            capsule = jax.ffi.pycapsule(getattr(library, symbol))
            jax.ffi.register_ffi_target(_target(name), capsule, platform="cpu")
    except (OSError, AttributeError) as e:
        return f"the fused CPU kernels in {LIBRARY} could not be loaded ({e})"
    return None


def _target(kernel: str) -> str:
    return f"jopt_fused_{kernel}"


def wanted(fused: bool | None) -> bool:
    """Whether a step built with `fused` takes the fast path where it can (None: unless the
    environment sets JOPT_FUSED=0)."""
    if fused is None:
        return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")
    return fused


@functools.cache
def warn_unavailable(reason: str) -> None:
    """The one warning a process gets when a step wants the kernels and they are not there,
    pointing at the user's line that built the step."""
    warnings.warn(
        f"jopt: {reason}; optimizer steps take the XLA path. Reinstall jopt where cmake and g++ "
        f"are available to build them, or set {SWITCH}=0 (or fused=False) to silence this.",
        RuntimeWarning,
        stacklevel=_first_frame_outside_jopt(),
    )


def _first_frame_outside_jopt() -> int:
    """The stack level (as `warnings.warn` counts) of the innermost caller outside jopt."""
    frame, level = sys._getframe(2), 2  # warn_unavailable's caller is level 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith("jopt."):
        frame, level = frame.f_back, level + 1
    return level


def why_not(rule: FusedRule, params: Any, state: Any, asked: bool = False) -> str | None:
    """Why this step cannot be fused (None: it can), read at trace time from the shapes.
    `asked`: the step asked for the kernels (`fused=True`), which the GPU's need."""
    backend = jax.default_backend()
    if backend == "gpu" and not asked:
        return "on the GPU the fused (Pallas) kernels are taken with fused=True: untimed so far"
    if backend not in ("cpu", "gpu"):
        return f"the fused kernels run on the CPU and GPU backends, not {backend}"
    if backend == "gpu" and jax.device_count() > 1:
        return "on the GPU the fused (Pallas) kernels run in single-device processes: untested"
    leaves = jax.tree.leaves(params)
    dtypes = {jnp.dtype(leaf.dtype) for leaf in leaves}
    if not leaves or len(dtypes) != 1 or not dtypes <= set(FLOAT_DTYPES):
        names = sorted(d.name for d in dtypes)
        return f"the params' leaves must all be float32 or all float64, got {names}"
    (dtype,) = dtypes
    for block, field in rule.buffers:
        try:
            buffer = getattr(state[block], field)
        except (TypeError, IndexError, AttributeError):  # the plain update names the mismatch
            return "the state was not made by this optimizer"
        if {jnp.dtype(b.dtype) for b in jax.tree.leaves(buffer)} != {dtype}:
            return f"the state's {field} must be in the params' dtype {dtype.name}"
    return None


def apply(
    optimizer: optax.GradientTransformation,
    rule: FusedRule,
    grads: Any,
    state: Any,
    params: Any,
    kernel_call: Callable | None = None,
) -> tuple[Any, Any]:
    """`(params, state)` after one step of `optimizer`, the per-parameter work in the kernel
    (`kernel_call`, with `call`'s arguments; default: `call`, the backend's kernels)."""
    _, after = optimizer.update(grads, state, params)
    p_leaves, treedef = jax.tree.flatten(params)
    buffers = [treedef.flatten_up_to(getattr(state[b], f)) for b, f in rule.buffers]
    dtype = p_leaves[0].dtype
    scalars = jnp.stack([jnp.asarray(s).astype(dtype) for s in rule.scalars(after, dtype)])
    new_params, new_buffers = (kernel_call or call)(
        rule.kernel, rule.options, scalars, p_leaves, treedef.flatten_up_to(grads), buffers
    )
    after = list(after)
    for (block, field), leaves in zip(rule.buffers, new_buffers, strict=True):
        after[block] = after[block]._replace(**{field: treedef.unflatten(leaves)})
    return treedef.unflatten(new_params), tuple(after)


def call(
    kernel: str,
    options: int,
    scalars: jax.Array,
    params: Sequence[jax.Array],
    grads: Sequence[jax.Array],
    buffers: Sequence[Sequence[jax.Array]],
) -> tuple[list[jax.Array], list[list[jax.Array]]]:
    """The kernel on lists of leaves: `(new params, [new leaves of each state buffer])`.

    Each param and buffer is updated in place (its output aliases its input: XLA copies it first
    unless the program's input is donated): on the CPU by one custom call per `LEAVES_PER_CALL`
    leaves (under `jax.vmap`, once per member), on the GPU by a Pallas kernel per leaf.
    """
    check_signature(kernel, options, scalars, buffers)
    if jax.default_backend() == "gpu":
        from jopt._src import fused_pallas  # Pallas is imported where it runs

        return fused_pallas.call(kernel, options, scalars, params, grads, buffers)
    reason = _cpu_kernels_unavailable()
    if reason is not None:
        raise RuntimeError(f"jopt: {reason}.")
    one_call = _call
    if jax.device_count() > 1:  # a program over several devices: each updates its shards
        one_call = functools.partial(fused_partitioned.call, _call)
    new_params, new_buffers = [], [[] for _ in buffers]
    for start in range(0, len(params), LEAVES_PER_CALL):
        part = slice(start, start + LEAVES_PER_CALL)
        p, b = one_call(
            kernel, options, scalars, params[part], grads[part], [b[part] for b in buffers]
        )
        new_params += p
        for whole, piece in zip(new_buffers, b, strict=True):
            whole += piece
    return new_params, new_buffers


def check_signature(kernel: str, options: int, scalars: jax.Array, buffers: Sequence) -> None:
    """Raises a ValueError unless `kernel` with `options` takes these scalars and buffers (a
    kernel given fewer buffers than its variant updates would write through a null pointer)."""
    if kernel not in SIGNATURES:
        raise ValueError(f"unknown fused kernel {kernel!r}; known: {sorted(SIGNATURES)}.")
    n_scalars, n_buffers = SIGNATURES[kernel]
    if len(buffers) != n_buffers(options):
        raise ValueError(
            f"the {kernel} kernel with options {options} updates {n_buffers(options)} state "
            f"buffers, got {len(buffers)}."
        )
    if jnp.shape(scalars) != (n_scalars,):
        raise ValueError(
            f"the {kernel} kernel takes {n_scalars} scalars, got an array of shape "
            f"{jnp.shape(scalars)}."
        )


def _call(kernel, options, scalars, params, grads, buffers):
    """`call` on at most `LEAVES_PER_CALL` leaves: one custom call."""
    args, results, aliases = [scalars], [], {}
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        owned = [p, *(b[i] for b in buffers)]  # param first, then the buffers after g
        start = len(args)
        positions = (start, *range(start + 2, start + len(owned) + 1))
        for position, x in zip(positions, owned, strict=True):
            aliases[position] = len(results)
            results.append(jax.ShapeDtypeStruct(x.shape, x.dtype))
        args += [p, g, *owned[1:]]
    kernel_call = jax.ffi.ffi_call(
        _target(kernel), results, input_output_aliases=aliases, vmap_method="sequential"
    )
    out = kernel_call(*args, buffers=np.int64(len(buffers)), options=np.int64(options))
    per_leaf = 1 + len(buffers)
    return list(out[0::per_leaf]), [list(out[1 + k :: per_leaf]) for k in range(len(buffers))]
