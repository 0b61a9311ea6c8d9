"""The train/eval loop: every seed of one optimizer in one jitted program, resumable exactly.

For each optimizer of a config, the seeds are stacked and `jax.vmap`ped: one compiled program
trains them all, one step per call. After every `eval_every` steps the runner evaluates, logs,
and (every `checkpoint_every` steps) checkpoints. Nothing random is kept between steps: the
batch of step t is drawn from a permutation keyed by (seed, epoch), so the checkpoint needs only
params, optimizer state, the step and the divergence flags, and a resumed run is bitwise
identical to an uninterrupted one. `jopt.lab.checkpoints` writes them (orbax when installed).

A seed whose loss is NaN or infinite stops at that step (its parameters and state are frozen,
status `diverged`); the others go on. Ctrl-C finishes the current chunk, checkpoints and marks
the unfinished trials `interrupted`; `jopt run --resume RUN_DIR` continues them.

Within one process, runs of the same workload options share its data and compiled init and
evaluation, and runs of the same optimizer config on it share the compiled step (the eight most
recently used workloads are kept, data included: a sweep's cross-validation folds are one each),
so that repeated runs from Python (a notebook, the tests) compile once.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt.lab import checkpoints, config_wrappers, outputs, run_lock
from jopt.lab import config as config_lib
from jopt.lab.programs import Batches, Compiled, compiled_workload, seed_keys, steps_per_epoch
from jopt.lab.progress import bar as progress_bar


class Interrupted(Exception):
    """Raised by `run` after Ctrl-C or SIGTERM, once everything is checkpointed and flushed;
    `signal` is the signal's number (SIGINT when stopped through `on_chunk`)."""

    def __init__(self, message: str, signal_number: int = signal.SIGINT):
        super().__init__(message)
        self.signal = signal_number


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # stop after the chunk; a second one at once


@dataclasses.dataclass
class _StopFlag:
    requested: bool = False
    signal: int = signal.SIGINT  # the signal that asked


@dataclasses.dataclass
class Carry:
    """What one training chunk carries, stacked over seeds."""

    params: Any
    opt_state: Any
    diverged_at: jax.Array  # int32 per seed: the step whose loss was not finite, or -1
    step: int  # steps completed (the same for every seed)


# -- one optimizer ---------------------------------------------------------------------------------


