"""The `jopt` command end to end on a tiny 2-D config: run, plot, resume, exit statuses, and one
real process stopped with Ctrl-C (SIGINT) and with SIGTERM.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from jopt.lab import checkpoints, cli, outputs, run_lock, runner
from jopt.lab import config as config_lib
from tests.lab.commands import run_jopt

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
# jopt run CONFIG
name: cli
workload: {name: functions2d, function: canyon}
optimizers:
  - {name: sgd, label: GD, learning_rate: 0.02}
  - {name: sgd, label: momentum 0.9, learning_rate: 0.02, momentum: 0.9}
seeds: [0]
steps: 10
eval_every: 5
target: {metric: eval_distance, value: 3.5}
output_dir: runs
"""
FIGURES = ["curves.png", "learning_rate.png", "paths.png"]


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "cli.yaml"
    path.write_text(CONFIG)
    return path


def _files(run_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(run_dir)): p.read_bytes()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.suffix != ".png"
    }


def test_run_prints_the_summary_and_draws_the_figures_that_plot_redraws(
    capsys, tmp_path, config_file
):
    code, out, err = run_jopt(
        capsys, "run", config_file, "--output-dir", tmp_path / "o", "--no-progress"
    )
    assert code == 0, err
    run_dir = tmp_path / "o" / "cli"
    assert out == (run_dir / "summary.md").read_text() + f"\nResults in {run_dir}\n"
    assert out.startswith("# cli\n") and "| momentum 0.9 |" in out and "| GD |" in out
    for name in FIGURES:
        assert (run_dir / name).read_bytes().startswith(b"\x89PNG"), name
        (run_dir / name).unlink()

    code, out, err = run_jopt(capsys, "plot", run_dir)
    assert code == 0, err
    assert out.split() == [str(run_dir / name) for name in FIGURES]
    assert all((run_dir / name).stat().st_size > 1000 for name in FIGURES)

    # A second run of the same config gets a new directory.
    code, out, err = run_jopt(
        capsys, "run", config_file, "--output-dir", tmp_path / "o", "--no-plots", "--no-progress"
    )
    assert code == 0, err
    assert out.endswith(f"Results in {tmp_path / 'o' / 'cli-2'}\n")
    assert not (tmp_path / "o" / "cli-2" / "curves.png").exists()


def test_resuming_a_finished_run_changes_nothing(capsys, tmp_path, config_file):
    out_dir = tmp_path / "o"
    assert (
        run_jopt(
            capsys, "run", config_file, "--output-dir", out_dir, "--no-plots", "--no-progress"
        )[0]
        == 0
    )
    run_dir = out_dir / "cli"
    before = _files(run_dir)
    code, out, err = run_jopt(capsys, "run", "--resume", run_dir, "--no-progress", "--no-plots")
    assert code == 0, err
    assert _files(run_dir) == before
    assert out.startswith("# cli\n")


def test_overrides_go_before_or_after_the_options(capsys, tmp_path, config_file):
    out_dir = tmp_path / "out #1"  # a path YAML would cut at '#': taken as it is
    code, _, err = run_jopt(
        capsys,
        "run",
        config_file,
        "steps=4",
        "--no-progress",
        "--output-dir",
        out_dir,
        "optimizers.0.label=plain GD",
        "--no-plots",
        "seeds=[3]",
    )
    assert code == 0, err
    saved = config_lib.from_dict(yaml.safe_load((out_dir / "cli" / "config.yaml").read_text()))
    assert (saved.steps, saved.seeds) == (4, (3,))
    assert saved.optimizers[0].label == "plain GD"
    assert saved.output_dir == str(out_dir)
    meta = outputs.read_json(out_dir / "cli" / "trials" / "plain-GD-seed3" / "metadata.json")
    assert (meta["status"], meta["steps_completed"]) == ("done", 4)


