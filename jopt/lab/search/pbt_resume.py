"""Population-based training's checkpoint: what the loop carries besides the arrays (the step,
each trial's values, the rows written so far, the objective history and the random generator),
saved as a JSON state file beside the arrays of the same step, so that `jopt sweep --resume`
continues a PBT run exactly (`jopt.lab.search.pbt`)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt.lab import checkpoints, outputs
from jopt.lab.search.pbt_report import Row


@dataclasses.dataclass
class State:
    """What the loop carries besides the arrays (saved with each checkpoint)."""

    step: int
    values: list[dict[str, Any]]  # each trial's, now
    rows: list[Row]
    eval_steps: list[int]
    history: np.ndarray  # (members, evals): the objective metric of each member's parameters
    rng: np.random.Generator

    def to_json(self) -> str:
        data = {
            "step": self.step,
            "values": self.values,
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "eval_steps": self.eval_steps,
            "history": self.history.tolist(),
            "rng": self.rng.bit_generator.state,
        }
        return json.dumps(data)  # NaN, Infinity as Python writes (and reads back) them

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        rng = np.random.default_rng()
        rng.bit_generator.state = data["rng"]
        return cls(
            data["step"],
            data["values"],
            [Row(**r) for r in data["rows"]],
            data["eval_steps"],
            np.asarray(data["history"], np.float64),
            rng,
        )


def state_path(stem: Path, step: int) -> Path:
    return stem.with_name(f"{stem.name}.state-{step}.json")


def save(stem: Path, state: State, carry: Any, seeds: Sequence[int]) -> None:
    """The state file first, then the arrays, then older state files: a crash at any point
    leaves the arrays of some step next to that step's state file."""
    outputs.write_atomic(state_path(stem, state.step), state.to_json())
    leaves = jax.tree.leaves(carry)
    record = {"seeds": list(seeds), "members": "trial * len(seeds) + seed"}
    checkpoints.save(stem, leaves, state.step, record, checkpoints.default_format())
    for old in stem.parent.glob(f"{stem.name}.state-*.json"):
        if old != state_path(stem, state.step):
            old.unlink(missing_ok=True)


def clear(stem: Path) -> None:
    """Removes the checkpoints at `stem` (a fresh run in a used folder must not resume them)."""
    shutil.rmtree(stem.with_name(f"{stem.name}.orbax"), ignore_errors=True)
    for path in stem.parent.glob(f"{stem.name}.*"):
        if path.suffix in (".npz", ".json"):
            path.unlink(missing_ok=True)


def restore(stem: Path, fresh: Callable[[], Any]) -> tuple[Any, State] | None:
    templates, treedef = jax.tree.flatten(jax.eval_shape(fresh))
    stored = checkpoints.load(stem, templates)
    if stored is None or not state_path(stem, stored[1]).is_file():
        return None
    leaves, step = stored
    carry = jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves])
    return carry, State.from_json(state_path(stem, step).read_text())
