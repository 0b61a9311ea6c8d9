"""The catalogue (`jopt._src.registry`) agrees with every listing of optimizers, and each
optimizer's declared hyperparameters are what the optimizer does.

Listings: `jopt.__all__` holds every registry optimizer (the same function) and no public name
that is neither an optimizer, a schedule nor one of the building blocks listed here;
`jopt.torch` and `jopt.keras` list exactly the twins and schedulers the registry knows; the lab's
names are the registry's; every optimizer has a NumPy reference, test cases and a convergence
configuration, and every twin golden fixtures.

Declarations: for every optimizer and every hyperparameter it declares, the argument exists with
a default the declaration accepts; every other argument is a dtype or a mask; a value outside the
declared range (or of the wrong kind) is refused at construction by an `ArgumentError` naming the
optimizer and that argument; a declared number kept in the state is there, under its name and of
its kind, and nothing else is; a schedulable one takes a schedule, another refuses it.

Structure: two transforms that compute the same thing have states of the same tree structure.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import re
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax
import pytest

import jopt
from jopt._src import registry
from jopt._src.schedules.schedule import Schedule
from jopt.lab import registry as lab_registry
from tests import helpers
from tests.conventions import load
from tests.reference import runner

# Public names that are neither optimizers nor schedules: the building blocks, the wrappers,
# what reads a state, the types and the modules. A new public name must be classified here.
BUILDING_BLOCKS = {
    "ArgumentError",
    "ArgumentTypeError",
    "Group",
    "HParams",
    "accumulate_gradients",
    "assign_groups",
    "averaged_params",
    "describe_groups",
    "ema_params",
    "layerwise_groups",
    "lookahead",
    "param_groups",
    "add_decayed_weights",
    "add_l1_penalty",
    "clip",
    "clip_by_global_norm",
    "clip_by_leaf_norm",
    "clipped_norm",
    "current_lr",
    "ema",
    "get_hparams",
    "hparams",
    "keras",
    "momentum_lr_inside",
    "reduce_on_plateau",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_amsgrad",
    "scale_by_belief",
    "scale_by_factored_rms",
    "scale_by_learning_rate",
    "scale_by_lion",
    "scale_by_momentum",
    "scale_by_nadam",
    "scale_by_novograd",
    "scale_by_optimistic_gradient",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_rss",
    "scale_by_sign",
    "scale_by_sm3",
    "scale_by_stddev",
    "scale_by_trust_ratio",
    "scale_by_yogi",
    "schedule_free",
    "schedule_free_eval_params",
    "schedules",
    "set_hparams",
    "skip_nonfinite",
    "skipped_steps",
    "swa_params",
    "torch",
    "trace",
    "train_step",
    "flat_train_step",
    "flatten_params",
    "FlatParams",
    "state_shardings",
    "add_noise",
    "adaptive_grad_clip",
    "centralize",
    "scale_by_muon",
    "mechanize",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
    "asgd_eval_params",
    "sam",
    "sam_train_step",
    "scale_by_lbfgs",
    "scale_by_polyak",
    "scale_by_zoom_linesearch",
}
# jopt.torch's constructors that take schedulers or an optimizer rather than numbers.
TORCH_COMBINATORS = {"ChainedScheduler", "ReduceLROnPlateau", "SequentialLR"}
TORCH_COMBINATORS |= {"LambdaLR", "MultiplicativeLR"}  # take a Python function: not in configs
ENTRIES = list(registry.OPTIMIZERS.values())
PARAMS = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array(0.25)}

# -- listings ------------------------------------------------------------------------------------


def test_jopt_exports_every_optimizer_and_classifies_every_public_name():
    public = set(jopt.__all__)
    assert set(registry.OPTIMIZERS) <= public
    assert public - set(registry.OPTIMIZERS) - set(jopt.schedules.__all__) == BUILDING_BLOCKS
    for name, entry in registry.OPTIMIZERS.items():
        assert getattr(jopt, name) is entry.factory
        assert entry.factory.public_name == f"jopt.{name}"


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_framework_modules_list_exactly_the_registrys_twins_and_schedulers(framework):
    module = getattr(jopt, framework)
    twins = {t.name for t in registry.TWINS.values() if t.framework == framework}
    schedules = {key.split(".", 1)[1] for key in registry.SCHEDULES if key.startswith(framework)}
    combinators = TORCH_COMBINATORS if framework == "torch" else set()
    assert set(module.__all__) == twins | schedules | combinators
    for twin in registry.TWINS.values():
        if twin.framework == framework:
            assert getattr(module, twin.name) is twin.factory
            assert twin.factory.public_name == f"jopt.{twin.key}"
            assert twin.mirrors in registry.OPTIMIZERS


def test_every_registered_schedule_is_annotated_to_return_a_schedule():
    for name, factory in registry.SCHEDULES.items():
        returns = inspect.signature(factory).return_annotation
        assert returns in ("Schedule", Schedule), f"{name} returns {returns!r}"


def test_the_labs_names_are_the_registrys():
    assert set(lab_registry.OPTIMIZERS) == set(registry.OPTIMIZERS) | set(registry.TWINS)
    assert dict(lab_registry.SCHEDULES) == dict(registry.SCHEDULES)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_optimizer_has_a_reference_cases_and_a_convergence_configuration(entry):
    assert callable(runner(entry.name)), "write its NumPy reference"
    assert entry.examples and entry.convergence
    ids = {case.id for case in helpers.CASES if case.optimizer == entry.name}
    assert ids == set(entry.examples)
    if entry.optax is not None:
        assert callable(entry.optax_function)
        assert any(example.optax for example in entry.examples.values())


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_every_twin_has_golden_fixtures(framework):
    recorded = {case.optimizer for case in load(framework).cases}
    recorded |= {"Muon"}  # its fixtures: tests/golden/muon (make_muon_fixtures.py)
    recorded |= {"LBFGS"}  # tests/golden/lbfgs (make_lbfgs_fixtures.py): losses, not gradients
    twins = {t.name for t in registry.TWINS.values() if t.framework == framework}
    assert twins <= recorded, "add cases to tests/golden/make_optimizer_fixtures.py and rerun it"


# -- declarations are behaviour ------------------------------------------------------------------

DECLARED = [
    pytest.param(entry, hparam, id=f"{entry.name}-{hparam.name}")
    for entry in ENTRIES
    for hparam in entry.hparams
]
NUMBERS = [p for p in DECLARED if p.values[1].is_number]


def _valid(entry, hparam) -> Any:
    """A value the declaration accepts: the default, or (for a None default) a typical one."""
    default = entry.defaults.get(hparam.name)
    if default is not None:
        return default
    allowed = hparam.allowed
    return allowed.hi / 2 if math.isfinite(allowed.hi) else allowed.lo + 0.5


def _invalid(hparam) -> Any:
    """A value the declaration refuses, of the right type where one exists."""
    if hparam.kind == "bool":
        return "yes"
    if hparam.kind == "choice":
        return "none of them"
    allowed = hparam.allowed
    if math.isfinite(allowed.lo):
        return allowed.lo if allowed.lo_open else allowed.lo - 1.0
    if math.isfinite(allowed.hi):
        return allowed.hi if allowed.hi_open else allowed.hi + 1.0
    return math.nan


def _all_declared(entry) -> dict[str, Any]:
    """Every declared number at a valid value (optional blocks switched on), over the first
    example's arguments."""
    kwargs = dict(next(iter(entry.examples.values())).kwargs)
    for hparam in entry.hparams:
        if hparam.is_number and hparam.name not in kwargs:
            kwargs[hparam.name] = _valid(entry, hparam)
    return kwargs


