"""The runner's checkpoints: a list of arrays and its step, written atomically.

A checkpoint holds the leaves of (params, optimizer state, divergence flags), each stacked over
seeds, and the number of steps completed. `STEM` is `RUN_DIR/checkpoints/LABEL`:

- with orbax (`orbax-checkpoint`, which flax installs): `STEM.orbax/STEP/`, written by an orbax
  `CheckpointManager`, which saves into a temporary folder, renames it once complete and keeps
  only the newest step;
- without it: `STEM.npz`, written to a temporary file and renamed, the step stored inside.

Either way `STEM.json` (step, seeds, number of leaves, format) is written last, for people and
tools. Loading takes the step from the array store itself, never from the JSON, so a crash
between the two writes cannot pair the arrays of one step with the number of another.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from jopt.lab import outputs

FORMATS = ("orbax", "npz")
_STEP_KEY = "step"


def default_format() -> str:
    """'orbax' when orbax-checkpoint is importable, else 'npz'."""
    try:
        import orbax.checkpoint  # noqa: F401
    except ImportError:
        return "npz"
    return "orbax"


def save(stem: Path, leaves: list[Any], step: int, record: dict[str, Any], fmt: str) -> None:
    """Writes the checkpoint of `step` (replacing the previous one), then `STEM.json`.

    Saving a step again (a run's last periodic checkpoint, then its final one) keeps the stored
    step: a run is deterministic, so the same step holds the same state.
    """
    arrays = {_leaf_name(i): np.asarray(leaf) for i, leaf in enumerate(leaves)}
    if fmt == "orbax":
        with _manager(stem) as manager:
            if step not in manager.all_steps():
                manager.save(step, args=_orbax_args(arrays), force=True)
        stem.with_name(stem.name + ".npz").unlink(missing_ok=True)
    elif fmt == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, **arrays, **{_STEP_KEY: np.asarray(step, np.int64)})
        outputs.write_atomic(stem.with_name(stem.name + ".npz"), buffer.getvalue())
        shutil.rmtree(stem.with_name(stem.name + ".orbax"), ignore_errors=True)
    else:
        raise ValueError(f"checkpoint format must be one of {FORMATS}, got {fmt!r}.")
    outputs.write_json(
        stem.with_name(stem.name + ".json"),
        {**record, "step": step, "leaves": len(leaves), "format": fmt},
    )


def load(stem: Path, templates: list[Any] | None = None) -> tuple[list[np.ndarray], int] | None:
    """(leaves, step) of the newest checkpoint at `stem`, or None if there is none.

    `templates` are the expected leaves (anything with .shape and .dtype): a checkpoint whose
    leaves differ in number, shape or dtype raises ValueError. None: read them as stored.
    """
    orbax_dir, npz = stem.with_name(stem.name + ".orbax"), stem.with_name(stem.name + ".npz")
    if orbax_dir.is_dir():
        with _manager(stem) as manager:
            step = manager.latest_step()
            if step is None:
                return None
            # Read as stored: restoring into templates would cast other dtypes silently.
            arrays = manager.restore(step, args=_orbax_restore_args())["state"]
        found = [np.asarray(arrays[k]) for k in sorted(arrays)]
    elif npz.is_file():
        with np.load(npz) as data:
            step = int(data[_STEP_KEY])
            found = [data[k] for k in sorted(data.files) if k != _STEP_KEY]
    else:
        return None
    if templates is not None and (
        len(found) != len(templates)
        or any(
            f.shape != tuple(t.shape) or f.dtype != t.dtype
            for f, t in zip(found, templates, strict=False)
        )
    ):
        raise _mismatch(stem)
    return found, int(step)


def _mismatch(stem: Path) -> ValueError:
    return ValueError(
        f"checkpoint {stem} does not match the optimizer's state: it was written by a "
        "different config or jopt version."
    )


def _leaf_name(i: int) -> str:
    return f"leaf{i:05d}"


def _manager(stem: Path):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(
        max_to_keep=1, enable_async_checkpointing=False, create=True
    )
    return ocp.CheckpointManager(stem.with_name(stem.name + ".orbax").absolute(), options=options)


def _orbax_args(arrays: dict[str, np.ndarray]):
    import orbax.checkpoint as ocp

    return ocp.args.Composite(state=ocp.args.StandardSave(arrays))


def _orbax_restore_args():
    import orbax.checkpoint as ocp

    return ocp.args.Composite(state=ocp.args.StandardRestore())
