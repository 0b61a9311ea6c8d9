"""`jopt sweep`: populations equal to the runs `jopt run` makes, the study loop's budget,
failures, pruning and resume, and the files a sweep writes (on linear regression, whose runs
are bitwise reproducible across population sizes).
"""

from __future__ import annotations

import copy
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optuna
import pytest
import yaml

import jopt
from jopt.lab import config as config_lib
from jopt.lab import outputs, programs, runner
from jopt.lab.search import optuna_setup, population, report, section, space, study
from tests.lab.commands import run_jopt

WORKLOAD = {"name": "linear_regression", "batch_size": 32}
BASE = {
    "name": "sw",
    "workload": WORKLOAD,
    "optimizers": [{"name": "sgd", "label": "momentum", "learning_rate": 0.05, "momentum": 0.9}],
    "seeds": [0, 1],
    "steps": 12,
    "eval_every": 4,
    "search": {
        "method": "random",
        "trials": 6,
        "population": 3,
        "objective": {"metric": "eval_loss", "mode": "min"},
        "space": {
            "learning_rate": {"low": 1.0e-3, "high": 0.5, "log": True},
            "momentum": {"low": 0.0, "high": 0.95},
        },
    },
}


def _experiment(tmp_path, **search_changes) -> config_lib.ExperimentConfig:
    raw = copy.deepcopy(BASE)
    raw["output_dir"] = str(tmp_path / "runs")
    raw["search"].update(search_changes)
    return study.resolved(config_lib.from_dict(raw))


def _sweep(experiment, study_dir, **kwargs) -> list[optuna.Study]:
    study_dir.mkdir(parents=True, exist_ok=True)
    return study.sweep(
        experiment, study_dir, optuna_setup.open_storage(study_dir, None), progress=False, **kwargs
    )


def _statuses(one: optuna.Study) -> list[str]:
    again = study.retried(one)
    return [study.status(t, again) for t in one.get_trials()]


def test_population_members_are_the_runs_jopt_run_makes_bitwise(tmp_path):
    experiment = _experiment(tmp_path)
    trial = space.apply(experiment.optimizers[0], {"learning_rate": 0.02, "momentum": 0.5})
    run_dir = runner.run(
        dataclasses.replace(experiment, optimizers=(trial,), search=None), progress=False
    )
    expected = [
        [r["eval_loss"] for r in outputs.read_metrics(path) if "eval_loss" in r]
        for path in (
            run_dir / "trials" / outputs.trial_name("momentum", s) / "metrics.jsonl"
            for s in experiment.seeds
        )
    ]
    program = space.apply(experiment.optimizers[0], {"learning_rate": 1e-3, "momentum": 0.0})
    members = [
        population.Member(seed, {"learning_rate": lr, "momentum": m})
        for lr, m in [(0.3, 0.9), (0.02, 0.5), (0.001, 0.0)]
        for seed in experiment.seeds
    ]
    result = population.train(
        programs.compiled_workload(experiment.workload),
        program,
        members,
        experiment.steps,
        experiment.eval_every,
        "eval_loss",
        size=8,
    )
    assert result.steps == (0, 4, 8, 12)
    np.testing.assert_array_equal(result.metric[2:4], np.asarray(expected))
    assert not np.array_equal(result.metric[0:2], result.metric[2:4])  # the values took effect
    assert result.bytes_per_member > 0


def test_member_hyperparameters_are_rounded_as_the_constructor_rounds_them():
    params = {"w": jnp.zeros((2, 3))}
    stacked = _stack([jopt.adam(0.5, b1=0.5).init(params)] * 3)
    values = [{"learning_rate": 1e-3, "b1": 0.85}, {"learning_rate": 0.1, "b1": 0.9}, {}]
    got = population.with_values(stacked, values)
    built = _stack(
        [jopt.adam(v.get("learning_rate", 0.5), b1=v.get("b1", 0.5)).init(params) for v in values]
    )
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(built), strict=True):
        np.testing.assert_array_equal(a, b)
    assert jax.tree.structure(got) == jax.tree.structure(built)


