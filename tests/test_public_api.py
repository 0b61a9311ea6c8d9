"""The public API is explicit: the modules `jopt`, `jopt.schedules`, `jopt.torch`, `jopt.keras`
and `jopt.hparams`, each with a sorted `__all__` of names it imports explicitly; everything else
lives under `jopt._src` (implementation) or `jopt.lab` (the application). Which public name is an
optimizer, a schedule or a building block is checked against the registry in test_registry.py.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import jopt

PUBLIC_MODULES = ("jopt", "jopt.hparams", "jopt.keras", "jopt.schedules", "jopt.torch")


def _isort_style(name: str) -> tuple[int, str]:
    """ruff's order for `__all__` (RUF022): CONSTANTS, then Classes, then the rest."""
    group = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return group, name


def test_the_public_modules_are_the_only_ones_outside_src_and_the_lab():
    found = {
        f"jopt.{m.name}"
        for m in pkgutil.iter_modules(jopt.__path__)
        if not m.name.startswith("_") and m.name != "lab"
    }
    assert {"jopt", *found} == set(PUBLIC_MODULES)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_a_public_module_lists_each_name_once_sorted_and_imports_it_explicitly(name):
    module = importlib.import_module(name)
    names = list(module.__all__)
    assert names == sorted(names, key=_isort_style) and len(set(names)) == len(names)
    for public in names:
        assert hasattr(module, public), f"{name}.{public} is listed but not defined"
    source = Path(inspect.getfile(module)).read_text()
    assert "import *" not in source
    # Nothing public-looking that is not listed (modules of the package aside).
    extra = {
        n
        for n, value in vars(module).items()
        if not n.startswith("_") and not inspect.ismodule(value) and n not in ("annotations",)
    }
    assert extra <= set(names), f"{name} defines unlisted names {sorted(extra - set(names))}"


def test_jopts_public_names():
    # Changing this list changes the public API (docs/api.md): make it a deliberate change.
    assert jopt.__all__ == [
        "ArgumentError",
        "ArgumentTypeError",
        "FlatParams",
        "Group",
        "HParams",
        "Schedule",
        "accumulate_gradients",
        "adabelief",
        "adadelta",
        "adafactor",
        "adagrad",
        "adam",
        "adamax",
        "adamaxw",
        "adamw",
        "adan",
        "adaptive_grad_clip",
        "add_decayed_weights",
        "add_l1_penalty",
        "add_noise",
        "ademamix",
        "adopt",
        "amsgrad",
        "asgd",
        "asgd_eval_params",
        "assign_groups",
        "averaged_params",
        "centralize",
        "clip",
        "clip_by_global_norm",
        "clip_by_leaf_norm",
        "clipped_norm",
        "cocob",
        "constant_schedule",
        "cosine_decay_restarts",
        "cosine_decay_schedule",
        "cosine_onecycle_schedule",
        "current_lr",
        "cyclic_momentum",
        "cyclic_schedule",
        "dadapt_adamw",
        "describe_groups",
        "dog",
        "dowg",
        "ema",
        "ema_params",
        "exponential_decay",
        "flat_train_step",
        "flatten_params",
        "fromage",
        "ftrl",
        "get_hparams",
        "hparams",
        "inverse_time_decay",
        "join_schedules",
        "keras",
        "lamb",
        "lars",
        "layerwise_groups",
        "lbfgs",
        "linear_schedule",
        "lion",
        "lookahead",
        "mechanize",
        "momentum_lr_inside",
        "momo",
        "momo_adam",
        "multiply_schedules",
        "multistep_decay",
        "muon",
        "nadam",
        "nadamw",
        "noisy_sgd",
        "novograd",
        "one_cycle_momentum",
        "one_cycle_schedule",
        "optimistic_adam",
        "optimistic_gradient_descent",
        "param_groups",
        "per_epoch",
        "piecewise_constant",
        "piecewise_constant_schedule",
        "piecewise_interpolate_schedule",
        "piecewise_linear",
        "polyak_sgd",
        "polynomial_schedule",
        "prodigy",
        "radam",
        "reduce_on_plateau",
        "rmsprop",
        "rprop",
        "sam",
        "sam_train_step",
        "scale_by_adadelta",
        "scale_by_adam",
        "scale_by_adamax",
        "scale_by_adan",
        "scale_by_ademamix",
        "scale_by_adopt",
        "scale_by_amsgrad",
        "scale_by_belief",
        "scale_by_cocob",
        "scale_by_dog",
        "scale_by_dowg",
        "scale_by_factored_rms",
        "scale_by_lbfgs",
        "scale_by_learning_rate",
        "scale_by_lion",
        "scale_by_momentum",
        "scale_by_muon",
        "scale_by_nadam",
        "scale_by_novograd",
        "scale_by_optimistic_gradient",
        "scale_by_polyak",
        "scale_by_radam",
        "scale_by_rms",
        "scale_by_rprop",
        "scale_by_rss",
        "scale_by_sign",
        "scale_by_sm3",
        "scale_by_stddev",
        "scale_by_trust_ratio",
        "scale_by_yogi",
        "scale_by_zoom_linesearch",
        "schedule_free",
        "schedule_free_adamw",
        "schedule_free_eval_params",
        "schedule_free_sgd",
        "schedules",
        "set_hparams",
        "sgd",
        "sign_sgd",
        "signum",
        "skip_nonfinite",
        "skipped_steps",
        "sm3",
        "state_shardings",
        "step_decay",
        "swa_params",
        "torch",
        "trace",
        "train_step",
        "warmup_constant_schedule",
        "warmup_cosine_decay_schedule",
        "warmup_exponential_decay_schedule",
        "with_warmup",
        "yogi",
    ]


def test_every_schedule_is_also_at_the_top_level():
    for name in jopt.schedules.__all__:
        assert getattr(jopt, name) is getattr(jopt.schedules, name)


@pytest.mark.parametrize("name", [n for n in jopt.__all__ if callable(getattr(jopt, n))])
def test_every_public_constructor_names_itself_in_its_errors(name):
    value = getattr(jopt, name)
    if inspect.isclass(value) or name in ("current_lr", "get_hparams", "set_hparams"):
        return
    if name in ("clipped_norm", "skipped_steps", "averaged_params"):  # read a state, build nothing
        return
    if name in ("schedule_free_eval_params", "asgd_eval_params"):  # they read a state too
        return
    assert value.public_name == f"jopt.{name}"
