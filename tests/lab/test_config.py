"""Experiment configs: every mistake is a ConfigError at the dotted path of the offending key,
raised by the loader before any workload is built; overrides; the resolved config round-trips;
every shipped config loads.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

import jopt
from jopt.lab import config as config_lib
from jopt.lab import config_values as checks
from jopt.lab.config import ConfigError, ScheduleConfig
from jopt.lab.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([*ROOT.glob("configs/*.yaml"), *ROOT.glob("experiments/*/*.yaml")])

BASE = {
    "name": "check",
    "workload": {"name": "linear_regression", "n_train": 64, "dim": 4, "batch_size": 16},
    "optimizers": [
        {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
        {"name": "adam", "label": "Adam", "learning_rate": 0.01},
    ],
    "seeds": [0, 1],
    "steps": 20,
    "eval_every": 5,
    "target": {"metric": "eval_loss", "value": 0.1},
}
DELETE = object()
SCHEDULE = {"schedule": "cosine_decay_schedule", "init_value": 0.1, "decay_steps": 10}


def _with(changes: dict) -> dict:
    """BASE with `changes` {dotted.path: value} applied (list items by index; DELETE removes)."""
    raw = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = raw
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is DELETE:
            del node[last]
        else:
            node[last] = value
    return raw


@pytest.fixture(autouse=True)
def _no_workload_is_built(monkeypatch):
    """Validation never builds a workload (no data is loaded, nothing is compiled)."""

    def refuse(options):
        raise AssertionError("the config loader built a workload")

    for module in WORKLOADS.values():
        monkeypatch.setattr(module, "build", refuse)


BAD = [  # id, changes to BASE, the error's dotted path, fragments of its message
    ("top-key", {"stpes": 10}, "stpes", ["unknown key 'stpes'", "(did you mean 'steps'?)"]),
    (
        "workload-key",
        {"workload.batchsize": 8},
        "workload.batchsize",
        ["unknown key 'batchsize'", "(did you mean 'batch_size'?)"],
    ),
    (
        "optimizer-key",
        {"optimizers.0.momentun": 0.9},
        "optimizers[0].momentun",
        ["unknown key 'momentun'", "(did you mean 'momentum'?)"],
    ),
    (
        "schedule-key",
        {"optimizers.0.learning_rate": {**SCHEDULE, "decay_step": 5}},
        "optimizers[0].learning_rate.decay_step",
        ["unknown key 'decay_step'", "(did you mean 'decay_steps'?)"],
    ),
    (
        "optimizer-name",
        {"optimizers.1.name": "adamm"},
        "optimizers[1].name",
        ["unknown optimizer 'adamm'", "(did you mean 'adam'?)"],
    ),
    (
        "torch-optimizer-name",
        {"optimizers.1.name": "torch.Adamw"},
        "optimizers[1].name",
        ["unknown optimizer 'torch.Adamw'", "(did you mean 'torch.AdamW'?)"],
    ),
    (
        "workload-name",
        {"workload": {"name": "linear_regresion"}},
        "workload.name",
        [
            "unknown workload 'linear_regresion'",
            "(did you mean 'linear_regression'?)",
            "known: cnn",
        ],
    ),
    (
        "schedule-name",
        {"optimizers.0.learning_rate": {**SCHEDULE, "schedule": "cosine_decay_shedule"}},
        "optimizers[0].learning_rate.schedule",
        ["unknown schedule 'cosine_decay_shedule'", "(did you mean 'cosine_decay_schedule'?)"],
    ),
    (
        "mapping-without-schedule",
        {"optimizers.0.learning_rate": {"init_value": 0.1}},
        "optimizers[0].learning_rate",
        ["must name a schedule"],
    ),
    ("steps-string", {"steps": "ten"}, "steps", ["expected a number, got the string 'ten'"]),
    ("steps-bool", {"steps": True}, "steps", ["expected a number, got the bool True"]),
    ("steps-fraction", {"steps": 2.5}, "steps", ["expected an integer, got 2.5"]),
    ("steps-infinite", {"steps": float("inf")}, "steps", ["expected an integer, got inf"]),
    ("workload-string", {"workload": "linear_regression"}, "workload", ["expected a mapping"]),
    ("optimizers-mapping", {"optimizers": {"name": "sgd"}}, "optimizers", ["non-empty list"]),
    ("optimizers-empty", {"optimizers": []}, "optimizers", ["non-empty list"]),
    (
        "option-type",
        {"workload.dim": "four"},
        "workload.dim",
        ["expected a number, got the string 'four'"],
    ),
    (
        "option-union-type",
        {"workload.batch_size": 2.5},
        "workload.batch_size",
        ["expected int or null, got 2.5"],
    ),
    (
        "option-range",
        {"workload.dim": 0},
        "workload.dim",
        ["linear_regression: dim must be an integer >= 1, got 0."],
    ),
    (
        "option-batch-too-big",
        {"workload.batch_size": 65},
        "workload.batch_size",
        ["batch_size must be at most the training split's size 64, got 65"],
    ),
    (
        "momentum-range",
        {"optimizers.0.momentum": 1.5},
        "optimizers[0].momentum",
        ["jopt.sgd: momentum must be in [0, 1), got 1.5."],
    ),
    (
        "b1-range",
        {"optimizers.1.b1": 1.0},
        "optimizers[1].b1",
        ["jopt.adam: b1 must be in [0, 1), got 1.0."],
    ),
    (
        "negative-lr-string",
        {"optimizers.0.learning_rate": "-1e-1"},
        "optimizers[0].learning_rate",
        ["jopt.sgd: learning_rate must be >= 0, got -0.1."],
    ),
    (
        "lr-word",
        {"optimizers.0.learning_rate": "fast"},
        "optimizers[0].learning_rate",
        ["expected a number or a schedule, got the string 'fast'"],
    ),
    (
        "nesterov-type",
        {"optimizers.0.nesterov": "yes"},
        "optimizers[0].nesterov",
        ["expected true or false, got 'yes'."],
    ),
    (
        "momentum-form-typo",
        {"optimizers.0.momentum_form": "lr_insde"},
        "optimizers[0].momentum_form",
        ["expected one of 'classic', 'ema', 'lr_inside', got 'lr_insde'", "did you mean"],
    ),
    (
        "eps-schedule",
        {"optimizers.1": {"name": "adam", "learning_rate": 0.01, "eps": {**SCHEDULE}}},
        "optimizers[1].eps",
        ["eps takes a number here, not a schedule"],
    ),
    (
        "schedule-range",
        {"optimizers.0.learning_rate": {**SCHEDULE, "decay_steps": 0}},
        "optimizers[0].learning_rate.decay_steps",
        ["decay_steps must be an integer >= 1, got 0"],
    ),
    (
        "schedule-owner",
        {"optimizers.0.learning_rate": {**SCHEDULE, "owner": "me"}},
        "optimizers[0].learning_rate.owner",
        ["unknown key 'owner'"],
    ),
    (
        "duplicate-label",
        {"optimizers.1.label": "sgd"},
        "optimizers[1].label",
        ["label 'sgd' names the same trial folder ('sgd') as 'sgd'"],
    ),
    (
        "labels-same-folder",
        {"optimizers.0.label": "SGD (m)", "optimizers.1.label": "SGD m"},
        "optimizers[1].label",
        ["same trial folder ('SGD-m')", "distinct label"],
    ),
    ("seeds-repeat", {"seeds": [3, 3]}, "seeds", ["must be distinct, got [3, 3]"]),
    ("seeds-negative", {"seeds": [0, -1]}, "seeds[1]", ["in [0, 4294967295], got -1"]),
    ("seeds-too-big", {"seeds": [2**32]}, "seeds[0]", ["in [0, 4294967295], got 4294967296"]),
    ("seeds-fraction", {"seeds": [0.5]}, "seeds[0]", ["expected an integer, got 0.5"]),
    ("seeds-scalar", {"seeds": 3}, "seeds", ["non-empty list of integers, got 3"]),
    ("seeds-empty", {"seeds": []}, "seeds", ["non-empty list"]),
    ("steps-zero", {"steps": 0}, "steps", ["must be an integer in [1, 2147483647], got 0"]),
    ("eval-every-negative", {"eval_every": -5}, "eval_every", ["integer >= 1, got -5"]),
    ("log-every-zero", {"log_every": 0}, "log_every", ["integer >= 1, got 0"]),
    ("checkpoint-negative", {"checkpoint_every": -1}, "checkpoint_every", [">= 0, got -1"]),
    (
        "target-metric-typo",
        {"target.metric": "eval_exces_loss"},
        "target.metric",
        ["unknown metric 'eval_exces_loss'", "(did you mean 'eval_excess_loss'?)"],
    ),
    (
        "target-metric-of-another-workload",
        {"target.metric": "eval_accuracy"},
        "target.metric",
        ["for workload 'linear_regression'", "known: train_loss, eval_loss, eval_excess_loss"],
    ),
    ("target-mode", {"target.mode": "maximum"}, "target.mode", ["'min' or 'max'"]),
    ("target-value-nan", {"target.value": "nan"}, "target.value", ["finite number, got nan"]),
    ("target-key", {"target.goal": 1}, "target.goal", ["unknown key 'goal'"]),
    ("name-missing", {"name": DELETE}, "name", ["is required"]),
    ("name-path", {"name": "a/b"}, "name", ["without '/'"]),
    ("name-empty", {"name": ""}, "name", ["non-empty folder name"]),
    ("description-type", {"description": 3}, "description", ["expected a string, got 3"]),
    ("steps-and-epochs", {"epochs": 2}, "epochs", ["either steps or epochs", "steps=null"]),
    (
        "epochs-zero",
        {"epochs": 0, "steps": DELETE},
        "epochs",
        ["integer in [1, 2147483647], got 0"],
    ),
    (
        "epochs-without-data",
        {"epochs": 2, "steps": DELETE, "workload": {"name": "functions2d"}, "target": DELETE},
        "epochs",
        ["'functions2d' has no training data", "use steps"],
    ),
    ("data-parallel-zero", {"data_parallel": 0}, "data_parallel", ["integer >= 1, 'all'"]),
    ("data-parallel-word", {"data_parallel": "every"}, "data_parallel", ["got 'every'"]),
    (
        "data-parallel-without-data",
        {"data_parallel": 2, "workload": {"name": "functions2d"}, "target": DELETE},
        "data_parallel",
        ["'functions2d' has no training data to split", "must be 1, got 2"],
    ),
]


@pytest.mark.parametrize(
    ("changes", "path", "fragments"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_a_bad_config_fails_at_its_dotted_path(changes, path, fragments):
    with pytest.raises(ConfigError) as info:
        config_lib.from_dict(_with(changes))
    assert info.value.path == path, str(info.value)
    assert str(info.value).startswith(f"config error at {path}: "), str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_the_bad_configs_differ_from_a_valid_base():
    # Each bad config fails for its own change, not for a fault of the config it changes.
    assert config_lib.from_dict(BASE).name == "check"


@pytest.mark.parametrize(
    ("error", "path"),
    [
        # The argument an error names places it, whatever its message says first...
        (
            jopt.ArgumentError("jopt.x", "a rise needs pct_start < 1.", argument="pct_start"),
            "o.pct_start",
        ),
        (
            jopt.ArgumentError("jopt.torch.Adam", "betas[1] must be ...", argument="betas[1]"),
            "o.betas[1]",
        ),
        # ...when it is a key of the section; else the error stays at the section.
        (jopt.ArgumentError("jopt.x", "bad.", argument="not_a_key"), "o"),
        (jopt.ArgumentError("jopt.x", "two arguments disagree."), "o"),
        # Text is never parsed: a plain error that starts like one is not placed.
        (ValueError("jopt.x: pct_start must be in (0, 1), got 2."), "o"),
    ],
    ids=["argument", "indexed", "not-a-key", "no-argument", "plain-text"],
)
def test_errors_are_placed_by_the_argument_they_name_not_by_their_text(error, path):
    placed = checks.blame("o", error, {"pct_start", "betas"})
    assert placed.path == path
    assert str(placed) == f"config error at {path}: {error}"


def test_yaml_numeric_strings_are_numbers(tmp_path):
    # PyYAML reads 1e-2 (no dot) as a string; the loader converts it where a number is expected.
    text = yaml.safe_dump(BASE).replace("learning_rate: 0.01", "learning_rate: 1e-2")
    text = text.replace("steps: 20", "steps: 2e1").replace("value: 0.1", "value: 1e-1")
    text = text.replace("n_train: 64", "n_train: 64\n  noise: 5e-2")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert yaml.safe_load(text)["optimizers"][1]["learning_rate"] == "1e-2"  # what YAML gives
    config = config_lib.load(path)
    learning_rate = config.optimizers[1].hparams["learning_rate"]
    assert learning_rate == 0.01 and type(learning_rate) is float
    assert config.steps == 20 and type(config.steps) is int
    assert config.target.value == 0.1
    assert config.workload.options.noise == 0.05


def test_a_word_stays_a_string_where_the_optimizer_takes_a_choice():
    config = config_lib.from_dict(_with({"optimizers.0.momentum_form": "lr_inside"}))
    assert config.optimizers[0].hparams["momentum_form"] == "lr_inside"


def test_schedules_and_defaults_resolve():
    config = config_lib.from_dict(
        _with({"optimizers.0.learning_rate": SCHEDULE, "target": DELETE, "seeds": DELETE})
    )
    assert config.optimizers[0].hparams["learning_rate"] == ScheduleConfig(
        "cosine_decay_schedule", {"init_value": 0.1, "decay_steps": 10}
    )
    schedule = config_lib.build_value(config.optimizers[0].hparams["learning_rate"])
    assert float(schedule(0)) == pytest.approx(0.1) and float(schedule(10)) == pytest.approx(0.0)
    assert config.optimizers[0].label == "sgd" and config.optimizers[1].label == "Adam"
    assert config.target is None and config.seeds == (0,)
    assert config.log_every == 1 and config.checkpoint_every == 0
    default_mode = config_lib.from_dict(_with({"target.metric": "eval_excess_loss"}))
    assert default_mode.target.mode == "min"


def test_epochs_become_steps_of_the_training_split_once_the_data_is_known(tmp_path):
    config = _load(tmp_path, _with({"steps": DELETE}), ["steps=null", "epochs=3"])
    assert (config.epochs, config.steps) == (3, 0)
    resolved = config_lib.with_epochs_resolved(config, steps_per_epoch=4)
    assert (resolved.epochs, resolved.steps) == (None, 12)
    assert config_lib.to_dict(resolved)["steps"] == 12 and "epochs" not in config_lib.to_dict(
        resolved
    )
    assert config_lib.to_dict(config)["epochs"] == 3 and "steps" not in config_lib.to_dict(config)
    assert config_lib.with_epochs_resolved(resolved, 100) == resolved


# -- overrides -------------------------------------------------------------------------------------


def _load(tmp_path, raw: dict, overrides=()) -> config_lib.ExperimentConfig:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config_lib.load(path, overrides)


def test_overrides_set_nested_keys_list_items_and_lists(tmp_path):
    config = _load(
        tmp_path,
        BASE,
        [
            "steps=50",
            "seeds=[0, 1, 2]",
            "workload.dim=3",
            "optimizers.1.learning_rate=1e-3",
            "optimizers.0.learning_rate={schedule: cosine_decay_schedule, init_value: 0.2, "
            "decay_steps: 50}",
            "target.value=0.25",
            "description=a b = c",
        ],
    )
    assert config.steps == 50 and config.seeds == (0, 1, 2)
    assert config.workload.options.dim == 3
    assert config.optimizers[1].hparams["learning_rate"] == 0.001
    assert config.optimizers[0].hparams["learning_rate"] == ScheduleConfig(
        "cosine_decay_schedule", {"init_value": 0.2, "decay_steps": 50}
    )
    assert config.target.value == 0.25 and config.description == "a b = c"


def test_an_override_can_add_a_target_the_file_lacks(tmp_path):
    raw = _with({"target": DELETE})
    config = _load(tmp_path, raw, ["target.metric=eval_excess_loss", "target.value=0.5"])
    assert config.target == config_lib.TargetConfig("eval_excess_loss", 0.5, "min")


BAD_OVERRIDES = [  # override, the error's dotted path, fragment
    ("steps", "steps", "an override must look like key.sub=value, got 'steps'"),
    ("=3", "", "must look like key.sub=value"),
    ("workload..dim=3", "workload..dim", "must look like key.sub=value"),
    ("optimizers.5.learning_rate=0.1", "optimizers.5", "no list item '5' (the list has 2)"),
    ("optimizers.first.learning_rate=0.1", "optimizers.first", "no list item 'first'"),
    ("worklod.dim=3", "worklod", "unknown key 'worklod' (did you mean 'workload'?)"),
    ("workload.name.x=1", "workload.name.x", "cannot set a key inside a value"),
    ("workload.name.x.y=1", "workload.name.x", "cannot descend into a value"),
    ("steps=[1,", "steps", "is not valid YAML"),
    ("stesp=3", "stesp", "unknown key 'stesp' (did you mean 'steps'?)"),
    ("optimizers.0.momentum=2", "optimizers[0].momentum", "momentum must be in [0, 1), got 2"),
]


@pytest.mark.parametrize(
    ("override", "path", "fragment"), BAD_OVERRIDES, ids=[b[0] for b in BAD_OVERRIDES]
)
def test_a_bad_override_fails_with_its_path(tmp_path, override, path, fragment):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, BASE, [override])
    assert info.value.path == path, str(info.value)
    assert fragment in str(info.value), str(info.value)


def test_load_reports_a_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no config file at"):
        config_lib.load(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        config_lib.load(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="expected a mapping"):
        config_lib.load(empty)


# -- round trip and shipped configs ----------------------------------------------------------------


ROUND_TRIP = [
    BASE,
    _with(
        {
            "optimizers.0.learning_rate": SCHEDULE,
            "optimizers.1.learning_rate": {
                "schedule": "warmup_cosine_decay_schedule",
                "init_value": 0.0,
                "peak_value": "2e-2",
                "warmup_steps": 5,
                "decay_steps": 20,
            },
            "target": {"metric": "eval_excess_loss", "value": 1e-3, "mode": "min"},
            "checkpoint_every": 10,
            "description": "two schedules",
        }
    ),
    {
        "name": "paths",
        "workload": {"name": "functions2d", "function": "canyon", "start": [1, -2], "angle": 30},
        "optimizers": [{"name": "torch.SGD", "lr": 0.01, "momentum": 0.9, "nesterov": True}],
        "target": {"metric": "eval_distance", "value": 0.01},
    },
    {**BASE, "name": "epochs", "steps": None, "epochs": 2},
    {**BASE, "name": "data-parallel", "data_parallel": "all"},
    {**BASE, "name": "data-parallel-4", "data_parallel": 4},
    {
        "name": "mlp",
        "workload": {"name": "mlp", "hidden_sizes": [16, 8], "batch_size": None},
        "optimizers": [{"name": "keras.Adam", "learning_rate": 1e-3}],
        "target": {"metric": "eval_accuracy", "value": 0.9},
    },
]


@pytest.mark.parametrize(
    "raw", ROUND_TRIP, ids=[r["name"] + str(i) for i, r in enumerate(ROUND_TRIP)]
)
def test_the_resolved_config_round_trips_through_yaml(raw):
    config = config_lib.from_dict(raw)
    plain = config_lib.to_dict(config)
    again = config_lib.from_dict(yaml.safe_load(yaml.safe_dump(plain, sort_keys=False)))
    assert again == config
    assert config_lib.to_dict(again) == plain


def test_the_round_trip_keeps_types_that_change_the_program():
    config = config_lib.from_dict(ROUND_TRIP[2])
    assert config.workload.options.start == (1.0, -2.0)
    assert config.optimizers[0].hparams["nesterov"] is True
    assert config.target.mode == "min"
    assert config_lib.to_dict(config)["workload"]["start"] == [1.0, -2.0]


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(ROOT)) for p in SHIPPED])
def test_every_shipped_config_loads_and_its_first_line_runs_it(path):
    config = config_lib.load(path)
    command = "sweep" if config.search is not None else "run"
    assert path.read_text().splitlines()[0] == f"# jopt {command} {path.relative_to(ROOT)}"
    assert config_lib.from_dict(config_lib.to_dict(config)) == config


def test_configs_and_experiments_are_found():
    names = {str(p.relative_to(ROOT)) for p in SHIPPED}
    assert {"configs/tiny.yaml", "configs/quickstart.yaml", "configs/sweep.yaml"} <= names
    assert any(n.startswith("experiments/") for n in names)
