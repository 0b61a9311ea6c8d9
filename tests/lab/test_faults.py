"""Fault injection: a run killed, or its files damaged, ends in the same result after a resume,
or in one clear line with nothing lost.

- SIGKILL (no handler runs) and SIGTERM at seeded random moments of a real `jopt run` process
  (SIGINT, Ctrl-C, stops as SIGTERM does: tests/lab/test_cli.py): the resume finishes with
  metrics identical to an uninterrupted run's;
- every file of the newest checkpoint truncated: the resume falls back to the step before, to
  the same result;
- two resumes of one directory at once, as two processes: the second is refused, naming the
  first's pid, and writes nothing; the first finishes to the same result;
- a real full disk (a tmpfs of 48 or 400 KiB in a private mount namespace: full at the first
  trial files, or in the middle of an orbax checkpoint): one `jopt:` line naming the file and
  exit 74, and once there is room the resume finishes to the same result, silently.

Flipped bits (tests/lab/test_checkpoints.py, test_cli.py) and torn or corrupt metrics lines
(test_cli.py, test_outputs.py) are injected elsewhere.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jopt.lab import checkpoints, outputs
from tests.lab.commands import run_jopt

STEPS = 200  # metrics rows per trial: a signal lands at one of them
CONFIG = """\
# jopt run CONFIG
name: faults
workload: {name: functions2d, function: rosenbrock}
optimizers:
  - {name: adam, label: Adam, learning_rate: 0.02}
  - {name: sgd, label: momentum, learning_rate: 0.001, momentum: 0.9}
seeds: [0, 1]
steps: {steps}
eval_every: 10
checkpoint_every: 20
output_dir: runs
""".replace("{steps}", str(STEPS))
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


def _jopt(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jopt.lab.cli", *map(str, args), "--no-plots", "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


def _wait_for_rows(process: subprocess.Popen, run_dir: Path, rows: int) -> None:
    """Returns once the first trial has `rows` metrics rows (or the process has ended)."""
    metrics = run_dir / "trials" / TRIALS[0] / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= rows:
            return
        time.sleep(0.02)


def _kill_after(config: Path, out_dir: Path, rows: int, sig: int = signal.SIGKILL) -> int:
    """Runs `jopt run` and sends it `sig` once the first trial has `rows` metrics rows; returns
    its exit status."""
    process = _jopt("run", config, "--output-dir", out_dir)
    try:
        _wait_for_rows(process, out_dir / "faults", rows)
    finally:
        process.send_signal(sig)
        process.communicate(timeout=120)
    return process.returncode


# The exit status of a run stopped by each signal: killed, or stopped cleanly (docs/lab.md).
STOPPED = {signal.SIGKILL: -signal.SIGKILL, signal.SIGTERM: 143, signal.SIGINT: 130}


@pytest.mark.parametrize(
    ("sig", "seed"),
    # SIGINT takes SIGTERM's clean stop; a real Ctrl-C and resume: tests/lab/test_cli.py.
    [(signal.SIGKILL, 1), (signal.SIGTERM, 3)],
    ids=["SIGKILL", "SIGTERM"],
)
def test_a_signal_at_a_random_moment_then_resume_gives_the_uninterrupted_result(
    capsys, tmp_path, reference, sig, seed
):
    config, expected = reference
    rows = random.Random(seed).randrange(2, STEPS)
    code = _kill_after(config, tmp_path / "o", rows, sig)
    assert code in (STOPPED[sig], 0)  # 0: the run had finished before the signal came
    run_dir = tmp_path / "o" / "faults"
    code, _, err = run_jopt(capsys, "run", "--resume", run_dir, "--no-progress", "--no-plots")
    assert code == 0, err
    assert _rows(run_dir) == expected


def test_a_second_resume_of_a_directory_in_use_is_refused_and_the_first_finishes(
    tmp_path, reference
):
    config, expected = reference
    run_dir = tmp_path / "o" / "faults"
    _kill_after(config, tmp_path / "o", STEPS // 2)
    first = _jopt("run", "--resume", run_dir)
    try:
        deadline = time.monotonic() + 120
        lock = run_dir / ".lock"
        while lock.read_text().strip() != str(first.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # holding the lock, mid-resume
        before = _files(run_dir)
        second = _jopt("run", "--resume", run_dir)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2
        assert err == (
            f"jopt: {run_dir} is in use by process {first.pid} (another jopt run or resume); "
            "wait for it to finish, or stop it, before resuming.\n"
        )
        assert _files(run_dir) == before
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert _rows(run_dir) == expected


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# In a mount namespace of its own (no root needed where user namespaces are allowed): run into a
# tmpfs too small for the run, then make room and resume, then copy the run out for the test.
FULL_DISK = """\
set -u
mount -t tmpfs -o size="$SIZE" tmpfs "$DISK" || exit 97
cd "$DISK"
"$PYTHON" -m jopt.lab.cli run "$CONFIG" --output-dir "$DISK/o" --no-plots --no-progress \\
  2> "$OUT/full.err"
