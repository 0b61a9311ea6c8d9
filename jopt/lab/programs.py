"""The compiled pieces of a run: a workload's jitted init, evaluation and epoch orders, and each
optimizer's vmapped training step, built once per process and shared between runs.

Steps run from a Python loop rather than a `lax.scan` (see `_make_step`); the batch of step t is
its slice of a permutation keyed by (seed, epoch), so nothing random is carried between steps.
`Batches` is that loop, shared by every command that trains seeds.

Data parallelism (`data_parallel:` in a config) is JAX's: the step constrains its batch to be
split over a mesh of local devices, and XLA partitions the program around it (each device takes
its slice of the batch, the gradient's sums are all-reduced, params and optimizer state stay whole
on every device). The math is one device's; only the order of the batch's sums differs, so the
results agree to float32 rounding. Evaluation runs whole on each device, as on one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import jopt
from jopt.lab import config as config_lib
from jopt.lab import registry as lab_registry
from jopt.lab.workloads import WORKLOADS
from jopt.lab.workloads.base import Workload


def steps_per_epoch(workload: Workload) -> int | None:
    """Minibatches per epoch, or None for full-batch (or data-free) workloads."""
    if workload.train is None or workload.batch_size is None:
        return None
    return workload.train.size // workload.batch_size


def seed_keys(seeds) -> tuple[jax.Array, jax.Array]:
    """(init keys, data keys), stacked over `seeds`: the key of the initial parameters and the
    key of the example order of each seed, the same for every command that trains a seed."""
    keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in seeds])

    def fold(i):
        return jax.vmap(lambda k: jax.random.fold_in(jax.random.wrap_key_data(k), i))(keys)

    return fold(0), fold(1)


def _make_order(workload: Workload) -> Callable | None:
    """(stacked data keys, epoch) -> each seed's order of the training examples in that epoch:
    a permutation keyed by (seed's data key, epoch). Jitted apart from the step, so that the
    random draws (slow to compile on the CPU) are compiled once per workload, not per optimizer.
    """
    if steps_per_epoch(workload) is None:
        return None
    n = workload.train.size

    def order(key, epoch):
        return jax.random.permutation(jax.random.fold_in(key, epoch), n)

    return jax.jit(jax.vmap(order, in_axes=(0, None)))


def _batch(workload: Workload, order: jax.Array | None, step: jax.Array):
    """The batch of `step`: its slice of the epoch's `order` of the examples."""
    train = workload.train
    if train is None:
        return None, None
    if workload.batch_size is None:
        return train.x, train.y
    position = step % steps_per_epoch(workload)
    index = jax.lax.dynamic_slice(order, (position * workload.batch_size,), (workload.batch_size,))
    return train.x[index], train.y[index]


def data_mesh(data_parallel: int | str) -> Mesh | None:
    """The mesh of the local devices a step's batch is split over, for a config's
    `data_parallel` (an integer or "all"); None for one device (a plain single-device program).
    """
    devices = jax.local_devices()
    wanted = len(devices) if data_parallel == "all" else int(data_parallel)
    if wanted > len(devices):
        raise config_lib.ConfigError(
            "data_parallel",
            f"{wanted} devices asked for, {len(devices)} here ({devices[0].platform}); on the "
            f"CPU, XLA_FLAGS=--xla_force_host_platform_device_count={wanted} (set before jax "
            "starts) simulates them.",
        )
    if wanted == 1:
        return None
    return Mesh(np.array(devices[:wanted]), ("data",))


def _check_split(workload: Workload, mesh: Mesh | None) -> None:
    """Each step's batch (the minibatch, or the whole training split) divides over the mesh."""
    if mesh is None:
        return
    batch = workload.batch_size if workload.batch_size is not None else workload.train.size
    if batch % mesh.size:
        raise config_lib.ConfigError(
            "data_parallel",
            f"a step's batch of {batch} examples does not split evenly over {mesh.size} devices; "
            f"choose a batch size that is a multiple of {mesh.size}.",
        )


def _learning_rate(opt_state: Any) -> jax.Array:
    """The learning rate to log: with parameter groups, the default group's (or the first
    group's with one); NaN for a state without a learning rate."""
    try:
        rate = jopt.current_lr(opt_state)
    except ValueError:  # a chain without one learning rate (or a foreign optimizer)
        return jnp.asarray(jnp.nan, jnp.float32)
    if isinstance(rate, dict):
        rate = rate.get("default", next(iter(rate.values())))
    return jnp.asarray(rate, jnp.float32)


def _make_step(
    workload: Workload,
    tx: optax.GradientTransformation,
    with_value: bool = False,
    with_loss: bool = False,
    mesh: Mesh | None = None,
):
    """One jitted training step for every seed at once (vmapped), buffers donated.

    Steps run from a Python loop rather than a `lax.scan`: XLA on the CPU runs convolutions
    inside a loop several times slower than at the top level of a program, and one dispatch per
    step costs far less than that. It also makes a resumed run trivially bitwise identical: every
    step is the same compiled program whatever the chunking.

    `with_value`: the step also takes each seed's evaluated metric and passes it to the update as
    `value=` (a plateau decay's metric, at the update after an evaluation). `with_loss`: the
    update is given the batch's loss as the optimizers that read it take it (`value=`, `grad=`,
    `value_fn=`: Polyak step sizes, MoMo, L-BFGS's line search). `mesh`: the devices the
    batch is split over (see the module docstring).
    """

    def one_seed(params, opt_state, diverged_at, order, step, value=None):
        x, y = _batch(workload, order, step)
        if mesh is not None:
            x, y = jax.lax.with_sharding_constraint(
                (x, y), NamedSharding(mesh, PartitionSpec("data"))
            )
        loss, grads = jax.value_and_grad(workload.loss)(params, x, y)
        if value is not None:
            extra = {"value": value}
        elif with_loss:
            extra = {"value": loss, "grad": grads, "value_fn": lambda p: workload.loss(p, x, y)}
        else:
            extra = {}
        updates, new_state = tx.update(grads, opt_state, params, **extra)
        new_params = optax.apply_updates(params, updates)
        stopped = diverged_at >= 0
        bad = ~jnp.isfinite(loss)
        diverged_at = jnp.where(~stopped & bad, step, diverged_at)
        keep = stopped | bad
        params = jax.tree.map(lambda old, new: jnp.where(keep, old, new), params, new_params)
        opt_state = jax.tree.map(lambda old, new: jnp.where(keep, old, new), opt_state, new_state)
        record = {
            "train_loss": loss.astype(jnp.float32),
            "grad_norm": optax.tree.norm(grads).astype(jnp.float32),
            "learning_rate": _learning_rate(new_state),
        }
        if workload.record_params:
            record["params"] = params
        return params, opt_state, diverged_at, record

    axes = (0, 0, 0, 0, None, 0) if with_value else (0, 0, 0, 0, None)
    return jax.jit(jax.vmap(one_seed, in_axes=axes), donate_argnums=(0, 1, 2))


def _make_eval_params(optimizer: config_lib.OptimizerConfig) -> Callable:
    """(params, optimizer state) -> the params to evaluate: the average kept in the state when
    the optimizer has one (`average:`), cast to the params' dtypes; else the point the optimizer
    says to evaluate at (schedule-free's x, read from its state); else the params."""
    if optimizer.wrappers.average is None:
        own = lab_registry.eval_params(optimizer.name)
        if own is None:
            return lambda params, opt_state: params
        return jax.jit(jax.vmap(lambda params, opt_state: own(opt_state, params)))  # per run

    def averaged(params, opt_state):
        average = jopt.averaged_params(opt_state)
        return jax.tree.map(lambda a, p: a.astype(p.dtype), average, params)

    return jax.jit(averaged)


def _make_eval(workload: Workload):
    compiled = jax.jit(jax.vmap(workload.metrics, in_axes=(0, None, None)))

    def evaluate(params, split):
        if split is None:
            return compiled(params, None, None)
        return compiled(params, split.x, split.y)

    return evaluate


@dataclasses.dataclass(frozen=True)
class _Programs:
    """The compiled pieces of one optimizer on one workload."""

    tx: optax.GradientTransformation
    init_state: Callable  # stacked params -> stacked optimizer state
    step: Callable  # see _make_step
    step_with_value: Callable | None  # the step that passes a metric (plateau decay), or None
    eval_params: Callable  # (params, optimizer state) -> the params to evaluate at


@dataclasses.dataclass(frozen=True)
class Compiled:
    """What every optimizer of a run shares: the workload, its jitted init and evaluation, and
    the programs of each optimizer config already run on it."""

    workload: Workload
    init_params: Callable  # stacked keys -> stacked params
    evaluate: Callable  # (stacked params, split) -> {metric: per-seed values}
    order: Callable | None  # see _make_order
    mesh: Mesh | None = None  # the devices a step's batch is split over (None: one)
    programs: dict[str, _Programs] = dataclasses.field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, workload: Workload, mesh: Mesh | None = None) -> Compiled:
        _check_split(workload, mesh)
        return cls(
            workload,
            jax.jit(jax.vmap(workload.init_params)),
            _make_eval(workload),
            _make_order(workload),
            mesh,
        )

    def programs_for(self, optimizer: config_lib.OptimizerConfig) -> _Programs:
        key = optimizer.program_key  # the label aside
        if key not in self.programs:
            tx = config_lib.build_optimizer(optimizer)
            plateau = optimizer.wrappers.plateau is not None
            self.programs[key] = _Programs(
                tx,
                jax.jit(jax.vmap(tx.init)),
                _make_step(
                    self.workload,
                    tx,
                    with_loss=lab_registry.reads_value(optimizer.name),
                    mesh=self.mesh,
                ),
                _make_step(self.workload, tx, with_value=True, mesh=self.mesh) if plateau else None,
                _make_eval_params(optimizer),
            )
        return self.programs[key]


