"""The `search:` section of a config: dimensions addressed by the optimizer's own arguments,
every mistake a ConfigError at its dotted path before any compute, and the round trip to data.
"""

from __future__ import annotations

import copy

import pytest

from jopt.lab import config as config_lib
from jopt.lab.config_values import ConfigError
from jopt.lab.search import space

BASE = {
    "name": "s",
    "workload": {"name": "linear_regression", "batch_size": 32},
    "optimizers": [
        {"name": "sgd", "label": "SGD", "learning_rate": 0.1, "momentum": 0.9},
        {
            "name": "adam",
            "learning_rate": {
                "schedule": "warmup_cosine_decay_schedule",
                "init_value": 0.0,
                "peak_value": 0.01,
                "warmup_steps": 10,
                "decay_steps": 100,
            },
        },
        {"name": "torch.Adam", "lr": 0.01},
    ],
    "steps": 20,
    "search": {
        "method": "tpe",
        "trials": 8,
        "objective": {"metric": "eval_loss"},
        "per_optimizer": {
            "SGD": {
                "learning_rate": {"low": 1.0e-3, "high": 1.0, "log": True},
                "momentum": {"low": 0.0, "high": 0.99},
                "nesterov": [True, False],
            },
            "adam": {
                "learning_rate.warmup_steps": {"low": 0, "high": 50, "step": 10},
                "b1": [0.8, 0.9],
            },
            "torch.Adam": {"betas[0]": {"low": 0.5, "high": 0.95}, "lr": [0.1, "1e-2"]},
        },
    },
}


def _config(search=None, **top):
    raw = copy.deepcopy(BASE)
    if search is not None:
        raw["search"] = search
    raw.update(top)
    return config_lib.from_dict(raw)


def _pbt(**changes):
    search = {"method": "pbt", "population": 4, "objective": {"metric": "eval_loss"}}
    search.update(changes)
    return search


def _search(**changes):
    search = {"method": "tpe", "trials": 4, "objective": {"metric": "eval_loss"}}
    search.update(changes)
    return search


def test_dimensions_are_addressed_by_argument_schedule_argument_and_list_item():
    spaces = _config().search.spaces
    sgd = {d.name: d for d in spaces["SGD"]}
    assert sgd["learning_rate"] == space.Dimension("learning_rate", "float", 1e-3, 1.0, True)
    assert sgd["nesterov"].choices == (True, False)
    adam = {d.name: d for d in spaces["adam"]}
    # warmup_steps is annotated int in the schedule's signature
    assert adam["learning_rate.warmup_steps"].kind == "int"
    assert adam["learning_rate.warmup_steps"].grid() == (0, 10, 20, 30, 40, 50)
    twin = {d.name: d for d in spaces["torch.Adam"]}
    assert twin["betas[0]"].kind == "float"
    assert twin["lr"].choices == (0.1, 0.01)  # numeric strings converted, as everywhere


def test_apply_sets_values_by_address_and_validates_the_result():
    config = _config()
    adam = space.apply(config.optimizers[1], {"learning_rate.warmup_steps": 30, "b1": 0.8})
    assert adam.hparams["learning_rate"].args["warmup_steps"] == 30
    assert adam.hparams["learning_rate"].args["peak_value"] == 0.01
    assert adam.hparams["b1"] == 0.8
    both = {"learning_rate.warmup_steps": 30, "learning_rate.decay_steps": 60}
    schedule = space.apply(config.optimizers[1], both).hparams["learning_rate"]
    assert (schedule.args["warmup_steps"], schedule.args["decay_steps"]) == (30, 60)
    assert config.optimizers[1].hparams["learning_rate"].args["warmup_steps"] == 10  # a copy
    twin = space.apply(config.optimizers[2], {"betas[0]": 0.7})
    assert twin.hparams["betas"] == (0.7, 0.999)  # the default pair, item 0 replaced
    with pytest.raises(ConfigError, match="warmup_steps=200"):
        space.apply(config.optimizers[1], {"learning_rate.warmup_steps": 200})


