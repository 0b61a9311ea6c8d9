"""Checks that need several devices, run in a process of their own: XLA fixes the device count
when it starts, from `XLA_FLAGS=--xla_force_host_platform_device_count=N` (N simulated CPU
devices). The check module prints its results as one JSON line, last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_checks(module: str, *args: str, devices: int = 8) -> Any:
    """The JSON that `python -m module args...` prints last, on `devices` simulated devices."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