class _Group:
    """One optimizer of the config with all its seeds: files, checkpoint, and the loop."""

    def __init__(self, run_dir: Path, experiment, optimizer, compiled: Compiled):
        self.run_dir, self.experiment, self.optimizer = run_dir, experiment, optimizer
        self.workload = compiled.workload
        self.compiled = compiled
        programs = compiled.programs_for(optimizer)
        self.tx, self.init_state = programs.tx, programs.init_state
        self.seeds = experiment.seeds
        self.trials = [
            run_dir / "trials" / outputs.trial_name(optimizer.label, s) for s in self.seeds
        ]
        # The checkpoint files append their suffixes to this stem (`with_suffix` would turn the
        # labels 'momentum 0.9' and 'momentum 0.6' into the same 'momentum-0.npz').
        self.checkpoint = run_dir / "checkpoints" / outputs.safe_name(optimizer.label)
        self.format = checkpoints.default_format()
        self.init_keys, self.data_keys = seed_keys(self.seeds)
        self.batches = Batches(compiled, programs.step, self.data_keys, programs.step_with_value)
        self.eval_params = programs.eval_params
        self.plateau = optimizer.wrappers.plateau

    def evaluate(self, carry_params: Any, opt_state: Any, split: Any) -> dict[str, Any]:
        """The workload's metrics on `split`, at the params or, with `average:`, at the
        average kept in the optimizer state."""
        return self.compiled.evaluate(self.eval_params(carry_params, opt_state), split)

    # state ----------------------------------------------------------------------------------------
    def _initial_arrays(self) -> tuple[Any, Any, jax.Array]:
        params = self.compiled.init_params(self.init_keys)
        opt_state = self.init_state(params)
        return params, opt_state, jnp.full((len(self.seeds),), -1, jnp.int32)

    def fresh(self) -> Carry:
        return Carry(*self._initial_arrays(), 0)

    def save(self, carry: Carry) -> None:
        leaves = jax.tree.leaves((carry.params, carry.opt_state, carry.diverged_at))
        checkpoints.save(
            self.checkpoint, leaves, carry.step, {"seeds": list(self.seeds)}, self.format
        )

    def restore(self) -> Carry | None:
        # shapes and dtypes only: nothing is computed
        templates, treedef = jax.tree.flatten(jax.eval_shape(self._initial_arrays))
        stored = checkpoints.load(self.checkpoint, templates)
        if stored is None:
            return None
        leaves, step = stored
        params, opt_state, diverged = jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves])
        return Carry(params, opt_state, diverged, step)

    def finished(self) -> bool:
        """Whether every seed's metadata says it finished (done or diverged) at the last step."""
        for trial in self.trials:
            path = trial / "metadata.json"
            if not path.is_file():
                return False
            meta = outputs.read_json(path)
            done = meta.get("status") == "done" and meta.get("steps_completed") == (
                self.experiment.steps
            )
            if not (done or meta.get("status") == "diverged"):
                return False
        return True

    def mark_interrupted(self) -> None:
        """Best effort, after a write failed: trials still `running` become `interrupted`."""
        for trial in self.trials:
            try:
                meta = outputs.read_json(trial / "metadata.json")
                if meta.get("status") == "running":
                    outputs.write_json(trial / "metadata.json", {**meta, "status": "interrupted"})
            except (OSError, ValueError):
                pass  # the disk that failed may fail again: the resume sorts it out

    # files ----------------------------------------------------------------------------------------
    def write_metadata(self, carry: Carry, status: str, extra: dict[str, Any]) -> None:
        diverged = np.asarray(carry.diverged_at)
        for i, (seed, trial) in enumerate(zip(self.seeds, self.trials, strict=True)):
            seed_status = "diverged" if diverged[i] >= 0 else status
            meta = {
                **extra.get("common", {}),
                "optimizer": self.optimizer.label,
                "seed": seed,
                "status": seed_status,
                "steps_completed": carry.step,
                # the metrics.jsonl step whose train_loss was not finite (the update of step
                # index d is logged as step d + 1)
                "diverged_at_step": int(diverged[i]) + 1 if diverged[i] >= 0 else None,
                **{k: v[i] for k, v in extra.get("per_seed", {}).items()},
            }
            outputs.write_json(trial / "metadata.json", meta)

    def log_rows(
        self,
        start: int,
        records: dict[str, Any],
        evals: dict[str, Any] | None,
        elapsed: float,
        diverged: np.ndarray,
    ) -> None:
        records = jax.tree.map(np.asarray, records)
        length = records["train_loss"].shape[1]
        end = start + length
        for i, trial in enumerate(self.trials):
            rows = []
            for j in range(length):
                step = start + j + 1
                if diverged[i] >= 0 and step > diverged[i] + 1:
                    break
                last = step == end or step == diverged[i] + 1  # the divergence is always logged
                if step % self.experiment.log_every and not last:
                    continue
                row = {
                    "step": step,
                    "train_loss": float(records["train_loss"][i, j]),
                    "grad_norm": float(records["grad_norm"][i, j]),
                    "learning_rate": float(records["learning_rate"][i, j]),
                    "elapsed": elapsed,
                }
                if "params" in records:
                    row["params"] = [float(v) for v in np.ravel(records["params"][i, j])]
                rows.append(row)
            if evals is not None and rows and rows[-1]["step"] == end:
                rows[-1].update({f"eval_{k}": float(v[i]) for k, v in evals.items()})
            outputs.append_metrics(trial / "metrics.jsonl", rows)

    # the loop -------------------------------------------------------------------------------------
    def initial_rows(self, carry: Carry) -> None:
        evals = self.evaluate(carry.params, carry.opt_state, self.workload.valid)
        evals = jax.tree.map(np.asarray, evals)
        for i, trial in enumerate(self.trials):
            row = {
                "step": 0,
                "elapsed": 0.0,
                **{f"eval_{k}": float(v[i]) for k, v in evals.items()},
            }
            if self.workload.record_params:
                row["params"] = [float(v) for v in np.ravel(jax.tree.leaves(carry.params)[0][i])]
            outputs.append_metrics(trial / "metrics.jsonl", [row])

    def train(
        self,
        carry: Carry,
        stop: _StopFlag,
        progress: Any,
        elapsed0: float,
        on_chunk: Callable[[_StopFlag], None] | None = None,
    ) -> tuple[Carry, str, float]:
        experiment = self.experiment
        last_checkpoint = carry.step
        clock = time.perf_counter()
        status = "done"
        chunk: list[dict[str, Any]] = []  # the records of the chunk's steps
        # A plateau decay's metric goes to the update after each evaluation; resumed, the last
        # evaluation is made again (the same program on the same params: the same numbers).
        pending = None
        if self.plateau is not None and carry.step > 0:
            evals = self.evaluate(carry.params, carry.opt_state, self.workload.valid)
            pending = evals[self.plateau.metric]

        def on_step(record: dict[str, Any]) -> None:
            chunk.append(record)
            if progress is not None:
                progress.update(1)

        while carry.step < experiment.steps:
            if stop.requested:
                status = "interrupted"
                break
            length = min(
                experiment.eval_every - carry.step % experiment.eval_every,
                experiment.steps - carry.step,
            )
            chunk.clear()
            (params, opt_state, diverged), _ = self.batches.run(
                (carry.params, carry.opt_state, carry.diverged_at),
                carry.step,
                carry.step + length,
                on_step,
                value=pending,
            )
            records = jax.tree.map(lambda *r: np.stack(r, axis=1), *jax.device_get(chunk))
            evals = self.evaluate(params, opt_state, self.workload.valid)
            jax.block_until_ready(evals)
            if self.plateau is not None:
                pending = evals[self.plateau.metric]
            elapsed = elapsed0 + time.perf_counter() - clock
            self.log_rows(carry.step, records, evals, elapsed, np.asarray(diverged))
            carry = Carry(params, opt_state, diverged, carry.step + length)
            if progress is not None:
                losses = records["train_loss"][:, -1]
                progress.set_postfix(
                    loss=f"{np.nanmean(np.where(np.isfinite(losses), losses, np.nan)):.4g}"
                )
            every = experiment.checkpoint_every
            if every and carry.step - last_checkpoint >= every:
                self.save(carry)
                last_checkpoint = carry.step
            if on_chunk is not None:
                on_chunk(stop)
            if bool(np.all(np.asarray(diverged) >= 0)):
                break
        elapsed = elapsed0 + time.perf_counter() - clock
        self.save(carry)
        return carry, status, elapsed