def test_round_trip_through_plain_data():
    config = _config()
    assert config_lib.from_dict(config_lib.to_dict(config)) == config


def test_which_dimensions_live_in_the_state():
    config = _config()
    by_name = {d.name: (o, d) for o in config.optimizers for d in config.search.spaces[o.label]}
    assert space.in_state(*by_name["learning_rate"])
    assert space.in_state(*by_name["momentum"])
    assert space.in_state(*by_name["b1"])  # a list of numbers
    assert not space.in_state(*by_name["nesterov"])  # an option: another program
    assert not space.in_state(*by_name["learning_rate.warmup_steps"])  # baked into the schedule
    assert not space.in_state(*by_name["lr"])  # a twin's arguments are not declared


@pytest.mark.parametrize(
    ("search", "path", "message"),
    [
        (_search(method="bayes"), "search.method", "unknown method 'bayes'"),
        (
            _search(method="pbt", population=4, pbt={"interval": 5}),
            "search.trials",
            "its budget is population x steps",
        ),
        (
            _pbt(pbt={"interval": 5}, pruner={"name": "median"}, space={"momentum": [0.5]}),
            "search.pruner",
            "it takes no pruner",
        ),
        (
            _search(space={"learning_rate": {"low": 1.0, "high": 1.0}}),
            "search.space.learning_rate",
            "empty or reversed",
        ),
        (
            _search(space={"learning_rate": {"low": 1.0, "high": 0.1}}),
            "search.space.learning_rate",
            "low must be < high, got [1.0, 0.1]",
        ),
        (
            _search(space={"learning_rate": {"low": 0.0, "high": 1.0, "log": True}}),
            "search.space.learning_rate.low",
            "a log range needs low > 0",
        ),
        (
            _search(space={"learning_rate": {"low": -1.0, "high": 1.0}}),
            "search.space.learning_rate.low",
            "learning_rate must be >= 0, got -1.0",
        ),
        (
            _search(space={"rho": {"low": 0.1, "high": 0.9}}),
            "search.space.rho",
            "optimizer 'SGD' (sgd, optimizers[0]) has no argument 'rho'; its arguments: "
            "learning_rate, momentum",
        ),
        (_search(trials=0), "search.trials", "must be an integer >= 1, got 0"),
        ({"method": "tpe", "objective": {"metric": "eval_loss"}}, "search", "give a budget"),
        (
            _search(method="grid", space={"learning_rate": {"low": 0.1, "high": 1.0}}),
            "search.space.learning_rate",
            "a grid needs the points of a continuous range",
        ),
        (
            _search(objective={"metric": "eval_accuracy"}),
            "search.objective.metric",
            "the workload does not log 'eval_accuracy'; it logs: train_loss, eval_loss, "
            "eval_excess_loss",
        ),
        (
            _search(objective={"metric": "eval_loss", "at": "steps_to_target"}),
            "search.objective.target",
            "is required",
        ),
        (
            _search(
                objective={"metric": "eval_loss", "at": "steps_to_target", "target": 0.1},
                pruner={"name": "median"},
            ),
            "search.pruner",
            "says nothing of the steps to a target",
        ),
        (_search(pruner={"name": "medain"}), "search.pruner.name", "did you mean 'median'"),
        (
            _search(space={"learning_rate": {"low": 0.1, "high": 1.0, "log": True, "step": 0.1}}),
            "search.space.learning_rate.step",
            "discretized by count",
        ),
        (
            _search(space={"learning_rate": {"low": 0.1, "high": 1.0, "steps": 3}}),
            "search.space.learning_rate.steps",
            "unknown key 'steps' (did you mean 'step'?)",
        ),
        (_search(space={"learning_rate": []}), "search.space.learning_rate", "must not be empty"),
        (
            _search(space={"learning_rate.peak_value": {"low": 0.1, "high": 1.0}}),
            "search.space.learning_rate.peak_value",
            "'learning_rate' of 'SGD' is not a schedule in the config",
        ),
        (
            _search(per_optimizer={"SDG": {}}),
            "search.per_optimizer.SDG",
            "did you mean 'SGD'",
        ),
        (_search(), "search.space", "nothing to search for optimizer 'SGD'"),
        (
            _search(folds=3, pruner={"name": "median"}, space={"momentum": [0.0, 0.9]}),
            "search.folds",
            "does not combine with pruning",
        ),
        (
            _search(folds=1, space={"momentum": [0.0, 0.9]}),
            "search.folds",
            "must be an integer >= 2, got 1",
        ),
        (
            _pbt(population=4, pbt={"interval": 5}, space={"nesterov": [True]}),
            "search.per_optimizer.SGD.nesterov",
            "population-based training perturbs numbers",
        ),
        (
            _pbt(population=1, space={"learning_rate": {"low": 0.1, "high": 1}}),
            "search.population",
            "needs >= 2 members",
        ),
    ],
)
def test_bad_search_sections_are_refused_at_their_path(search, path, message):
    raw = copy.deepcopy(BASE)
    raw["optimizers"] = raw["optimizers"][:1]
    raw["search"] = search
    with pytest.raises(ConfigError) as error:
        config_lib.from_dict(raw)
    assert error.value.path == path
    assert message in str(error.value)


