"""The runner's checkpoints: a list of arrays and its step, written atomically.

A checkpoint holds the leaves of (params, optimizer state, divergence flags), each stacked over
seeds, and the number of steps completed. `STEM` is `RUN_DIR/checkpoints/LABEL`:

- with orbax (`orbax-checkpoint`, which flax installs): `STEM.orbax/STEP/`, written by an orbax
  `CheckpointManager`, which saves into a temporary folder, renames it once complete and keeps
  the two newest steps;
- without it: `STEM.npz`, written to a temporary file and renamed, the step stored inside.

Either way `STEM.digests.json` holds a SHA-256 of every array of each kept step, and `STEM.json`
(step, seeds, number of leaves, format) is written last, for people and tools. Loading takes the
step from the array store itself, never from the JSON, so a crash between the writes cannot pair
the arrays of one step with the number of another; it checks each array against its digest and,
when the newest step is damaged (flipped bits, a truncated file, no digest because the writer
died before it), falls back to the step before it. With no good step left it raises
`CorruptCheckpoint`, naming the directory. Checkpoints written before digests load unchecked.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from jopt.lab import outputs

FORMATS = ("orbax", "npz")
KEEP = 2  # orbax steps kept: the newest, and one to fall back on
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
    digests = dict(_read_digests(stem) or {})  # a damaged file is replaced
    if fmt == "orbax":
        store = stem.with_name(stem.name + ".orbax")
        for unfinished in store.glob("*.orbax-checkpoint-tmp"):  # a save cut short (full disk)
            shutil.rmtree(unfinished)
        with _as_os_error(store), outputs.naming(store), _manager(stem) as manager:
            if step not in manager.all_steps():
                manager.save(step, args=_orbax_args(arrays), force=True)
            kept = {str(s) for s in manager.all_steps()}
        stem.with_name(stem.name + ".npz").unlink(missing_ok=True)
    elif fmt == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, **arrays, **{_STEP_KEY: np.asarray(step, np.int64)})
        outputs.write_atomic(stem.with_name(stem.name + ".npz"), buffer.getvalue())
        shutil.rmtree(stem.with_name(stem.name + ".orbax"), ignore_errors=True)
        kept = {str(step)}
    else:
        raise ValueError(f"checkpoint format must be one of {FORMATS}, got {fmt!r}.")
    digests[str(step)] = {name: digest(a) for name, a in arrays.items()}
    outputs.write_json(
        _digests_path(stem),
        {k: v for k, v in digests.items() if k in kept},
    )
    outputs.write_json(
        stem.with_name(stem.name + ".json"),
        {**record, "step": step, "leaves": len(leaves), "format": fmt},
    )


def load(stem: Path, templates: list[Any] | None = None) -> tuple[list[np.ndarray], int] | None:
    """(leaves, step) of the newest good checkpoint at `stem`, or None if there is none.

    `templates` are the expected leaves (anything with .shape and .dtype): a checkpoint whose
    leaves differ in number, shape or dtype raises ValueError. None: read them as stored. A step
    whose arrays do not match their digests is skipped for the one before it (see the module
    docstring); with none left, `CorruptCheckpoint`.
    """
    orbax_dir, npz = stem.with_name(stem.name + ".orbax"), stem.with_name(stem.name + ".npz")
    digests = _read_digests(stem)
    if digests is _DAMAGED:
        raise CorruptCheckpoint(
            f"checkpoint {orbax_dir if orbax_dir.is_dir() else npz} cannot be verified: its "
            f"digests, {_digests_path(stem)}, are damaged; delete both to train that optimizer "
            "again from its first step."
        )
    damage = []
    for step, read in _stored_steps(stem, orbax_dir, npz):
        try:
            found = read()
        except Exception as e:  # orbax's, tensorstore's and zipfile's errors share no base
            damage.append(f"step {step}: cannot be read ({type(e).__name__})")
            continue
        problem = _verify(found, digests, step)
        if problem is not None:
            damage.append(f"step {step}: {problem}")
            continue
        if templates is not None and (
            len(found) != len(templates)
            or any(
                f.shape != tuple(t.shape) or f.dtype != t.dtype
                for f, t in zip(found, templates, strict=False)
            )
        ):
            raise _mismatch(stem)
        return found, int(step)
    if damage:
        where = orbax_dir if orbax_dir.is_dir() else npz
        raise CorruptCheckpoint(
            f"checkpoint {where} is damaged ({'; '.join(damage)}) and no earlier step is good: "
            f"delete it to train that optimizer again from its first step."
        )
    return None


class CorruptCheckpoint(ValueError):
    """No stored step of a checkpoint matches its digests."""


def digest(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


_DAMAGED: dict[str, dict[str, str]] = {}  # what `_read_digests` gives for an unreadable file


def _digests_path(stem: Path) -> Path:
    return stem.with_name(stem.name + ".digests.json")


def _read_digests(stem: Path) -> dict[str, dict[str, str]] | None:
    """The digests of every stored step; None without a file (written before digests were),
    `_DAMAGED` for a file that cannot be read (every step is then unverifiable)."""
    path = _digests_path(stem)
    if not path.is_file():
        return None
    try:
        digests = outputs.read_json(path)
    except ValueError:
        return _DAMAGED
    return digests if isinstance(digests, dict) else _DAMAGED


def _verify(found: list[np.ndarray], digests: dict | None, step: int) -> str | None:
    """What is wrong with a step's arrays, or None (no digests at all: written before them)."""
    if digests is None:
        return None
    expected = digests.get(str(step))
    if expected is None:
        return "no digest (its writer stopped before recording one)"
    names = [_leaf_name(i) for i in range(len(found))]
    if sorted(expected) != names:
        return f"{len(found)} arrays where its digests list {len(expected)}"
    bad = [n for n, a in zip(names, found, strict=True) if digest(a) != expected[n]]
    return f"{', '.join(bad)} do not match their digests" if bad else None


