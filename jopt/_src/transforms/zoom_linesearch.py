"""A line search for the strong Wolfe conditions (Nocedal & Wright 2006, "Numerical
Optimization", Algorithms 3.5 and 3.6, the zoom line search), as `optax.scale_by_zoom_linesearch`
0.2.8 computes it: it scales the update direction u by a step size eta with

    f(w + eta u) <= f(w) + c1 eta <grad f(w), u> + tol                (sufficient decrease)
    |<grad f(w + eta u), u>| <= c2 |<grad f(w), u>| + tol             (curvature)

c1 = `slope_rtol`, c2 = `curv_rtol`. Near a minimum, where f's differences fall below rounding,
the decrease condition may be met instead by Hager & Zhang's (2006, "Algorithm 851: CG_DESCENT",
eq. 23) approximate one, <grad f(w + eta u), u> <= (2 c1 - 1) <grad f(w), u>, taken when
f(w + eta u) <= f(w) + c3 |f(w)| (c3 = `approx_dec_rtol`; None: Armijo's alone).

Algorithm 3.5 tries eta_0 (1, or the last step size: `initial_guess_strategy`), then multiplies
it by `increase_factor` until it brackets a point that satisfies both conditions; Algorithm 3.6
then shrinks the bracket [low, high] (f(low) <= f(high)) with the minimizer of the cubic through
(low, f, f'), (high, f) and the previous point, if it lies in the middle 60% of the bracket, else
of the quadratic through (low, f, f'), (high, f), if in the middle 80%, else the midpoint.
The search stops at a point satisfying both conditions, or after `max_linesearch_steps` trials
(or a bracket narrower than `stepsize_precision`), taking then the best point with sufficient
decrease found, if any (otherwise the last one tried).

`update` needs the loss, its gradient and the loss function: `update(u, state, params,
value=f(params), grad=grad f(params), value_fn=f, **f's other keyword arguments)`. The state
keeps the value and gradient at the step taken, which `optax.value_and_grad_from_state(f)`
reads back for the next update (one evaluation of f per step saved). The numbers (c1, c2, c3,
tol, the increase factor, the precision, the largest step and the number of trials) are in the
state: `jopt.get_hparams`, `jopt.set_hparams`.

Differences from optax: `curv_rtol=None` (or inf, optax's way) turns the curvature condition off;
`verbose` printing from inside the program is not offered (read `state.info`).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, validation
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Float, HParam, Spec
from jopt._src.transforms.loss_value import check_value, keyword_transform, vdot
from jopt._src.transforms.zoom_search import Line, Rules, cast_like, line_search
from jopt._src.validation import NON_NEGATIVE, POSITIVE, Range


def twice_minus_one(c1: Any) -> Any:
    """2 c1 - 1, the approximate decrease condition's factor (from float64, rounded once)."""
    return 2 * c1 - 1.0


MAX_LINESEARCH_STEPS = HParam("max_linesearch_steps", "int", Range(1.0))
MAX_LEARNING_RATE = Float("max_learning_rate", POSITIVE).as_optional()
TOL = Float("tol", NON_NEGATIVE)
INCREASE_FACTOR = Float("increase_factor", Range(1.0, lo_open=True))
SLOPE_RTOL = Float("slope_rtol", Range(0.0, 1.0, lo_open=True, hi_open=True))
CURV_RTOL = Float("curv_rtol", POSITIVE).as_optional()
APPROX_DEC_RTOL = Float("approx_dec_rtol", NON_NEGATIVE).as_optional()
STEPSIZE_PRECISION = Float("stepsize_precision", NON_NEGATIVE)
INITIAL_GUESS = Choice("initial_guess_strategy", ("one", "keep"))
SCALE_BY_ZOOM_LINESEARCH = Spec(
    MAX_LINESEARCH_STEPS,
    MAX_LEARNING_RATE,
    TOL,
    INCREASE_FACTOR,
    SLOPE_RTOL,
    CURV_RTOL,
    APPROX_DEC_RTOL,
    STEPSIZE_PRECISION,
    INITIAL_GUESS,
    derived={"2c1-1": ("slope_rtol", twice_minus_one)},
)


class ZoomLinesearchInfo(NamedTuple):
    """The last search's outcome (optax's `ZoomLinesearchInfo`): errors > 0 are conditions the
    step taken does not meet."""

    num_linesearch_steps: jax.Array  # trials made
    decrease_error: jax.Array  # by how much the decrease condition fails (0: met)
    curvature_error: jax.Array  # by how much the curvature condition fails (0: met)


class ScaleByZoomLinesearchState(NamedTuple):
    """optax's `ScaleByZoomLinesearchState`, with the hyperparameters."""

    schedule_count: jax.Array  # updates made, int32, saturating (not `count`: stateful.py)
    learning_rate: jax.Array  # the step size eta found by the last search
    value: jax.Array  # f at the step taken (inf before the first update)
    grad: optax.Updates  # grad f at the step taken
    info: ZoomLinesearchInfo  # how the last search went
    hparams: HParams  # max_linesearch_steps, [max_learning_rate], tol, ... (see the Spec)


