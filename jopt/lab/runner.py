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
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from jopt.lab import config as config_lib
from jopt.lab import config_wrappers, outputs, run_lock
from jopt.lab.optimizer_run import OptimizerRun, StopFlag
from jopt.lab.programs import compiled_experiment, steps_per_epoch
from jopt.lab.progress import bar as progress_bar


class Interrupted(Exception):
    """Raised by `run` after Ctrl-C or SIGTERM, once everything is checkpointed and flushed;
    `signal` is the signal's number (SIGINT when stopped through `on_chunk`)."""

    def __init__(self, message: str, signal_number: int = signal.SIGINT):
        super().__init__(message)
        self.signal = signal_number


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # stop after the chunk; a second one at once


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
    on_chunk: Callable[[StopFlag], None] | None = None,
) -> Path:
    """Runs (or resumes) every optimizer of `experiment`; returns the run directory.

    Raises `Interrupted` after Ctrl-C or SIGTERM (in the main thread), once the checkpoints and
    statuses are written. `on_chunk` is called with the stop flag after every chunk of steps
    (setting `flag.requested` there interrupts the run as Ctrl-C does; the tests use it).
    """
    if resume and (run_dir is None or not (Path(run_dir) / "config.yaml").is_file()):
        raise FileNotFoundError(f"no run to resume at {run_dir} (no config.yaml).")
    compiled = compiled_experiment(experiment)
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
        stop = StopFlag()
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
                group = OptimizerRun(run_dir, experiment, optimizer, compiled)
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