class Batches:
    """Runs a program's vmapped training step over a range of steps, drawing every seed's
    example order once per epoch (`Compiled.order` of the seeds' data keys and the epoch).

    Every command that trains seeds steps through this loop (`jopt run`, a population, PBT,
    lr-find), so that step t of a seed sees the same batch whatever the command and however its
    steps are chunked: the order depends on the seed and the epoch alone.
    """

    def __init__(
        self,
        compiled: Compiled,
        step: Callable,
        data_keys: jax.Array,
        step_with_value: Callable | None = None,
    ):
        """`step`: a program's vmapped step (`_Programs.step`); `data_keys`: the seeds' (the
        second of `seed_keys`), one per member of the carry; `step_with_value`: the step that
        passes a metric to the update (`_Programs.step_with_value`), where one is given."""
        self.compiled, self.step, self.data_keys = compiled, step, data_keys
        self.step_with_value = step_with_value
        self.per_epoch = steps_per_epoch(compiled.workload)
        self._epoch, self._order = -1, None

    def order(self, t: int) -> jax.Array | None:
        """Every seed's order of the training examples in the epoch of step `t` (None for a
        full-batch workload); drawn when `t` enters a new epoch, kept until the next."""
        if self.per_epoch is not None and t // self.per_epoch != self._epoch:
            self._epoch = t // self.per_epoch
            self._order = self.compiled.order(self.data_keys, jnp.asarray(self._epoch, jnp.int32))
        return self._order

    def run(
        self,
        carry: tuple[Any, Any, jax.Array],
        start: int,
        end: int,
        on_step: Callable[[dict[str, Any]], None] | None = None,
        value: jax.Array | None = None,
    ) -> tuple[tuple[Any, Any, jax.Array], dict[str, Any] | None]:
        """Steps `start` to `end - 1` from `carry` = (params, optimizer state, divergence
        flags), stacked over the seeds and donated to the step. Returns the new carry and the
        record of the last step (None if none ran); `on_step(record)` is called after each.
        `value` (one metric per seed) goes to the update of step `start`, through
        `step_with_value`."""
        params, opt_state, diverged_at = carry
        record = None
        for t in range(start, end):
            args = (params, opt_state, diverged_at, self.order(t), jnp.asarray(t, jnp.int32))
            if t == start and value is not None:
                params, opt_state, diverged_at, record = self.step_with_value(*args, value)
            else:
                params, opt_state, diverged_at, record = self.step(*args)
            if on_step is not None:
                on_step(record)
        return (params, opt_state, diverged_at), record


def compiled_workload(
    workload: config_lib.WorkloadConfig, data_parallel: int | str = 1
) -> Compiled:
    """The workload of a config, built and jitted once per process (options are hashable), its
    steps split over `data_parallel` devices (see `data_mesh`)."""
    mesh = data_mesh(data_parallel)
    return _compiled(workload, mesh)


@functools.lru_cache(maxsize=8)
def _compiled(workload: config_lib.WorkloadConfig, mesh: Mesh | None) -> Compiled:
    """`compiled_workload`, kept per (options, mesh). Eight are kept: a sweep's k-fold
    cross-validation builds one per fold, used by every batch of trials."""
    return Compiled.build(WORKLOADS[workload.name].build(workload.options), mesh)


def compiled_experiment(experiment: config_lib.ExperimentConfig) -> Compiled:
    """`compiled_workload` of an experiment's workload and data parallelism; an option that
    only the data can refute (a batch larger than the training split...) is a ConfigError at
    that option."""
    try:
        return compiled_workload(experiment.workload, experiment.data_parallel)
    except config_lib.ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise config_lib.workload_error(experiment.workload, e) from e