def _stored_steps(stem: Path, orbax_dir: Path, npz: Path):
    """(step, reader of its arrays) for every stored step, newest first."""
    if orbax_dir.is_dir():
        with _manager(stem) as manager:
            steps = sorted(manager.all_steps(), reverse=True)

            def reader(step):
                def read():
                    # Read as stored: restoring into templates would cast other dtypes silently.
                    return _from_orbax(manager.restore(step, args=_orbax_restore_args())["state"])

                return read

            for step in steps:
                yield step, reader(step)
    elif npz.is_file():

        def read():
            with np.load(npz) as data:
                return [data[k] for k in sorted(data.files) if k != _STEP_KEY]

        try:
            with np.load(npz) as data:
                step = int(data[_STEP_KEY])
        except Exception:  # an unreadable archive: report it under step "?"
            step = "?"
        yield step, read


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
        max_to_keep=KEEP, enable_async_checkpointing=False, create=True
    )
    return ocp.CheckpointManager(stem.with_name(stem.name + ".orbax").absolute(), options=options)


_SHAPE_PREFIX = "shape"  # `shapeNNNNN`: the shape of leaf NNNNN, stored in its place when empty


def _orbax_args(arrays: dict[str, np.ndarray]):
    """orbax refuses arrays of size 0 (an optimizer state block without hyperparameters holds
    one): each is stored as one element of its dtype, with its shape under `shapeNNNNN`."""
    import orbax.checkpoint as ocp

    stored = {}
    for name, array in arrays.items():
        if array.size == 0:
            stored[name] = np.zeros(1, array.dtype)
            stored[_SHAPE_PREFIX + name.removeprefix("leaf")] = np.asarray(array.shape, np.int64)
        else:
            stored[name] = array
    return ocp.args.Composite(state=ocp.args.StandardSave(stored))


def _from_orbax(stored: dict[str, Any]) -> list[np.ndarray]:
    """The leaves `_orbax_args` stored, in order, empty ones given back their shape."""
    leaves = []
    for name in sorted(k for k in stored if k.startswith("leaf")):
        array = np.asarray(stored[name])
        shape = stored.get(_SHAPE_PREFIX + name.removeprefix("leaf"))
        if shape is not None:
            array = np.zeros(tuple(int(n) for n in np.asarray(shape)), array.dtype)
        leaves.append(array)
    return leaves


def _orbax_restore_args():
    import orbax.checkpoint as ocp

    return ocp.args.Composite(state=ocp.args.StandardRestore())


_OS_ERROR_CODE = re.compile(r"os_error_code='(\d+)'")


@contextlib.contextmanager
def _as_os_error(path: Path) -> Iterator[None]:
    """orbax writes through tensorstore, which reports a failed write (a full disk, a read-only
    folder) as a ValueError carrying the OS error code: raises it as the OSError it is, naming
    the checkpoint folder, so that the run stops as on any other write it cannot make."""
    _quiet_orbax_failures()
    try:
        yield
    except ValueError as e:
        match = _OS_ERROR_CODE.search(str(e))
        if match is None:
            raise
        code = int(match[1])
        raise OSError(code, os.strerror(code), str(path)) from e


def _is_write_failure_report(record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return _OS_ERROR_CODE.search(f"{record.getMessage()} {error}") is None


@functools.cache
def _quiet_orbax_failures() -> None:
    """Silences the reports that orbax's writer tasks and threads make, besides the error it
    raises, of a write that failed (`_as_os_error` reports it once): absl's log of the error and
    asyncio's "Task exception was never retrieved" for the abandoned writes (both filtered by
    the OS error code in their text), and tensorstore's callbacks on the event loop orbax has
    closed by then ("Event loop is closed", an unraisable error). Installed once per process."""
    for name in ("absl", "asyncio"):
        logging.getLogger(name).addFilter(_is_write_failure_report)
    hook = sys.unraisablehook

    def unraisable(report) -> None:
        closed = isinstance(report.exc_value, RuntimeError) and (
            str(report.exc_value) == "Event loop is closed"
        )
        if not closed:
            hook(report)

    sys.unraisablehook = unraisable
