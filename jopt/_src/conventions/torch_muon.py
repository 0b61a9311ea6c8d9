"""torch.optim.Muon (torch 2.13) as a jopt transform: same name, arguments, defaults, numbers.

For each parameter (a matrix, shape (A, B)), with torch's `lerp(start, end, w)`:

    buf = lerp(buf, g, 1 - momentum)                       buf = momentum buf + (1 - momentum) g
    M   = lerp(g, buf, momentum)   if nesterov else buf
    O   = NS(M)                                            in bfloat16, as torch
    theta = theta * (1 - lr * weight_decay) - lr * r * O
    r   = sqrt(max(1, A / B))          adjust_lr_fn None or "original" (Jordan)
        = 0.2 * sqrt(max(A, B))        adjust_lr_fn "match_rms_adamw" (Liu et al. 2025)

NS is Jordan's quintic Newton-Schulz iteration (`ns_coefficients`, `ns_steps`), on M rounded to
bfloat16, transposed if A > B, divided by max(||M||_F, eps), every product rounded to bfloat16
where torch's bfloat16 kernels round theirs (each matrix product and each `addmm` once, from
float32 sums): the iteration here is float32 arithmetic rounded at those points, which gives
torch's bfloat16 results bit for bit (tests/conventions/test_muon_twins.py).

Where it departs from `jopt.muon` (optax's Muon): no bias correction, torch's eps 1e-7 floors
the norm (`clamp`) instead of being added to it, a scale read from the shape as torch reads a
(out, in) weight (A / B is the leaf's first axis over its second: for a JAX (in, out) kernel that
is in / out, the reverse of Jordan's intent, which `jopt.muon` follows), the weight decay
always on (0.1 by default), and the iteration in bfloat16. As torch's, it takes matrices only:
parameters of another rank are refused at `init` (torch refuses them when the optimizer is
built); give them another optimizer with `jopt.param_groups`.

The state holds `learning_rate`, `weight_decay`, `momentum` and `eps` (torch's param group), so
`jopt.set_hparams` changes them as `param_groups[0][...] = ...` does; `param_groups=` takes
torch's list of groups (`torch_param_groups`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful, validation
from jopt._src.base import ScalarOrSchedule, Transform
from jopt._src.conventions import torch_arguments as checks
from jopt._src.conventions.torch_param_groups import groupable
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import scale_by_learning_rate
from jopt._src.transforms.regularization import add_decayed_weights

DEFAULT_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # torch's DEFAULT_A, DEFAULT_B, DEFAULT_C
ADJUST_LR_FNS = ("original", "match_rms_adamw")
MAX_NS_STEPS = 100  # torch refuses ns_steps >= 100 ("for computational efficiency")
_DIRECTION = Spec(
    Float("momentum", validation.DECAY, complement=True), Float("eps", validation.NON_NEGATIVE)
)


class TorchMuonState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    momentum_buffer: optax.Updates  # torch's state["momentum_buffer"] of each parameter
    hparams: HParams  # momentum, eps


def _bf16(x: jax.Array) -> jax.Array:
    """`x` (float32) rounded to bfloat16, kept in float32."""
    return x.astype(jnp.bfloat16).astype(jnp.float32)


def _product(x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.matmul(x, y, precision=jax.lax.Precision.HIGHEST)


def newton_schulz_bf16(m: jax.Array, coefficients, steps: int, eps: jax.Array) -> jax.Array:
    """torch's `_zeropower_via_newtonschulz` of a matrix, its bfloat16 values in float32."""
    a, b, c = coefficients
    x = _bf16(m.astype(jnp.float32))  # a float64 M goes through float32 first, as in torch
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    norm = _bf16(jnp.sqrt(jnp.sum(x * x)))
    x = _bf16(x / jnp.maximum(norm, _bf16(eps.astype(jnp.float32))))
    for _ in range(steps):
        gram = _bf16(_product(x, x.T))
        poly = _bf16(
            b * gram + c * _product(gram, gram)
        )  # addmm(gram, gram, gram, beta=b, alpha=c)
        x = _bf16(a * x + _product(poly, x))  # addmm(x, poly, x, beta=a)
    return x.T if tall else x


def _lerp(start: jax.Array, end: jax.Array, weight: jax.Array, rest: jax.Array) -> jax.Array:
    """torch's `lerp`: `start + w (end - start)` for |w| < 0.5, else `end - (end - start)(1 -
    w)`; `rest` is 1 - w."""
    return jnp.where(
        jnp.abs(weight) < 0.5, start + weight * (end - start), end - (end - start) * rest
    )


