"""`jopt lr-find`: the smoothing and the suggestions against references written here, and the
command end to end on a tiny linear regression (the ramp as stored in the optimizer state, the
early stop, the files, the twins, one compiled step, every bad option refused).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from jopt.lab import cli, outputs, programs
from jopt.lab import config as config_lib
from jopt.lab.search import lr_find, lr_find_cli
from tests.lab.commands import run_jopt

CONFIG = """\
name: lrf
workload: {name: linear_regression, n_train: 64, n_valid: 16, n_test: 16, dim: 4, batch_size: 16}
optimizers:
  - {name: sgd, label: GD, learning_rate: 0.05}
  - name: torch.SGD
    label: torch SGD
    lr: {schedule: torch.OneCycleLR, max_lr: 0.1, total_steps: 100}
    momentum: 0.9
  - {name: keras.Adam, label: keras Adam}
seeds: [0, 1]
steps: 10
output_dir: runs
"""
LABELS = ["GD", "torch SGD", "keras Adam"]


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "lrf.yaml"
    path.write_text(CONFIG)
    return path


def _csv(path: Path) -> tuple[list[str], dict[str, dict[str, np.ndarray]]]:
    """The header, and per optimizer each column as a float array."""
    with path.open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    curves: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        curve = curves.setdefault(row["optimizer"], {})
        for key, value in row.items():
            if key != "optimizer":
                curve.setdefault(key, []).append(float(value))
    arrays = {label: {k: np.asarray(v) for k, v in c.items()} for label, c in curves.items()}
    return reader.fieldnames, arrays


# -- the pure parts --------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.98])
def test_smooth_is_the_bias_corrected_moving_average(beta):
    losses = np.random.default_rng(0).uniform(0.5, 2.0, size=40)
    t = np.arange(40)
    # s_t = sum_{k<=t} (1 - beta) beta^(t-k) loss_k / (1 - beta^(t+1)), as one matrix product
    lag = np.maximum(t[:, None] - t[None, :], 0)
    weights = np.where(t[:, None] >= t[None, :], (1 - beta) * beta**lag, 0.0)
    reference = weights @ losses / (1 - beta ** (t + 1))
    np.testing.assert_allclose(lr_find.smooth(losses, beta), reference, rtol=1e-12)
    np.testing.assert_allclose(lr_find.smooth(np.full(40, 3.0), beta), 3.0, rtol=1e-12)


def _cosine_curve():
    """log10(lr) from -7 to 3; loss 1 + cos(pi (x + 7) / 5): falls fastest at x = -4.5, lowest
    at x = -2, back up at x = 3."""
    x = np.linspace(-7.0, 3.0, 201)
    return 10.0**x, 1.0 + np.cos(np.pi * (x + 7.0) / 5.0)


def test_suggest_reads_the_steepest_fall_and_the_minimum_of_a_synthetic_curve():
    rates, losses = _cosine_curve()
    s = lr_find.suggest(rates, losses)
    assert s["steepest"] == pytest.approx(10**-4.5, rel=1e-9)
    assert s["steepest_loss"] == pytest.approx(1.0, abs=1e-12)
    assert s["minimum"] == pytest.approx(1e-2, rel=1e-9)
    assert s["minimum_loss"] == pytest.approx(0.0, abs=1e-12)
    assert s["minimum_over_10"] == pytest.approx(1e-3, rel=1e-9)
    assert s["points"] == 201 - 20 - 5


def test_suggest_ignores_the_first_tenth_and_the_last_five_points():
    rates, losses = _cosine_curve()
    noisy = losses.copy()
    noisy[2] = 50.0  # a noisy start: the fall after it is the steepest of the whole curve
    noisy[-1] = -50.0  # a last point below everything
    assert lr_find.suggest(rates, noisy) == lr_find.suggest(rates, losses)
    everything = lr_find.suggest(rates, noisy, skip_start=0)
    assert everything["steepest"] == pytest.approx(rates[3])
    assert lr_find.suggest(rates, noisy, skip_start=30)["points"] == 201 - 30 - 5


def test_suggest_stops_at_the_first_non_finite_loss_and_needs_three_points():
    rates, losses = _cosine_curve()
    cut = losses.copy()
    cut[150:] = np.nan
    s = lr_find.suggest(rates, cut)
    assert s["points"] == 150 - 15 - 5
    assert s["minimum"] == pytest.approx(1e-2, rel=1e-9)
    short = lr_find.suggest(rates[:6], losses[:6])  # too short to trim: every point read
    assert short["points"] == 6 and short["steepest"] is not None
    none = lr_find.suggest(rates[:2], losses[:2])
    assert none["points"] == 2 and none["steepest"] is none["minimum"] is None
    rising = lr_find.suggest(rates, np.linspace(1.0, 2.0, 201))
    assert rising["steepest"] is None  # never falls
    assert rising["minimum"] == pytest.approx(rates[20])


def test_the_ramp_is_exponential_with_exact_ends():
    rates = lr_find.ramp(1e-7, 10.0, 100)
    assert rates[0] == 1e-7 and rates[-1] == 10.0
    np.testing.assert_allclose(np.diff(np.log(rates)), math.log(1e8) / 99, rtol=1e-9)


def test_divergence_is_a_rise_by_the_factor_above_the_best_loss():
    assert lr_find.diverged(4.1, 1.0, 4.0) and not lr_find.diverged(3.9, 1.0, 4.0)
    # a negative best: a rise of (factor - 1) * |best| above it
    assert lr_find.diverged(0.1, -1.0, 2.0) and not lr_find.diverged(-0.1, -1.0, 2.0)
    assert not lr_find.diverged(1e30, 1.0, math.inf)


def test_the_loss_is_the_mean_over_the_seeds_that_have_not_diverged():
    losses = np.array([1.0, 3.0, np.inf, 5.0])
    assert lr_find.mean_of_live_seeds(losses, np.array([-1, -1, 7, 2])) == 2.0
    assert math.isnan(lr_find.mean_of_live_seeds(losses, np.array([1, 2, 3, 4])))


# -- the command -----------------------------------------------------------------------------------


def test_lr_find_writes_its_files_and_prints_the_suggestions(capsys, tmp_path, config_file):
    out_dir = tmp_path / "o"
    argv = ["lr-find", config_file, "--steps", "20", "--max-lr", "1", "--output-dir", out_dir]
    code, out, err = run_jopt(capsys, *argv, "--no-progress")
    assert code == 0, err
    run_dir = out_dir / "lrf-lr-find"
    assert f"Results in {run_dir}" in out
    assert all(f"| {label} |" in out for label in LABELS), out
    assert "torch SGD: the ramp replaces the config's learning-rate schedule" in out
    assert config_lib.load(run_dir / "config.yaml") == config_lib.load(
        config_file, [f"output_dir={out_dir}"]
    )
    header, curves = _csv(run_dir / "lr_find.csv")
    assert header == ["optimizer", "step", "learning_rate", "loss", "smoothed_loss"]
    assert list(curves) == LABELS
    summary = outputs.read_json(run_dir / "suggestions.json")
    assert summary["options"] == {
        "min_lr": 1e-7,
        "max_lr": 1.0,
        "steps": 20,
        "smoothing": 0.98,
        "diverge_factor": 4.0,
    }
    for label in LABELS:
        found = summary["optimizers"][label]
        assert found["steps_run"] == len(curves[label]["step"])
        np.testing.assert_array_equal(curves[label]["step"], np.arange(found["steps_run"]))
        expected = lr_find.suggest(
            curves[label]["learning_rate"], curves[label]["smoothed_loss"], skip_start=2
        )
        assert {k: found[k] for k in expected} == expected
        assert found["schedule_replaced"] == (label == "torch SGD")
    assert (run_dir / "summary.md").read_text() in out
    assert (run_dir / "lr_find.png").read_bytes()[:4] == b"\x89PNG"

    code, out, err = run_jopt(capsys, *argv, "--no-progress", "--no-plots")
    assert code == 0, err
    assert (out_dir / "lrf-lr-find-2" / "lr_find.csv").is_file()
    assert not (out_dir / "lrf-lr-find-2" / "lr_find.png").exists()


def test_the_ramp_runs_from_min_lr_to_max_lr_in_every_optimizer_state(
    capsys, tmp_path, config_file
):
    argv = ["lr-find", config_file, "--min-lr", "1e-4", "--max-lr", "0.05", "--steps", "12"]
    argv += ["--diverge-factor", "inf", "--output-dir", tmp_path, "--no-plots", "--no-progress"]
    code, _, err = run_jopt(capsys, *argv)
    assert code == 0, err
    _, curves = _csv(tmp_path / "lrf-lr-find" / "lr_find.csv")
    expected = (1e-4 * (0.05 / 1e-4) ** (np.arange(12) / 11)).astype(np.float32)
    for label in LABELS:  # the rate each step read from the optimizer state (float32)
        rates = curves[label]["learning_rate"]
        assert rates[0] == np.float32(1e-4) and rates[-1] == np.float32(0.05), label
        np.testing.assert_allclose(rates, expected, rtol=2e-7, err_msg=label)
        assert np.all(np.isfinite(curves[label]["loss"]))


@pytest.mark.parametrize(
    ("factor", "reason"), [("4", "diverged"), ("inf", "not finite")], ids=["factor", "non-finite"]
)
def test_a_diverging_loss_stops_the_test_early(capsys, tmp_path, config_file, factor, reason):
    argv = ["lr-find", config_file, "--optimizer", "GD", "--min-lr", "1e-3", "--max-lr", "1e3"]
    argv += ["--steps", "40", "--diverge-factor", factor, "--output-dir", tmp_path]
    code, out, err = run_jopt(capsys, *argv, "--no-plots", "--no-progress")
    assert code == 0, err
    found = outputs.read_json(tmp_path / "lrf-lr-find" / "suggestions.json")["optimizers"]
    assert list(found) == ["GD"]
    assert found["GD"]["stopped"] == reason
    assert "| GD |" in out and f"/40 | yes ({reason}) |" in out
    smoothed = _csv(tmp_path / "lrf-lr-find" / "lr_find.csv")[1]["GD"]["smoothed_loss"]
    assert len(smoothed) == found["GD"]["steps_run"] < 40
    before, last = smoothed[:-1], smoothed[-1]
    assert np.all(np.isfinite(before))
    best = np.minimum.accumulate(before)
    assert np.all(before <= float(factor) * best)  # no earlier step met the rule
    assert not last <= float(factor) * best[-1]  # the last one did (NaN included)


def test_the_steps_compile_once(tmp_path, config_file):
    config = config_lib.load(config_file, ["optimizers.0.learning_rate=0.0123"])  # its own step
    compiled = programs.compiled_workload(config.workload)
    options = lr_find.Options(min_lr=1e-4, max_lr=0.1, steps=15)
    [(optimizer, replaced)] = lr_find.select(config, ["GD"], options)
    set_lr_programs = lr_find._set_lr._cache_size()
    curve = lr_find.run_one(compiled, optimizer, config.seeds, options)
    assert len(curve.losses) == 15 and not replaced
    assert compiled.programs_for(optimizer).step._cache_size() == 1
    assert lr_find._set_lr._cache_size() <= set_lr_programs + 1


BAD_OPTIONS = [  # argv after `lr-find CONFIG`, fragment of stderr
    (["--min-lr", "0"], "jopt: lr-find: --min-lr must be a finite number > 0, got 0.0."),
    (["--min-lr", "nan"], "--min-lr must be a finite number > 0, got nan."),
    (["--max-lr", "1e-8"], "--max-lr must be a finite number > --min-lr (1e-07), got 1e-08."),
    (["--max-lr", "inf"], "--max-lr must be a finite number > --min-lr (1e-07), got inf."),
    (["--steps", "1"], "--steps must be an integer >= 2, got 1."),
    (["--smoothing", "1"], "--smoothing must be in [0, 1) (0: no smoothing), got 1.0."),
    (["--smoothing", "-0.1"], "--smoothing must be in [0, 1) (0: no smoothing), got -0.1."),
    (["--diverge-factor", "1"], "--diverge-factor must be > 1 (inf: never stop on a rise), got"),
    (
        ["--optimizer", "GD", "--optimizer", "adam"],
        "--optimizer 'adam' is not a label of the config (did you mean 'keras Adam'?); its "
        "labels are: 'GD', 'torch SGD', 'keras Adam'.",
    ),
    (["optimizers.0.momentum=1.5"], "config error at optimizers[0].momentum: jopt.sgd: momentum"),
    (  # a learning rate that is a schedule by construction: refused, not replaced
        ["optimizers.1={name: torch.Adagrad, lr: 0.1, lr_decay: 0.01}"],
        "config error at optimizers[1]: torch.Adagrad ('torch.Adagrad'): the range test sets the "
        "learning rate in the optimizer state at every step, which this optimizer refuses: "
        "jopt.set_hparams: learning_rate",
    ),
]


@pytest.mark.parametrize(
    ("extra", "fragment"), BAD_OPTIONS, ids=[" ".join(a[0]) for a in BAD_OPTIONS]
)
def test_a_bad_option_exits_2_with_one_line_before_anything_runs(
    capsys, tmp_path, config_file, extra, fragment
):
    code, out, err = run_jopt(
        capsys, "lr-find", config_file, *extra, "--output-dir", tmp_path / "o"
    )
    assert code == 2
    assert err.startswith("jopt: ") and fragment in err and err.count("\n") == 1, err
    assert out == "" and not (tmp_path / "o").exists()


def test_a_missing_config_or_a_word_for_a_number_exits_2(capsys, tmp_path):
    code, _, err = run_jopt(capsys, "lr-find", tmp_path / "absent.yaml")
    assert code == 2 and "no config file at" in err
    for argv in (["lr-find", "c.yaml", "--steps", "ten"], ["lr-find"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2, argv
        capsys.readouterr()


def test_ctrl_c_keeps_the_finished_curves_and_exits_130(capsys, tmp_path, config_file, monkeypatch):
    real = lr_find.run_one
    calls = []

    def interrupted_second(*args, **kwargs):
        calls.append(args[1].label)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(lr_find_cli, "run_one", interrupted_second)
    argv = ["lr-find", config_file, "--steps", "8", "--output-dir", tmp_path, "--no-progress"]
    code, _, err = run_jopt(capsys, *argv, "--no-plots")
    assert code == 130 and calls == ["GD", "torch SGD"]
    run_dir = tmp_path / "lrf-lr-find"
    assert f"lr-find interrupted; the finished curves (GD) are in {run_dir}" in err
    assert list(_csv(run_dir / "lr_find.csv")[1]) == ["GD"]
    assert list(outputs.read_json(run_dir / "suggestions.json")["optimizers"]) == ["GD"]