BAD_ARGUMENTS = [  # argv after `run CONFIG` (CONFIG: None for none), fragment of stderr
    (["steps=1e30"], "config error at steps: must be an integer in [1, 2147483647], got '1e30'"),
    (["optimizers.0.momentum=1.5"], "config error at optimizers[0].momentum: jopt.sgd: momentum"),
    (["optimizers.0.nme=sgd"], "config error at optimizers[0].nme: unknown key 'nme'"),
    (["steps"], "an override must look like key.sub=value, got 'steps'"),
    (["workload.function=himmelblau"], "config error at workload.function: functions2d:"),
    (["seeds=[0,"], "is not valid YAML"),
    (["target.metric=eval_accuracy"], "unknown metric 'eval_accuracy'"),
    # Options only the data can refute fail as the workload is built, before the run directory,
    # at the option the error names.
    (
        ["workload={name: mlp, dataset: mnist}", "target=null"],
        "config error at workload.data_dir: mlp: dataset 'mnist' is read from files you already",
    ),
    (
        ["workload={name: cnn, batch_size: 5000}", "target=null"],
        "config error at workload.batch_size: cnn: batch_size must be at most the training split",
    ),
]


@pytest.mark.parametrize(("extra", "fragment"), BAD_ARGUMENTS, ids=[a[0][0] for a in BAD_ARGUMENTS])
def test_a_bad_config_or_override_exits_2_with_the_message(
    capsys, tmp_path, config_file, extra, fragment
):
    code, out, err = run_jopt(capsys, "run", config_file, *extra, "--output-dir", tmp_path / "o")
    assert code == 2
    assert err.startswith("jopt: ") and fragment in err, err
    assert out == "" and not (tmp_path / "o").exists()  # nothing ran


def test_bad_arguments_exit_2(capsys, tmp_path, config_file):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text(CONFIG.replace("steps: 10", "steps: ten"))
    cases = [
        (["run", bad_yaml], "config error at steps: expected a number, got the string 'ten'"),
        (["run", tmp_path / "absent.yaml"], "no config file at"),
        (["run"], "give a config file, or --resume RUN_DIR"),
        (["run", "--resume", tmp_path], "no run to resume"),
        (["run", "--resume", tmp_path, config_file], "--resume takes only the run directory"),
        (["run", "--resume", tmp_path, "--output-dir", tmp_path], "takes only the run directory"),
        (["plot", tmp_path], "no run at"),
    ]
    for argv, fragment in cases:
        code, _, err = run_jopt(capsys, *argv)
        assert code == 2, argv
        assert fragment in err, (argv, err)
    for argv in (["run", config_file, "--bogus"], ["plot", tmp_path, "steps=3"], ["walk"]):
        with pytest.raises(SystemExit) as info:
            cli.main([str(a) for a in argv])
        assert info.value.code == 2, argv
        capsys.readouterr()


def test_a_second_ctrl_c_exits_130_at_once(capsys, tmp_path, config_file, monkeypatch):
    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", stopped)
    code, _, err = run_jopt(capsys, "run", config_file, "--output-dir", tmp_path)
    assert code == 130 and "continues from the last checkpoint" in err


def test_plot_loads_no_data_for_a_workload_without_paths(capsys, tmp_path):
    # An MNIST run from files this machine lacks: drawing its curves must not load the data.
    config = yaml.safe_load(CONFIG)
    config["workload"] = {"name": "mlp", "dataset": "mnist", "data_dir": str(tmp_path / "none")}
    config["target"] = {"metric": "eval_accuracy", "value": 0.9}
    run_dir = tmp_path / "run"
    outputs.write_yaml(run_dir / "config.yaml", config)
    for label in ("GD", "momentum-0.9"):
        rows = [{"step": 0, "eval_accuracy": 0.1, "eval_loss": 2.3, "elapsed": 0.0}]
        rows += [
            {"step": s, "train_loss": 2.0 / s, "learning_rate": 0.02, "elapsed": 0.1 * s}
            for s in range(1, 11)
        ]
        rows[-1].update(eval_accuracy=0.8, eval_loss=0.5)
        trial = run_dir / "trials" / f"{label}-seed0"
        trial.mkdir(parents=True)
        outputs.append_metrics(trial / "metrics.jsonl", rows)
    code, out, err = run_jopt(capsys, "plot", run_dir)
    assert code == 0, err
    assert out.split() == [str(run_dir / "curves.png"), str(run_dir / "learning_rate.png")]
    assert not (run_dir / "paths.png").exists()


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"jopt exited with {process.returncode}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.1)


