"""torch.optim.LBFGS (torch 2.13) as a jopt transform: same name, arguments, defaults, numbers.

One `update` is one `optimizer.step(closure)`: up to `max_iter` L-BFGS iterations (Nocedal 1980;
Liu & Nocedal 1989), each a step along d = -H g, H the inverse Hessian approximation of the two-loop
recursion (Nocedal & Wright 2006, Algorithm 7.4) over the last `history_size` pairs

    s = t d,   y = g_new - g,   kept when <y, s> > 1e-10;   H_0 = <y, s> / <y, y> I (newest pair)

with step size t = lr (at the very first iteration min(1, 1 / ||g||_1) lr), or the one torch's
strong Wolfe line search finds from there (`line_search_fn="strong_wolfe"`, `torch_strong_wolfe`).
A step stops early, as torch's does, when max |g| <= tolerance_grad, when <g, d> >
-tolerance_change, when max |t d| or the change of the loss is below tolerance_change, or when
the loss has been evaluated max_eval times.

torch's closure is `value_fn`, the extra argument optax's line searches read; torch's first call
of it is the loss and gradient at the params, which `update` is given:

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params, value=loss, value_fn=loss_fn)

(`jopt.train_step(loss_fn, tx)` does this in one jitted step and returns the loss at the params,
as `optimizer.step(closure)` does). The iterations and the line search are `jax.lax.while_loop`s
in one program, which calls `value_fn` inside them (other keyword arguments of `update` are
passed to it, as the batch would be).

Like torch's, the state is global: the params flattened into one vector (in the params' common
dtype), with torch's `d`, `t`, `old_dirs`, `old_stps`, `ro`, `H_diag` (here `h_diag`),
`prev_flat_grad`, `prev_loss`, `n_iter` and `func_evals`; the history is `history_size` rows, the
oldest first, of which `history_len` are in use. `lr`, `tolerance_grad`, `tolerance_change`,
`max_iter` and `max_eval` are in the state (`jopt.set_hparams`, as `param_groups[0][...] = ...`);
`lr` may be a schedule of the step count, as an lr_scheduler would set it. `history_size` fixes
the state's shapes.

Stricter than torch: `max_iter`, `max_eval` and `history_size` must be integers >= 1 (torch fails
later, inside `step`, on history_size=0 or max_eval=0 with the line search), the tolerances
numbers >= 0. Complex parameters are refused (torch views them as pairs of reals). Memory: two
`history_size` by n arrays (the default 100 makes 200 copies of the params), as in torch.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jopt._src import base, errors, validation
from jopt._src.base import ScalarOrSchedule, Transform
from jopt._src.conventions import torch_arguments as checks
from jopt._src.conventions.torch_strong_wolfe import strong_wolfe
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Float, Int, Spec
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.loss_value import check_value, keyword_transform
from jopt._src.transforms.zoom_linesearch import value_fn_kwargs
from jopt._src.validation import NON_NEGATIVE

CURVATURE_THRESHOLD = 1e-10  # torch keeps a pair (s, y) only when <y, s> exceeds this
HISTORY_SIZE = Int("history_size", minimum=1, in_state=False)  # fixes the state's shapes
TORCH_LBFGS = Spec(
    LEARNING_RATE,
    Int("max_iter", minimum=1),
    Int("max_eval", minimum=1),
    Float("tolerance_grad", NON_NEGATIVE),
    Float("tolerance_change", NON_NEGATIVE),
    HISTORY_SIZE,
    Choice("line_search_fn", ("strong_wolfe",)).as_optional(),
)


class TorchLBFGSState(NamedTuple):
    count: jax.Array  # steps (closure calls of torch's step), int32, saturating
    func_evals: jax.Array  # loss evaluations, all steps (torch's state["func_evals"])
    n_iter: jax.Array  # iterations, all steps (torch's state["n_iter"])
    d: jax.Array  # the last direction, flat
    t: jax.Array  # the last step size
    old_dirs: jax.Array  # y of each pair kept, (history_size, n), oldest first
    old_stps: jax.Array  # s of each pair
    ro: jax.Array  # 1 / <y, s> of each pair, (history_size,)
    history_len: jax.Array  # pairs kept, int32
    h_diag: jax.Array  # <y, s> / <y, y> of the newest pair (1 before any)
    prev_flat_grad: jax.Array  # the gradient at the start of the last iteration
    prev_loss: jax.Array  # the loss there
    hparams: HParams  # learning_rate, max_iter, max_eval, tolerance_grad, tolerance_change


class _Iterating(NamedTuple):
    """One step's iterations in progress: the point reached, and the state's fields."""

    n_iter: jax.Array  # iterations of this step
    current_evals: jax.Array  # evaluations of this step
    stop: jax.Array
    opt_cond: jax.Array  # max |g| <= tolerance_grad at the last evaluation
    x: jax.Array
    loss: jax.Array
    g: jax.Array
    state: dict[str, jax.Array]  # TorchLBFGSState's fields from func_evals to prev_loss


def _flat(tree: Any) -> jax.Array:
    return ravel_pytree(tree)[0]


def _check_real(fn: str, params: Any) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if jnp.iscomplexobj(leaf):
            where = jax.tree_util.keystr(path) or "<root>"
            raise TypeError(f"{fn}: LBFGS does not support complex parameters (at {where}).")


def two_loop(q, old_dirs, old_stps, ro, history_len, h_diag) -> jax.Array:
    """H q by the two-loop recursion over the pairs in use, newest first then oldest first, in
    torch's order of operations."""

    def newest_first(k, carry):
        q, al = carry
        i = history_len - 1 - k
        a = jnp.dot(old_stps[i], q) * ro[i]
        return q + (-a) * old_dirs[i], al.at[i].set(a)

    q, al = jax.lax.fori_loop(0, history_len, newest_first, (q, jnp.zeros_like(ro)))

    def oldest_first(i, r):
        be_i = jnp.dot(old_dirs[i], r) * ro[i]
        return r + (al[i] - be_i) * old_stps[i]

    return jax.lax.fori_loop(0, history_len, oldest_first, q * h_diag)


