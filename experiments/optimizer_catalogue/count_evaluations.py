"""Loss-and-gradient evaluations of each optimizer of a `functions2d` run config.

    .venv/bin/python experiments/optimizer_catalogue/count_evaluations.py CONFIG [CONFIG ...]

Replays each optimizer's first seed as `jopt run` trains it (the lab's step, vmapped over the
seed: the loss and gradient at the params, then the update, given the loss, the gradient and
the loss function when the optimizer reads them) and counts the evaluations the algorithm makes:
one per step for the first-order methods; for jopt's L-BFGS one plus the line search's trials
(`num_linesearch_steps` in its state); for torch's, its own count (`func_evals`, which includes
the evaluation at the params). Prints, per optimizer, the evaluations per step (mean and
largest), the first step and the evaluations by which the distance to the minimizer is at most
1e-2, all the evaluations, and the final distance, the run's (summary.md) to rounding: the
lab's step is a larger program, which XLA fuses differently.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jopt.lab import config as config_lib
from jopt.lab import registry as lab_registry
from jopt.lab.config_optimizers import build_optimizer
from jopt.lab.workloads import WORKLOADS

TARGET = 1e-2


def _leaf(state, name: str):
    """The leaf of `state` whose path ends with `.name`, or None."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if jax.tree_util.keystr(path).endswith("." + name):
            return leaf
    return None


def replay(experiment, optimizer) -> dict:
    workload = WORKLOADS["functions2d"].build(experiment.workload.options)
    tx = build_optimizer(optimizer)
    reads_value = lab_registry.reads_value(optimizer.name)

    def one_seed(params, state):
        value, grads = jax.value_and_grad(workload.loss)(params)
        extra = {"value": value, "grad": grads, "value_fn": workload.loss} if reads_value else {}
        updates, state = tx.update(grads, state, params, **extra)
        return optax.apply_updates(params, updates), state

    # vmapped over the (one) seed as the lab's step is, so that it rounds as the run does
    step = jax.jit(jax.vmap(one_seed))
    key = jax.random.fold_in(jax.random.key(experiment.seeds[0]), 0)
    params = workload.init_params(key)[None]
    state = jax.vmap(tx.init)(params)
    minimizer = jnp.asarray((1.0, 1.0), jnp.float32)
    per_step, reached, total = [], None, 0
    for t in range(1, experiment.steps + 1):
        params, state = step(params, state)
        func_evals = _leaf(state, "func_evals")  # torch's L-BFGS: evaluations so far
        trials = _leaf(state, "num_linesearch_steps")  # jopt's L-BFGS: this step's trials
        if func_evals is not None:
            evals = int(func_evals[0]) - total
        elif trials is not None:
            evals = 1 + int(trials[0])  # the gradient at the params, then the line search's
        else:
            evals = 1
        per_step.append(evals)
        total += evals
        distance = float(jnp.linalg.norm(params[0] - minimizer))
        if reached is None and distance <= TARGET:
            reached = (t, total)
    return {
        "mean": float(np.mean(per_step)),
        "max": max(per_step),
        "reached": reached,
        "final": distance,
        "total": total,
    }


def main(paths: list[str]) -> None:
    print(
        "| optimizer | evaluations per step (mean, max) | step at 1e-2 | evaluations to 1e-2 "
        "| evaluations in all | final distance |"
    )
    print("|---|---|---|---|---|---|")
    for path in paths:
        experiment = config_lib.load(path)
        for optimizer in experiment.optimizers:
            r = replay(experiment, optimizer)
            step, evals = r["reached"] if r["reached"] else ("not reached", "—")
            print(
                f"| {optimizer.label} | {r['mean']:.2f}, {r['max']} | {step} | {evals} "
                f"| {r['total']} | {r['final']:.4g} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
