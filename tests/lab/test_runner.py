"""The runner on tiny configs: the files it writes and what they hold, exact resumption after an
interruption or a crash, and divergence (NaN or infinite loss) of one optimizer or one seed.
"""

from __future__ import annotations

import copy
import csv
import json
import threading

import jax
import numpy as np
import optax
import pytest
import yaml

import jopt
from jopt.lab import checkpoints, outputs, runner
from jopt.lab import config as config_lib
from jopt.lab.workloads import linear_regression

RAW = {
    "name": "tiny",
    "workload": {
        "name": "linear_regression",
        "n_train": 64,
        "n_valid": 32,
        "n_test": 32,
        "dim": 4,
        "batch_size": 16,  # 4 batches an epoch: 12 steps cross two epoch boundaries
    },
    "optimizers": [
        {
            "name": "sgd",
            "label": "lr 0.2 (momentum, cosine)",
            "learning_rate": {
                "schedule": "cosine_decay_schedule",
                "init_value": 0.2,
                "decay_steps": 12,
            },
            "momentum": 0.9,
        },
        {"name": "adam", "label": "lr 0.05 (Adam)", "learning_rate": 0.05},
    ],
    "seeds": [0, 1],
    "steps": 12,
    "eval_every": 4,
    "target": {"metric": "eval_excess_loss", "value": 0.5},
}
STEPS, EVAL_EVERY = RAW["steps"], RAW["eval_every"]
# Labels with decimals: their files must not collide ("lr-0.2-..." and "lr-0.05-..." share the
# stem "lr-0" that Path.with_suffix would keep).
LABELS = ["lr 0.2 (momentum, cosine)", "lr 0.05 (Adam)"]
TRIALS = [f"{outputs.safe_name(label)}-seed{seed}" for label in LABELS for seed in (0, 1)]


def _experiment(**changes) -> config_lib.ExperimentConfig:
    raw = copy.deepcopy(RAW)
    raw.update(changes)
    return config_lib.from_dict(raw)


def _rows(run_dir, trial, drop=("elapsed",)):
    rows = outputs.read_metrics(run_dir / "trials" / trial / "metrics.jsonl")
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def _meta(run_dir, trial):
    return outputs.read_json(run_dir / "trials" / trial / "metadata.json")


def _summary(run_dir) -> dict[str, dict[str, str]]:
    with (run_dir / "summary.csv").open() as f:
        return {row["optimizer"]: row for row in csv.DictReader(f)}


def _checkpoint(run_dir, label):
    """{'leaf00000': ..., 'step': ...} of a trial group's checkpoint, in either format."""
    stem = run_dir / "checkpoints" / outputs.safe_name(label)
    leaves, step = checkpoints.load(stem)
    return {**{f"leaf{i:05d}": leaf for i, leaf in enumerate(leaves)}, "step": np.asarray(step)}


