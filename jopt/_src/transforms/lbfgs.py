"""L-BFGS (Nocedal 1980, "Updating Quasi-Newton Matrices with Limited Storage"; Liu & Nocedal
1989, "On the Limited Memory BFGS Method for Large Scale Optimization"): the gradient multiplied
by an approximation H of the inverse Hessian built from the last m = `memory_size` differences of
params and gradients, then a step along -H g by a line search.

With s_i = w_{i+1} - w_i, y_i = g_{i+1} - g_i and rho_i = 1 / <y_i, s_i> (0 where <y_i, s_i> = 0),
H g is the two-loop recursion (Nocedal & Wright 2006, "Numerical Optimization", Algorithm 7.4):

    q = g;  for i = k-1, ..., k-m:  a_i = rho_i <s_i, q>;  q = q - a_i y_i
    r = gamma_k q,   gamma_k = <s_{k-1}, y_{k-1}> / <y_{k-1}, y_{k-1}>      (eq. 7.20)
    for i = k-m, ..., k-1:  b = rho_i <y_i, r>;  r = r + (a_i - b) s_i
    w = w - eta r          eta from the line search (default: `scale_by_zoom_linesearch`)

At the first step (no pair yet) gamma_0 = min(1, 1 / ||g||): optax's choice (the references leave
it open), a first step of length at most 1. `scale_init_precond=False` takes gamma_k = 1. Pairs
with <y, s> <= 0, which the strong Wolfe conditions exclude, are kept (as optax): the zoom line
search ensures <y, s> > 0 when it succeeds.

As `optax.lbfgs` 0.2.8, bitwise: `chain(scale_by_lbfgs(...), scale(-1) or the learning rate,
linesearch)`, whose `update` needs the loss, its gradient and the loss function:

    value_and_grad = optax.value_and_grad_from_state(f)
    value, grad = value_and_grad(params, state=state)
    updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)

The memory is part of the program (its size fixes the state's shapes). The zoom line search's
numbers are `lbfgs`'s keyword arguments (`jopt.lbfgs(curv_rtol=0.5)`), kept in its state
(`jopt.get_hparams`, `jopt.set_hparams`); optax's way, a `linesearch` transform, works too.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, stateful, validation
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams, default_float
from jopt._src.spec import Choice, Flag, HParam, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.loss_value import sq_norm, vdot
from jopt._src.transforms.zoom_linesearch import (
    SCALE_BY_ZOOM_LINESEARCH,
    scale_by_zoom_linesearch,
)
from jopt._src.validation import Range

# The memory fixes the state's shapes: a constant of the program, not a number in the state.
MEMORY_SIZE = HParam("memory_size", "int", Range(1.0), in_state=False)
SCALE_INIT_PRECOND = Flag("scale_init_precond")
SCALE_BY_LBFGS = Spec(MEMORY_SIZE, SCALE_INIT_PRECOND)


class ScaleByLBFGSState(NamedTuple):
    """optax's `ScaleByLBFGSState`, with the hyperparameters (none: the memory is fixed)."""

    count: jax.Array  # steps taken, int32, saturating
    params: optax.Params  # the params at the last update
    updates: optax.Updates  # the gradients at the last update
    diff_params_memory: optax.Params  # s_i, stacked on a leading axis of memory_size
    diff_updates_memory: optax.Updates  # y_i, stacked likewise
    weights_memory: jax.Array  # rho_i = 1 / <y_i, s_i> (0 for an empty slot)
    hparams: HParams  # none


def _real_vdot(x: Any, y: Any) -> jax.Array:
    return jnp.real(vdot(x, y))


def _two_loop(updates, s_memory, y_memory, rhos, gamma, oldest) -> Any:
    """H g by Algorithm 7.4, the memory read in circular order from slot `oldest` (the oldest
    pair once the memory is full; empty slots have rho = 0 and change nothing)."""
    size = rhos.shape[0]
    order = (oldest + jnp.arange(size, dtype=jnp.result_type(oldest))) % size

    def first_loop(q, i):
        s, y = jax.tree.map(lambda x: x[i], (s_memory, y_memory))
        a = rhos[i] * _real_vdot(s, q)
        return _add_scaled(q, -a, y), a

    q, alphas = jax.lax.scan(first_loop, updates, order, reverse=True)
    r = jax.tree.map(lambda x: _scaled(gamma, x), q)

    def second_loop(r, i_a):
        i, a = i_a
        s, y = jax.tree.map(lambda x: x[i], (s_memory, y_memory))
        b = rhos[i] * _real_vdot(y, r)
        return _add_scaled(r, a - b, s), b

    r, _ = jax.lax.scan(second_loop, r, (order, alphas))
    return r