def _remember(state: dict[str, jax.Array], y: jax.Array, s: jax.Array, ys: jax.Array) -> dict:
    """The history with (y, s) appended, the oldest pair dropped when it is full."""
    size = state["ro"].shape[0]
    full = state["history_len"] == size
    slot = jnp.minimum(state["history_len"], size - 1)

    def append(rows, new):
        rows = jnp.where(full, jnp.roll(rows, -1, axis=0), rows)
        return rows.at[slot].set(new)

    return state | {
        "old_dirs": append(state["old_dirs"], y),
        "old_stps": append(state["old_stps"], s),
        "ro": append(state["ro"], 1.0 / ys),
        "history_len": jnp.minimum(state["history_len"] + 1, size),
        "h_diag": ys / jnp.dot(y, y),
    }


def _lbfgs_step(hp: HParams, line_search: bool, evaluate, x, loss, g, state) -> tuple:
    """torch's `step` after its first evaluation: the iterations, the point reached, the state."""
    dt = x.dtype
    lr = hp["learning_rate"].astype(dt)
    tolerance_grad = hp["tolerance_grad"].astype(dt)
    tolerance_change = hp["tolerance_change"].astype(dt)
    max_iter, max_eval = hp["max_iter"], hp["max_eval"]

    def optimal(g):
        return jnp.max(jnp.abs(g)) <= tolerance_grad

    def iterate(c: _Iterating) -> _Iterating:
        n_iter = c.n_iter + 1
        st = c.state | {"n_iter": base.increment(c.state["n_iter"])}
        first = st["n_iter"] == 1
        y, s = c.g - st["prev_flat_grad"], st["d"] * st["t"]
        ys = jnp.dot(y, s)
        st = jax.lax.cond(
            ~first & (ys > CURVATURE_THRESHOLD),
            lambda st: _remember(st, y, s, ys),
            lambda st: st,
            st,
        )
        d = jnp.where(
            first,
            -c.g,
            two_loop(
                -c.g, st["old_dirs"], st["old_stps"], st["ro"], st["history_len"], st["h_diag"]
            ),
        )
        t = jnp.where(first, jnp.minimum(1.0, 1.0 / jnp.sum(jnp.abs(c.g))) * lr, lr)
        st |= {"d": d, "prev_flat_grad": c.g, "prev_loss": c.loss}
        gtd = jnp.dot(c.g, d)
        flat = gtd > -tolerance_change

        def stay(_):
            return c.x, c.loss, c.g, t, c.opt_cond, jnp.zeros([], jnp.int32)

        def move(_):
            if line_search:
                along = lambda t: evaluate(c.x + t * d)  # noqa: E731
                found = strong_wolfe(along, t, d, c.loss, c.g, gtd, max_eval - c.current_evals)
                x = c.x + found.t * d
                return x, found.value, found.grad, found.t, optimal(found.grad), found.evals
            x = c.x + t * d

            def last(_):  # torch does not evaluate after the last iteration
                return c.loss, c.g, c.opt_cond, jnp.zeros([], jnp.int32)

            def again(_):
                loss, g = evaluate(x)
                return loss, g, optimal(g), jnp.ones([], jnp.int32)

            loss, g, opt_cond, evals = jax.lax.cond(n_iter == max_iter, last, again, None)
            return x, loss, g, t, opt_cond, evals

        x, loss, g, t, opt_cond, evals = jax.lax.cond(flat, stay, move, None)
        current_evals = c.current_evals + evals
        st |= {"t": t, "func_evals": st["func_evals"] + evals}
        stop = (
            flat
            | (n_iter == max_iter)
            | (current_evals >= max_eval)
            | opt_cond
            | (jnp.max(jnp.abs(d * t)) <= tolerance_change)
            | (jnp.abs(loss - c.loss) < tolerance_change)
        )
        return _Iterating(n_iter, current_evals, stop, opt_cond, x, loss, g, st)

    opt_cond = optimal(g)
    evals = jnp.ones([], jnp.int32)  # the evaluation at the params, update's arguments
    start = _Iterating(jnp.zeros([], jnp.int32), evals, opt_cond, opt_cond, x, loss, g, state)
    end = jax.lax.while_loop(lambda c: ~c.stop, iterate, start)
    return end.x, end.state