def _stack(states):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def test_a_population_gives_each_trial_what_it_gets_alone(tmp_path):
    """Random draws do not depend on results: the same trials, asked 3 at a time or one by one,
    trained in populations of 3 (padded) or alone, get bitwise the same objectives."""
    together = _sweep(_experiment(tmp_path), tmp_path / "together")[0]
    alone = _sweep(_experiment(tmp_path, population=1), tmp_path / "alone")[0]
    assert [t.params for t in together.trials] == [t.params for t in alone.trials]
    assert [t.value for t in together.trials] == [t.value for t in alone.trials]
    assert _statuses(together) == ["done"] * 6
    assert all(len(t.user_attrs["objective_per_seed"]) == 2 for t in together.trials)


def test_diverged_and_refused_trials_are_recorded_and_never_best(tmp_path):
    raw = copy.deepcopy(BASE)
    raw["output_dir"] = str(tmp_path / "runs")
    raw["optimizers"].append(
        {
            "name": "adam",
            "learning_rate": {
                "schedule": "warmup_cosine_decay_schedule",
                "init_value": 0.0,
                "peak_value": 0.05,
                "warmup_steps": 2,
                "decay_steps": 10,
            },
        }
    )
    raw["search"] = {
        "method": "grid",
        "population": 2,
        "objective": {"metric": "eval_loss"},
        "per_optimizer": {
            "momentum": {"learning_rate": [0.01, 1.0e6]},
            "adam": {"learning_rate.warmup_steps": [1, 9], "learning_rate.decay_steps": [5, 11]},
        },
    }
    experiment = study.resolved(config_lib.from_dict(raw))
    momentum, adam = _sweep(experiment, tmp_path / "s")
    assert sorted(_statuses(momentum)) == ["diverged", "done"]
    diverged = next(t for t in momentum.trials if t.user_attrs["status"] == "diverged")
    assert diverged.params == {"learning_rate": 1.0e6}
    assert diverged.state == optuna.trial.TrialState.FAIL
    assert diverged.user_attrs["diverged_at_step"] >= 1
    assert momentum.best_trial.params == {"learning_rate": 0.01}
    assert sorted(_statuses(adam)) == ["done", "done", "done", "failed"]
    failed = next(t for t in adam.trials if t.user_attrs["status"] == "failed")
    assert failed.params == {"learning_rate.warmup_steps": 9, "learning_rate.decay_steps": 5}
    assert "decay_steps=5 must exceed warmup_steps=9" in failed.user_attrs["error"]
    table = report.rows(experiment, [momentum, adam])
    assert {r["status"] for r in table} == {"done", "diverged", "failed"}


def test_an_interrupted_sweep_queues_its_trials_again_and_resumes_to_the_budget(tmp_path):
    experiment = _experiment(tmp_path)
    chunks = []

    def stop_in_the_second_population() -> bool:
        chunks.append(None)
        return len(chunks) == 5  # 3 chunks per population: the 2nd population's 2nd chunk

    with pytest.raises(population.Stopped):
        _sweep(experiment, tmp_path / "s", stop=stop_in_the_second_population)
    storage = optuna_setup.open_storage(tmp_path / "s", None)
    one = optuna.load_study(study_name="sw/momentum", storage=storage)
    assert _statuses(one) == ["done"] * 3 + ["interrupted"] * 3 + ["waiting"] * 3
    assert study.counted(one) == 3
    interrupted = [t.params for t in one.trials[3:6]]

    (resumed,) = _sweep(experiment, tmp_path / "s")
    assert study.counted(resumed) == 6
    assert _statuses(resumed) == ["done"] * 3 + ["interrupted"] * 3 + ["done"] * 3
    assert [t.params for t in resumed.trials[6:]] == interrupted
    # what an uninterrupted sweep gives for the same trials
    (whole,) = _sweep(experiment, tmp_path / "whole")
    assert [t.value for t in resumed.trials[6:]] == [t.value for t in whole.trials[3:6]]