@pytest.mark.parametrize(("sent", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_stops_a_real_process_with_a_status_and_a_resumable_run(
    tmp_path, config_file, sent, status
):
    out_dir = tmp_path / "o"
    process = subprocess.Popen(
        [sys.executable, "-m", "jopt.lab.cli", "run", str(config_file), "steps=100000"]
        + ["--output-dir", str(out_dir), "--no-progress", "--no-plots"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    run_dir = out_dir / "cli"
    _wait_for(run_dir / "trials" / "GD-seed0" / "metrics.jsonl", process)
    process.send_signal(sent)
    out, err = process.communicate(timeout=120)
    assert process.returncode == status, (out, err)
    name = signal.Signals(sent).name
    assert err == f"jopt: interrupted ({name}); resume with: jopt run --resume {run_dir}\n"
    assert out == ""

    meta = outputs.read_json(run_dir / "trials" / "GD-seed0" / "metadata.json")
    assert meta["status"] == "interrupted"
    stopped_at = meta["steps_completed"]
    assert 0 <= stopped_at < 100000 and stopped_at % 5 == 0
    checkpoint = outputs.read_json(run_dir / "checkpoints" / "GD.json")
    assert checkpoint["step"] == stopped_at
    rows = outputs.read_metrics(run_dir / "trials" / "GD-seed0" / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(stopped_at + 1))
    assert not (run_dir / "trials" / "momentum-0.9-seed0").exists()

    # It resumes from there: one more chunk, then stop again.
    experiment = config_lib.load(run_dir / "config.yaml")

    def stop(flag):
        flag.requested = True

    with pytest.raises(runner.Interrupted):
        runner.run(experiment, run_dir, resume=True, progress=False, on_chunk=stop)
    rows = outputs.read_metrics(run_dir / "trials" / "GD-seed0" / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(stopped_at + 6))
    assert outputs.read_json(run_dir / "checkpoints" / "GD.json")["step"] == stopped_at + 5


def test_the_main_job_runs_end_to_end_in_miniature(capsys, tmp_path):
    """configs/quickstart.yaml, the README's main job, with every optimizer for a few steps and a
    periodic checkpoint on the last step (the final checkpoint then saves that step again)."""
    config = Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"
    argv = ["run", config, "steps=4", "eval_every=2", "checkpoint_every=2", "seeds=[0]"]
    code, out, err = run_jopt(
        capsys, *argv, "--output-dir", tmp_path, "--no-progress", "--no-plots"
    )
    assert code == 0, err
    labels = [o["label"] for o in yaml.safe_load(config.read_text())["optimizers"]]
    assert all(f"| {label} |" in out for label in labels), out
    assert (tmp_path / "quickstart" / "summary.csv").is_file()


def test_without_the_lab_extra_the_command_says_which_extra_to_install(tmp_path):
    # A Python where PyYAML and scikit-learn cannot be imported, as without the [lab] extra.
    script = (
        "import sys; sys.modules['yaml'] = None; sys.modules['sklearn'] = None; "
        "from jopt.lab.cli import main; sys.exit(main(['run', 'configs/quickstart.yaml']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert "the lab needs the [lab] extra" in done.stderr
    missing = done.stderr.split("(missing: ")[1].split(")")[0].split(", ")
    assert {"scikit-learn", "pyyaml"} <= set(missing) and "tqdm" not in missing
    assert "pip install 'jopt[lab]'" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_plot_of_a_run_without_metrics_says_so(capsys, tmp_path, config_file):
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(config_file.read_text())
    code, out, err = run_jopt(capsys, "plot", run_dir)
    assert code == 2 and out == ""
    assert err == f"jopt: {run_dir} has no trial metrics to plot yet.\n"


def test_a_corrupt_metrics_line_is_one_error_line_naming_it(capsys, tmp_path, config_file):
    out_dir = tmp_path / "o"
    code, _, err = run_jopt(
        capsys, "run", config_file, "--output-dir", out_dir, "--no-plots", "--no-progress"
    )
    assert code == 0, err
    metrics = out_dir / "cli" / "trials" / "GD-seed0" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    lines[1] = "{not json"
    metrics.write_text("\n".join(lines) + "\n")
    code, out, err = run_jopt(capsys, "plot", out_dir / "cli")
    assert code == 2
    assert err == (
        f"jopt: {metrics}, line 2: not a JSON row (Expecting property name enclosed in double "
        f"quotes); the {len(lines) - 2} rows after it are kept. Repair or remove that line, then "
        "run the command again.\n"
    )


def test_a_run_directory_in_use_is_refused_naming_the_holder(capsys, tmp_path, config_file):
    out_dir = tmp_path / "o"
    code, _, err = run_jopt(
        capsys,
        "run",
        config_file,
        "steps=5",
        "--output-dir",
        out_dir,
        "--no-plots",
        "--no-progress",
    )
    assert code == 0, err
    run_dir = out_dir / "cli"
    before = _files(run_dir)
    with run_lock.held(run_dir):  # as another `jopt run --resume` would hold it
        code, out, err = run_jopt(capsys, "run", "--resume", run_dir, "--no-progress")
    assert code == 2 and out == ""
    assert err == (
        f"jopt: {run_dir} is in use by process {os.getpid()} (another jopt run or resume); wait "
        "for it to finish, or stop it, before resuming.\n"
    )
    assert _files(run_dir) == before  # nothing written
    code, _, err = run_jopt(capsys, "run", "--resume", run_dir, "--no-progress", "--no-plots")
    assert code == 0, err


def _damage(checkpoint_dir: Path, steps: list[int] | None = None) -> list[int]:
    """Flips 3 bytes in the middle of every data file of each of `steps` (default: every stored
    step) of an orbax checkpoint; returns the steps stored."""
    stored = sorted(int(p.name) for p in checkpoint_dir.iterdir() if p.name.isdigit())
    for step in stored if steps is None else steps:
        for target in (checkpoint_dir / str(step)).rglob("*"):
            if target.is_file() and "d" in target.parts[-2:-1]:
                data = bytearray(target.read_bytes())
                for i in range(len(data) // 2, len(data) // 2 + 3):
                    data[i] ^= 0xFF
                target.write_bytes(bytes(data))
    return stored


def _interrupted_at_15(tmp_path, config_file) -> Path:
    """A run of 20 steps, checkpointed every 5, stopped after its third chunk (step 15)."""
    if checkpoints.default_format() != "orbax":
        pytest.skip("orbax keeps two steps to fall back on; the npz format keeps one")
    experiment = config_lib.load(config_file, ["steps=20", "checkpoint_every=5"])
    experiment = dataclasses.replace(experiment, output_dir=str(tmp_path / "b"))
    chunks = []

    def stop_after_three_chunks(flag):
        chunks.append(None)
        flag.requested = len(chunks) == 3

    with pytest.raises(runner.Interrupted):
        runner.run(experiment, progress=False, on_chunk=stop_after_three_chunks)
    return tmp_path / "b" / "cli"


# orbax's reader threads report the damaged bytes as unraisable exceptions as well
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_damaged_checkpoint_falls_back_to_the_previous_step_and_ends_identically(
    capsys, tmp_path, config_file
):
    argv = ["steps=20", "checkpoint_every=5", "--no-plots", "--no-progress"]
    code, _, err = run_jopt(capsys, "run", config_file, *argv, "--output-dir", tmp_path / "a")
    assert code == 0, err
    run_dir = _interrupted_at_15(tmp_path, config_file)
    assert _damage(run_dir / "checkpoints" / "GD.orbax", [15]) == [10, 15]
    assert checkpoints.load(run_dir / "checkpoints" / "GD")[1] == 10  # the fallback
    code, _, err = run_jopt(capsys, "run", "--resume", run_dir, "--no-progress", "--no-plots")
    assert code == 0, err
    for trial in ("GD-seed0", "momentum-0.9-seed0"):
        whole = outputs.read_metrics(tmp_path / "a" / "cli" / "trials" / trial / "metrics.jsonl")
        resumed = outputs.read_metrics(run_dir / "trials" / trial / "metrics.jsonl")
        strip = [{k: v for k, v in r.items() if k != "elapsed"} for r in resumed]
        assert strip == [{k: v for k, v in r.items() if k != "elapsed"} for r in whole]


# orbax's reader threads report the damaged bytes as unraisable exceptions as well
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_with_every_step_damaged_resume_is_one_error_line(capsys, tmp_path, config_file):
    run_dir = _interrupted_at_15(tmp_path, config_file)
    _damage(run_dir / "checkpoints" / "GD.orbax")
    code, out, err = run_jopt(capsys, "run", "--resume", run_dir, "--no-progress", "--no-plots")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"jopt: checkpoint {run_dir / 'checkpoints' / 'GD.orbax'} is damaged")


def test_a_finished_optimizer_is_not_reloaded_on_resume(capsys, tmp_path, config_file):
    argv = ["--no-plots", "--no-progress", "--output-dir", tmp_path / "o"]
    code, _, err = run_jopt(capsys, "run", config_file, *argv)
    assert code == 0, err
    run_dir = tmp_path / "o" / "cli"
    store = checkpoints.default_format()
    if store == "orbax":
        _damage(run_dir / "checkpoints" / "GD.orbax")
    summary = (run_dir / "summary.md").read_text()
    code, out, err = run_jopt(capsys, "run", "--resume", run_dir, "--no-progress", "--no-plots")
    assert code == 0, err
    assert out.startswith(summary)


def test_an_output_path_that_is_not_a_directory_is_one_error_line(capsys, tmp_path, config_file):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    code, out, err = run_jopt(capsys, "run", config_file, "--output-dir", blocker, "--no-progress")
    assert code == cli.EXIT_IO and out == "" and err.count("\n") == 1
    assert err.startswith(f"jopt: cannot write {blocker / 'cli'}: Not a directory.")
    assert "Nothing was run" in err


def test_a_full_disk_marks_the_trials_interrupted_and_the_run_resumes(
    capsys, tmp_path, config_file, monkeypatch
):
    argv = ["--no-plots", "--no-progress"]
    code, _, err = run_jopt(capsys, "run", config_file, *argv, "--output-dir", tmp_path / "a")
    assert code == 0, err
    append = outputs.append_metrics
    calls = []

    def full_disk(path, rows):
        calls.append(path)
        if len(calls) == 2:  # the first chunk's rows
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        append(path, rows)

    monkeypatch.setattr(outputs, "append_metrics", full_disk)
    code, out, err = run_jopt(capsys, "run", config_file, *argv, "--output-dir", tmp_path / "b")
    run_dir = tmp_path / "b" / "cli"
    assert code == cli.EXIT_IO and out == "" and err.count("\n") == 1
    assert err == (
        f"jopt: cannot write {calls[-1]}: No space left on device. Free space or fix the path, "
        f"then resume with: jopt run --resume {run_dir}\n"
    )
    meta = outputs.read_json(run_dir / "trials" / "GD-seed0" / "metadata.json")
    assert meta["status"] == "interrupted"

    monkeypatch.setattr(outputs, "append_metrics", append)
    code, _, err = run_jopt(capsys, "run", "--resume", run_dir, *argv)
    assert code == 0, err
    for trial in ("GD-seed0", "momentum-0.9-seed0"):
        whole = outputs.read_metrics(tmp_path / "a" / "cli" / "trials" / trial / "metrics.jsonl")
        resumed = outputs.read_metrics(run_dir / "trials" / trial / "metrics.jsonl")
        assert [{k: v for k, v in r.items() if k != "elapsed"} for r in resumed] == [
            {k: v for k, v in r.items() if k != "elapsed"} for r in whole
        ]
