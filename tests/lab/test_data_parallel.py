"""`data_parallel:` in a config: each step's batch split over local devices.

The runs themselves need several devices, which XLA fixes when it starts: they run in a process
of its own with 8 simulated CPU devices (`tests/lab/data_parallel_checks.py`). There, `jopt run`
on linear regression (SGD with momentum, Adam; 40 steps) and on the digits CNN (16 steps), two
seeds each, gives every logged metric of the one-device run within 1e-5 relative (measured:
1.2e-6 and 1.1e-7; only the order of the batch's sums differs, evaluation is the same program);
the step compiles to a program over the 8 devices that all-reduces the gradient and leaves the
params whole on each; and a batch that does not split evenly, or more devices than there are, is
a config error at `data_parallel`.
"""

from __future__ import annotations

import jax
import pytest

from jopt.lab import config as config_lib
from jopt.lab import programs
from tests.simulated_devices import run_checks

RELATIVE = 1e-5
BASE = {
    "name": "dp",
    "workload": {"name": "linear_regression", "batch_size": 32},
    "optimizers": [{"name": "adam", "learning_rate": 0.01}],
}


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    out = tmp_path_factory.mktemp("data_parallel")
    return run_checks("tests.lab.data_parallel_checks", str(out))


def test_the_checks_ran_on_eight_devices(checks):
    assert checks["devices"] == 8


@pytest.mark.parametrize("workload", ["linear_regression", "cnn"])
def test_a_data_parallel_run_logs_one_devices_metrics(checks, workload):
    gaps = checks["gaps"][workload]
    assert {"train_loss", "grad_norm", "eval_loss"} <= set(gaps)
    assert all(gap <= RELATIVE for gap in gaps.values()), gaps


def test_the_step_all_reduces_and_keeps_the_params_whole_on_every_device(checks):
    assert checks["step"]["all_reduces"] >= 1
    assert checks["step"]["params_devices"] == 8


def test_a_batch_that_does_not_split_evenly_is_refused(checks):
    message = checks["uneven_batch"]
    assert message.startswith("config error at data_parallel: ")
    assert "batch of 36 examples does not split evenly over 8 devices" in message


def test_more_devices_than_there_are_is_refused(checks):
    message = checks["too_many_devices"]
    assert message.startswith("config error at data_parallel: ")
    assert "16 devices asked for, 8 here" in message
    assert "--xla_force_host_platform_device_count=16" in message


@pytest.mark.parametrize(("given", "value"), [(True, "all"), (False, 1), ("all", "all"), ("3", 3)])
def test_the_setting_reads_bools_words_and_numbers(given, value):
    assert config_lib.from_dict({**BASE, "data_parallel": given}).data_parallel == value


def test_one_device_is_a_plain_program_and_two_are_refused_here():
    if len(jax.local_devices()) != 1:
        pytest.skip("this process has several devices")
    assert programs.data_mesh("all") is None and programs.data_mesh(1) is None
    experiment = config_lib.from_dict({**BASE, "data_parallel": 2})
    with pytest.raises(config_lib.ConfigError, match="2 devices asked for, 1 here"):
        programs.compiled_experiment(experiment)