@errors.public("jopt.torch.LBFGS")
def LBFGS(  # noqa: N802 - torch's name
    lr: ScalarOrSchedule = 1.0,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> Transform:
    """torch.optim.LBFGS: L-BFGS iterations per step, with torch's strong Wolfe line search or a
    fixed step size lr (the module docstring). `update` needs the loss and the loss function:

        updates, state = tx.update(grads, state, params, value=loss, value_fn=loss_fn)

    Args:
      lr: the step size (the line search's first trial), >= 0, or a schedule of the step count.
      max_iter: iterations per step, an integer >= 1. Default 20.
      max_eval: loss evaluations per step, an integer >= 1; None: max_iter * 5 // 4 (torch's).
      tolerance_grad: a step stops once max |g| <= tolerance_grad, >= 0.
      tolerance_change: a step stops once <g, d>, max |t d| or the loss's change is below it.
      history_size: the (s, y) pairs kept, an integer >= 1. Default 100.
      line_search_fn: None (a fixed step) or "strong_wolfe".
    """
    fn = errors.current_function()
    lr = checks.lr(fn, lr)
    checks.cycled_momentum(fn, lr, has_momentum=False)
    max_iter = TORCH_LBFGS["max_iter"].check(fn, max_iter)
    bound = TORCH_LBFGS.bind(
        fn,
        learning_rate=lr,
        max_iter=max_iter,
        max_eval=max_iter * 5 // 4 if max_eval is None else max_eval,
        tolerance_grad=tolerance_grad,
        tolerance_change=tolerance_change,
        history_size=history_size,
        line_search_fn=line_search_fn,
    )
    size, line_search = bound["history_size"], bound["line_search_fn"] is not None

    def buffers(params):
        _check_real(fn, params)
        x = _flat(params)
        n, dt = x.shape[0], x.dtype
        return {
            "func_evals": base.zero_count(),
            "n_iter": base.zero_count(),
            "d": jnp.zeros([n], dt),
            "t": jnp.zeros([], dt),
            "old_dirs": jnp.zeros([size, n], dt),
            "old_stps": jnp.zeros([size, n], dt),
            "ro": jnp.zeros([size], dt),
            "history_len": base.zero_count(),
            "h_diag": jnp.ones([], dt),
            "prev_flat_grad": jnp.zeros([n], dt),
            "prev_loss": jnp.zeros([], dt),
        }

    def read(extra_args):
        value, value_fn = extra_args.pop("value", None), extra_args.pop("value_fn", None)
        extra_args.pop("grad", None)  # the gradient at the params is update's first argument
        if value is None or value_fn is None:
            raise ValueError(
                f"{fn}: needs the loss and the loss function (torch's closure): call "
                "update(grads, state, params, value=loss, value_fn=loss_fn), with loss, grads = "
                "jax.value_and_grad(loss_fn)(params); jopt.train_step(loss_fn, tx) does."
            )
        validation.check_callable(fn, "value_fn", value_fn, "a callable params -> loss")
        return check_value(fn, value), value_fn, value_fn_kwargs(fn, value_fn, extra_args)

    def step(updates, state, hp, count, params, given):
        value, value_fn, fn_kwargs = given
        x, unravel = ravel_pytree(params)
        dt = x.dtype
        value_and_grad = jax.value_and_grad(functools.partial(value_fn, **fn_kwargs))

        def evaluate(x):
            loss, grads = value_and_grad(unravel(x))
            return jnp.asarray(loss).astype(dt), _flat(grads).astype(dt)

        fields = {name: getattr(state, name) for name in _CARRIED}
        fields["func_evals"] = base.increment(fields["func_evals"])
        g = _flat(updates).astype(dt)
        x, fields = _lbfgs_step(hp, line_search, evaluate, x, value.astype(dt), g, fields)
        out = jax.tree.map(lambda new, old: new - old, unravel(x), params)
        return out, fields

    return keyword_transform(bound, TorchLBFGSState, buffers, step, read, needs_params=True)


_CARRIED = TorchLBFGSState._fields[1:-1]  # from func_evals to prev_loss
