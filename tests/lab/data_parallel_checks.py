"""`jopt run` data-parallel on 8 simulated CPU devices against the same config on one device.

Run by tests/lab/test_data_parallel.py in a process of its own (XLA fixes the device count when
it starts): `XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m
tests.lab.data_parallel_checks OUT_DIR`. Prints one JSON line: the device count, what the
data-parallel step compiled to, the largest gaps between the two runs' metrics, and the errors
of configs that cannot split.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

from jopt.lab import cli, outputs, programs
from jopt.lab import config as config_lib

CONFIGS = {
    "linear_regression": {
        "workload": {"name": "linear_regression", "n_train": 256, "dim": 8, "batch_size": 32},
        "optimizers": [
            {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
            {"name": "adam", "learning_rate": 0.01},
        ],
        "steps": 40,
    },
    "cnn": {
        "workload": {"name": "cnn", "dataset": "digits", "batch_size": 32},
        "optimizers": [{"name": "adam", "learning_rate": 0.003}],
        "steps": 16,
    },
}


def _run(out: Path, name: str, raw: dict, data_parallel) -> Path:
    """The trials' folder of `jopt run` on `raw` (two seeds, evaluated every 8 steps)."""
    config = {"name": f"{name}-{data_parallel}", "seeds": [0, 1], "eval_every": 8, **raw}
    path = out / f"{config['name']}.yaml"
    outputs.write_yaml(path, {**config, "data_parallel": data_parallel})
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["run", str(path), "--output-dir", str(out), "--no-progress", "--no-plots"])
    assert code == 0, f"jopt run {path} exited {code}"
    return out / config["name"]


def _rows(run_dir: Path) -> dict[str, list[dict]]:
    return {
        trial.name: outputs.read_metrics(trial / "metrics.jsonl")
        for trial in sorted((run_dir / "trials").iterdir())
    }


def _largest_gap(one: dict, split: dict) -> dict[str, float]:
    """Per metric, the largest relative gap between the runs' rows (same trials, same steps)."""
    assert one.keys() == split.keys(), (sorted(one), sorted(split))
    gaps: dict[str, float] = {}
    for trial, rows in one.items():
        assert [r["step"] for r in rows] == [r["step"] for r in split[trial]], trial
        for a, b in zip(rows, split[trial], strict=True):
            for key, value in a.items():
                if key in ("step", "elapsed") or not isinstance(value, float) or math.isnan(value):
                    continue
                gap = abs(value - b[key]) / max(abs(value), 1e-12)
                gaps[key] = max(gaps.get(key, 0.0), gap)
    return gaps


def _compiled_step(raw: dict) -> dict:
    """What the data-parallel step of `raw`'s first optimizer compiles to, and where its
    outputs live."""
    experiment = config_lib.from_dict(
        {"name": "x", "data_parallel": "all", **raw, "optimizers": raw["optimizers"][:1]}
    )
    compiled = programs.compiled_experiment(experiment)
    program = compiled.programs_for(experiment.optimizers[0])
    init_keys, data_keys = programs.seed_keys([0, 1])
    params = compiled.init_params(init_keys)
    args = (
        params,
        program.init_state(params),
        jnp.full((2,), -1, jnp.int32),
        compiled.order(data_keys, jnp.asarray(0, jnp.int32)),
        jnp.asarray(0, jnp.int32),
    )
    text = program.step.lower(*args).compile().as_text()
    new_params = program.step(*args)[0]
    return {
        "all_reduces": text.count("all-reduce("),
        "params_devices": min(len(p.sharding.device_set) for p in jax.tree.leaves(new_params)),
    }


def _refusal(raw: dict, data_parallel) -> str:
    experiment = config_lib.from_dict({"name": "x", **raw, "data_parallel": data_parallel})
    try:
        programs.compiled_experiment(experiment)
    except config_lib.ConfigError as e:
        return str(e)
    return "no error"


def main(out: Path) -> None:
    result = {"devices": jax.device_count(), "gaps": {}}
    for name, raw in CONFIGS.items():
        one = _rows(_run(out, name, raw, 1))
        split = _rows(_run(out, name, raw, "all"))
        result["gaps"][name] = _largest_gap(one, split)
    result["step"] = _compiled_step(CONFIGS["cnn"])
    uneven = {**CONFIGS["linear_regression"]}
    uneven["workload"] = {**uneven["workload"], "batch_size": 36}
    result["uneven_batch"] = _refusal(uneven, "all")
    result["too_many_devices"] = _refusal(CONFIGS["linear_regression"], 16)
    print(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