def _scaled(scalar: jax.Array, x: jax.Array) -> jax.Array:
    """scalar * x, computed in the wider dtype (float32 at least), in x's dtype."""
    dt = base.wider(scalar.dtype, x.dtype)
    return (scalar.astype(dt) * x.astype(dt)).astype(x.dtype)


def _add_scaled(x: Any, scalar: jax.Array, y: Any) -> Any:
    """x + scalar * y, computed in the wider dtype (float32 at least), in x's dtypes."""

    def leaf(a, b):
        dt = base.wider(a.dtype, b.dtype, scalar.dtype)
        return (a.astype(dt) + scalar.astype(dt) * b.astype(dt)).astype(a.dtype)

    return jax.tree.map(leaf, x, y)


@errors.public("jopt.scale_by_lbfgs")
def scale_by_lbfgs(
    memory_size: int = 10, scale_init_precond: bool = True
) -> optax.GradientTransformationExtraArgs:
    """Multiplies the updates by L-BFGS's inverse Hessian approximation H (the module docstring:
    the two-loop recursion); a drop-in for `optax.scale_by_lbfgs`. `update` needs the params.

    Args:
      memory_size: m, the number of (s, y) pairs kept, an integer >= 1 (fixed: it sets the
        state's shapes).
      scale_init_precond: start the recursion from gamma_k I (N&W eq. 7.20; min(1, 1 / ||g||) at
        the first step) rather than I.
    """
    bound = SCALE_BY_LBFGS.bind(
        errors.current_function(), memory_size=memory_size, scale_init_precond=scale_init_precond
    )
    size = bound["memory_size"]

    def buffers(params):
        def stacked(x):
            return jnp.zeros((size, *jnp.shape(x)), jnp.result_type(x))

        return {
            "params": base.zeros_like(params),
            "updates": base.zeros_like(params),
            "diff_params_memory": jax.tree.map(stacked, params),
            "diff_updates_memory": jax.tree.map(stacked, params),
            "weights_memory": jnp.zeros([size], default_float()),
        }

    def step(updates, state, hp, count, params):
        before = state.count
        oldest, previous = before % size, (before - 1) % size
        started = before > 0
        s = jax.tree.map(lambda p, q: p - q, params, state.params)
        y = jax.tree.map(lambda g, h: g - h, updates, state.updates)
        curvature = _real_vdot(y, s)
        rho = jnp.where(curvature == 0.0, jnp.zeros_like(curvature), 1.0 / curvature)
        s, y, rho = jax.tree.map(lambda x: jnp.where(started, x, jnp.zeros_like(x)), (s, y, rho))
        s_memory, y_memory, rhos = jax.tree.map(
            lambda memory, new: memory.at[previous].set(new),
            (state.diff_params_memory, state.diff_updates_memory, state.weights_memory),
            (s, y, rho),
        )
        gamma = jnp.ones([])
        if bound["scale_init_precond"]:
            y_norm = sq_norm(y)
            scaled = jnp.where(y_norm > 0.0, _real_vdot(y, s) / y_norm, jnp.ones_like(y_norm))
            first = jnp.minimum(1.0, 1.0 / jnp.sqrt(sq_norm(jax.lax.stop_gradient(updates))))
            gamma = jnp.where(started, scaled, first)
        direction = _two_loop(updates, s_memory, y_memory, rhos, gamma, oldest)
        new = {
            "params": params,
            "updates": updates,
            "diff_params_memory": s_memory,
            "diff_updates_memory": y_memory,
            "weights_memory": rhos,
        }
        return direction, new

    return stateful_transform(
        bound, ScaleByLBFGSState, buffers, step, matches=("updates", "params"), needs_params=True
    )


class NegateState(NamedTuple):
    schedule_count: jax.Array  # steps taken, int32, saturating (not `count`: stateful.py)
    hparams: HParams  # none


