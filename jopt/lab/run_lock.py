"""One process at a time in a run directory: an exclusive lock on `RUN_DIR/.lock`.

Two `jopt run --resume` of one directory would interleave their metrics and checkpoints. The
lock is `fcntl.flock` on a file holding the holder's pid: the kernel releases it when the holder
exits, however it exits, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

LOCK = ".lock"


class RunLocked(Exception):
    """Another process holds the run directory."""


@contextlib.contextmanager
def held(run_dir: Path) -> Iterator[None]:
    """Holds `run_dir`'s lock for the block; raises `RunLocked` naming the holder's pid."""
    path = Path(run_dir) / LOCK
    with path.open("a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(f)
            raise RunLocked(
                f"{run_dir} is in use by process {holder} (another jopt run or resume); wait for "
                "it to finish, or stop it, before resuming."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _holder(f) -> str:
    """The pid in the lock file; its holder writes it just after taking the lock, so a process
    that lost the race by a moment may find the file empty for that moment."""
    for _ in range(50):
        f.seek(0)
        holder = f.read().strip()
        if holder:
            return holder
        time.sleep(0.01)
    return "unknown"
