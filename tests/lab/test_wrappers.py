"""Parameter groups, L1, accumulation, plateau decay and averages in lab configs
(`jopt.lab.config_wrappers`), and the runner that feeds and evaluates them.

- Every part is validated where it is written (`optimizers[0].groups[1].b1: ...`), a group that
  picks no parameter of the model is refused before anything runs, and the resolved config
  reads back to the same config.
- A run with all of them trains every seed in the vmapped runner: the plateau, fed the logged
  `eval_loss` at the update after each evaluation, lowers the logged learning rate; evaluation is
  at the EMA of the params; and an interrupted run resumes to the uninterrupted run's files,
  bitwise (the plateau's pending metric is evaluated again).
- A sweep's population trains with them as `jopt run` does (bitwise); population-based
  training refuses plateau and average.
"""

from __future__ import annotations

import copy
import json

import jax
import numpy as np
import pytest

from jopt.lab import config as config_lib
from jopt.lab import programs, runner
from jopt.lab.config_values import ConfigError
from jopt.lab.search import population

OPTIMIZER = {
    "name": "adamw",
    "label": "wrapped",
    "learning_rate": 0.05,
    "weight_decay": 0.01,
    "groups": [
        {"name": "head", "match": "output/**", "learning_rate": 0.02, "b1": 0.8},
        {"name": "biases", "match": ["**/bias"], "weight_decay": 0.0, "l1": 1.0e-4},
    ],
    "l1": 1.0e-5,
    "accumulate": 2,
    # Any metric short of a 90% improvement counts as a plateau: reductions at every evaluation.
    "plateau": {"metric": "loss", "factor": 0.5, "patience": 0, "threshold": 0.9},
    "average": {"ema": 0.8},
}
RAW = {
    "name": "wrappers",
    "workload": {"name": "mlp", "hidden_sizes": [8], "batch_size": 32},
    "optimizers": [OPTIMIZER],
    "seeds": [0, 1],
    "steps": 24,
    "eval_every": 6,
    "checkpoint_every": 6,
}
TRIALS = ["wrapped-seed0", "wrapped-seed1"]


def _experiment(**optimizer_changes) -> config_lib.ExperimentConfig:
    raw = copy.deepcopy(RAW)
    raw["optimizers"][0].update(optimizer_changes)
    raw["optimizers"][0] = {k: v for k, v in raw["optimizers"][0].items() if v is not None}
    return config_lib.from_dict(raw)


def _rows(run_dir, trial):
    lines = (run_dir / "trials" / trial / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed"} for line in lines]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    runner.run(_experiment(), run_dir, progress=False)
    return run_dir


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"groups": [{"name": "h", "match": "output/**", "b1": 1.5}]}, "groups[0].b1",
         "jopt.adamw: b1 must be in [0, 1), got 1.5."),
        ({"groups": [{"name": "h", "match": 3}]}, "groups[0].match", "expected a path glob"),
        ({"groups": [{"name": "h", "match": "x", "lr_scale": -1}]}, "groups[0].lr_scale",
         "lr_scale must be > 0, got -1.0."),
        ({"groups": []}, "groups", "expected a list of groups"),
        ({"groups": [{"name": "h", "match": "x", "betas": [0.9, 0.99]}]}, "groups[0].betas",
         "jopt.adamw has no argument 'betas'"),
        ({"l1": -1.0}, "l1", "l1 must be >= 0"),
        ({"accumulate": 0}, "accumulate", ">= 1"),
        ({"plateau": {"metric": "los"}}, "plateau.metric", "unknown metric 'los' (did you mean "
         "'loss'?) for workload 'mlp'; it evaluates: loss, accuracy."),
        ({"plateau": {"metric": "loss", "factor": 2}}, "plateau.factor",
         "factor must be in (0, 1)"),
        ({"plateau": {"metric": "loss", "mode": "up"}}, "plateau.mode", "must be 'min' or 'max'"),
        ({"average": {"ema": 1.0}}, "average.ema", "the decay must be in [0, 1), got 1.0."),
        ({"average": {"ema": 0.9, "swa": {}}}, "average", "give one of ema"),
        ({"average": {"swa": {"start": 0}}}, "average.swa.start", ">= 1"),
    ],
)  # fmt: skip
def test_each_part_is_validated_where_it_is_written(changes, path, message):
    with pytest.raises(ConfigError) as raised:
        _experiment(**changes)
    assert raised.value.path == f"optimizers[0].{path}"
    assert message in str(raised.value)