def test_trials_a_killed_worker_left_running_are_run_again(tmp_path):
    experiment = _experiment(tmp_path, trials=2, population=2)
    study_dir = tmp_path / "s"
    study_dir.mkdir()
    storage = optuna_setup.open_storage(study_dir, None)
    one = optuna.create_study(study_name="sw/momentum", storage=storage)
    stale = one.ask({"learning_rate": optuna.distributions.FloatDistribution(1e-3, 0.5, log=True)})
    stale.set_user_attr("worker", study.worker_id(study_dir))  # then the worker was killed
    (resumed,) = _sweep(experiment, study_dir)
    assert _statuses(resumed)[0] == "interrupted"
    assert resumed.trials[1].params["learning_rate"] == stale.params["learning_rate"]
    assert study.counted(resumed) == 2


def test_a_grid_visits_every_point_once(tmp_path):
    experiment = _experiment(
        tmp_path,
        method="grid",
        trials=None,
        space={
            "learning_rate": {"low": 0.01, "high": 0.1, "log": True, "count": 3},
            "momentum": [0.0, 0.9],
        },
    )
    (one,) = _sweep(experiment, tmp_path / "s")
    points = sorted((t.params["learning_rate"], t.params["momentum"]) for t in one.trials)
    expected = sorted((lr, m) for lr in np.geomspace(0.01, 0.1, 3) for m in (0.0, 0.9))
    np.testing.assert_allclose(points, expected, rtol=1e-12)
    assert _statuses(one) == ["done"] * 6