def test_a_schedule_argument_out_of_its_range_is_refused_with_the_schedules_message():
    search = copy.deepcopy(BASE["search"])
    search["per_optimizer"]["adam"]["learning_rate.warmup_steps"] = {"low": 0, "high": 150}
    with pytest.raises(ConfigError) as error:
        _config(search)
    assert error.value.path == "search.per_optimizer.adam.learning_rate.warmup_steps.high"
    assert "decay_steps=100 must exceed warmup_steps=150" in str(error.value)


def test_grid_points_of_counts_steps_and_logs():
    assert space.Dimension("x", "float", 1e-3, 1.0, True, count=4).grid() == pytest.approx(
        (1e-3, 1e-2, 1e-1, 1.0)
    )
    assert space.Dimension("x", "float", 0.0, 1.0, step=0.25).grid() == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert space.Dimension("x", "int", 1, 100, True, count=3).grid() == (1, 10, 100)
    assert space.Dimension("x", "int", 0, 5).grid() == (0, 1, 2, 3, 4, 5)


def test_a_grid_budget_defaults_to_the_grid_size():
    search = _search(
        method="grid",
        trials=None,
        space={
            "learning_rate": {"low": 1.0e-3, "high": 1.0, "log": True, "count": 4},
            "momentum": [0.0, 0.9],
        },
    )
    del search["trials"]
    raw = copy.deepcopy(BASE)
    raw["optimizers"] = raw["optimizers"][:1]
    raw["search"] = search
    search = config_lib.from_dict(raw).search
    assert search.trials is None and search.budget("SGD") == 8


def test_overrides_reach_the_search_section():
    raw = copy.deepcopy(BASE)
    raw["optimizers"] = raw["optimizers"][:1]
    raw["search"] = _search(space={"learning_rate": {"low": 0.01, "high": 1.0}})
    config_lib.apply_override(raw, "search.trials=3")
    config_lib.apply_override(raw, "search.space.learning_rate.high=0.5")
    config = config_lib.from_dict(raw)
    assert config.search.trials == 3
    assert config.search.spaces["SGD"][0].high == 0.5


def test_folds_need_a_workload_with_data_and_no_fold_of_its_own():
    raw = copy.deepcopy(BASE)
    raw["optimizers"] = raw["optimizers"][:1]
    raw["search"] = _search(folds=3, space={"momentum": [0.0, 0.9]})
    assert config_lib.from_dict(raw).search.folds == 3
    raw["workload"] = {"name": "functions2d", "function": "canyon"}
    with pytest.raises(ConfigError, match="workload 'functions2d' has no data to split") as e:
        config_lib.from_dict(raw)
    assert e.value.path == "search.folds"
    raw["workload"] = {**BASE["workload"], "cv_folds": 4}
    with pytest.raises(ConfigError, match="already fixes workload.cv_folds=4"):
        config_lib.from_dict(raw)
