"""The trials of the zoom line search (Nocedal & Wright 2006, "Numerical Optimization",
Algorithms 3.5 and 3.6) behind `scale_by_zoom_linesearch` (zoom_linesearch.py), as optax 0.2.8
computes them: a `jax.lax.while_loop` over trials of step sizes eta on the line w + eta u, each
one evaluating f and grad f there and checking the strong Wolfe conditions

    f(w + eta u) <= f(w) + c1 eta <grad f(w), u> + tol                (sufficient decrease)
    |<grad f(w + eta u), u>| <= c2 |<grad f(w), u>| + tol             (curvature)

(the decrease condition or Hager & Zhang's approximate one, see zoom_linesearch.py).

Algorithm 3.5 (`_search_interval`) grows eta by the increase factor until [low, high] brackets a
point satisfying both; Algorithm 3.6 (`_zoom`) then tries, inside the bracket of width
delta = |high - low|, the critical point of the cubic through (low, f, f'), (high, f) and the
previous point (scipy's `_cubicmin`) if it lies within [left + 0.2 delta, right - 0.2 delta],
else that of the quadratic through (low, f, f'), (high, f),

    eta = low - f'(low) / (2 C),   C = (f(high) - f(low) - f'(low) (high - low)) / (high - low)^2

if within [left + 0.1 delta, right - 0.1 delta], else the midpoint, and narrows the bracket to
it. A failed search (`max_linesearch_steps` trials, or a bracket narrower than
`stepsize_precision`) falls back to the best step size with sufficient decrease found, if
any, else to the last one tried.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt._src import base
from jopt._src.hparams import HParams
from jopt._src.transforms.loss_value import vdot


class _Search(NamedTuple):
    """One line search in progress (optax's `ZoomLinesearchState`, less what is fixed)."""

    count: jax.Array  # trials made
    stepsize: jax.Array  # the last step size tried, and f, grad f, slope there
    value: jax.Array
    grad: Any
    slope: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    interval_found: jax.Array  # Algorithm 3.5 is done: zooming (3.6)
    done: jax.Array
    failed: jax.Array
    low: jax.Array  # the bracket: f(low) <= f(high), and f, f' there
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array  # the third point of the cubic
    value_cubic_ref: jax.Array
    safe_stepsize: jax.Array  # the best step size with sufficient decrease (0: none yet)
    safe_value: jax.Array
    safe_grad: Any


class Line(NamedTuple):
    """What a search holds fixed: the start, the direction, f and its slope at eta = 0, eta_0."""

    params: Any
    updates: Any
    value_init: jax.Array
    slope_init: jax.Array
    guess: jax.Array


def _where(condition, if_true, if_false):
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), if_true, if_false)


def _slope_on_line(grad: Any, updates: Any) -> jax.Array:
    """<grad f, u>, the slope of eta -> f(w + eta u) (for complex params, Re sum(grad * u):
    JAX's gradient of a real loss is the conjugate of the steepest ascent direction)."""
    return jnp.real(vdot(jax.tree.map(jnp.conj, grad), updates))


class Rules:
    """The conditions and the trial points, from the hyperparameters of one update."""

    def __init__(self, hp: HParams, bound: Any, dt: Any):
        self.dt = dt
        self.c1 = hp["slope_rtol"].astype(dt)
        self.approx_factor = hp.derived["2c1-1"].astype(dt)
        self.c2 = None if bound["curv_rtol"] is None else hp["curv_rtol"].astype(dt)
        self.c3 = None if bound["approx_dec_rtol"] is None else hp["approx_dec_rtol"].astype(dt)
        self.tol = hp["tol"].astype(dt)
        self.increase = hp["increase_factor"].astype(dt)
        self.precision = hp["stepsize_precision"].astype(dt)
        self.max_steps = hp["max_linesearch_steps"]
        big = bound["max_learning_rate"]
        self.max_stepsize = None if big is None else hp["max_learning_rate"].astype(dt)

    def decrease_error(self, stepsize, value, slope, line: Line) -> jax.Array:
        """max(0, violation of the decrease condition) (inf for a NaN)."""
        error = value - line.value_init - self.c1 * stepsize * line.slope_init
        if self.c3 is not None:
            approximate = slope - self.approx_factor * line.slope_init
            near = value - line.value_init - self.c3 * jnp.abs(line.value_init)
            error = jnp.minimum(jnp.maximum(approximate, near), error)
        error = jnp.maximum(error, jnp.zeros_like(error))
        return jnp.where(jnp.isnan(error), jnp.full_like(error, jnp.inf), error)

    def curvature_error(self, slope, line: Line) -> jax.Array:
        """max(0, violation of the curvature condition) (inf for a NaN)."""
        if self.c2 is None:
            return jnp.zeros_like(slope)
        error = jnp.abs(slope) - self.c2 * jnp.abs(line.slope_init)
        error = jnp.maximum(error, jnp.zeros_like(error))
        return jnp.where(jnp.isnan(error), jnp.full_like(error, jnp.inf), error)


