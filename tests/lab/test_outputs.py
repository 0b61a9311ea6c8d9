"""The files of a run: metrics.jsonl (append, read, truncate), atomic writes that never leave a
half-written file, file names from labels, and the summary computed from hand-made trials.
"""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import statistics

import numpy as np
import pytest
import yaml

from jopt.lab import outputs

# -- metrics.jsonl ---------------------------------------------------------------------------------


def test_metrics_append_read_and_write_non_finite_numbers_as_null(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert outputs.read_metrics(path) == []
    outputs.append_metrics(path, [{"step": 0, "eval_loss": 2.0}])
    outputs.append_metrics(
        path,
        [
            {"step": 1, "train_loss": float("nan"), "grad_norm": np.float32(0.5)},
            {"step": 2, "train_loss": float("inf"), "learning_rate": 0.1},
        ],
    )
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        json.loads(line, parse_constant=pytest.fail)  # standard JSON: no NaN, no Infinity
    assert outputs.read_metrics(path) == [
        {"step": 0, "eval_loss": 2.0},
        {"step": 1, "train_loss": None, "grad_norm": 0.5},
        {"step": 2, "train_loss": None, "learning_rate": 0.1},
    ]


def test_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "metrics.jsonl"
    outputs.append_metrics(path, [{"step": s, "train_loss": 1.0 / (s + 1)} for s in range(3)])
    with path.open("a") as f:
        f.write('{"step": 3, "train_lo')  # a crash mid-write
    assert [r["step"] for r in outputs.read_metrics(path)] == [0, 1, 2]


def test_truncate_keeps_the_rows_up_to_the_checkpoint_and_drops_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "train_loss": float(s)} for s in range(0, 50, 5)]
    outputs.append_metrics(path, rows)
    with path.open("a") as f:
        f.write('{"step": 5')
    outputs.truncate_metrics(path, 20)
    assert outputs.read_metrics(path) == [r for r in rows if r["step"] <= 20]
    assert path.read_text().endswith("}\n")  # appending after truncation starts a fresh line
    outputs.append_metrics(path, [{"step": 25, "train_loss": 25.0}])
    assert [r["step"] for r in outputs.read_metrics(path)] == [0, 5, 10, 15, 20, 25]


# -- atomic writes ---------------------------------------------------------------------------------


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != "data.json")


def test_write_atomic_writes_text_and_bytes(tmp_path):
    outputs.write_atomic(tmp_path / "sub" / "a.txt", "héllo\n")
    outputs.write_atomic(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "sub" / "a.txt").read_text() == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    outputs.write_atomic(tmp_path / "b.bin", b"new")
    assert (tmp_path / "b.bin").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "sub"]


class _Unwritable:
    pass


@pytest.mark.parametrize("writer", ["json", "yaml"])
def test_a_serializer_failing_midway_leaves_the_old_file_whole(tmp_path, writer):
    path = tmp_path / "data.json"
    outputs.write_json(path, {"step": 1})
    before = path.read_bytes()
    # The unwritable value comes after keys that serialize fine: a writer streaming into the
    # file would have written them before failing.
    data = {"a": list(range(1000)), "b": "x" * 10_000, "z": _Unwritable()}
    write = outputs.write_json if writer == "json" else outputs.write_yaml
    with pytest.raises(Exception, match="_Unwritable|cannot represent"):
        write(path, data)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failure_while_writing_leaves_the_old_file_and_no_temporary(
    tmp_path, monkeypatch, failing
):
    path = tmp_path / "data.json"
    outputs.write_json(path, {"step": 1})
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(f"{failing} failed")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match=f"{failing} failed"):
        outputs.write_json(path, {"step": 2, "big": "y" * 100_000})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_a_failed_write_names_its_file(tmp_path, monkeypatch):
    """A full disk fails `write` or `fsync`, whose OSError has no file name (only `open`'s
    does): the error says which file could not be written."""
    path = tmp_path / "data.json"

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as raised:
        outputs.write_json(path, {"step": 1})
    assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, str(path))
    assert _leftovers(tmp_path) == []


def test_write_json_is_standard_json_with_null_for_non_finite(tmp_path):
    path = tmp_path / "meta.json"
    outputs.write_json(
        path,
        {"a": float("nan"), "b": [1.0, float("-inf")], "c": np.float32(2.5), "d": np.arange(3)},
    )
    assert json.loads(path.read_text(), parse_constant=pytest.fail) == {
        "a": None,
        "b": [1.0, None],
        "c": 2.5,
        "d": [0, 1, 2],
    }


# -- names -----------------------------------------------------------------------------------------

