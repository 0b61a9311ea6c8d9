"""Every `jopt.torch` scheduler takes torch 2.13's arguments: same names, order and defaults.

torch's schedulers take the optimizer first (ChainedScheduler: last) and `last_epoch` for
resuming; jopt's schedules take the base learning rate `lr` in the optimizer's place (OneCycleLR,
CyclicLR, SequentialLR and ChainedScheduler take none) and resume from the step count in the
optimizer's state. ReduceLROnPlateau wraps the optimizer, as torch's does: `optimizer` first.
Every other argument matches by position, name and default value, so calls written for torch,
positional or by keyword, mean the same. Skipped where torch is not installed.
"""

from __future__ import annotations

import inspect

import pytest

import jopt

SCHEDULER_MODULES = (
    "jopt._src.conventions.torch_schedulers",
    "jopt._src.conventions.torch_lambda_schedulers",
)
SCHEDULERS = sorted(
    name for name in jopt.torch.__all__ if getattr(jopt.torch, name).__module__ in SCHEDULER_MODULES
)
TORCH_ONLY = ("self", "optimizer", "last_epoch", "verbose")
# jopt's additions, after torch's arguments: the steps a host-called lr_lambda is tabulated for.
JOPT_ONLY = {"LambdaLR": ("total_iters",), "MultiplicativeLR": ("total_iters",)}


def test_the_list_holds_every_scheduler():
    assert "ReduceLROnPlateau" in SCHEDULERS and "CyclicLR" in SCHEDULERS
    assert len(SCHEDULERS) == 15, SCHEDULERS


@pytest.mark.parametrize("name", SCHEDULERS)
def test_arguments_are_torchs_in_order_with_torchs_defaults(name):
    lr_scheduler = pytest.importorskip("torch.optim.lr_scheduler")
    theirs = inspect.signature(getattr(lr_scheduler, name).__init__).parameters
    ours = inspect.signature(getattr(jopt.torch, name)).parameters
    their_args = [a for a in theirs if a not in TORCH_ONLY]
    extra = JOPT_ONLY.get(name, ())
    our_args = [a for a in ours if a not in ("lr", "optimizer")]
    assert our_args[len(our_args) - len(extra) :] == list(extra)
    our_args = our_args[: len(our_args) - len(extra)]
    assert our_args == their_args
    for arg in our_args:
        assert ours[arg].default == theirs[arg].default, arg
        assert type(ours[arg].default) in (type(theirs[arg].default), float), arg
    if name == "ReduceLROnPlateau":
        assert next(iter(ours)) == "optimizer"
