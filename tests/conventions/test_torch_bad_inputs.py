"""torch's own bad-argument cases, transcribed for jopt.torch.

torch 2.13 lists the arguments its optimizers must refuse as `ErrorOptimizerInput` entries
(`torch/testing/_internal/common_optimizers.py`, the `optim_error_inputs_func_*` functions). Each
entry triggered by an argument value is a row here: jopt.torch must raise ValueError at
construction, naming the function, torch's argument and the value. The entries about the
`params` list (its type, duplicates, names) have no counterpart: jopt's constructors take no
params. Those about tensors with `foreach=True` and tensor/float mixes of `betas` concern torch's
implementations; jopt takes arrays where torch takes tensors (a 1-element `lr` array is accepted).

jopt is stricter in a few places, listed as rows whose torch message is None (torch accepts the
input): a nan or infinite learning rate, a nan weight decay in SGD.

With torch installed, `test_torch_agrees_with_the_table` checks the transcription against torch.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np
import pytest

import jopt

NAN, INF = math.nan, math.inf
OPTIMIZERS = ("SGD", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta")


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    optimizer: str  # the same name in torch.optim and jopt.torch
    kwargs: dict[str, Any]
    torch: str | None  # torch's message (a regex, as torch's entry has it); None: torch accepts
    jopt: str  # a fragment of jopt's message after "jopt.torch.<optimizer>: "


def _lr_array(optimizer: str) -> Row:
    """torch's get_error_inputs_for_all_optims: "Tensor lr must be 1-element"."""
    return Row(
        f"{optimizer}-lr_not_1_element", optimizer, {"lr": np.array([1e-3, 1e-3])},
        "Tensor lr must be 1-element", "lr must be a 1-element array, got shape (2,)",
    )  # fmt: skip


def _stricter(optimizer: str) -> list[Row]:
    torch_nan = None if optimizer == "SGD" else "Invalid learning rate: nan"
    return [
        Row(f"{optimizer}-lr_nan", optimizer, {"lr": NAN}, torch_nan, "lr must be >= 0, got nan"),
        Row(
            f"{optimizer}-lr_inf",
            optimizer,
            {"lr": INF},
            None,
            "lr must be a finite number >= 0, got inf",
        ),
    ]


ROWS = [
    *(_lr_array(name) for name in OPTIMIZERS),
    Row("Adadelta-rho", "Adadelta", {"lr": 1e-2, "rho": 1.1}, "Invalid rho value: 1.1",
        "rho must be in [0, 1), got 1.1"),
    Row("Adagrad-lr_decay", "Adagrad", {"lr": 1e-2, "lr_decay": -0.5},
        "Invalid lr_decay value: -0.5", "lr_decay must be >= 0, got -0.5"),
    Row("Adam-beta1", "Adam", {"lr": 1e-2, "betas": (1.0, 0.0)},
        "Invalid beta parameter at index 0: 1.0", "betas[0] must be in [0, 1), got 1.0"),
    Row("Adam-weight_decay", "Adam", {"lr": 1e-2, "weight_decay": -1},
        "Invalid weight_decay value: -1", "weight_decay must be >= 0, got -1"),
    Row("AdamW-beta1", "AdamW", {"lr": 1e-2, "betas": (1.0, 0.0)},
        "Invalid beta parameter at index 0: 1.0", "betas[0] must be in [0, 1), got 1.0"),
    Row("AdamW-weight_decay", "AdamW", {"lr": 1e-2, "weight_decay": -1},
        "Invalid weight_decay value: -1", "weight_decay must be >= 0, got -1"),
    Row("Adamax-beta2", "Adamax", {"lr": 1e-2, "betas": (0.0, 1.0)},
        "Invalid beta parameter at index 1: 1.0", "betas[1] must be in [0, 1), got 1.0"),
    Row("NAdam-beta1", "NAdam", {"lr": 1e-2, "betas": (1.0, 0.0)},
        "Invalid beta parameter at index 0: 1.0", "betas[0] must be in [0, 1), got 1.0"),
    Row("NAdam-momentum_decay", "NAdam", {"lr": 1e-2, "momentum_decay": -0.2},
        "Invalid momentum_decay value: -0.2", "momentum_decay must be >= 0, got -0.2"),
    Row("RAdam-beta1", "RAdam", {"lr": 1e-2, "betas": (1.0, 0.0)},
        "Invalid beta parameter at index 0: 1.0", "betas[0] must be in [0, 1), got 1.0"),
    Row("RAdam-weight_decay", "RAdam", {"lr": 1e-2, "weight_decay": -1},
        "Invalid weight_decay value: -1", "weight_decay must be >= 0, got -1"),
    Row("RMSprop-momentum", "RMSprop", {"lr": 1e-2, "momentum": -1.0},
        "Invalid momentum value: -1.0", "momentum must be in [0, 1), got -1.0"),
    Row("SGD-momentum", "SGD", {"lr": 1e-2, "momentum": -0.5}, "Invalid momentum value: -0.5",
        "momentum must be in [0, 1), got -0.5"),
    *(row for name in OPTIMIZERS for row in _stricter(name)),
    Row("SGD-weight_decay_nan", "SGD", {"lr": 1e-2, "weight_decay": NAN}, None,
        "weight_decay must be >= 0, got nan"),
]  # fmt: skip

