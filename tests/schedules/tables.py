"""What the schedule tests share: closed-form tables, runs of values, comparisons with optax.

A table row is `(step, value)` with the value written out in float64 from a docstring's formula.
Tables hold step 0, 1, every boundary (and its neighbours), far past the end and the saturated step
count S = 2**31 - 1.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

S = 2**31 - 1  # the optimizer's step count saturates here (jopt._src.base.increment)
LENGTH = 400  # every run of values has this length, so that eager ops compile once per dtype


class Tables:
    """Closed-form tables {name: (make, rows)}: `make()` builds the schedule, rows are float64.

    `check(name)`: the schedule equals its rows, float32 to 2e-6 and float64 to 1e-12 (relative,
    plus that much of the table's largest value):
    - float32, Python int steps one by one (eager), every result a float32 scalar;
    - float32 and float64 (x64), int32 steps through `jit(vmap(schedule))` as an optimizer's update
      evaluates them, under strict dtype promotion (jopt's contract: nothing promotes implicitly).
      XLA computes `t / n` as `t * (1 / n)`, and its float64 division on the CPU is not correctly
      rounded: a schedule that divides step counts where it should not shows it here.
    The jitted evaluations of all tables run as one program per dtype: one compilation, not one
    per table.
    """

    def __init__(self, tables):
        self.tables = tables
        self._batched = {}

    def batched(self, x64: bool) -> dict:
        if x64 not in self._batched:
            with jax.enable_x64(x64), jax.numpy_dtype_promotion("strict"):
                schedules = {name: make() for name, (make, _) in self.tables.items()}
                steps = {
                    name: jnp.asarray([step for step, _ in rows], jnp.int32)
                    for name, (_, rows) in self.tables.items()
                }
                run = jax.jit(lambda steps: {n: jax.vmap(schedules[n])(steps[n]) for n in steps})
                self._batched[x64] = run(steps)
        return self._batched[x64]

    def check(self, name: str) -> None:
        make, rows = self.tables[name]
        want = np.array([value for _, value in rows], np.float64)
        scale = max(1.0, float(np.abs(want).max()))
        schedule = make()
        eager = [schedule(step) for step, _ in rows]
        for got in eager:
            chex.assert_shape(got, ())
            chex.assert_type(got, jnp.float32)
        batched = self.batched(False)[name]
        chex.assert_type(batched, jnp.float32)
        chex.assert_tree_all_finite(batched)
        chex.assert_trees_all_close(want, jnp.stack(eager), batched, rtol=2e-6, atol=1e-7 * scale)
        got = self.batched(True)[name]
        chex.assert_type(got, jnp.float64)
        chex.assert_trees_all_close(got, want, rtol=1e-12, atol=1e-15 * scale)


def series(schedule, steps: int) -> np.ndarray:
    """The schedule at steps 0 .. steps-1 (at most LENGTH), float32.

    Eager vmap over LENGTH steps: hypothesis examples reuse the compiled ops instead of compiling
    a new program per example.
    """
    assert steps <= LENGTH, steps
    return np.asarray(jax.vmap(schedule)(jnp.arange(LENGTH, dtype=jnp.int32)))[:steps]


def assert_agrees_with_optax(ours, theirs, steps: int = 400):
    """Steps 0 .. steps-1, 10**6 and S, jitted as an optimizer runs them: within 1e-6."""
    counts = jnp.concatenate([jnp.arange(steps, dtype=jnp.int32), jnp.asarray([10**6, S])])
    want = jax.jit(jax.vmap(theirs))(counts)
    got = jax.jit(jax.vmap(ours))(counts)
    chex.assert_trees_all_close(got, want, rtol=1e-6, atol=1e-6 * float(jnp.abs(want).max()))
