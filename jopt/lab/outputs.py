"""The files a run writes, and the summary read back from them.

    RUN_DIR/config.yaml                    the resolved config (what `--resume` reads)
    RUN_DIR/trials/LABEL-seedS/config.yaml the trial's own config (one optimizer, one seed)
    RUN_DIR/trials/LABEL-seedS/metadata.json   versions, device, git hash, status, times
    RUN_DIR/trials/LABEL-seedS/metrics.jsonl   one line per logged step
    RUN_DIR/checkpoints/LABEL.orbax/STEP/  every seed of one optimizer, to resume exactly
                                           (LABEL.npz without orbax), with LABEL.json
    RUN_DIR/summary.csv, summary.md        per optimizer: mean ± std over seeds
    RUN_DIR/.lock                          held by the process running in the directory

Every file but the append-only metrics is written to a temporary file and renamed, so a crash or
Ctrl-C never leaves a half-written one; metrics lines past the last checkpoint are dropped on
resume.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

STATUSES = ("running", "done", "diverged", "interrupted")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Writes `data` to `path` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a file gets the user's usual mode
        with naming(path), os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """Gives an OSError raised without a file name (a failed `write`, as on a full disk: only
    `open` names its file) the name of `path`, so that the error says which file."""
    try:
        yield
    except OSError as e:
        if e.filename is not None or e.errno is None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e


def _umask() -> int:
    """The process's umask (read by setting it, and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: Path, data: Any) -> None:
    """Writes `data` as standard JSON (NaN and infinities become null), atomically."""
    text = json.dumps(_finite_tree(data), indent=2, sort_keys=True, allow_nan=False, default=_plain)
    write_atomic(path, text + "\n")


def _finite_tree(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _finite_tree(v) for k, v in data.items()}
    if isinstance(data, np.ndarray):
        data = data.tolist()
    if isinstance(data, (list, tuple)):
        return [_finite_tree(v) for v in data]
    if isinstance(data, np.generic):
        data = data.item()
    return _finite_or_none(data)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def write_yaml(path: Path, data: Any) -> None:
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def safe_name(label: str) -> str:
    """`label` as a file name: each run of characters other than ASCII letters, digits, '.' and
    '_' becomes one '-' (so 'Adam (warmup + cosine)' -> 'Adam-warmup-cosine'); leading and
    trailing '-' and '.' are dropped (no hidden files, no '.' or '..'), and nothing left gives
    'optimizer'."""
    name = re.sub(r"[^A-Za-z0-9._]+", "-", label).strip("-.")
    return name or "optimizer"


def trial_name(label: str, seed: int) -> str:
    return f"{safe_name(label)}-seed{seed}"


# -- metrics ---------------------------------------------------------------------------------------


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def append_metrics(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Appends rows to a metrics.jsonl (non-finite numbers written as null) and flushes."""
    with naming(path), path.open("a") as f:
        for row in rows:
            clean = {k: _finite_or_none(v) for k, v in row.items()}
            f.write(json.dumps(clean, default=_plain) + "\n")
        f.flush()


class CorruptMetrics(ValueError):
    """A metrics.jsonl line that cannot be read, before its last line."""


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl. A torn last line (a crash mid-write) is ignored; an
    unreadable line before it raises `CorruptMetrics` naming the file and the line, rather than
    dropping every row after it."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines):
                break
            raise CorruptMetrics(
                f"{path}, line {number}: not a JSON row ({e.msg}); the {len(lines) - number} "
                "rows after it are kept. Repair or remove that line, then run the command again."
            ) from None
    return rows


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keeps the rows up to `last_step` (the checkpoint a resumed run continues from)."""
    rows = [r for r in read_metrics(path) if r["step"] <= last_step]
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


# -- metadata --------------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    """Versions, device and git hash, recorded with every trial."""
    import jax
    import optax

    import jopt

    try:
        git = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        git = None
    device = jax.devices()[0]
    return {
        "jopt": jopt.__version__,
        "jax": jax.__version__,
        "optax": optax.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": f"{device.platform}: {device.device_kind}",
        "device_count": jax.device_count(),
        "git": git,
    }


# -- summary ---------------------------------------------------------------------------------------


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return float(np.mean(values)), float(np.std(values))


def _fmt(mean: float, std: float, digits: int = 4) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:.{digits}g} ± {std:.2g}"


def _collect_final(into: dict[str, list[float]], trial: Path, meta: Mapping[str, Any]) -> None:
    """Adds a trial's last evaluation (`eval_*`) and its test metrics (`test_*`) to `into`."""
    path = trial / "metrics.jsonl"
    rows = read_metrics(path) if path.exists() else []
    evaluated = [r for r in rows if any(k.startswith("eval_") for k in r)]
    final = {k: v for k, v in (evaluated[-1] if evaluated else {}).items() if k.startswith("eval_")}
    for name, value in {**final, **meta.get("test", {})}.items():
        into.setdefault(name, []).append(value)


