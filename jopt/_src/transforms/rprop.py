"""Rprop, resilient backpropagation (Riedmiller & Braun 1993, "A Direct Adaptive Method for
Faster Backpropagation Learning: The RPROP Algorithm"): every coordinate has its own step size,
grown while its gradient keeps its sign and shrunk when the sign flips; the update is the sign of
the gradient times that step size, whatever the gradient's magnitude.

With `p = g * g_prev` (g_prev: the last gradient, or 0 after a sign change) and step sizes
starting at `learning_rate`:

    step = clip(step * eta_plus, min_step_size, max_step_size)    if p > 0
    step = clip(step * eta_minus, min_step_size, max_step_size)   if p < 0   (then g_prev = 0)
    step unchanged                                                if p = 0
    theta = theta - step * sign(g)                                if p >= 0
    theta unchanged                                               if p < 0

This is iRprop⁻ (Igel & Hüsken 2000, "Improving the Rprop Learning Algorithm"), torch's Rprop,
and optax's one update late (below): after a sign change the coordinate waits one step. The
paper's own algorithm, Rprop⁺, takes the previous step back there instead
(`weight_backtracking=True`: theta = theta + the previous step). Both forget the gradient after a
sign change, so the next step moves with the reduced step size without adapting it. Paper
defaults: eta_minus = 0.5, eta_plus = 1.2, step sizes in [1e-6, 50], initial step size 0.1.

optax 0.2.8 differs: its update is the step computed at the *previous* update (zeroed where the
sign has just changed), so its first update is 0 and every step comes one update late
(google-deepmind/optax pull request 1725, open). `stale_update=True` reproduces it, bitwise.

The learning rate is the initial step size, read from the state at the first update (as torch
reads `lr` at its first step): `jopt.set_hparams(state, learning_rate=...)` before it sets it,
afterwards it has no effect. Until then the state's `step_sizes` are 0 (optax's start at the
learning rate). torch clamps the step sizes to [min_step_size, max_step_size] at every step, jopt
and optax only when they adapt: the two differ only when the initial step size is outside that
range. Rprop is meant for full-batch gradients. It is not defined on complex parameters (their
gradients have no sign to compare), nor is optax's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful, validation
from jopt._src.hparams import HParams
from jopt._src.spec import Flag, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.validation import NON_NEGATIVE, POSITIVE, Range

# The initial step size: a number kept in the state, read at the first update (not a schedule).
INITIAL_STEP = dataclasses.replace(LEARNING_RATE, schedulable=False, scale=None)
ETA_MINUS = Float("eta_minus", Range(0.0, 1.0, lo_open=True, hi_open=True))
ETA_PLUS = Float("eta_plus", Range(1.0, lo_open=True))
MIN_STEP_SIZE = Float("min_step_size", NON_NEGATIVE)
MAX_STEP_SIZE = Float("max_step_size", POSITIVE)
SCALE_BY_RPROP = RPROP = Spec(
    INITIAL_STEP,
    ETA_MINUS,
    ETA_PLUS,
    MIN_STEP_SIZE,
    MAX_STEP_SIZE,
    Flag("weight_backtracking"),
    Flag("stale_update"),
)


class ScaleByRpropState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    step_sizes: optax.Updates  # every coordinate's step size (0 before the first update)
    prev_updates: optax.Updates  # the last step, step * sign(g), or 0 after a sign change
    hparams: HParams  # learning_rate (the initial step size), eta_minus, eta_plus, step bounds


def _check_real(fn: str, params: Any) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if jnp.iscomplexobj(leaf):
            where = jax.tree_util.keystr(path) or "<root>"
            raise TypeError(
                f"{fn}: the parameter at {where} is complex ({jnp.result_type(leaf)}): Rprop "
                "compares the signs of successive gradients, which complex numbers do not have. "
                "Optimize the real and imaginary parts as separate real parameters."
            )


@errors.public("jopt.scale_by_rprop")
def scale_by_rprop(
    learning_rate: float,
    eta_minus: float = 0.5,
    eta_plus: float = 1.2,
    min_step_size: float = 1e-6,
    max_step_size: float = 50.0,
    *,
    weight_backtracking: bool = False,
    stale_update: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Rprop's steps, `step * sign(g)` (not negated); `optax.scale_by_rprop` with
    `stale_update=True`.

    Args:
      learning_rate: the initial step size, >= 0, read at the first update. Paper: 0.1.
      eta_minus: the step size's factor after a sign change, in (0, 1). Paper: 0.5.
      eta_plus: its factor while the sign holds, > 1. Paper: 1.2.
      min_step_size: the smallest step size, >= 0. Paper: 1e-6.
      max_step_size: the largest, > 0 and >= min_step_size. Paper: 50.
      weight_backtracking: after a sign change, undo the previous step (Rprop⁺, the paper's
        algorithm) instead of not moving (iRprop⁻, torch's).
      stale_update: return the step computed at the previous update, as optax 0.2.8 does
        (its first update is 0); not with weight_backtracking.
    """
    fn = errors.current_function()
    if callable(learning_rate):
        raise errors.ArgumentTypeError(
            fn,
            "learning_rate is Rprop's initial step size, a number read at the first update; the "
            "step sizes then adapt by themselves, and a schedule would have no effect.",
            argument="learning_rate",
            value=learning_rate,
            allowed=INITIAL_STEP.allowed,
        )
    bound = SCALE_BY_RPROP.bind(
        fn,
        learning_rate=learning_rate,
        eta_minus=eta_minus,
        eta_plus=eta_plus,
        min_step_size=min_step_size,
        max_step_size=max_step_size,
        weight_backtracking=weight_backtracking,
        stale_update=stale_update,
    )
    validation.require(
        fn,
        not (bound["weight_backtracking"] and bound["stale_update"]),
        "stale_update=True (optax 0.2.8's steps, one update late) has no backtracking form: "
        "set weight_backtracking=False.",
        argument="stale_update",
        value=stale_update,
    )
    validation.require(
        fn,
        bound["min_step_size"] <= bound["max_step_size"],
        f"min_step_size must be <= max_step_size, got {min_step_size!r} > {max_step_size!r}.",
        argument="min_step_size",
        value=min_step_size,
    )

    def buffers(params):
        _check_real(fn, params)
        return {
            # Filled from the state's learning_rate at the first update (set_hparams may change
            # it before): the initial step size is kept in one place.
            "step_sizes": base.zeros_like(params),
            "prev_updates": base.zeros_like(params),
        }

    def step(updates, state, hp, count, params):
        def leaf(g, size, prev):
            dt = base.wider(g.dtype, size.dtype, prev.dtype)
            g, size, prev = g.astype(dt), size.astype(dt), prev.astype(dt)
            size = jnp.where(count == 1, hp["learning_rate"].astype(dt), size)
            product = g * prev
            factor = jnp.where(product > 0, hp["eta_plus"].astype(dt), hp["eta_minus"].astype(dt))
            bounds = hp["min_step_size"].astype(dt), hp["max_step_size"].astype(dt)
            size = jnp.where(product == 0, size, jnp.clip(size * factor, *bounds))
            flipped = product < 0
            taken = jnp.where(flipped, jnp.zeros_like(g), size * jnp.sign(g))
            out = taken
            if bound["stale_update"]:
                out = jnp.where(flipped, jnp.zeros_like(prev), prev)
            elif bound["weight_backtracking"]:
                out = jnp.where(flipped, -prev, taken)
            return out, size, taken

        results = jax.tree.map(leaf, updates, state.step_sizes, state.prev_updates)
        three = jax.tree.structure((0, 0, 0))
        out, sizes, taken = jax.tree.transpose(jax.tree.structure(updates), three, results)
        return out, {"step_sizes": sizes, "prev_updates": taken}

    # It ends its chain (before the sign flip): it checks the gradients against the params too.
    return stateful_transform(
        bound, ScaleByRpropState, buffers, step, matches=("step_sizes", "params")
    )


@errors.public("jopt.rprop")
def rprop(
    learning_rate: float,
    eta_minus: float = 0.5,
    eta_plus: float = 1.2,
    min_step_size: float = 1e-6,
    max_step_size: float = 50.0,
    *,
    weight_backtracking: bool = False,
    stale_update: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Rprop (Riedmiller & Braun 1993) in its iRprop⁻ form, torch's; `optax.rprop` with
    `stale_update=True` (see the module docstring: optax 0.2.8 applies each step one update late).

    step *= eta_plus or eta_minus as sign(g * g_prev) is + or -, clipped to [min, max];
    theta -= step * sign(g), except after a sign change: no move (or, with
    `weight_backtracking`, the previous step undone: Rprop⁺, the paper's form).

    `learning_rate` is the initial step size (see `scale_by_rprop`), not a factor of the
    updates: it takes no schedule, and changing it after the first update has no effect.
    """
    return stateful.chain(
        scale_by_rprop(
            learning_rate,
            eta_minus,
            eta_plus,
            min_step_size,
            max_step_size,
            weight_backtracking=weight_backtracking,
            stale_update=stale_update,
        ),
        optax.scale(-1.0),
    )