def test_the_median_pruner_stops_bad_trials_which_never_count_as_best(tmp_path):
    experiment = _experiment(
        tmp_path,
        trials=8,
        population=1,
        pruner={"name": "median"},
        space={"learning_rate": {"low": 1.0e-4, "high": 0.3, "log": True}},
    )
    (one,) = _sweep(experiment, tmp_path / "s")
    statuses = _statuses(one)
    assert "pruned" in statuses and statuses.count("done") >= 2
    pruned = [t for t in one.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert all(t.user_attrs["steps"][-1] < experiment.steps for t in pruned)
    assert one.best_trial.state == optuna.trial.TrialState.COMPLETE


def test_scores_of_a_curve():
    steps = (0, 4, 8)
    curve = np.asarray([1.0, 0.2, 0.5])
    final = section.Objective("eval_loss", "min", "final")
    assert study.score(final, steps, curve) == 0.5
    assert study.score(section.Objective("eval_loss", "min", "best"), steps, curve) == 0.2
    reach = section.Objective("eval_loss", "min", "steps_to_target", 0.3)
    assert study.score(reach, steps, curve) == 4
    assert (
        study.score(section.Objective("eval_loss", "min", "steps_to_target", 0.1), steps, curve)
        == math.inf
    )
    assert math.isnan(study.score(final, steps, np.full(3, np.nan)))


def test_jopt_sweep_writes_tables_figures_and_a_best_config_that_jopt_run_reproduces(
    capsys, tmp_path
):
    raw = copy.deepcopy(BASE)
    raw["optimizers"].append({"name": "adam", "learning_rate": 0.01})
    raw["search"]["per_optimizer"] = {"adam": {"b1": [0.8, 0.9]}}
    raw["search"]["space"] = {"learning_rate": {"low": 1.0e-3, "high": 0.5, "log": True}}
    raw["search"]["per_optimizer"]["momentum"] = {"momentum": {"low": 0.0, "high": 0.95}}
    config = tmp_path / "sweep.yaml"
    config.write_text("# jopt sweep sweep.yaml\n" + yaml.safe_dump(raw, sort_keys=False))
    code, out, err = run_jopt(
        capsys, "sweep", config, "--output-dir", tmp_path / "o", "--no-progress"
    )
    assert code == 0, err
    study_dir = tmp_path / "o" / "sw-sweep"
    assert out.startswith("# Sweep sw\n") and f"Results in {study_dir}" in out
    table = (study_dir / "trials.csv").read_text().splitlines()
    assert table[0] == (
        "optimizer,trial,status,objective,spread,seconds,learning_rate,momentum,b1,error"
    )
    assert len(table) == 1 + 12
    for name in (
        "objective-learning_rate.png",
        "objective-momentum.png",
        "objective-b1.png",
        "best_so_far.png",
        "best_curves.png",
        "parallel_coordinates-momentum.png",
        "parallel_coordinates-adam.png",
        "importances-momentum.png",
        "importances-adam.png",
    ):
        assert (study_dir / "figures" / name).read_bytes().startswith(b"\x89PNG"), name

    best = (study_dir / "best.yaml").read_text()
    assert best.splitlines()[0] == f"# jopt run {study_dir / 'best.yaml'}"
    code, out, err = run_jopt(
        capsys, "run", study_dir / "best.yaml", "--output-dir", tmp_path / "o", "--no-progress"
    )
    assert code == 0, err
    storage = optuna_setup.open_storage(study_dir, None)
    summary = outputs.summarize(tmp_path / "o" / "sw-best")
    for row in summary:
        one = optuna.load_study(study_name=f"sw/{row['optimizer']}", storage=storage)
        assert row["final_mean"] == one.best_value  # bitwise: the same runs
    assert "search" not in yaml.safe_load((tmp_path / "o" / "sw-best" / "config.yaml").read_text())

    # A finished sweep resumes to itself.
    before = (study_dir / "trials.csv").read_text()
    code, out, err = run_jopt(capsys, "sweep", "--resume", study_dir, "--no-progress", "--no-plots")
    assert code == 0, err
    assert (study_dir / "trials.csv").read_text() == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--resume", "{tmp}/nowhere"], "no sweep to resume at"),
        ([], "give a config file, or --resume STUDY_DIR."),
        (["{config}", "search=null"], "has no search: section to sweep"),
        (["{config}", "search.method=anneal"], "config error at search.method: unknown method"),
        (["{config}", "search.space.momentum.high=1.5"], "search.space.momentum.high: jopt.sgd"),
    ],
)
def test_jopt_sweep_refuses_bad_input_in_one_line(capsys, tmp_path, argv, message):
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(BASE, sort_keys=False))
    argv = [a.format(tmp=tmp_path, config=config) for a in argv]
    code, out, err = run_jopt(capsys, "sweep", *argv, "--output-dir", tmp_path / "o")
    if argv and argv[0] == "--resume":
        code, out, err = run_jopt(capsys, "sweep", *argv)
    assert code == 2
    assert err.startswith("jopt: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_cross_validation_scores_each_trial_on_every_fold(tmp_path):
    experiment = _experiment(tmp_path, trials=2, population=2, folds=3)
    (one,) = _sweep(experiment, tmp_path / "s")
    program = space.apply(experiment.optimizers[0], {"learning_rate": 1e-3, "momentum": 0.0})
    for trial in one.trials:
        member = [population.Member(seed, trial.params) for seed in experiment.seeds]
        scores = [
            study.score(
                experiment.search.objective,
                (0, 4, 8, 12),
                population.train(
                    programs.compiled_workload(workload), program, member, 12, 4, "eval_loss"
                ).metric[i],
            )
            for workload in study.folds(experiment)
            for i in range(len(member))
        ]
        assert trial.user_attrs["objective_per_seed"] == scores  # folds x seeds
        assert trial.value == np.mean(scores)
    sizes = {programs.compiled_workload(w).workload.valid.size for w in study.folds(experiment)}
    assert sum(sizes) >= 256  # the folds split train + valid (256 + 512 examples)


def test_a_time_budget_lets_the_population_in_flight_finish(tmp_path):
    experiment = _experiment(tmp_path, trials=None, seconds=1e-9)
    (one,) = _sweep(experiment, tmp_path / "s")
    assert _statuses(one) == ["done"] * 3  # one population of 3, then the clock has run out


@pytest.mark.parametrize("method", ["quasirandom", "tpe", "gp", "cmaes"])
def test_every_optuna_sampler_runs_a_sweep(tmp_path, method):
    experiment = _experiment(tmp_path, method=method, trials=3, population=1)
    (one,) = _sweep(experiment, tmp_path / "s")
    assert _statuses(one) == ["done"] * 3
    assert len({t.params["learning_rate"] for t in one.trials}) == 3