def adjusted_ratio(shape: tuple[int, ...], adjust_lr_fn: str | None) -> float:
    """torch's `_adjust_lr(lr, ...) / lr` for a parameter of `shape` (A, B = shape[:2])."""
    rows, cols = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1, rows / cols))


def _check_matrices(fn: str, params: Any) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        where = jax.tree_util.keystr(path) or "<root>"
        if jnp.ndim(leaf) != 2:
            raise ValueError(
                f"{fn}: Muon only supports 2D parameters whereas we found a parameter with size: "
                f"{jnp.shape(leaf)} (at {where}). Give the others another optimizer, e.g. with "
                "jopt.param_groups."
            )
        if jnp.iscomplexobj(leaf):
            raise TypeError(f"{fn}: Muon does not support complex parameters (at {where}).")


def _direction(fn, momentum, eps, nesterov, coefficients, ns_steps, adjust_lr_fn) -> Transform:
    """r * NS(M), torch's direction at unit learning rate (see the module docstring)."""
    bound = _DIRECTION.bind(fn, momentum=momentum, eps=eps)

    def buffers(params):
        _check_matrices(fn, params)
        return {"momentum_buffer": base.zeros_like(params)}

    def step(updates, state, hp, count, params):
        def leaf(g, buf):
            mu, rest = hp["momentum"].astype(g.dtype), hp.complement("momentum").astype(g.dtype)
            buf = _lerp(buf, g, rest, mu)
            mixed = _lerp(g, buf, mu, rest) if nesterov else buf
            o = newton_schulz_bf16(mixed, coefficients, ns_steps, hp["eps"]).astype(g.dtype)
            return adjusted_ratio(g.shape, adjust_lr_fn) * o, buf

        results = jax.tree.map(leaf, updates, state.momentum_buffer)
        out, buffers_ = jax.tree.transpose(
            jax.tree.structure(updates), jax.tree.structure((0, 0)), results
        )
        return out, {"momentum_buffer": buffers_}

    return stateful_transform(bound, TorchMuonState, buffers, step, matches="momentum_buffer")


@errors.public("jopt.torch.Muon")
@groupable()
def Muon(  # noqa: N802 - torch's name
    lr: ScalarOrSchedule = 1e-3,
    weight_decay: float = 0.1,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = DEFAULT_COEFFICIENTS,
    eps: float = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
) -> Transform:
    """torch.optim.Muon (Jordan et al. 2024; "match_rms_adamw": Liu et al. 2025), for matrices
    (see the module docstring).

    As torch: lr >= 0, weight_decay >= 0, adjust_lr_fn None, "original" or "match_rms_adamw",
    three coefficients, ns_steps < 100 (torch checks the last two at the first step, jopt at
    construction), matrices only (at init). More strictly than torch: momentum in [0, 1)
    (torch: >= 0), finite numbers, ns_steps >= 0 an integer.
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    weight_decay = checks.non_negative(fn, "weight_decay", weight_decay)
    momentum = checks.decay_rate(fn, "momentum", momentum)
    eps = checks.non_negative(fn, "eps", eps)
    flags = checks.flags(fn, nesterov=nesterov)
    if adjust_lr_fn is not None:
        validation.check_choice(fn, "adjust_lr_fn", adjust_lr_fn, ADJUST_LR_FNS)
    coefficients = _coefficients(fn, ns_coefficients)
    ns_steps = validation.check_int(fn, "ns_steps", ns_steps, 0)
    validation.require(
        fn,
        ns_steps < MAX_NS_STEPS,
        f"ns_steps must be less than {MAX_NS_STEPS}, got {ns_steps} (torch: 'Number of steps "
        "must be less than 100 for computational efficiency').",
        argument="ns_steps",
        value=ns_steps,
    )
    direction = _direction(
        fn, momentum, eps, flags["nesterov"], coefficients, ns_steps, adjust_lr_fn
    )
    return stateful.chain(direction, add_decayed_weights(weight_decay), scale_by_learning_rate(lr))


def _coefficients(fn: str, values: Any) -> tuple[float, float, float]:
    try:
        items = tuple(values)
    except TypeError:
        items = ()
    if len(items) != 3:
        raise errors.ArgumentError(
            fn,
            f"ns_coefficients must be a tuple of exactly 3 values, got {values!r}.",
            argument="ns_coefficients",
            value=values,
        )
    names = ("ns_coefficients[0]", "ns_coefficients[1]", "ns_coefficients[2]")
    a, b, c = (
        validation.check_number(fn, name, v, validation.ANY_FINITE)
        for name, v in zip(names, items, strict=True)
    )
    return a, b, c
