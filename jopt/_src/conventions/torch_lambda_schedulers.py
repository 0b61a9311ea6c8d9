"""torch.optim.lr_scheduler's LambdaLR and MultiplicativeLR: schedules given by a user function.

    LambdaLR:          lr_t = lr * lr_lambda(t)
    MultiplicativeLR:  lr_0 = lr,  lr_t = lr_(t-1) * lr_lambda(t)   (t >= 1)

torch calls `lr_lambda` with the epoch as a Python int. Here it is called either the same way,
on the host, once per step up to `total_iters` when the schedule is built (so any function torch
takes works unchanged, `if` statements included, and the values are torch's Python-float
arithmetic), or, for LambdaLR without `total_iters`, inside the compiled step with the step count
as a traced int32 array (so it must be written with `jnp` operations: `jnp.where`, not `if`).

MultiplicativeLR always tabulates: the product over every step so far has no closed form for a
general function, and computing it in the step would cost O(t) per step. Past `total_iters` a
tabulated schedule holds its last value (a run longer than it said it would be keeps its final
rate rather than calling Python); for a constant factor use `ExponentialLR`, which has no bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt._src import errors, validation
from jopt._src.conventions.torch_schedulers import _base, _tagged
from jopt._src.hparams import default_float
from jopt._src.schedules.schedule import Schedule

LrLambda = Callable[[Any], Any]


def _host_values(fn: str, lr_lambda: LrLambda, total_iters: int) -> list[float]:
    """`lr_lambda(k)` for k = 0..total_iters, called with Python ints as torch does."""
    values = []
    for k in range(total_iters + 1):
        try:
            value = float(lr_lambda(k))
        except Exception as e:
            raise validation.wrong_type(
                fn,
                "lr_lambda",
                lr_lambda,
                f"a function of the step returning a number (at {k}: {e})",
            ) from e
        validation.require(
            fn,
            np.isfinite(value) and value >= 0,
            f"lr_lambda must return finite numbers >= 0, got {value} at step {k}.",
            argument="lr_lambda",
            value=lr_lambda,
        )
        values.append(value)
    return values


def _table(values: list[float]) -> Callable[[Any], jax.Array]:
    """The schedule reading `values[min(step, len - 1)]`, in the default float dtype."""
    table = np.asarray(values, np.float64)

    def schedule(step):
        index = jnp.minimum(step, len(table) - 1).astype(jnp.int32)
        return jnp.asarray(table, default_float())[index]

    return schedule


def _traced(fn: str, lr_lambda: LrLambda) -> None:
    """Checks that `lr_lambda` can run inside a compiled step, on a traced int32 step count."""
    try:
        out = jax.eval_shape(lr_lambda, jax.ShapeDtypeStruct((), jnp.int32))
    except Exception as e:
        raise validation.wrong_type(
            fn,
            "lr_lambda",
            lr_lambda,
            "a function of a traced int32 step written with jnp operations (jnp.where, not if), "
            f"or give total_iters to call it with Python ints as torch does ({type(e).__name__})",
        ) from e
    shape = getattr(out, "shape", None)
    dtype = getattr(out, "dtype", None)
    validation.require(
        fn,
        shape == () and dtype is not None and jnp.issubdtype(dtype, jnp.number),
        f"lr_lambda must return a real scalar, got {out}.",
        argument="lr_lambda",
        value=lr_lambda,
    )


def _total_iters(fn: str, total_iters: int | None) -> int | None:
    return None if total_iters is None else validation.check_int(fn, "total_iters", total_iters)


@errors.public("jopt.torch.LambdaLR")
def LambdaLR(lr: float, lr_lambda: LrLambda, total_iters: int | None = None) -> Schedule:  # noqa: N802
    """`lr * lr_lambda(t)`, torch's `LambdaLR(optimizer, lr_lambda)`.

    Args:
      lr: the base learning rate torch reads from the optimizer, >= 0.
      lr_lambda: the factor at step t. Without `total_iters` it runs in the compiled step on a
        traced int32 t (write it with jnp); with `total_iters` it is called on the host with
        Python ints 0..total_iters, as torch does, and tabulated.
      total_iters: the steps to tabulate (jopt's addition); the last value holds after them.
    """
    fn = errors.current_function()
    base = _base(fn, lr)
    lr_lambda = validation.check_callable(fn, "lr_lambda", lr_lambda, "a function of the step")
    total_iters = _total_iters(fn, total_iters)
    if total_iters is not None:
        values = [base * factor for factor in _host_values(fn, lr_lambda, total_iters)]
        return _tagged(_table(values), lr)
    _traced(fn, lr_lambda)
    return _tagged(lambda step: base * lr_lambda(step.astype(jnp.int32)), lr)


@errors.public("jopt.torch.MultiplicativeLR")
def MultiplicativeLR(lr: float, lr_lambda: LrLambda, total_iters: int | None = None) -> Schedule:  # noqa: N802
    """`lr * lr_lambda(1) * ... * lr_lambda(t)`, torch's `MultiplicativeLR(optimizer, lr_lambda)`.

    Args:
      lr: the base learning rate torch reads from the optimizer, >= 0.
      lr_lambda: the factor applied at step t >= 1, called on the host with Python ints as torch
        does; the products are tabulated in torch's order (one multiplication per step).
      total_iters: the steps to tabulate, required (jopt's addition); the last value holds after
        them. A constant factor is `ExponentialLR(lr, gamma)`, which needs no bound.
    """
    fn = errors.current_function()
    base = _base(fn, lr)
    lr_lambda = validation.check_callable(fn, "lr_lambda", lr_lambda, "a function of the step")
    validation.require(
        fn,
        total_iters is not None,
        "needs total_iters, the steps of the run: the product of lr_lambda over every step is "
        "tabulated once (for a constant factor, ExponentialLR needs no bound).",
        argument="total_iters",
        value=total_iters,
    )
    factors = _host_values(fn, lr_lambda, _total_iters(fn, total_iters))
    values = [base]
    for factor in factors[1:]:
        values.append(values[-1] * factor)
    return _tagged(_table(values), lr)