SAFE_NAMES = [
    ("sgd", "sgd"),
    ("torch.SGD", "torch.SGD"),
    ("Adam (warmup + cosine)", "Adam-warmup-cosine"),
    ("momentum 0.9", "momentum-0.9"),
    ("a/b\\c", "a-b-c"),
    ("  spaced  out  ", "spaced-out"),
    ("ümlaut_ok", "mlaut_ok"),
    ("..", "optimizer"),
    (".hidden", "hidden"),
    ("../up", "up"),
    ("???", "optimizer"),
]


@pytest.mark.parametrize(("label", "name"), SAFE_NAMES, ids=[n for _, n in SAFE_NAMES])
def test_safe_name(label, name):
    assert outputs.safe_name(label) == name


def test_trial_name():
    assert outputs.trial_name("Adam (warmup)", 3) == "Adam-warmup-seed3"


# -- summary ---------------------------------------------------------------------------------------

# Hand-made trials: (label, seed) -> (status, [(step, eval metric, elapsed)], test metric).
MIN_TRIALS = {
    ("fast", 0): ("done", [(0, 4.0, 0.0), (10, 0.5, 1.0), (20, 0.05, 2.0), (30, 0.08, 3.0)], 0.07),
    ("fast", 1): ("done", [(0, 4.0, 0.0), (10, 0.09, 1.5), (20, 0.02, 3.0), (30, 0.01, 4.5)], 0.02),
    ("fast", 2): ("done", [(0, 4.0, 0.0), (10, 0.3, 0.5), (20, 0.2, 1.0), (30, 0.15, 1.5)], 0.2),
    ("slow (lr 0.1)", 0): ("done", [(0, 4.0, 0.0), (10, 3.0, 1.0), (30, 2.0, 3.0)], 2.1),
    ("slow (lr 0.1)", 1): ("diverged", [(0, 4.0, 0.0), (10, 3.5, 1.0)], None),
    ("slow (lr 0.1)", 2): ("diverged", [(0, 4.0, 0.0), (10, None, 1.0)], None),
}


def _make_run(tmp_path, trials, target, seeds=(0, 1, 2), missing=()):
    labels = list(dict.fromkeys(label for label, _ in trials))
    config = {
        "name": "handmade",
        "description": "Made by hand.",
        "workload": {"name": "linear_regression"},
        "optimizers": [{"name": "sgd", "label": label} for label in labels],
        "seeds": list(seeds),
        "steps": 30,
        "target": target,
    }
    run_dir = tmp_path / "run"
    outputs.write_yaml(run_dir / "config.yaml", config)
    metric = target["metric"] if target else "eval_loss"
    for (label, seed), (status, rows, test) in trials.items():
        if (label, seed) in missing:
            continue
        trial = run_dir / "trials" / outputs.trial_name(label, seed)
        trial.mkdir(parents=True)
        meta = {"status": status, "seed": seed}
        if test is not None:
            meta["test"] = {metric.replace("eval_", "test_"): test}
        outputs.write_json(trial / "metadata.json", meta)
        lines = []
        for step, value, elapsed in rows:
            lines.append({"step": step, metric: value, "elapsed": elapsed})
            lines.append({"step": step + 1, "train_loss": 1.0, "elapsed": elapsed})  # no metric
        outputs.append_metrics(trial / "metrics.jsonl", lines)
    return run_dir


def _read_csv(run_dir):
    with (run_dir / "summary.csv").open() as f:
        return {row["optimizer"]: row for row in csv.DictReader(f)}


def test_summary_of_a_minimized_metric(tmp_path):
    target = {"metric": "eval_loss", "value": 0.1, "mode": "min"}
    run_dir = _make_run(tmp_path, MIN_TRIALS, target)
    markdown = outputs.write_summary(run_dir)
    rows = _read_csv(run_dir)
    assert list(rows) == ["fast", "slow (lr 0.1)"]

    fast = rows["fast"]
    finals, bests = [0.08, 0.01, 0.15], [0.05, 0.01, 0.15]
    assert float(fast["final_mean"]) == pytest.approx(statistics.fmean(finals))
    assert float(fast["final_std"]) == pytest.approx(statistics.pstdev(finals))
    assert float(fast["best_mean"]) == pytest.approx(statistics.fmean(bests))
    assert float(fast["best_std"]) == pytest.approx(statistics.pstdev(bests))
    # seed 0 reaches <= 0.1 at step 20 (2.0 s), seed 1 at step 10 (1.5 s), seed 2 never
    assert fast["reached_target"] == "2"
    assert float(fast["steps_to_target"]) == pytest.approx(15.0)
    assert float(fast["seconds_to_target"]) == pytest.approx(1.75)
    assert float(fast["test_mean"]) == pytest.approx(statistics.fmean([0.07, 0.02, 0.2]))
    assert float(fast["test_std"]) == pytest.approx(statistics.pstdev([0.07, 0.02, 0.2]))
    assert (fast["diverged"], fast["unfinished"], fast["seeds"]) == ("0", "0", "3")

    slow = rows["slow (lr 0.1)"]
    # a diverged seed counts with its last finite evaluation (seed 2: the one at step 0)
    assert float(slow["final_mean"]) == pytest.approx(statistics.fmean([2.0, 3.5, 4.0]))
    assert float(slow["final_std"]) == pytest.approx(statistics.pstdev([2.0, 3.5, 4.0]))
    assert float(slow["best_mean"]) == pytest.approx(statistics.fmean([2.0, 3.5, 4.0]))
    assert slow["reached_target"] == "0" and math.isnan(float(slow["steps_to_target"]))
    assert float(slow["test_mean"]) == pytest.approx(2.1) and float(slow["test_std"]) == 0.0
    assert (slow["diverged"], slow["unfinished"]) == ("2", "0")

    assert markdown == (run_dir / "summary.md").read_text()
    assert markdown.startswith("# handmade\n\nMade by hand.\n")
    assert "Target: eval_loss <= 0.1." in markdown
    assert "| fast | 0.08 ± 0.057 | 0.07 ± 0.059 | 0.09667 ± 0.076 | 2/3 | 15 | 1.75 | 0/3 |" in (
        markdown
    )
    assert "| slow (lr 0.1) | 3.167 ± 0.85 | 3.167 ± 0.85 | 2.1 ± 0 | 0/3 | — | — | 2/3 |" in (
        markdown
    )