def summarize(run_dir: Path) -> list[dict[str, Any]]:
    """One row per optimizer, from the trial folders: final/best eval metric, target, divergence."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    target = config.get("target")
    rows = []
    for optimizer in config["optimizers"]:
        label = optimizer["label"]
        finals, bests, steps_to, secs_to, tests, statuses = [], [], [], [], [], []
        metric = target["metric"] if target else None
        last_evals: dict[str, list[float]] = {}  # without a target: every final eval_ and test_
        for seed in config["seeds"]:
            trial = run_dir / "trials" / trial_name(label, seed)
            meta = read_json(trial / "metadata.json") if (trial / "metadata.json").exists() else {}
            statuses.append(meta.get("status", "missing"))
            if not metric:
                _collect_final(last_evals, trial, meta)
            if metric:
                tests.append(meta.get("test", {}).get(metric.replace("eval_", "test_", 1)))
            evals = [r for r in read_metrics(trial / "metrics.jsonl") if metric in r]
            values = [r[metric] for r in evals if r[metric] is not None]
            if values and metric:
                finals.append(values[-1])
                bests.append(max(values) if target["mode"] == "max" else min(values))
                hit = next(
                    (
                        r
                        for r in evals
                        if r[metric] is not None
                        and (
                            r[metric] >= target["value"]
                            if target["mode"] == "max"
                            else r[metric] <= target["value"]
                        )
                    ),
                    None,
                )
                if hit:
                    steps_to.append(hit["step"])
                    secs_to.append(hit["elapsed"])
        row = {
            "optimizer": label,
            "name": optimizer["name"],
            "seeds": len(config["seeds"]),
            "diverged": statuses.count("diverged"),
            "unfinished": sum(s not in ("done", "diverged") for s in statuses),
        }
        for name, values in last_evals.items():
            row[f"{name}_mean"], row[f"{name}_std"] = _mean_std(values)
        if metric:
            row.update(
                {
                    "metric": metric,
                    "final_mean": _mean_std(finals)[0],
                    "final_std": _mean_std(finals)[1],
                    "best_mean": _mean_std(bests)[0],
                    "best_std": _mean_std(bests)[1],
                    "reached_target": len(steps_to),
                    "steps_to_target": _mean_std(steps_to)[0],
                    "seconds_to_target": _mean_std(secs_to)[0],
                    "test_mean": _mean_std(tests)[0],
                    "test_std": _mean_std(tests)[1],
                }
            )
        rows.append(row)
    return rows


def summary_markdown(rows: list[dict[str, Any]], config: Mapping[str, Any]) -> str:
    target = config.get("target")
    lines = [f"# {config['name']}", ""]
    if config.get("description"):
        lines += [config["description"], ""]
    lines += [
        f"Workload `{config['workload']['name']}`, {config['steps']} steps, seeds "
        f"{config['seeds']}; mean ± std over seeds."
    ]
    if not target:
        names = [key[: -len("_mean")] for key in rows[0] if key.endswith("_mean")]
        header = ["optimizer", *(f"final {n}" if n.startswith("eval_") else n for n in names)]
        lines += ["", "| " + " | ".join([*header, "diverged"]) + " |"]
        lines += ["|" + "---|" * (len(header) + 1)]
        for r in rows:
            cells = [_fmt(r.get(f"{n}_mean", math.nan), r.get(f"{n}_std", math.nan)) for n in names]
            diverged = f"{r['diverged']}/{r['seeds']}"
            lines.append("| " + " | ".join([r["optimizer"], *cells, diverged]) + " |")
        return "\n".join(lines) + "\n"
    goal = ">=" if target["mode"] == "max" else "<="
    metric = target["metric"]
    lines += [
        f"Target: {metric} {goal} {target['value']}.",
        "",
        f"| optimizer | final {metric} | best {metric} | test | reached | steps to target "
        "| seconds to target | diverged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        steps = "—" if math.isnan(r["steps_to_target"]) else f"{r['steps_to_target']:.0f}"
        secs = "—" if math.isnan(r["seconds_to_target"]) else f"{r['seconds_to_target']:.2f}"
        lines.append(
            f"| {r['optimizer']} | {_fmt(r['final_mean'], r['final_std'])} | "
            f"{_fmt(r['best_mean'], r['best_std'])} | {_fmt(r['test_mean'], r['test_std'])} | "
            f"{r['reached_target']}/{r['seeds']} | {steps} | {secs} | "
            f"{r['diverged']}/{r['seeds']} |"
        )
    return "\n".join(lines) + "\n"


def write_summary(run_dir: Path) -> str:
    """Writes summary.csv and summary.md from the trial files; returns the Markdown."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    rows = summarize(run_dir)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(run_dir / "summary.csv", buffer.getvalue())
    markdown = summary_markdown(rows, config)
    write_atomic(run_dir / "summary.md", markdown)
    return markdown