def test_a_plateau_on_an_optimizer_that_reads_the_loss_is_refused():
    with pytest.raises(ConfigError) as raised:
        _experiment(name="momo", weight_decay=None, groups=None, average=None)
    assert raised.value.path == "optimizers[0].plateau"
    assert "momo reads the training loss as its update's value=" in str(raised.value)


def test_the_resolved_config_reads_back_the_same():
    experiment = _experiment()
    assert config_lib.from_dict(config_lib.to_dict(experiment)) == experiment


def test_a_group_that_picks_nothing_is_refused_before_anything_runs(tmp_path):
    experiment = _experiment(groups=[{"name": "typo", "match": "ouptut/**"}])
    with pytest.raises(ConfigError, match=r"group 'typo' picks no parameter .* output/kernel"):
        runner.run(experiment, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_population_based_training_refuses_plateau_and_average():
    raw = copy.deepcopy(RAW)
    space = {"learning_rate": {"low": 0.01, "high": 0.1, "log": True}}
    raw["search"] = {"method": "pbt", "population": 2, "space": space}
    with pytest.raises(ConfigError, match=r"optimizers\[0\]\.plateau: population-based training"):
        config_lib.from_dict(raw)


def test_a_sweeps_population_is_what_jopt_run_makes_with_plateau_and_average(reference):
    """A sweep's members are fed the plateau's metric and measured at the average, as `jopt
    run` does: the population's eval_loss curves are the reference run's, bitwise."""
    experiment = _experiment()
    result = population.train(
        programs.compiled_workload(experiment.workload),
        experiment.optimizers[0],
        [population.Member(seed, {}) for seed in experiment.seeds],
        experiment.steps,
        experiment.eval_every,
        "eval_loss",
    )
    want = [[r["eval_loss"] for r in _rows(reference, t) if "eval_loss" in r] for t in TRIALS]
    np.testing.assert_array_equal(result.metric, np.asarray(want))


# -- running -------------------------------------------------------------------------------------


def test_the_plateau_lowers_the_learning_rate_after_each_evaluation(reference):
    rows = _rows(reference, TRIALS[0])
    rates = {r["step"]: r["learning_rate"] for r in rows if "learning_rate" in r}
    # The default group's rate, halved at the update after each evaluation from the second on
    # (steps 12 and 18; the first metric is the best so far).
    assert rates[7] == rates[12] == pytest.approx(0.05)
    assert rates[13] == rates[18] == pytest.approx(0.025)
    assert rates[19] == rates[24] == pytest.approx(0.0125)


def test_evaluation_is_at_the_average(reference, tmp_path):
    plain = tmp_path / "plain"
    runner.run(_experiment(average=None), plain, progress=False)
    averaged = [r["eval_loss"] for r in _rows(reference, TRIALS[0]) if "eval_loss" in r]
    at_params = [r["eval_loss"] for r in _rows(plain, TRIALS[0]) if "eval_loss" in r]
    assert averaged[0] == at_params[0]  # step 0: the average is the params
    assert averaged[1:] != at_params[1:]


def test_an_interrupted_run_resumes_to_the_same_files(reference, tmp_path):
    run_dir = tmp_path / "run"
    calls = []

    def stop_after_two(flag):
        calls.append(1)
        flag.requested = len(calls) == 2

    with pytest.raises(runner.Interrupted):
        runner.run(_experiment(), run_dir, progress=False, on_chunk=stop_after_two)
    runner.run(_experiment(), run_dir, resume=True, progress=False)
    for trial in TRIALS:
        assert _rows(run_dir, trial) == _rows(reference, trial)
    assert np.all(np.isfinite([r["train_loss"] for r in _rows(run_dir, TRIALS[1])[1:]]))
    jax.clear_caches()