def _negate() -> optax.GradientTransformationExtraArgs:
    """u -> -u (optax's `scale(-1.0)`), where no learning rate is given."""
    bound = Spec().bind(errors.current_function())

    def step(updates, state, hp, count, params):
        return jax.tree.map(lambda u: -1.0 * u, updates), {}

    return stateful_transform(bound, NegateState, lambda params: {}, step)


LINESEARCH = Choice("linesearch", ("zoom",)).as_optional()
LBFGS = Spec(
    LEARNING_RATE.as_optional(),
    MEMORY_SIZE,
    SCALE_INIT_PRECOND,
    LINESEARCH,
    *SCALE_BY_ZOOM_LINESEARCH,  # the zoom line search's numbers, in its state
)


@errors.public("jopt.lbfgs")
def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: Any = "zoom",
    *,
    max_linesearch_steps: int = 20,
    max_learning_rate: float | None = None,
    tol: float = 0.0,
    increase_factor: float = 2.0,
    slope_rtol: float = 1e-4,
    curv_rtol: float | None = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
    initial_guess_strategy: str = "one",
) -> optax.GradientTransformationExtraArgs:
    """L-BFGS with a zoom line search (the module docstring); a drop-in for `optax.lbfgs`.

        d = -H g (two-loop recursion, memory m);   w = w + eta d   (eta: strong Wolfe)

    Args:
      learning_rate: a factor of the direction, >= 0, or a schedule; None (default): 1, the
        step size being the line search's.
      memory_size: m, the (s, y) pairs kept, an integer >= 1. Default 10.
      scale_init_precond: gamma_k I as the recursion's start (see `scale_by_lbfgs`).
      linesearch: "zoom" (default): `jopt.scale_by_zoom_linesearch` with the numbers below
        (its defaults are optax.lbfgs's: 20 trials, each search from eta = 1); None: no line
        search (the step is the learning rate's); or any optax transform, as optax takes it
        (the numbers below then stay at their defaults: they are the zoom line search's).
      max_linesearch_steps, max_learning_rate, tol, increase_factor, slope_rtol, curv_rtol,
        approx_dec_rtol, stepsize_precision, initial_guess_strategy: the zoom line search's
        (see `scale_by_zoom_linesearch`), kept in its state.

    Warning: the memory is m copies of the params and gradients: for small and medium problems,
    with full-batch losses (the line search evaluates the loss at several points).
    """
    fn = errors.current_function()
    numbers = {
        "max_linesearch_steps": max_linesearch_steps,
        "max_learning_rate": max_learning_rate,
        "tol": tol,
        "increase_factor": increase_factor,
        "slope_rtol": slope_rtol,
        "curv_rtol": curv_rtol,
        "approx_dec_rtol": approx_dec_rtol,
        "stepsize_precision": stepsize_precision,
        "initial_guess_strategy": initial_guess_strategy,
    }
    given = isinstance(linesearch, optax.GradientTransformation)
    bound = LBFGS.bind(
        fn,
        learning_rate=learning_rate,
        memory_size=memory_size,
        scale_init_precond=scale_init_precond,
        **({} if given else {"linesearch": linesearch}),
    )
    changed = sorted(name for name, value in numbers.items() if value != _ZOOM_DEFAULTS[name])
    chosen = "a transform" if given else repr(bound["linesearch"])
    validation.require(
        fn,
        bound.values.get("linesearch") == "zoom" or not changed,
        f"{', '.join(changed)} set the zoom line search, but linesearch is {chosen}: leave "
        "linesearch at 'zoom' (the default), or set them in the line search given.",
        argument=changed[0] if changed else None,
        value=numbers[changed[0]] if changed else None,
    )
    if given:
        search = linesearch
    elif bound["linesearch"] == "zoom":
        search = scale_by_zoom_linesearch(**numbers)
    else:
        search = None
    blocks = [
        scale_by_lbfgs(bound["memory_size"], bound["scale_init_precond"]),
        _negate() if learning_rate is None else scale_by_learning_rate(learning_rate),
    ]
    return stateful.chain(*blocks, *([] if search is None else [search]))


# The numbers of lbfgs's zoom line search, by default optax.lbfgs's.
_ZOOM_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(lbfgs).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
}