def _evaluate(value_and_grad, line: Line, stepsize):
    """f, grad f and the slope <grad f, u> at w + stepsize u."""

    def moved(w, u):
        dt = base.wider(w.dtype, u.dtype, stepsize.dtype)
        return (w.astype(dt) + stepsize.astype(dt) * u.astype(dt)).astype(w.dtype)

    step = jax.tree.map(moved, line.params, line.updates)
    value, grad = value_and_grad(step)
    return value, grad, _slope_on_line(grad, line.updates)


def _search_interval(search: _Search, line: Line, rules: Rules, value_and_grad) -> _Search:
    """One trial of Algorithm 3.5: a larger step size, until the bracket is found."""
    first = search.count == 0
    stepsize = jnp.where(first, line.guess, rules.increase * search.stepsize)
    reached = jnp.asarray(False)
    if rules.max_stepsize is not None:
        reached = stepsize >= rules.max_stepsize
        stepsize = jnp.minimum(stepsize, rules.max_stepsize)
    value, grad, slope = _evaluate(value_and_grad, line, stepsize)
    decrease = rules.decrease_error(stepsize, value, slope, line)
    curvature = rules.curvature_error(slope, line)
    error = jnp.maximum(decrease, curvature)
    safe = _where(
        decrease <= rules.tol,
        (stepsize, value, grad),
        (search.safe_stepsize, search.safe_value, search.safe_grad),
    )
    high_is_new = (decrease > 0.0) | ((value >= search.value) & ~first)
    low_is_new = (slope >= 0.0) & ~high_is_new
    previous = (search.stepsize, search.value, search.slope)
    new = (stepsize, value, slope)
    low, high = _where(low_is_new, (new, previous), (previous, new))
    found = high_is_new | low_is_new | (error <= rules.tol)
    done = (error <= rules.tol) | (reached & ~found)
    failed = (search.count + 1 >= rules.max_steps) & ~done
    return _Search(
        base.increment(search.count), stepsize, value, grad, slope, decrease, curvature,
        found, done, failed, *low, *high, low[0], low[1], *safe,
    )  # fmt: skip


def _cubicmin(a, fa, fpa, b, fb, c, fc):
    """The critical point of the cubic through (a, fa) with slope fpa, (b, fb) and (c, fc)
    (NaN if there is none); scipy's `_cubicmin`, as optax writes it."""
    db, dc = b - a, c - a
    denom = (db * dc) ** 2 * (db - dc)
    d1 = jnp.array([[dc**2, -(db**2)], [-(dc**3), db**3]])
    rhs = jnp.array([fb - fa - fpa * db, fc - fa - fpa * dc])
    big_a, big_b = jnp.dot(d1, rhs, precision=jax.lax.Precision.HIGHEST) / denom
    radical = big_b * big_b - 3.0 * big_a * fpa
    return a + (-big_b + jnp.sqrt(radical)) / (3.0 * big_a)


def _quadmin(a, fa, fpa, b, fb):
    """The critical point of the quadratic through (a, fa) with slope fpa and (b, fb)."""
    db = b - a
    curvature = (fb - fa - fpa * db) / (db**2)
    return a - fpa / (2.0 * curvature)