@pytest.fixture(params=checkpoints.FORMATS)
def checkpoint_format(request, monkeypatch):
    """Runs a test with each checkpoint format (orbax is a dependency of flax: always there)."""
    monkeypatch.setattr(checkpoints, "default_format", lambda: request.param)
    return request.param


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of RAW."""
    return runner.run(_experiment(), tmp_path_factory.mktemp("ref") / "run", progress=False)


# -- files -----------------------------------------------------------------------------------------


def test_the_run_writes_its_config_trials_checkpoints_and_summary(reference):
    experiment = _experiment()
    saved = yaml.safe_load((reference / "config.yaml").read_text())
    assert config_lib.from_dict(saved) == experiment
    assert sorted(p.name for p in (reference / "trials").iterdir()) == sorted(TRIALS)
    assert TRIALS[0] == "lr-0.2-momentum-cosine-seed0" and TRIALS[2] == "lr-0.05-Adam-seed0"
    store = checkpoints.default_format()
    assert sorted(p.name for p in (reference / "checkpoints").iterdir()) == [
        "lr-0.05-Adam.digests.json",
        "lr-0.05-Adam.json",
        f"lr-0.05-Adam.{store}",
        "lr-0.2-momentum-cosine.digests.json",
        "lr-0.2-momentum-cosine.json",
        f"lr-0.2-momentum-cosine.{store}",
    ]
    for i, optimizer in enumerate(saved["optimizers"]):
        for seed in (0, 1):
            trial = outputs.trial_name(optimizer["label"], seed)
            alone = yaml.safe_load((reference / "trials" / trial / "config.yaml").read_text())
            assert alone == {**saved, "optimizers": [optimizer], "seeds": [seed]}
            assert config_lib.from_dict(alone).optimizers == (experiment.optimizers[i],)
    summary = _summary(reference)
    assert list(summary) == LABELS
    assert all(r["diverged"] == "0" and r["unfinished"] == "0" for r in summary.values())
    assert f"| {LABELS[0]} |" in (reference / "summary.md").read_text()


def test_epochs_run_as_the_steps_they_span_and_the_run_records_those_steps(tmp_path, reference):
    run_dir = runner.run(_experiment(steps=None, epochs=3), tmp_path / "run", progress=False)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["steps"] == 3 * 64 // 16 == STEPS and "epochs" not in saved
    for trial in TRIALS:
        assert _rows(run_dir, trial) == _rows(reference, trial)


def test_metadata_records_versions_status_and_wall_time(reference):
    for trial in TRIALS:
        meta = json.loads((reference / "trials" / trial / "metadata.json").read_text())
        env = meta["environment"]
        assert (env["jax"], env["optax"], env["jopt"]) == (
            jax.__version__,
            optax.__version__,
            jopt.__version__,
        )
        device = jax.devices()[0]
        assert env["device"] == f"{device.platform}: {device.device_kind}"
        assert env["python"] and env["platform"]
        assert meta["status"] == "done" and meta["steps_completed"] == STEPS
        assert meta["diverged_at_step"] is None
        assert meta["seed"] == int(trial[-1])
        assert 0 < meta["wall_seconds"] < 600
        assert set(meta["test"]) == {"test_loss", "test_excess_loss"}


def test_metrics_rows_hold_step_losses_learning_rate_grad_norm_and_evals(reference):
    experiment = _experiment()
    for trial in TRIALS:
        rows = outputs.read_metrics(reference / "trials" / trial / "metrics.jsonl")
        assert [r["step"] for r in rows] == list(range(STEPS + 1))
        assert set(rows[0]) == {"step", "elapsed", "eval_loss", "eval_excess_loss"}
        assert rows[0]["elapsed"] == 0.0
        for row in rows[1:]:
            keys = {"step", "train_loss", "grad_norm", "learning_rate", "elapsed"}
            if row["step"] % EVAL_EVERY == 0:
                keys |= {"eval_loss", "eval_excess_loss"}
            assert set(row) == keys, row
            assert np.isfinite(row["train_loss"]) and row["grad_norm"] > 0
            assert row["elapsed"] >= rows[row["step"] - 1]["elapsed"]
        evals = [r["eval_excess_loss"] for r in rows if "eval_excess_loss" in r]
        assert evals[-1] < evals[0]  # it trains
        # Row `step` follows the update of step index step - 1: the rate that update used, to
        # float32 rounding (the jitted step may round the cosine 1 ulp apart from eager code).
        optimizer = experiment.optimizers[0 if trial in TRIALS[:2] else 1]
        rate = config_lib.build_value(optimizer.hparams["learning_rate"])
        used = [float(rate(t)) if callable(rate) else rate for t in range(STEPS)]
        assert len(set(used)) == (STEPS if callable(rate) else 1)
        np.testing.assert_allclose(
            [r["learning_rate"] for r in rows[1:]], np.float32(used), rtol=3e-7
        )
    first, other = _rows(reference, TRIALS[0]), _rows(reference, TRIALS[1])
    assert first[0]["eval_loss"] != other[0]["eval_loss"]  # seeds start from different params


def test_the_checkpoint_holds_the_final_params_the_test_metrics_were_computed_at(reference):
    workload = linear_regression.build(_experiment().workload.options)
    x, y = np.asarray(workload.test.x, np.float64), np.asarray(workload.test.y, np.float64)
    for label in LABELS:
        leaves = _checkpoint(reference, label)
        b, w = leaves["leaf00000"], leaves["leaf00001"]  # params {'b', 'w'} come first
        assert b.shape == (2,) and w.shape == (2, 4)
        for seed in (0, 1):
            expected = 0.5 * np.mean((x @ w[seed] + b[seed] - y) ** 2)
            test = _meta(reference, outputs.trial_name(label, seed))["test"]["test_loss"]
            np.testing.assert_allclose(test, expected, rtol=1e-5)
        meta = outputs.read_json(reference / "checkpoints" / f"{outputs.safe_name(label)}.json")
        assert meta["step"] == STEPS and meta["seeds"] == [0, 1]


# -- resuming --------------------------------------------------------------------------------------


def _stop_after(chunks: int, calls: list):
    """An on_chunk hook that requests a stop after `chunks` chunks (counted over the run)."""

    def hook(flag):
        calls.append(flag.requested)
        if len(calls) == chunks:
            flag.requested = True

    return hook


def _assert_same_results(run_dir, reference):
    for trial in TRIALS:
        assert _rows(run_dir, trial) == _rows(reference, trial), trial
        assert _meta(run_dir, trial)["status"] == "done"
        assert _meta(run_dir, trial)["test"] == _meta(reference, trial)["test"]
    for label in LABELS:
        resumed, straight = _checkpoint(run_dir, label), _checkpoint(reference, label)
        assert resumed.keys() == straight.keys()
        for key in straight:
            np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)
            assert resumed[key].tobytes() == straight[key].tobytes()


def test_an_interrupted_run_resumes_bitwise(tmp_path, reference, checkpoint_format):
    experiment = _experiment()
    run_dir = tmp_path / "run"
    calls: list = []
    # First stop: after the first chunk (step 4) of the first optimizer.
    with pytest.raises(runner.Interrupted, match=f"jopt run --resume {run_dir}"):
        runner.run(experiment, run_dir, progress=False, on_chunk=_stop_after(1, calls))
    assert calls == [False]
    for trial in TRIALS[:2]:
        meta = _meta(run_dir, trial)
        assert (meta["status"], meta["steps_completed"]) == ("interrupted", EVAL_EVERY)
        assert [r["step"] for r in _rows(run_dir, trial)] == list(range(EVAL_EVERY + 1))
    assert not (run_dir / "trials" / TRIALS[2]).exists()  # not started
    assert not (run_dir / "summary.md").exists()

    # Second stop: in the second optimizer, after its first chunk (2 more chunks of the first).
    calls.clear()
    with pytest.raises(runner.Interrupted):
        runner.run(experiment, run_dir, resume=True, progress=False, on_chunk=_stop_after(3, calls))
    assert [_meta(run_dir, t)["status"] for t in TRIALS] == ["done"] * 2 + ["interrupted"] * 2
    assert _meta(run_dir, TRIALS[3])["steps_completed"] == EVAL_EVERY

    # The rest, without interruption.
    assert runner.run(experiment, run_dir, resume=True, progress=False) == run_dir
    _assert_same_results(run_dir, reference)
    assert (run_dir / "summary.csv").read_text().count("\n") == 3


def test_a_crashed_run_resumes_from_its_last_checkpoint_bitwise(
    tmp_path, reference, checkpoint_format
):
    experiment = _experiment(checkpoint_every=8)
    run_dir = tmp_path / "run"

    def crash(flag):
        if len(_rows(run_dir, TRIALS[0])) == STEPS + 1:
            raise RuntimeError("power cut")  # after logging step 12, before its checkpoint

    with pytest.raises(RuntimeError, match="power cut"):
        runner.run(experiment, run_dir, progress=False, on_chunk=crash)
    assert outputs.read_json(run_dir / "checkpoints" / "lr-0.2-momentum-cosine.json")["step"] == 8
    with (run_dir / "trials" / TRIALS[1] / "metrics.jsonl").open("a") as f:
        f.write('{"step": 13, "train_l')  # and a torn line
    assert _meta(run_dir, TRIALS[0])["status"] == "running"

    runner.run(experiment, run_dir, resume=True, progress=False)
    _assert_same_results(run_dir, reference)


def test_a_periodic_checkpoint_on_the_last_step_is_also_the_final_one(
    tmp_path, reference, checkpoint_format
):
    run_dir = runner.run(_experiment(checkpoint_every=4), tmp_path / "run", progress=False)
    _assert_same_results(run_dir, reference)
    assert int(_checkpoint(run_dir, LABELS[0])["step"]) == STEPS


def test_resuming_needs_a_run_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run to resume"):
        runner.run(_experiment(), tmp_path / "absent", resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no run to resume"):
        runner.run(_experiment(), None, resume=True, progress=False)


def test_a_checkpoint_of_another_config_is_refused(tmp_path, reference, checkpoint_format):
    run_dir = tmp_path / "run"
    with pytest.raises(runner.Interrupted):
        runner.run(_experiment(), run_dir, progress=False, on_chunk=_stop_after(1, []))
    other = _experiment(workload={**RAW["workload"], "dim": 5})  # params of another shape
    with pytest.raises(ValueError, match="does not match the optimizer's state"):
        runner.run(other, run_dir, resume=True, progress=False)


def test_a_stop_requested_during_the_last_chunk_lets_the_run_finish(tmp_path, reference):
    calls: list = []
    chunks = len(LABELS) * STEPS // EVAL_EVERY
    run_dir = runner.run(
        _experiment(), tmp_path / "run", progress=False, on_chunk=_stop_after(chunks, calls)
    )
    assert len(calls) == chunks
    _assert_same_results(run_dir, reference)
    assert (run_dir / "summary.md").is_file()


def _count_compiles(fn):
    """Runs `fn()`; returns how many XLA compilations it caused."""
    events = []

    def listen(name, seconds, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            events.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        fn()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return len(events)


def test_repeated_runs_in_one_process_compile_nothing_new(tmp_path, reference):
    relabelled = copy.deepcopy(RAW["optimizers"])
    relabelled[0]["label"] = "another label"  # the label does not change the program
    experiment = _experiment(optimizers=relabelled)
    assert _count_compiles(lambda: runner.run(experiment, tmp_path / "run", progress=False)) == 0
    assert _rows(tmp_path / "run", "another-label-seed1") == _rows(reference, TRIALS[1])
    # a new optimizer config compiles its step (and nothing else)
    other = _experiment(optimizers=[{"name": "sgd", "learning_rate": 0.1, "nesterov": False}])
    assert _count_compiles(lambda: runner.run(other, tmp_path / "other", progress=False)) >= 1


def test_a_run_works_outside_the_main_thread(tmp_path, reference):
    result: dict = {}

    def target():
        try:
            result["run_dir"] = runner.run(_experiment(), tmp_path / "run", progress=False)
        except BaseException as e:  # noqa: BLE001 - reported below
            result["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=300)
    assert "error" not in result, result.get("error")
    _assert_same_results(result["run_dir"], reference)


# -- divergence ------------------------------------------------------------------------------------


def test_a_diverging_optimizer_stops_at_its_first_non_finite_loss(tmp_path):
    experiment = _experiment(
        optimizers=[
            {"name": "sgd", "label": "too fast", "learning_rate": 1e3},
            RAW["optimizers"][1],
        ],
        eval_every=STEPS,  # one chunk: the steps after the divergence run, and are not logged
    )
    run_dir = runner.run(experiment, tmp_path / "run", progress=False)
    for seed in (0, 1):
        meta = _meta(run_dir, f"too-fast-seed{seed}")
        rows = _rows(run_dir, f"too-fast-seed{seed}")
        first_bad = next(r["step"] for r in rows[1:] if r["train_loss"] is None)
        assert 1 < first_bad < STEPS
        assert meta["status"] == "diverged" and meta["diverged_at_step"] == first_bad
        assert rows[-1]["step"] == first_bad  # nothing logged after it
        assert all(np.isfinite(r["train_loss"]) for r in rows[1:-1])
        assert _meta(run_dir, TRIALS[2 + seed])["status"] == "done"
        assert _rows(run_dir, TRIALS[2 + seed])[-1]["step"] == STEPS
    leaves = _checkpoint(run_dir, "too fast")
    assert all(np.all(np.isfinite(v)) for v in leaves.values())  # frozen before the bad update
    summary = _summary(run_dir)
    assert summary["too fast"]["diverged"] == "2" and summary[LABELS[1]]["diverged"] == "0"
    assert summary["too fast"]["unfinished"] == "0"
    lines = (run_dir / "summary.md").read_text().splitlines()
    assert [line.rsplit("|", 2)[1] for line in lines if line.startswith("| too fast")] == [" 2/2 "]
    # All its seeds diverged: a resume has nothing to do for it.
    runner.run(experiment, run_dir, resume=True, progress=False)
    assert _meta(run_dir, "too-fast-seed0")["status"] == "diverged"
    # Logged every 5 steps, the step of the divergence is logged all the same.
    sparse = runner.run(
        _experiment(
            optimizers=[{"name": "sgd", "label": "too fast", "learning_rate": 1e3}],
            log_every=5,
            eval_every=STEPS,
        ),
        tmp_path / "sparse",
        progress=False,
    )
    off_grid = 0
    for seed in (0, 1):
        rows = _rows(sparse, f"too-fast-seed{seed}")
        bad = _meta(sparse, f"too-fast-seed{seed}")["diverged_at_step"]
        assert rows[-1]["step"] == bad and rows[-1]["train_loss"] is None
        assert [r["step"] for r in rows[1:-1]] == list(range(5, bad, 5))
        off_grid += bad % 5 != 0
    assert off_grid  # the case the rule is for


SADDLE = {
    "name": "saddle",
    "workload": {"name": "functions2d", "function": "saddle", "start_noise": 0.5},
    "optimizers": [{"name": "sgd", "label": "GD", "learning_rate": 0.5}],
    "seeds": [0, 1, 2, 3],
    "steps": 67,  # seed 3 overflows at step 66, seeds 0 and 1 at 67, seed 2 at 68
    "eval_every": 67,
}


def _first_overflow_row(y0: np.float32) -> int:
    """GD with rate 0.5 on x^2 - y^2 sends x to 0 and doubles y, exactly in float32: the row
    `t + 1` reports the loss -y_t^2 with y_t = y0 * 2^t, not finite once y_t^2 overflows."""
    with np.errstate(over="ignore"):
        t = 0
        while np.isfinite(np.float32(y0 * np.float32(2.0**t)) ** 2):
            t += 1
    return t + 1


def test_one_diverging_seed_leaves_the_others_going(tmp_path):
    run_dir = runner.run(config_lib.from_dict(SADDLE), tmp_path / "run", progress=False)
    steps = SADDLE["steps"]
    statuses, diverged_at = {}, []
    for seed in SADDLE["seeds"]:
        rows = _rows(run_dir, f"GD-seed{seed}")
        meta = _meta(run_dir, f"GD-seed{seed}")
        x0, y0 = np.float32(rows[0]["params"][0]), np.float32(rows[0]["params"][1])
        bad = _first_overflow_row(y0)
        statuses[seed] = meta["status"]
        if bad <= steps:
            assert meta["status"] == "diverged" and meta["diverged_at_step"] == bad
            diverged_at.append(bad)
        else:
            assert meta["status"] == "done" and meta["diverged_at_step"] is None
        assert [r["step"] for r in rows] == list(range(min(bad, steps) + 1))
        for row in rows[1:]:
            t = row["step"]
            if t == bad:
                assert row["train_loss"] is None
                assert row["params"] == [0.0, float(y0 * np.float32(2.0 ** (t - 1)))]  # frozen
                continue
            y_before = y0 * np.float32(2.0 ** (t - 1))
            x_before = x0 if t == 1 else np.float32(0.0)  # x = 0 from the first update on
            if t == 1:  # x0^2 - y0^2, which XLA may round once (fused multiply-add)
                np.testing.assert_allclose(row["train_loss"], x0 * x0 - y0 * y0, rtol=1e-6)
            else:
                assert row["train_loss"] == float(-(y_before * y_before)), t
            assert row["params"] == [0.0, float(y0 * np.float32(2.0**t))], t
            # the gradient (2x, -2y) at the params before the update
            expected_norm = 2.0 * np.hypot(float(x_before), float(y_before))
            if row["grad_norm"] is None:  # its square overflows a step before the loss does
                with np.errstate(over="ignore"):
                    assert not np.isfinite(np.float32(expected_norm) ** 2) and t == bad - 1, t
            else:
                np.testing.assert_allclose(row["grad_norm"], expected_norm, rtol=1e-6)
            assert row["learning_rate"] == 0.5
    # the seeds diverge at different steps: some diverged (one before the last step), the
    # others finished
    assert set(statuses.values()) == {"diverged", "done"}, statuses
    assert min(diverged_at) < steps, diverged_at


def test_an_optimizer_that_reads_the_loss_trains_in_the_lab(tmp_path):
    """Polyak's step size is (f - f*) / |g|^2 from the batch's loss, which each step gives the
    update (without it, the update refuses to run)."""
    polyak = {"name": "polyak_sgd", "label": "polyak", "max_learning_rate": 1.0}
    experiment = _experiment(optimizers=[polyak], seeds=[0], steps=8, eval_every=4)
    run_dir = runner.run(experiment, tmp_path / "run", progress=False)
    losses = [row["train_loss"] for row in _rows(run_dir, "polyak-seed0") if "train_loss" in row]
    assert len(losses) == 8 and np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    assert _meta(run_dir, "polyak-seed0")["status"] == "done"
