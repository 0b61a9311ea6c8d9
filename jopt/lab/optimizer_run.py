"""One optimizer of a config with all its seeds: its trial files, its checkpoint, and the
train/eval loop over the stacked seeds (see `jopt.lab.runner` for the whole run).

The seeds' params and optimizer states are stacked and trained by one vmapped program
(`programs.Batches`); after every `eval_every` steps the loop evaluates (at the params, or at
the average an `average:` keeps), logs, feeds a `plateau:` the metric it watches at the next
update, and checkpoints every `checkpoint_every` steps.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt.lab import checkpoints, outputs
from jopt.lab.programs import Batches, Compiled, seed_keys


@dataclasses.dataclass
class StopFlag:
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


class OptimizerRun:
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
        stop: StopFlag,
        progress: Any,
        elapsed0: float,
        on_chunk: Callable[[StopFlag], None] | None = None,
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