def _zoom(search: _Search, line: Line, rules: Rules, value_and_grad) -> _Search:
    """One trial of Algorithm 3.6: a point inside the bracket, which then narrows."""
    low, value_low, slope_low = search.low, search.value_low, search.slope_low
    high, value_high, slope_high = search.high, search.value_high, search.slope_high
    delta = jnp.abs(high - low)
    left, right = jnp.minimum(high, low), jnp.maximum(high, low)
    cubic_margin, quad_margin = 0.2 * delta, 0.1 * delta
    too_small = delta <= rules.precision
    cubic = _cubicmin(
        low, value_low, slope_low, high, value_high, search.cubic_ref, search.value_cubic_ref
    )
    use_cubic = (cubic > left + cubic_margin) & (cubic < right - cubic_margin)
    quad = _quadmin(low, value_low, slope_low, high, value_high)
    use_quad = ~use_cubic & (quad > left + quad_margin) & (quad < right - quad_margin)
    middle = jnp.where(use_cubic, cubic, search.cubic_ref)
    middle = jnp.where(use_quad, quad, middle)
    middle = jnp.where(~use_cubic & ~use_quad, (low + high) / 2.0, middle)
    value, grad, slope = _evaluate(value_and_grad, line, middle)
    decrease = rules.decrease_error(middle, value, slope, line)
    curvature = rules.curvature_error(slope, line)
    error = jnp.maximum(decrease, curvature)
    better = (decrease <= rules.tol) & (value < search.safe_value)
    safe = _where(
        better,
        (middle, value, grad),
        (search.safe_stepsize, search.safe_value, search.safe_grad),
    )
    done = error <= rules.tol
    high_to_middle = (decrease > 0.0) | (value >= value_low)
    high_to_low = (slope * (high - low) >= 0.0) & ~high_to_middle
    new = (middle, value, slope)
    bracket_high = _where(high_to_middle, new, (high, value_high, slope_high))
    bracket_high = _where(high_to_low, (low, value_low, slope_low), bracket_high)
    bracket_low = _where(~high_to_middle, new, (low, value_low, slope_low))
    cubic_ref = _where(high_to_middle | high_to_low, (high, value_high), (low, value_low))
    gave_up = (search.count + 1 >= rules.max_steps) | (too_small & (safe[0] > 0.0))
    return _Search(
        base.increment(search.count), middle, value, grad, slope, decrease, curvature,
        search.interval_found, done, gave_up & ~done, *bracket_low, *bracket_high, *cubic_ref,
        *safe,
    )  # fmt: skip


def _fall_back(search: _Search) -> _Search:
    """After a failed search: the best step size with sufficient decrease found, if any (or if
    the last trial left f's domain), else the last one tried."""
    outside = jnp.isinf(search.decrease_error)
    stepsize, value, grad = _where(
        (search.safe_stepsize > 0.0) | outside,
        (search.safe_stepsize, search.safe_value, search.safe_grad),
        (search.stepsize, search.value, search.grad),
    )
    return search._replace(stepsize=stepsize, value=value, grad=grad)


def cast_like(tree, like):
    return jax.tree.map(lambda x, y: jnp.asarray(x).astype(jnp.result_type(y)), tree, like)


def line_search(line: Line, rules: Rules, value_and_grad, grad: Any, value: Any) -> _Search:
    """Algorithms 3.5 and 3.6 from eta = 0, until a step size is found or the search fails."""
    dt = rules.dt
    inf = jnp.asarray(jnp.inf, dt)
    zero = jnp.zeros([], dt)
    false = jnp.asarray(False)
    start = _Search(
        jnp.zeros([], jnp.int32), zero, jnp.asarray(value, dt), grad, line.slope_init, inf, inf,
        false, false, false, zero, value, line.slope_init, zero, value, line.slope_init, zero,
        value, zero, value, grad,
    )  # fmt: skip

    def trial(search):
        new = jax.lax.cond(
            search.interval_found,
            functools.partial(_zoom, line=line, rules=rules, value_and_grad=value_and_grad),
            functools.partial(
                _search_interval, line=line, rules=rules, value_and_grad=value_and_grad
            ),
            search,
        )
        new = jax.lax.cond(new.failed, _fall_back, lambda s: s, new)
        return cast_like(new, search)

    return jax.lax.while_loop(lambda s: ~(s.done | s.failed), trial, start)
