"""The torch / Keras fixtures of tests/golden/schedules.json, and the jopt schedules that twin them.

`twin(framework, cls, lr, kwargs)` builds the `jopt.torch` / `jopt.keras` schedule that takes the
same arguments as the framework's class (a fixture case records them); `evaluate_all` runs
schedules at steps 0..n-1; `run_plateau` feeds metric sequences to `jopt.reduce_on_plateau`.
"""

from __future__ import annotations

import functools
import json
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jopt

FIXTURES = pathlib.Path(__file__).parents[1] / "golden" / "schedules.json"


@functools.cache
def fixtures() -> dict[str, Any]:
    return json.loads(FIXTURES.read_text())


def twin(framework: str, cls: str, lr: float | None, kwargs: dict[str, Any]):
    """The jopt schedule for `framework`'s `cls(optimizer with lr, **kwargs)`.

    torch's SequentialLR and ChainedScheduler hold sub-schedulers given as {"class", "kwargs"}.
    OneCycleLR and CyclicLR set the learning rate themselves (max_lr, base_lr), as in torch.
    """
    if framework == "keras":
        return getattr(jopt.keras, cls)(**kwargs)
    kwargs = dict(kwargs)
    if cls in ("SequentialLR", "ChainedScheduler"):
        kwargs["schedulers"] = [
            twin("torch", s["class"], lr, s["kwargs"]) for s in kwargs["schedulers"]
        ]
        return getattr(jopt.torch, cls)(**kwargs)
    if cls in ("OneCycleLR", "CyclicLR"):
        return getattr(jopt.torch, cls)(**kwargs)
    return getattr(jopt.torch, cls)(lr, **kwargs)


def evaluate_all(schedules: dict[str, Any], n: int, *extra: int) -> dict[str, np.ndarray]:
    """Each schedule at steps 0..n-1 then `extra` (int32), default float dtype, as float64 NumPy.

    One jitted function evaluates them all: one compilation instead of one per schedule.
    """
    steps = jnp.concatenate([jnp.arange(n, dtype=jnp.int32), jnp.asarray(extra, jnp.int32)])
    run = jax.jit(lambda steps: {name: jax.vmap(s)(steps) for name, s in schedules.items()})
    return {name: np.asarray(values, np.float64) for name, values in run(steps).items()}


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float, scale_rtol: float = 0.0, what=""):
    """|got - want| <= rtol |want| + scale_rtol max|want|, reporting the first bad step."""
    want = np.asarray(want, np.float64)
    bound = rtol * np.abs(want) + scale_rtol * np.abs(want).max()
    bad = np.flatnonzero(~(np.abs(got - want) <= bound))
    if bad.size:
        k = int(bad[0])
        raise AssertionError(
            f"{what}: {bad.size} of {want.size} steps differ, first at step {k}: jopt "
            f"{got[k]!r}, reference {want[k]!r} (steps {bad[:10].tolist()})"
        )


def run_plateau(cases, sequences, every: int = 1):
    """(lr used by each update, current_lr after each update, num_reductions) for each case.

    Case i ({"lr", "kwargs", "sequence"}, as the fixtures' plateau cases) is
    `reduce_on_plateau(sgd(lr_i), **kwargs_i)` fed `sequences[sequence_i]`, one metric at
    every `every`-th update (the others get no `value`), with gradient 1 on one parameter. Cases
    sharing mode and threshold_mode share one vmapped update: the other settings live in each
    case's state. All of it is one compiled program.
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for i, case in enumerate(cases):
        key = (case["kwargs"].get("mode", "min"), case["kwargs"].get("threshold_mode", "rel"))
        groups.setdefault(key, []).append(i)
    txs = [jopt.reduce_on_plateau(jopt.sgd(c["lr"]), **c["kwargs"]) for c in cases]
    metrics = [jnp.asarray([sequences[cases[i]["sequence"]] for i in g]) for g in groups.values()]

    @jax.jit
    def run(metrics):
        results = []
        for indices, group_metrics in zip(groups.values(), metrics, strict=True):
            states = [txs[i].init(jnp.zeros(1)) for i in indices]
            state = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
            results.append(jax.vmap(_feed(txs[indices[0]], every))(state, group_metrics))
        return results

    results = run(metrics)
    out = [None] * len(cases)
    for indices, group in zip(groups.values(), results, strict=True):
        for k, i in enumerate(indices):
            out[i] = tuple(np.asarray(x[k], np.float64) for x in group)
    return out


def _feed(tx, every):
    """(state, metrics) -> per update: lr used, current_lr after it, num_reductions after it."""

    def update(state, value):
        extra = {} if value is None else {"value": value}
        updates, state = tx.update(jnp.ones(1), state, jnp.zeros(1), **extra)
        return state, (-updates[0], jopt.current_lr(state), state.num_reductions)

    def evaluation(state, metric):
        state, between = jax.lax.scan(lambda s, _: update(s, None), state, length=every - 1)
        state, last = update(state, metric)
        return state, jax.tree.map(lambda xs, x: jnp.concatenate([xs, x[None]]), between, last)

    def feed(state, metrics):
        _, (used, lrs, reductions) = jax.lax.scan(evaluation, state, metrics)
        return used.reshape(-1), lrs.reshape(-1), reductions.reshape(-1)

    return feed
