"""The schedule type, and what every schedule's arithmetic shares.

A schedule is a `Schedule`: a pure function `step -> value`, jit-, vmap- and grad-safe, taking a
Python int or an integer array (the optimizer's step count, which saturates at 2**31 - 1) and
returning a scalar array in the default float dtype (float32; float64 when `jax_enable_x64` is
on). Besides its values it carries what a framework's scheduler carries:

- `momentum`: the momentum (or beta1) schedule a cycling scheduler imposes on its optimizer
  (torch's OneCycleLR and CyclicLR with `cycle_momentum=True`), which a `jopt.torch` optimizer
  given this schedule as its learning rate follows; None for the others;
- `base_lr`: the learning rate a torch scheduler scales (its optimizer's `initial_lr`), which
  `jopt.torch.ChainedScheduler` divides out; None where it means nothing.

Every combinator (`join_schedules`, `multiply_schedules`, `with_warmup`, `per_epoch` and the
torch twins built on them) keeps these or refuses, with an error, a schedule whose extras it
cannot keep: a momentum cycle is never dropped silently.

Hyperparameters take any function `step -> value` (optax's schedules, a lambda) as well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt._src import errors
from jopt._src.hparams import default_float


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule:
    """A hyperparameter as a function of the step count: `schedule(step) -> value`.

    Attributes:
      fn: the values, `step -> scalar array`.
      name: the call that built it, as written (its repr): `jopt.exponential_decay(0.1, 10, 0.5)`.
      momentum: the momentum schedule a torch cycling scheduler imposes, or None.
      base_lr: the learning rate a torch scheduler scales, or None.
    """

    fn: Callable[[Any], jax.Array]
    name: str = "schedule"
    momentum: Schedule | None = None
    base_lr: float | None = None

    def __post_init__(self):
        if not callable(self.fn):
            raise TypeError(f"Schedule: fn must be a function of the step count, got {self.fn!r}")
        if self.momentum is not None and not callable(self.momentum):
            raise TypeError(f"Schedule: momentum must be a schedule or None, got {self.momentum!r}")

    def __call__(self, step: Any) -> jax.Array:
        return self.fn(beyond_int32_as_float(step))

    def __repr__(self) -> str:
        return self.name


def make_schedule(
    fn: Callable[[Any], jax.Array],
    *,
    momentum: Schedule | None = None,
    base_lr: float | None = None,
) -> Schedule:
    """A `Schedule` of `fn`, named after the public constructor call being made."""
    return Schedule(fn, errors.current_call(), momentum, base_lr)


def momentum_of(value: Any) -> Schedule | None:
    """The momentum cycle `value` carries (torch's cycling schedulers), or None."""
    return value.momentum if isinstance(value, Schedule) else None


def base_lr_of(value: Any) -> float | None:
    return value.base_lr if isinstance(value, Schedule) else None


def refuse_momentum_cycles(fn: str, schedules: Mapping[str, Any], what: str) -> None:
    """Raises if one of `schedules` ({argument name: schedule}) cycles the momentum, which
    `what` (the combinator's result) could not keep."""
    for argument, s in schedules.items():
        if momentum_of(s) is not None:
            raise errors.ArgumentError(
                fn,
                f"{argument} cycles the momentum (a OneCycleLR or CyclicLR built with "
                f"cycle_momentum=True), which {what} cannot keep: build it with "
                "cycle_momentum=False, and give the optimizer a momentum schedule "
                "(jopt.one_cycle_momentum, jopt.cyclic_momentum) if you want one.",
                argument=argument,
                value=s,
            )


INT32_MAX = 2**31 - 1


def beyond_int32_as_float(step: Any) -> Any:
    """`step`, or its float value when it is an integer scalar given from Python or NumPy beyond
    int32, which JAX (without x64) cannot hold as an integer array: optax's schedules take such
    steps, far past any schedule's end, and so do jopt's."""
    if isinstance(step, (int, np.integer)) and not isinstance(step, bool):
        if not -INT32_MAX - 1 <= int(step) <= INT32_MAX:
            return float(step)
    return step


def as_float(step: Any) -> jax.Array:
    """The step count as a float array (exact up to 2**24 in float32)."""
    return jnp.asarray(step).astype(default_float())


def divmod_steps(step: Any, n: int) -> tuple[jax.Array, jax.Array]:
    """`(floor(step / n), step mod n)` as floats: whole periods of n steps done, and steps since.

    Exact for integer steps, computed in integers. `jnp.floor(step / n)` is not: XLA computes
    `step / n` as `step * (1 / n)` (and its CPU division is not correctly rounded either), so
    `(k * n) / n` can come out just below k and a stair, cycle or restart starts one step late
    (float32: n = 41 at steps 41, 82, 164; float64: n = 49 at 49, 98, 147). Float steps get
    the floor corrected by exact products, which holds up to 2**24 in float32.
    """
    step = jnp.asarray(step)
    if jnp.issubdtype(step.dtype, jnp.integer):
        q, r = jnp.divmod(step, n)
        return q.astype(default_float()), r.astype(default_float())
    x = step.astype(default_float())
    q = jnp.floor(x / n)
    q = jnp.where(q * n > x, q - 1, q)
    q = jnp.where((q + 1) * n <= x, q + 1, q)
    return q, jnp.clip(x - q * n, 0, n)


def constant(value: float) -> jax.Array:
    return jnp.asarray(value, default_float())


def cosine_anneal(start: Any, end: Any, fraction: Any) -> jax.Array:
    """`end + (start - end) * (1 + cos(pi * fraction)) / 2`: start at 0, end at 1."""
    return end + (start - end) * (1 + jnp.cos(jnp.pi * fraction)) / 2


def linear_anneal(start: Any, end: Any, fraction: Any) -> jax.Array:
    """`start + (end - start) * fraction`: start at 0, end at 1."""
    return start + (end - start) * fraction