def test_summary_of_a_maximized_metric_and_a_trial_that_never_started(tmp_path):
    trials = {
        ("A", 0): ("done", [(0, 0.1, 0.0), (5, 0.96, 2.0), (10, 0.9, 4.0)], 0.93),
        ("A", 1): ("interrupted", [(0, 0.1, 0.0), (5, 0.6, 1.0)], None),
    }
    target = {"metric": "eval_accuracy", "value": 0.9, "mode": "max"}
    run_dir = _make_run(tmp_path, trials, target, seeds=(0, 1, 2))  # seed 2 never started
    markdown = outputs.write_summary(run_dir)
    row = _read_csv(run_dir)["A"]
    assert float(row["final_mean"]) == pytest.approx(0.75)  # 0.9 and 0.6
    assert float(row["best_mean"]) == pytest.approx(0.78)  # 0.96 and 0.6
    assert (row["reached_target"], row["steps_to_target"]) == ("1", "5.0")
    assert (row["diverged"], row["unfinished"]) == ("0", "2")  # interrupted, and missing
    assert "Target: eval_accuracy >= 0.9." in markdown
    assert "| A | 0.75 ± 0.15 | 0.78 ± 0.18 | 0.93 ± 0 | 1/3 | 5 | 2.00 | 0/3 |" in markdown


def test_summary_without_a_target_gives_the_final_metrics_and_divergence(tmp_path):
    run_dir = _make_run(tmp_path, MIN_TRIALS, None)
    markdown = outputs.write_summary(run_dir)
    rows = _read_csv(run_dir)
    assert set(rows["fast"]) == {"optimizer", "name", "seeds", "diverged", "unfinished",
                                 "eval_loss_mean", "eval_loss_std", "test_loss_mean",
                                 "test_loss_std"}  # fmt: skip
    # The last evaluation of each seed (a diverged seed's last finite one; None is left out).
    assert float(rows["fast"]["eval_loss_mean"]) == pytest.approx(
        statistics.fmean([0.08, 0.01, 0.15])
    )
    assert float(rows["slow (lr 0.1)"]["eval_loss_mean"]) == pytest.approx(
        statistics.fmean([2.0, 3.5])
    )
    assert float(rows["fast"]["test_loss_mean"]) == pytest.approx(
        statistics.fmean([0.07, 0.02, 0.2])
    )
    assert rows["slow (lr 0.1)"]["diverged"] == "2"
    assert "| optimizer | final eval_loss | test_loss | diverged |" in markdown
    assert "| fast | 0.08 ± 0.057 | 0.09667 ± 0.076 | 0/3 |" in markdown
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["target"] is None


def test_an_unreadable_line_before_the_last_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    outputs.append_metrics(path, [{"step": s, "train_loss": 1.0 / s} for s in range(1, 6)])
    lines = path.read_text().splitlines()
    lines[2] = '{"step": 3, "train_lo'  # a corrupt row in the middle
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(outputs.CorruptMetrics, match=r"metrics.jsonl, line 3: not a JSON row"):
        outputs.read_metrics(path)
    with pytest.raises(outputs.CorruptMetrics):  # resume does not truncate the rows after it
        outputs.truncate_metrics(path, 5)
    assert len(path.read_text().splitlines()) == 5


def test_written_files_get_the_users_usual_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        outputs.write_json(tmp_path / "a.json", {"x": 1})
        outputs.write_atomic(tmp_path / "b.bin", b"\x00")
        os.umask(0o077)
        outputs.write_yaml(tmp_path / "c.yaml", {"x": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "c.yaml").stat().st_mode & 0o777 == 0o600
