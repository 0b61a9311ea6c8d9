"""Trials that differ only in hyperparameter values, trained as one vmapped program.

A population is a list of members, each a seed and the values of the hyperparameters the
optimizer keeps in its state. The members are stacked like the seeds of `jopt run`: one jitted
step trains them all (the lab's compiled step, `programs.Compiled.programs_for`), and each
member's state holds its own values, set with `jopt.set_hparams` from Python numbers, so that
they are rounded exactly as the constructor rounds them. A member is then the run `jopt run`
makes of its trial and seed: the same initial parameters, the same batches, the same arithmetic.

Populations are padded to a fixed size (repeating the last member, whose results are dropped),
so that every batch of a study runs the same compiled program.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jopt
from jopt.lab.config_optimizers import OptimizerConfig
from jopt.lab.programs import Batches, Compiled, seed_keys


class Stopped(Exception):
    """Raised when the stop callback asks for it (Ctrl-C), between two chunks of steps."""


@dataclasses.dataclass(frozen=True)
class Member:
    seed: int
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # set in the state


@dataclasses.dataclass(frozen=True)
class Result:
    """What a population did: the objective metric of every member at every eval."""

    steps: tuple[int, ...]  # the eval steps: 0, then the end of each chunk of `eval_every`
    metric: np.ndarray  # (members, evals); NaN after a member stopped being evaluated
    diverged_at: np.ndarray  # (members,) the step whose loss was not finite (logged as +1), or -1
    seconds: float
    bytes_per_member: int  # parameters and optimizer state of one member
    params: Any  # the final parameters, stacked over the real members


def _is_hparams(node: Any) -> bool:
    return isinstance(node, jopt.HParams)


def with_values(state: Any, values: Sequence[Mapping[str, Any]]) -> Any:
    """The stacked optimizer `state` with member i's hyperparameters set to `values[i]`.

    Each member's values are set on an unstacked copy with `jopt.set_hparams` (concrete
    numbers, checked and rounded as at construction), then its hyperparameter nodes are
    stacked; buffers are kept as they are.
    """
    if not any(values):
        return state
    template = jax.tree.map(lambda x: x[0], state)
    done: dict[str, Any] = {}
    members = []
    for v in values:
        key = repr(sorted(v.items()))
        if key not in done:
            done[key] = jopt.set_hparams(template, **v)
        members.append(done[key])

    def pick(node, *nodes):
        if _is_hparams(node):
            return jax.tree.map(lambda *xs: jnp.stack(xs), *nodes)
        return node

    return jax.tree.map(pick, state, *members, is_leaf=_is_hparams)


def with_values_at(state: Any, rows: Sequence[tuple[int, Mapping[str, Any]]]) -> Any:
    """The stacked optimizer `state` with `values` set in member `row`'s hyperparameters, for
    each (row, values): `jopt.set_hparams` on that member's `HParams` nodes (from Python
    numbers, as the constructor rounds them); every other row and buffer is left as it is."""
    nodes, treedef = jax.tree.flatten(state, is_leaf=_is_hparams)
    packed = {i: np.array(n.packed) for i, n in enumerate(nodes) if _is_hparams(n)}

    def with_packed(pick: Callable[[int], Any]) -> Any:
        leaves = [jopt.HParams(pick(i), n.meta) if i in packed else n for i, n in enumerate(nodes)]
        return jax.tree.unflatten(treedef, leaves)

    for row, values in rows:
        member = with_packed(lambda i, r=row: packed[i][r])  # other buffers: passed through
        changed = jax.tree.leaves(jopt.set_hparams(member, **values), is_leaf=_is_hparams)
        for i in packed:
            packed[i][row] = np.asarray(changed[i].packed)
    return with_packed(lambda i: jnp.asarray(packed[i]))


@jax.jit
def take_members(tree: Any, source: jax.Array) -> Any:
    """`tree` stacked over members, member i of every leaf replaced by member source[i] (one
    compiled gather per population)."""
    return jax.tree.map(lambda x: x[source], tree)


def measure(
    compiled: Compiled,
    metric: str,
    params: Any,
    record: Any,
    dtype: Any = None,
    evals: dict[str, Any] | None = None,
) -> np.ndarray:
    """Every member's `metric` now, a new NumPy array (of `dtype`; None: the metric's own):
    `train_loss` is the loss of the last step (its `record`; None before the first step: NaN
    for every member), an `eval_M` metric M of `params` on the workload's validation split
    (`evals`, where they are already evaluated)."""
    if metric == "train_loss":
        if record is None:
            return np.full(jax.tree.leaves(params)[0].shape[0], np.nan, dtype)
        return np.array(record["train_loss"], dtype)
    if evals is None:
        evals = compiled.evaluate(params, compiled.workload.valid)
    return np.array(evals[metric.removeprefix("eval_")], dtype)


def train(
    compiled: Compiled,
    optimizer: OptimizerConfig,
    members: Sequence[Member],
    steps: int,
    eval_every: int,
    metric: str,
    *,
    size: int | None = None,
    on_eval: Callable[[int, np.ndarray], np.ndarray | None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Result:
    """Trains `members` of `optimizer` for `steps` steps; returns each one's `metric` curve.

    `optimizer` is the program every member runs (a trial's config; the values that differ are
    in each member's `values`). `size` pads the population (default: no padding).
    `on_eval(step, values)` is called after each eval with the metric of every real member; it
    may return a mask of the members still of interest (pruned ones False): when none is, the
    training stops early. `stop()` is asked between chunks; True raises `Stopped`.
    """
    clock = time.perf_counter()
    n = len(members)
    size = max(size or n, n)
    padded = [*members, *[members[-1]] * (size - n)]
    programs = compiled.programs_for(optimizer)
    init_keys, data_keys = seed_keys([m.seed for m in padded])
    params = compiled.init_params(init_keys)
    opt_state = with_values(programs.init_state(params), [m.values for m in padded])
    diverged = jnp.full((size,), -1, jnp.int32)
    nbytes = sum(x.nbytes for x in jax.tree.leaves((params, opt_state))) // size

    def evaluate(params, opt_state):
        """The validation metrics, at the average where the optimizer keeps one."""
        return compiled.evaluate(programs.eval_params(params, opt_state), compiled.workload.valid)

    plateau = optimizer.wrappers.plateau
    eval_steps = [0]
    evals = evaluate(params, opt_state) if metric != "train_loss" else None
    curves = [measure(compiled, metric, params, None, evals=evals)[:n]]
    batches = Batches(compiled, programs.step, data_keys, programs.step_with_value)
    active = np.ones(n, bool)
    step, pending = 0, None  # pending: a plateau's metric, for the update after an evaluation
    while step < steps:
        if stop is not None and stop():
            raise Stopped
        end = min(step + eval_every - step % eval_every, steps)
        (params, opt_state, diverged), record = batches.run(
            (params, opt_state, diverged), step, end, value=pending
        )
        step = end
        needed = metric != "train_loss" or plateau is not None
        evals = evaluate(params, opt_state) if needed else None
        if plateau is not None:
            pending = evals[plateau.metric]
        values = measure(compiled, metric, params, record, evals=evals)[:n]
        eval_steps.append(step)
        curves.append(np.where(active, values, np.nan))
        if on_eval is not None:
            mask = on_eval(step, values)
            if mask is not None:
                active &= np.asarray(mask, bool)
        active &= np.asarray(diverged)[:n] < 0
        if not active.any():
            break
    metric_curves = np.stack(curves, axis=1)
    return Result(
        tuple(eval_steps),
        metric_curves,
        np.asarray(diverged)[:n],
        time.perf_counter() - clock,
        int(nbytes),
        jax.tree.map(lambda x: x[:n], params),
    )