echo $? > "$OUT/full.code"
mount -o remount,size=64m "$DISK"
"$PYTHON" -m jopt.lab.cli run --resume "$DISK/o/faults" --no-plots --no-progress \\
  2> "$OUT/resume.err"
echo $? > "$OUT/resume.code"
cp -r "$DISK/o/faults" "$OUT/faults"
"""


def _in_private_mount(script: str, tmp_path: Path, config: Path, **env: str) -> Path:
    """Runs `script` with a tmpfs of its own at $DISK; returns $OUT, where it writes."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) for a private tmpfs")
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir(), out.mkdir()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "DISK": str(disk), "OUT": str(out), **env}
    env |= {"PYTHON": sys.executable, "CONFIG": str(config)}
    done = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 or not any(out.iterdir()):
        pytest.skip(f"no private tmpfs here: {done.stderr.strip() or done.returncode}")
    return out


@pytest.mark.parametrize("size", ["48k", "400k"])
def test_a_full_disk_stops_with_one_line_and_the_run_resumes_once_there_is_room(
    tmp_path, reference, size
):
    config, expected = reference
    out = _in_private_mount(FULL_DISK, tmp_path, config, SIZE=size)
    err = (out / "full.err").read_text()
    assert (out / "full.code").read_text().strip() == "74", err
    assert err.count("\n") == 1 and err.startswith("jopt: cannot write "), err
    assert "No space left on device" in err
    assert f"jopt run --resume {tmp_path / 'disk' / 'o' / 'faults'}" in err
    assert (out / "resume.code").read_text().strip() == "0", (out / "resume.err").read_text()
    assert (out / "resume.err").read_text() == ""
    assert _rows(out / "faults") == expected


def test_a_truncated_newest_checkpoint_falls_back_to_the_step_before(capsys, tmp_path, reference):
    if checkpoints.default_format() != "orbax":
        pytest.skip("orbax keeps two steps to fall back on")
    config, expected = reference
    _kill_after(config, tmp_path / "o", 150)
    run_dir = tmp_path / "o" / "faults"
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


READ_ONLY = """\
mount -t tmpfs -o ro,size=1m tmpfs "$DISK" || exit 97
"$PYTHON" -m jopt.lab.cli run "$CONFIG" --output-dir "$DISK/o" --no-plots --no-progress \\
  2> "$OUT/run.err"
echo $? > "$OUT/run.code"
"""


def test_a_read_only_output_folder_stops_with_one_line_before_anything_runs(tmp_path, reference):
    config, _ = reference
    out = _in_private_mount(READ_ONLY, tmp_path, config)
    err = (out / "run.err").read_text()
    assert (out / "run.code").read_text().strip() == "74", err
    assert err == (
        f"jopt: cannot write {tmp_path / 'disk' / 'o'}: Read-only file system. Nothing was run; "
        "fix the output directory (--output-dir) and run again.\n"
    )