@pytest.mark.parametrize(("entry", "hparam"), DECLARED)
def test_declared_argument_exists_with_a_default_the_declaration_accepts(entry, hparam):
    parameters = inspect.signature(entry.factory).parameters
    assert hparam.name in parameters
    default = parameters[hparam.name].default
    if default is not inspect.Parameter.empty:
        assert hparam.check(f"jopt.{entry.name}", default) == default


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_other_argument_is_a_dtype_or_a_mask(entry):
    undeclared = set(inspect.signature(entry.factory).parameters) - set(entry.hparams.hparams)
    # A dtype (`mu_dtype`; adafactor's `dtype_momentum`, optax's name) or a mask; or an argument
    # that is not a number: Muon's coefficient table and dimension numbers (a tree, as a mask),
    # noisy SGD's random key; optax's `betas` pair of Prodigy and D-Adapt AdamW, which set the
    # declared b1 and b2.
    not_numbers = {"ns_coeffs", "muon_weight_dimension_numbers", "key", "betas"}
    allowed = {
        n
        for n in undeclared
        if n.endswith(("_dtype", "mask")) or n.startswith("dtype_") or n in not_numbers
    }
    assert allowed == undeclared, undeclared


@pytest.mark.parametrize(("entry", "hparam"), DECLARED)
def test_a_value_the_declaration_refuses_is_refused_under_its_name(entry, hparam):
    kwargs = {**_all_declared(entry), hparam.name: _invalid(hparam)}
    with pytest.raises(jopt.ArgumentError) as raised:
        entry.factory(**kwargs)
    assert (raised.value.fn, raised.value.argument) == (f"jopt.{entry.name}", hparam.name)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_the_state_holds_exactly_the_declared_numbers_with_their_kinds(entry):
    kwargs = _all_declared(entry)
    held = jopt.get_hparams(entry.factory(**kwargs).init(PARAMS))
    declared = {h.name: h for h in entry.hparams if h.is_number and h.in_state}
    assert set(held) == set(declared)
    for name, value in held.items():
        want = jnp.int32 if declared[name].kind == "int" else jnp.zeros(()).dtype
        assert value.dtype == want and value == jnp.asarray(kwargs[name], value.dtype)


