"""Fault injection: a run killed, or its files damaged, ends in the same result after a resume,
or in one clear line with nothing lost.

- SIGKILL (no handler runs) at seeded random moments of a real `jopt run` process: the resume
  finishes with metrics identical to an uninterrupted run's;
- every file of the newest checkpoint truncated: the resume falls back to the step before, to
  the same result.

Flipped bits (tests/lab/test_checkpoints.py, test_cli.py), a full disk, concurrent resumes and
torn or corrupt metrics lines (test_cli.py, test_outputs.py) are injected elsewhere.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jopt.lab import checkpoints, outputs
from tests.lab.commands import run_jopt

CONFIG = """\
# jopt run CONFIG
name: faults
workload: {name: functions2d, function: rosenbrock}
optimizers:
  - {name: adam, label: Adam, learning_rate: 0.02}
  - {name: sgd, label: momentum, learning_rate: 0.001, momentum: 0.9}
seeds: [0, 1]
steps: 400
eval_every: 10
checkpoint_every: 20
output_dir: runs
"""
TRIALS = ["Adam-seed0", "Adam-seed1", "momentum-seed0", "momentum-seed1"]


def _rows(run_dir: Path) -> dict[str, list[dict]]:
    """Every trial's metrics without the wall-clock column."""
    return {
        t: [
            {k: v for k, v in r.items() if k != "elapsed"}
            for r in outputs.read_metrics(run_dir / "trials" / t / "metrics.jsonl")
        ]
        for t in TRIALS
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, list[dict]]]:
    root = tmp_path_factory.mktemp("reference")
    config = root / "faults.yaml"
    config.write_text(CONFIG)
    code = subprocess.run(
        [sys.executable, "-m", "jopt.lab.cli", "run", str(config), "--no-plots", "--no-progress"]
        + ["--output-dir", str(root / "o")],
        capture_output=True,
        text=True,
        timeout=600,
    ).returncode
    assert code == 0
    return config, _rows(root / "o" / "faults")


def _kill_after(config: Path, out_dir: Path, rows: int) -> Path:
    """Starts `jopt run`, SIGKILLs it once the first trial has `rows` metrics rows."""
    process = subprocess.Popen(
        [sys.executable, "-m", "jopt.lab.cli", "run", str(config), "--no-plots", "--no-progress"]
        + ["--output-dir", str(out_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    metrics = out_dir / "faults" / "trials" / TRIALS[0] / "metrics.jsonl"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= rows:
                break
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    return out_dir / "faults"


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_a_random_moment_then_resume_gives_the_uninterrupted_result(
    capsys, tmp_path, reference, seed
):
    config, expected = reference
    rows = random.Random(seed).randrange(2, 400)
    run_dir = _kill_after(config, tmp_path / "o", rows)
    code, _, err = run_jopt(capsys, "run", "--resume", run_dir, "--no-progress", "--no-plots")
    assert code == 0, err
    assert _rows(run_dir) == expected


def test_a_truncated_newest_checkpoint_falls_back_to_the_step_before(capsys, tmp_path, reference):
    if checkpoints.default_format() != "orbax":
        pytest.skip("orbax keeps two steps to fall back on")
    config, expected = reference
    run_dir = _kill_after(config, tmp_path / "o", 150)
    store = run_dir / "checkpoints" / "Adam.orbax"
    steps = sorted(int(p.name) for p in store.iterdir() if p.name.isdigit())
    for path in (store / str(steps[-1])).rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert len(steps) == checkpoints.KEEP  # killed after 150 rows: steps 120 and 140 stored
    assert checkpoints.load(run_dir / "checkpoints" / "Adam")[1] == steps[-2]
    code, _, err = run_jopt(capsys, "run", "--resume", run_dir, "--no-progress", "--no-plots")
    assert code == 0, err
    assert _rows(run_dir) == expected
