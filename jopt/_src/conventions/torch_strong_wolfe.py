"""torch.optim.LBFGS's strong Wolfe line search (torch 2.13's `_strong_wolfe`, ported by torch
from minFunc's `lswolfe.lua`) on flat vectors, as a `jax.lax.while_loop`: the same trials, in the
same order, with the same numbers.

Along the direction d from x, with f and its slope gtd = <g, d> at t = 0, each trial evaluates
f_t = f(x + t d) and its slope gtd_t and checks

    f_t <= f + c1 t gtd                        (sufficient decrease; c1 = 1e-4)
    |gtd_t| <= -c2 gtd                         (curvature; c2 = 0.9)

Bracketing (Nocedal & Wright 2006, Algorithm 3.5): from the initial t, a trial that fails the
decrease condition (or, after the second trial, is no lower than the previous one), or whose slope
is >= 0, closes a bracket [t_prev, t]; one meeting both conditions ends the search; otherwise
the next t is the minimizer of the cubic through (t_prev, f, gtd) and (t, f_t, gtd_t), clamped to
[t + 0.01 (t - t_prev), 10 t]. Zoom (Algorithm 3.6): the bracket shrinks to the cubic's minimizer
in it, moved 10% of the bracket's width inside it when it falls that close to an end twice in a
row (or beyond an end), until a trial meets both conditions or the bracket is narrower than
`tolerance_change` (1e-9, torch's default: LBFGS does not pass its own) in the max norm of d.

At most `max_ls` trials after the first (LBFGS passes its evaluations left); when bracketing runs
out of them the bracket is [0, t]. The search returns the bracket's lower point: t, f and g there,
and the number of evaluations made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

C1 = 1e-4  # torch's constants: LBFGS calls `_strong_wolfe` with its defaults
C2 = 0.9
TOLERANCE_CHANGE = 1e-9

# t -> (f(x + t d), grad f(x + t d)) as flat vectors
Evaluate = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


class Found(NamedTuple):
    """The point the search ends at, and the evaluations it made."""

    value: jax.Array
    grad: jax.Array
    t: jax.Array
    evals: jax.Array  # int32


def cubic_minimizer(x1, f1, g1, x2, f2, g2, lo, hi) -> jax.Array:
    """The minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to [lo, hi];
    the middle of [lo, hi] where the cubic has none (torch's `_cubic_interpolate`)."""
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    d2 = jnp.sqrt(jnp.maximum(d2_square, jnp.zeros_like(d2_square)))
    from_x2 = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    from_x1 = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    min_pos = jnp.where(x1 <= x2, from_x2, from_x1)
    clamped = jnp.minimum(jnp.maximum(min_pos, lo), hi)
    return jnp.where(d2_square >= 0, clamped, (lo + hi) / 2.0)


class _Bracketing(NamedTuple):
    ls_iter: jax.Array
    stage: jax.Array  # 0: searching (or out of trials), 1: bracket [t_prev, t], 2: t is done
    t_prev: jax.Array
    f_prev: jax.Array
    g_prev: jax.Array
    gtd_prev: jax.Array
    t: jax.Array
    f_new: jax.Array
    g_new: jax.Array
    gtd_new: jax.Array


class _Zoom(NamedTuple):
    ls_iter: jax.Array
    done: jax.Array
    insufficient_progress: jax.Array
    low: jax.Array  # index of the bracket's lower point; the other is the higher
    bracket: jax.Array  # (2,) step sizes, and f, g, gtd there
    bracket_f: jax.Array
    bracket_g: jax.Array  # (2, n)
    bracket_gtd: jax.Array


def strong_wolfe(
    evaluate: Evaluate,
    t: jax.Array,
    d: jax.Array,
    f: jax.Array,
    g: jax.Array,
    gtd: jax.Array,
    max_ls: jax.Array,
) -> Found:
    """torch's `_strong_wolfe(obj_func, x, t, d, f, g, gtd, max_ls=max_ls)` (the module
    docstring), `evaluate(t)` standing for `obj_func(x, t, d)`."""
    dt = d.dtype
    d_norm = jnp.max(jnp.abs(d))
    c1, c2 = jnp.asarray(C1, dt), jnp.asarray(C2, dt)
    tolerance = jnp.asarray(TOLERANCE_CHANGE, dt)
    zero = jnp.zeros([], jnp.int32)

    def trial(t):
        f_t, g_t = evaluate(t)
        return f_t, g_t, jnp.dot(g_t, d)

    def insufficient(t, f_t, than):
        return f_t > f + c1 * t * gtd, f_t >= than

    def classify(s: _Bracketing) -> jax.Array:
        no_decrease, not_lower = insufficient(s.t, s.f_new, s.f_prev)
        closes = no_decrease | ((s.ls_iter > 1) & not_lower)
        meets = jnp.abs(s.gtd_new) <= -c2 * gtd
        stage = jnp.where(closes, 1, jnp.where(meets, 2, jnp.where(s.gtd_new >= 0, 1, 0)))
        return jnp.where(s.ls_iter < max_ls, stage, 0).astype(jnp.int32)

    def bracket_step(s: _Bracketing) -> _Bracketing:
        lo, hi = s.t + 0.01 * (s.t - s.t_prev), s.t * 10
        t_next = cubic_minimizer(s.t_prev, s.f_prev, s.gtd_prev, s.t, s.f_new, s.gtd_new, lo, hi)
        f_t, g_t, gtd_t = trial(t_next)
        s = _Bracketing(
            s.ls_iter + 1, zero, s.t, s.f_new, s.g_new, s.gtd_new, t_next, f_t, g_t, gtd_t
        )
        return s._replace(stage=classify(s))

    f_t, g_t, gtd_t = trial(t)
    start = _Bracketing(zero, zero, jnp.zeros_like(t), f, g, gtd, t, f_t, g_t, gtd_t)
    s = jax.lax.while_loop(
        lambda s: (s.stage == 0) & (s.ls_iter < max_ls),
        bracket_step,
        start._replace(stage=classify(start)),
    )

    # The bracket's first point: t_prev (a bracket closed), t itself (t met both conditions),
    # 0 (out of trials); its second is t.
    first, first_f, first_g, first_gtd = (
        jnp.where(s.stage == 1, closed, jnp.where(s.stage == 2, met, out))
        for closed, met, out in (
            (s.t_prev, s.t, jnp.zeros_like(t)),
            (s.f_prev, s.f_new, f),
            (s.g_prev, s.g_new, g),
            (s.gtd_prev, s.gtd_new, gtd),
        )
    )
    bracket_f = jnp.stack([first_f, s.f_new])
    zoom = _Zoom(
        s.ls_iter,
        s.stage == 2,
        jnp.zeros([], bool),
        jnp.where(bracket_f[0] <= bracket_f[1], 0, 1).astype(jnp.int32),
        jnp.stack([first, s.t]),
        bracket_f,
        jnp.stack([first_g, s.g_new]),
        jnp.stack([first_gtd, s.gtd_new]),
    )

    def zooming(z: _Zoom) -> jax.Array:
        wide = jnp.abs(z.bracket[1] - z.bracket[0]) * d_norm >= tolerance
        return ~z.done & (z.ls_iter < max_ls) & wide

    def zoom_step(z: _Zoom) -> _Zoom:
        b, bf, bgtd = z.bracket, z.bracket_f, z.bracket_gtd
        t = cubic_minimizer(b[0], bf[0], bgtd[0], b[1], bf[1], bgtd[1], jnp.min(b), jnp.max(b))
        top, bottom = jnp.max(b), jnp.min(b)
        eps = 0.1 * (top - bottom)
        near_an_end = jnp.minimum(top - t, t - bottom) < eps
        at_an_end = z.insufficient_progress | (t >= top) | (t <= bottom)
        inside = jnp.where(jnp.abs(t - top) < jnp.abs(t - bottom), top - eps, bottom + eps)
        t = jnp.where(near_an_end & at_an_end, inside, t)
        insufficient_progress = near_an_end & ~at_an_end

        f_t, g_t, gtd_t = trial(t)
        low, high = z.low, 1 - z.low
        no_decrease, not_lower = insufficient(t, f_t, bf[low])
        rejected = no_decrease | not_lower
        meets = jnp.abs(gtd_t) <= -c2 * gtd
        flips = ~meets & (gtd_t * (b[high] - b[low]) >= 0)
        # Rejected: t replaces the higher point. Accepted: t becomes the lower point, the old
        # lower one first replacing the higher one if the slope at t points past it.
        replaced = jnp.where(rejected, high, low)
        moved = (b, bf, z.bracket_g, bgtd)
        moved = jax.tree.map(
            lambda x: jnp.where(~rejected & flips, x.at[high].set(x[low]), x), moved
        )
        b, bf, bg, bgtd = jax.tree.map(
            lambda x, new: x.at[replaced].set(new), moved, (t, f_t, g_t, gtd_t)
        )
        low = jnp.where(rejected, jnp.where(bf[0] <= bf[1], 0, 1).astype(jnp.int32), low)
        return _Zoom(z.ls_iter + 1, ~rejected & meets, insufficient_progress, low, b, bf, bg, bgtd)

    z = jax.lax.while_loop(zooming, zoom_step, zoom)
    evals = z.ls_iter + 1
    return Found(z.bracket_f[z.low], z.bracket_g[z.low], z.bracket[z.low], evals.astype(jnp.int32))