def value_fn_kwargs(fn: str, value_fn: Callable, extra_args: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `update` that `value_fn` takes; a TypeError for the others."""
    accepted = inspect.signature(value_fn).parameters
    unused = sorted(key for key in extra_args if key not in accepted)
    if unused:
        raise TypeError(
            f"{fn}: update was given keyword arguments that value_fn does not take: {unused}. "
            "Extra keyword arguments of update are passed to value_fn."
        )
    return dict(extra_args)


@errors.public("jopt.scale_by_zoom_linesearch")
def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: float | None = None,
    tol: float = 0.0,
    increase_factor: float = 2.0,
    slope_rtol: float = 1e-4,
    curv_rtol: float | None = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Scales the direction u by a step size satisfying the strong Wolfe conditions (the module
    docstring); a drop-in for `optax.scale_by_zoom_linesearch`.

    Args:
      max_linesearch_steps: trials per search, an integer >= 1.
      max_learning_rate: the largest step size, > 0 (None: no limit). A limit can keep the
        curvature condition from being met.
      tol: the conditions' absolute tolerance, >= 0.
      increase_factor: the step size's growth while bracketing, > 1.
      slope_rtol: c1 of the decrease condition, in (0, 1).
      curv_rtol: c2 of the curvature condition, > c1 (N&W: in (c1, 1)); None (or inf) drops the
        condition, leaving a backtracking search for sufficient decrease.
      approx_dec_rtol: c3, >= 0, where Hager & Zhang's approximate decrease condition may stand
        in for Armijo's; None: Armijo's alone.
      stepsize_precision: the bracket's width below which the best step size with sufficient
        decrease is taken, >= 0.
      initial_guess_strategy: the first trial, "one" (1) or "keep" (the last step size).
      verbose: must be False (jopt's programs print nothing; read `state.info`).
    """
    fn = errors.current_function()
    if isinstance(curv_rtol, float) and math.isinf(curv_rtol) and curv_rtol > 0:
        curv_rtol = None  # optax's way of dropping the condition
    bound = SCALE_BY_ZOOM_LINESEARCH.bind(
        fn,
        max_linesearch_steps=max_linesearch_steps,
        max_learning_rate=max_learning_rate,
        tol=tol,
        increase_factor=increase_factor,
        slope_rtol=slope_rtol,
        curv_rtol=curv_rtol,
        approx_dec_rtol=approx_dec_rtol,
        stepsize_precision=stepsize_precision,
        initial_guess_strategy=initial_guess_strategy,
    )
    validation.require(
        fn,
        bound["curv_rtol"] is None or bound["slope_rtol"] < bound["curv_rtol"],
        f"slope_rtol must be < curv_rtol (0 < c1 < c2: the strong Wolfe conditions then have "
        f"a solution), got {slope_rtol!r} >= {curv_rtol!r}.",
        argument="curv_rtol",
        value=curv_rtol,
    )
    validation.require(
        fn,
        validation.check_bool(fn, "verbose", verbose) is False,
        "verbose=True is not offered: jopt's programs print nothing. The state's info holds "
        "the last search's number of steps and its decrease and curvature errors.",
        argument="verbose",
        value=verbose,
    )

    def buffers(params):
        dt = _scalar_dtype(params)
        return {
            "learning_rate": jnp.ones([], dt),
            "value": jnp.full([], jnp.inf, dt),
            "grad": base.zeros_like(params),
            "info": ZoomLinesearchInfo(
                jnp.zeros([], jnp.int32), jnp.full([], jnp.inf, dt), jnp.full([], jnp.inf, dt)
            ),
        }

    def read(extra_args):
        value = check_value(fn, extra_args.pop("value", None))
        grad, value_fn = extra_args.pop("grad", None), extra_args.pop("value_fn", None)
        if grad is None or value_fn is None:
            raise ValueError(
                f"{fn}: needs the loss, its gradient and the loss function: call update(updates, "
                "state, params, value=f(params), grad=grad_f(params), value_fn=f), with value "
                "and grad from optax.value_and_grad_from_state(f)(params, state=state)."
            )
        validation.check_callable(fn, "value_fn", value_fn, "a callable params -> loss")
        return value, grad, value_fn, value_fn_kwargs(fn, value_fn, extra_args)

    def step(updates, state, hp, count, params, given):
        value, grad, value_fn, fn_kwargs = given
        base.check_tree(fn, grad, params, "params")
        dt = state.learning_rate.dtype
        rules = Rules(hp, bound, dt)
        guess = state.learning_rate if bound["initial_guess_strategy"] == "keep" else None
        line = Line(
            params,
            updates,
            value,
            jnp.real(vdot(updates, grad)),  # optax's slope at eta = 0
            jnp.ones([], dt) if guess is None else guess,
        )
        value_and_grad = jax.value_and_grad(functools.partial(value_fn, **fn_kwargs))
        found = line_search(line, rules, value_and_grad, grad, value)
        out = jax.tree.map(lambda u: _scaled(found.stepsize, u), updates)
        info = ZoomLinesearchInfo(found.count, found.decrease_error, found.curvature_error)
        new = {"learning_rate": found.stepsize, "value": found.value, "grad": found.grad}
        return out, {**new, "info": cast_like(info, state.info)}

    return keyword_transform(
        bound, ScaleByZoomLinesearchState, buffers, step, read, needs_params=True
    )


def _scaled(scalar: jax.Array, x: jax.Array) -> jax.Array:
    """scalar * x, computed in the wider dtype (float32 at least), in x's dtype."""
    dt = base.wider(scalar.dtype, x.dtype)
    return (scalar.astype(dt) * x.astype(dt)).astype(x.dtype)


def _scalar_dtype(params: Any) -> Any:
    """optax's: the real dtype of the params' first leaf (float32 at least)."""
    first = jax.tree.leaves(params)[0]
    return base.compute_dtype(jnp.finfo(jnp.result_type(first)).dtype)