# -- the whole experiment --------------------------------------------------------------------------


def new_run_dir(experiment: config_lib.ExperimentConfig, suffix: str = "") -> Path:
    """`OUTPUT_DIR/NAMESUFFIX`, or `NAMESUFFIX-2`, `NAMESUFFIX-3`... if taken."""
    base = Path(experiment.output_dir) / f"{experiment.name}{suffix}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def run(
    experiment: config_lib.ExperimentConfig,
    run_dir: Path | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    on_chunk: Callable[[_StopFlag], None] | None = None,
) -> Path:
    """Runs (or resumes) every optimizer of `experiment`; returns the run directory.

    Raises `Interrupted` after Ctrl-C or SIGTERM (in the main thread), once the checkpoints and
    statuses are written. `on_chunk` is called with the stop flag after every chunk of steps
    (setting `flag.requested` there interrupts the run as Ctrl-C does; the tests use it).
    """
    if resume and (run_dir is None or not (Path(run_dir) / "config.yaml").is_file()):
        raise FileNotFoundError(f"no run to resume at {run_dir} (no config.yaml).")
    try:
        compiled = compiled_workload(experiment.workload)
    except (ValueError, TypeError) as e:  # options that only the data can refute
        raise config_lib.workload_error(experiment.workload, e) from e
    workload = compiled.workload
    config_wrappers.check_groups_match(experiment.optimizers, compiled)
    experiment = config_lib.with_epochs_resolved(experiment, steps_per_epoch(workload) or 1)
    # A run directory records what ran: a search section is `jopt sweep`'s, not the run's.
    experiment = dataclasses.replace(experiment, search=None)
    if resume:
        run_dir = Path(run_dir)
    else:
        run_dir = Path(run_dir) if run_dir is not None else new_run_dir(experiment)
        run_dir.mkdir(parents=True, exist_ok=False)
        outputs.write_yaml(run_dir / "config.yaml", config_lib.to_dict(experiment))
    with run_lock.held(run_dir):
        env = outputs.environment()
        stop = _StopFlag()
        interrupted = False

        def request_stop(signum, frame):
            if stop.requested:
                raise KeyboardInterrupt
            stop.requested, stop.signal = True, signum

        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = (
            {s: signal.signal(s, request_stop) for s in STOP_SIGNALS} if in_main_thread else {}
        )
        group = None
        try:
            for optimizer in experiment.optimizers:
                group = _Group(run_dir, experiment, optimizer, compiled)
                if resume and group.finished():
                    continue  # its checkpoint is not read again (it may be damaged: no matter)
                carry = group.restore() if resume else None
                if carry is not None and (
                    carry.step >= experiment.steps
                    or bool(np.all(np.asarray(carry.diverged_at) >= 0))
                ):
                    continue
                elapsed0 = 0.0
                if carry is None:
                    for trial, seed in zip(group.trials, group.seeds, strict=True):
                        trial.mkdir(parents=True, exist_ok=True)
                        (trial / "metrics.jsonl").unlink(missing_ok=True)
                        alone = dataclasses.replace(
                            experiment, optimizers=(optimizer,), seeds=(seed,)
                        )
                        outputs.write_yaml(trial / "config.yaml", config_lib.to_dict(alone))
                    carry = group.fresh()
                    group.initial_rows(carry)
                else:
                    for trial in group.trials:
                        outputs.truncate_metrics(trial / "metrics.jsonl", carry.step)
                        meta = outputs.read_json(trial / "metadata.json")
                        elapsed0 = max(elapsed0, meta.get("wall_seconds", 0.0))
                group.write_metadata(
                    carry, "running", {"common": {"environment": env, "wall_seconds": elapsed0}}
                )
                bar = progress_bar(progress, optimizer.label, experiment.steps, carry.step)
                try:
                    carry, status, elapsed = group.train(carry, stop, bar, elapsed0, on_chunk)
                finally:
                    if bar is not None:
                        bar.close()
                test = (
                    jax.tree.map(
                        np.asarray, group.evaluate(carry.params, carry.opt_state, workload.test)
                    )
                    if status == "done"
                    else {}
                )
                group.write_metadata(
                    carry,
                    status,
                    {
                        "common": {"environment": env, "wall_seconds": elapsed},
                        "per_seed": {
                            "test": [
                                {f"test_{k}": float(v[i]) for k, v in test.items()}
                                for i in range(len(group.seeds))
                            ]
                        }
                        if test
                        else {},
                    },
                )
                if status == "interrupted":
                    interrupted = True
                    break
        except OSError:  # a full disk, a vanished directory: what can still be written says so
            if group is not None:
                group.mark_interrupted()
            raise
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
        if interrupted:
            name = signal.Signals(stop.signal).name
            raise Interrupted(
                f"interrupted ({name}); resume with: jopt run --resume {run_dir}", stop.signal
            )
        outputs.write_summary(run_dir)
        return run_dir