@pytest.mark.parametrize(("entry", "hparam"), NUMBERS)
def test_a_schedulable_number_takes_a_schedule_and_another_refuses_one(entry, hparam):
    value = _valid(entry, hparam)
    kwargs = {**_all_declared(entry), hparam.name: jopt.constant_schedule(value)}
    if not hparam.schedulable:
        with pytest.raises(jopt.ArgumentTypeError) as raised:
            entry.factory(**kwargs)
        assert raised.value.argument == hparam.name
        return
    state = entry.factory(**kwargs).init(PARAMS)
    assert jopt.get_hparams(state)[hparam.name] == jnp.float32(value)
    with pytest.raises(jopt.ArgumentError, match="follows a schedule"):
        jopt.set_hparams(state, **{hparam.name: value})


# -- structure -----------------------------------------------------------------------------------

SAME_COMPUTATION = {
    "alias-and-its-chain": (
        lambda: jopt.adam(1e-3),
        lambda: optax.chain(jopt.scale_by_adam(), jopt.scale_by_learning_rate(1e-3)),
    ),
    "other-values": (lambda: jopt.adam(1e-3), lambda: jopt.adam(0.5, b1=0.8, eps=1e-3)),
    "trace-and-classic-momentum": (lambda: jopt.trace(0.9), lambda: jopt.scale_by_momentum(0.9)),
    "adamw-and-its-chain": (
        lambda: jopt.adamw(1e-3, weight_decay=0.1),
        lambda: optax.chain(
            jopt.scale_by_adam(), jopt.add_decayed_weights(0.1), jopt.scale_by_learning_rate(1e-3)
        ),
    ),
    "torch-and-jopt": (
        lambda: jopt.torch.Adagrad(lr=0.1),
        lambda: optax.chain(
            jopt.add_decayed_weights(0.0),
            jopt.scale_by_rss(0.0, 1e-10, eps_in_sqrt=False),
            jopt.scale_by_learning_rate(0.1),
        ),
    ),
}


@pytest.mark.parametrize("pair", SAME_COMPUTATION.values(), ids=SAME_COMPUTATION.keys())
def test_the_same_computation_has_the_same_state_structure(pair):
    first, second = (make().init(PARAMS) for make in pair)
    assert jax.tree.structure(first) == jax.tree.structure(second)


def test_the_lab_reference_lists_every_name_a_config_may_use():
    page = (Path(__file__).resolve().parents[1] / "docs" / "lab.md").read_text()
    optimizers = page.split("Optimizer names:")[1].split("Schedule names:")[0]
    schedules = page.split("Schedule names:")[1].split("\n\n")[1]

    def listed(text: str) -> set[str]:
        """The names in a list of "- prefix + `a` `b`" bullets (notes in parentheses aside)."""
        names = set()
        for bullet in re.split(r"\n- ", "\n" + text.strip())[1:]:
            bullet = re.sub(r"\([^)]*\)", "", bullet)
            prefix, _, words = bullet.rpartition(" + ")
            for word in re.findall(r"`([A-Za-z_0-9]+)`", words):
                names.add(prefix.strip("` ") + word)
        return names

    assert listed(optimizers) == set(registry.OPTIMIZERS) | set(registry.TWINS)
    assert listed(schedules) == set(registry.SCHEDULES)


def test_the_speed_benchmark_times_every_optimizer(monkeypatch):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "optimizer_speed.py"
    spec = importlib.util.spec_from_file_location("optimizer_speed", path)
    benchmark = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, benchmark)  # its dataclasses look it up there
    spec.loader.exec_module(benchmark)
    timed = {case.name for case in benchmark.CASES}
    assert set(registry.OPTIMIZERS) <= timed, "one without an optax twin needs a Case of its own"
