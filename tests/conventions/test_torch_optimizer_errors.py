"""Bad arguments to jopt.torch optimizers raise under torch's argument names.

Every argument of every jopt.torch optimizer that can be out of range or of the wrong type has a
row: the constructor, the arguments, the error and its whole message, which names the
constructor (`jopt.torch.RMSprop:`) and torch's argument (`alpha`, `betas[0]`), never the name
the jopt building block underneath uses (`decay`, `b1`). Each row also records what torch 2.13
does with the same arguments (ValueError, TypeError, or None where it accepts them: jopt is
stricter there, see `jopt._src.conventions.torch_optimizers`); where torch is installed,
`test_torch_does_what_the_table_says` checks that column against it.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any

import jax
import numpy as np
import pytest

import jopt

NAN, INF = math.nan, math.inf
OPTIMIZERS = ("SGD", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta")
OPTIMIZERS += ("ASGD", "Rprop", "Adafactor", "LBFGS")
ADAM_LIKE = ("Adam", "AdamW", "Adamax", "NAdam", "RAdam")


@dataclasses.dataclass(frozen=True)
class Row:
    optimizer: str  # the same name in torch.optim and jopt.torch
    what: str  # the bad input, for the test id
    kwargs: dict[str, Any]
    error: type[Exception]
    message: str  # jopt's whole message after "jopt.torch.<optimizer>: "
    torch: type[Exception] | None  # what torch raises at construction; None: it accepts

    @property
    def id(self) -> str:
        return f"{self.optimizer}-{self.what}"


def _every_optimizer(name: str) -> list[Row]:
    """lr, weight_decay and maximize, which every torch optimizer takes (Rprop: no weight
    decay)."""
    sgd = name == "SGD"  # torch's SGD tests `lr < 0`, `weight_decay < 0`: nan passes
    rows = [
        Row(name, "lr_negative", {"lr": -0.1}, ValueError, "lr must be >= 0, got -0.1.",
            ValueError),
        Row(name, "lr_nan", {"lr": NAN}, ValueError, "lr must be >= 0, got nan.",
            None if sgd else ValueError),
        Row(name, "lr_inf", {"lr": INF}, ValueError, "lr must be a finite number >= 0, got inf.",
            None),
        Row(name, "lr_2_elements", {"lr": np.array([0.1, 0.2])}, ValueError,
            "lr must be a 1-element array, got shape (2,).", ValueError),
        Row(name, "lr_string", {"lr": "0.1"}, TypeError,
            "lr must be a number or a schedule (a function of the step count), got the string "
            "'0.1'.", TypeError),
        Row(name, "weight_decay_negative", {"weight_decay": -1}, ValueError,
            "weight_decay must be >= 0, got -1.", ValueError),
        # torch checks the constructor's arguments only: a group's bad lr goes through.
        Row(name, "param_groups_lr_negative", {"param_groups": [{"params": "**", "lr": -0.1}]},
            ValueError, "param_groups[0]: lr must be >= 0, got -0.1.", None),
        Row(name, "weight_decay_nan", {"weight_decay": NAN}, ValueError,
            "weight_decay must be >= 0, got nan.", None if sgd else ValueError),
        Row(name, "maximize_not_bool", {"maximize": 1}, TypeError,
            "maximize must be True or False, got 1.", None),
    ]  # fmt: skip
    if name == "LBFGS":  # no weight decay, no maximize, one parameter group only
        return [row for row in rows if set(row.kwargs) == {"lr"}]
    return [row for row in rows if name != "Rprop" or "weight_decay" not in row.kwargs]


def _betas(name: str) -> list[Row]:
    return [
        Row(name, "betas0_one", {"betas": (1.0, 0.999)}, ValueError,
            "betas[0] must be in [0, 1), got 1.0.", ValueError),
        Row(name, "betas0_negative", {"betas": (-0.1, 0.999)}, ValueError,
            "betas[0] must be in [0, 1), got -0.1.", ValueError),
        Row(name, "betas1_one", {"betas": (0.9, 1.0)}, ValueError,
            "betas[1] must be in [0, 1), got 1.0.", ValueError),
        Row(name, "betas1_nan", {"betas": (0.9, NAN)}, ValueError,
            "betas[1] must be in [0, 1), got nan.", ValueError),
        # Below 1 as a Python float, 1.0 once stored in the state (float32 without x64).
        Row(name, "betas0_rounds_to_one", {"betas": (0.99999999, 0.999)}, ValueError,
            "betas[0]=0.99999999 becomes 1.0 when stored as float32, which is not in [0, 1).",
            None),
        Row(name, "betas_not_a_pair", {"betas": 0.9}, ValueError,
            "betas must be a pair (beta1, beta2), got 0.9.", TypeError),
        Row(name, "eps_negative", {"eps": -1e-8}, ValueError, "eps must be >= 0, got -1e-08.",
            ValueError),
    ]  # fmt: skip


def _flag(name: str, flag: str) -> Row:
    return Row(name, f"{flag}_not_bool", {flag: "yes"}, TypeError,
               f"{flag} must be True or False, got 'yes'.", None)  # fmt: skip


CYCLING_HINT = (
    "to cycle the momentum as torch's OneCycleLR and CyclicLR do, pass jopt.torch.OneCycleLR "
    "or jopt.torch.CyclicLR (cycle_momentum=True) as lr."
)
NESTEROV = "nesterov=True needs momentum > 0 and dampening == 0, got momentum="

ROWS = [
    *(row for name in OPTIMIZERS for row in _every_optimizer(name)),
    *(row for name in ADAM_LIKE for row in _betas(name)),
    # SGD
    Row("SGD", "momentum_negative", {"momentum": -0.5}, ValueError,
        "momentum must be in [0, 1), got -0.5.", ValueError),
    Row("SGD", "momentum_one", {"momentum": 1.0}, ValueError,
        "momentum must be in [0, 1), got 1.0.", None),
    Row("SGD", "momentum_nan", {"momentum": NAN}, ValueError,
        "momentum must be in [0, 1), got nan.", None),
    Row("SGD", "momentum_schedule", {"momentum": jopt.constant_schedule(0.9)}, TypeError,
        f"momentum must be a number (as in torch), got a schedule; {CYCLING_HINT}", TypeError),
    Row("SGD", "dampening_above_one", {"momentum": 0.9, "dampening": 1.5}, ValueError,
        "dampening must be in [0, 1], got 1.5.", None),
    Row("SGD", "dampening_negative", {"momentum": 0.9, "dampening": -0.1}, ValueError,
        "dampening must be in [0, 1], got -0.1.", None),
    Row("SGD", "nesterov_without_momentum", {"nesterov": True}, ValueError,
        NESTEROV + "0.0, dampening=0.0.", ValueError),
    Row("SGD", "nesterov_with_dampening", {"momentum": 0.9, "dampening": 0.1, "nesterov": True},
        ValueError, NESTEROV + "0.9, dampening=0.1.", ValueError),
    Row("SGD", "nesterov_not_bool", {"momentum": 0.9, "nesterov": 1}, TypeError,
        "nesterov must be True or False, got 1.", None),
    # RMSprop
    Row("RMSprop", "alpha_one", {"alpha": 1.0}, ValueError, "alpha must be in [0, 1), got 1.0.",
        None),
    Row("RMSprop", "alpha_negative", {"alpha": -0.1}, ValueError,
        "alpha must be in [0, 1), got -0.1.", ValueError),
    Row("RMSprop", "eps_negative", {"eps": -1e-8}, ValueError, "eps must be >= 0, got -1e-08.",
        ValueError),
    Row("RMSprop", "momentum_negative", {"momentum": -1.0}, ValueError,
        "momentum must be in [0, 1), got -1.0.", ValueError),
    Row("RMSprop", "momentum_one", {"momentum": 1.0}, ValueError,
        "momentum must be in [0, 1), got 1.0.", None),
    _flag("RMSprop", "centered"),
    # Adam and its variants (betas and eps above)
    Row("Adam", "betas0_schedule", {"betas": (jopt.constant_schedule(0.9), 0.999)}, TypeError,
        f"betas[0] must be a number (as in torch), got a schedule; {CYCLING_HINT}", TypeError),
    _flag("Adam", "amsgrad"),
    _flag("Adam", "decoupled_weight_decay"),
    _flag("AdamW", "amsgrad"),
    Row("NAdam", "momentum_decay_negative", {"momentum_decay": -0.2}, ValueError,
        "momentum_decay must be >= 0, got -0.2.", ValueError),
    Row("NAdam", "momentum_decay_inf", {"momentum_decay": INF}, ValueError,
        "momentum_decay must be a finite number >= 0, got inf.", None),
    _flag("NAdam", "decoupled_weight_decay"),
    _flag("RAdam", "decoupled_weight_decay"),
    # Adagrad
    Row("Adagrad", "lr_decay_negative", {"lr_decay": -0.5}, ValueError,
        "lr_decay must be >= 0, got -0.5.", ValueError),
    Row("Adagrad", "initial_accumulator_value_negative", {"initial_accumulator_value": -1.0},
        ValueError, "initial_accumulator_value must be >= 0, got -1.0.", ValueError),
    Row("Adagrad", "eps_negative", {"eps": -1e-10}, ValueError, "eps must be >= 0, got -1e-10.",
        ValueError),
    # Adadelta
    Row("Adadelta", "rho_above_one", {"rho": 1.1}, ValueError, "rho must be in [0, 1), got 1.1.",
        ValueError),
    Row("Adadelta", "rho_one", {"rho": 1.0}, ValueError, "rho must be in [0, 1), got 1.0.", None),
    Row("Adadelta", "rho_negative", {"rho": -0.1}, ValueError,
        "rho must be in [0, 1), got -0.1.", ValueError),
    Row("Adadelta", "eps_negative", {"eps": -1e-6}, ValueError, "eps must be >= 0, got -1e-06.",
        ValueError),
    # ASGD (torch checks none of lambd, alpha, t0)
    Row("ASGD", "lambd_negative", {"lambd": -1e-4}, ValueError,
        "lambd must be >= 0, got -0.0001.", None),
    Row("ASGD", "alpha_nan", {"alpha": NAN}, ValueError, "alpha must be >= 0, got nan.", None),
    Row("ASGD", "t0_negative", {"t0": -1.0}, ValueError, "t0 must be >= 0, got -1.0.", None),
    Row("ASGD", "t0_inf", {"t0": INF}, ValueError, "t0 must be a finite number >= 0, got inf.",
        None),
    # Rprop (torch checks 0 < etas[0] < 1 < etas[1], not the step sizes)
    Row("Rprop", "etas0_one", {"etas": (1.0, 1.2)}, ValueError,
        "etas[0] must be in (0, 1), got 1.0.", ValueError),
    Row("Rprop", "etas0_zero", {"etas": (0.0, 1.2)}, ValueError,
        "etas[0] must be in (0, 1), got 0.0.", ValueError),
    Row("Rprop", "etas1_one", {"etas": (0.5, 1.0)}, ValueError, "etas[1] must be > 1, got 1.0.",
        ValueError),
    Row("Rprop", "etas_not_a_pair", {"etas": 0.5}, ValueError,
        "etas must be a pair (etaminus, etaplus), got 0.5.", TypeError),
    Row("Rprop", "step_sizes0_negative", {"step_sizes": (-1e-6, 50.0)}, ValueError,
        "step_sizes[0] must be >= 0, got -1e-06.", None),
    Row("Rprop", "step_sizes1_zero", {"step_sizes": (0.0, 0.0)}, ValueError,
        "step_sizes[1] must be > 0, got 0.0.", None),
    Row("Rprop", "step_sizes_reversed", {"step_sizes": (1.0, 0.5)}, ValueError,
        "step_sizes must be (min, max) with min <= max, got (1.0, 0.5).", None),
    Row("Rprop", "step_sizes_not_a_pair", {"step_sizes": 50.0}, ValueError,
        "step_sizes must be a pair (min, max), got 50.0.", None),
    # Adafactor
    Row("Adafactor", "beta2_decay_positive", {"beta2_decay": 0.5}, ValueError,
        "beta2_decay must be <= 0, got 0.5.", ValueError),
    Row("Adafactor", "beta2_decay_nan", {"beta2_decay": NAN}, ValueError,
        "beta2_decay must be <= 0, got nan.", ValueError),
    Row("Adafactor", "eps0_negative", {"eps": (-1.0, 1e-3)}, ValueError,
        "eps[0] must be >= 0, got -1.0.", ValueError),
    Row("Adafactor", "eps1_negative", {"eps": (None, -1e-3)}, ValueError,
        "eps[1] must be >= 0, got -0.001.", ValueError),
    Row("Adafactor", "eps_not_a_pair", {"eps": 1e-3}, ValueError,
        "eps must be a pair (eps1, eps2), got 0.001.", TypeError),
    Row("Adafactor", "d_below_one", {"d": 0.5}, ValueError, "d must be >= 1, got 0.5.",
        ValueError),
    Row("Adafactor", "d_inf", {"d": INF}, ValueError, "d must be a finite number >= 1, got inf.",
        None),
    # LBFGS (torch checks lr alone; history_size=0 fails inside its step, max_eval=0 too with
    # the line search, and an unknown line_search_fn at its first step)
    Row("LBFGS", "max_iter_zero", {"max_iter": 0}, ValueError,
        "max_iter must be an integer >= 1, got 0.", None),
    Row("LBFGS", "max_iter_float", {"max_iter": 2.5}, TypeError,
        "max_iter must be an integer >= 1, got 2.5.", None),
    Row("LBFGS", "max_eval_zero", {"max_eval": 0}, ValueError,
        "max_eval must be an integer >= 1, got 0.", None),
    Row("LBFGS", "history_size_zero", {"history_size": 0}, ValueError,
        "history_size must be an integer >= 1, got 0.", None),
    Row("LBFGS", "tolerance_grad_negative", {"tolerance_grad": -1.0}, ValueError,
        "tolerance_grad must be >= 0, got -1.0.", None),
    Row("LBFGS", "tolerance_change_nan", {"tolerance_change": NAN}, ValueError,
        "tolerance_change must be >= 0, got nan.", None),
    Row("LBFGS", "line_search_fn_unknown", {"line_search_fn": "backtracking"}, ValueError,
        "line_search_fn must be one of 'strong_wolfe', got 'backtracking'.", None),
]  # fmt: skip


def test_rows_have_unique_ids():
    ids = [row.id for row in ROWS]
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_argument_of_every_optimizer_has_a_row(name):
    arguments = set(inspect.signature(getattr(jopt.torch, name)).parameters)
    covered = {arg for row in ROWS if row.optimizer == name for arg in row.kwargs}
    assert arguments - covered == set(), f"{name}: no row for {sorted(arguments - covered)}"


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_bad_argument_raises_under_torchs_name(row):
    with jax.enable_x64(False), pytest.raises(row.error) as caught:
        getattr(jopt.torch, row.optimizer)(**row.kwargs)
    assert str(caught.value) == f"jopt.torch.{row.optimizer}: {row.message}"


def _torch_outcome(torch, row: Row) -> type[Exception] | None:
    kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in row.kwargs.items()}
    tensor = torch.nn.Parameter(torch.zeros(2))
    params = [tensor]
    if "param_groups" in kwargs:  # path rules become the one tensor
        params = [{**g, "params": [tensor]} for g in kwargs.pop("param_groups")]
    try:
        getattr(torch.optim, row.optimizer)(params, **kwargs)
    except (ValueError, TypeError) as e:
        return type(e)
    return None


def test_torch_does_what_the_table_says():
    torch = pytest.importorskip("torch")
    wrong = [
        f"{row.id}: torch {_torch_outcome(torch, row)}, table {row.torch}"
        for row in ROWS
        if _torch_outcome(torch, row) is not row.torch
    ]
    assert not wrong, wrong