# Arguments both accept at the closed ends of their ranges, and the array forms of `lr`.
ACCEPTED = [
    ("SGD", {"lr": 0.0, "momentum": 0.0, "dampening": 1.0, "weight_decay": 0.0}),
    ("Adam", {"lr": np.array(1e-3), "betas": (0.0, 0.0), "eps": 0.0}),
    ("AdamW", {"lr": np.array([1e-3]), "betas": (0.9, 0.99)}),
    ("NAdam", {"momentum_decay": 0.0}),
    ("Adagrad", {"lr_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 0.0}),
    ("Adadelta", {"rho": 0.0, "eps": 0.0}),
]


def test_every_torch_optimizer_has_rows():
    assert {row.optimizer for row in ROWS} == set(OPTIMIZERS)
    assert set(OPTIMIZERS) <= set(jopt.torch.__all__)
    assert len({row.id for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_jopt_torch_raises_value_error_at_construction(row):
    owner = f"jopt.torch.{row.optimizer}: "
    with pytest.raises(ValueError, match=re.escape(owner + row.jopt)):
        getattr(jopt.torch, row.optimizer)(**row.kwargs)


@pytest.mark.parametrize(
    ("optimizer", "kwargs"), ACCEPTED, ids=[f"{name}-{i}" for i, (name, _) in enumerate(ACCEPTED)]
)
def test_jopt_torch_accepts_what_torch_accepts_at_the_edges(optimizer, kwargs):
    assert callable(getattr(jopt.torch, optimizer)(**kwargs).update)


def _torch_outcome(torch, optimizer: str, kwargs: dict[str, Any]) -> str | None:
    """torch's error message for `kwargs`, or None if torch accepts them."""
    torch_kwargs = {
        k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()
    }
    params = [torch.nn.Parameter(torch.zeros(2))]
    try:
        getattr(torch.optim, optimizer)(params, **torch_kwargs)
    except ValueError as e:
        return str(e)
    return None


def test_torch_agrees_with_the_table():
    torch = pytest.importorskip("torch")
    for row in ROWS:
        got = _torch_outcome(torch, row.optimizer, row.kwargs)
        if row.torch is None:
            assert got is None, f"{row.id}: torch now refuses it: {got}"
        else:
            assert got is not None and re.search(row.torch, got), f"{row.id}: torch says {got}"
    for optimizer, kwargs in ACCEPTED:
        outcome = _torch_outcome(torch, optimizer, kwargs)
        assert outcome is None, f"torch refuses {optimizer} {kwargs}: {outcome}"
