"""PyTorch's optimizers and lr schedulers as jopt transforms and schedules (`jopt.torch`).

Same names, arguments, defaults and numbers as torch.optim and torch.optim.lr_scheduler; torch
itself is not needed. See `jopt._src.conventions.torch_optimizers` for the conventions followed.
"""

from jopt._src.conventions.torch_adam_optimizers import Adam, Adamax, AdamW, NAdam, RAdam
from jopt._src.conventions.torch_extra_optimizers import ASGD, Adafactor, Rprop
from jopt._src.conventions.torch_lambda_schedulers import LambdaLR, MultiplicativeLR
from jopt._src.conventions.torch_lbfgs import LBFGS
from jopt._src.conventions.torch_muon import Muon
from jopt._src.conventions.torch_optimizers import SGD, Adadelta, Adagrad, RMSprop
from jopt._src.conventions.torch_schedulers import (
    ChainedScheduler,
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

__all__ = [
    "ASGD",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "Muon",
    "NAdam",
    "OneCycleLR",
    "PolynomialLR",
    "RAdam",
    "RMSprop",
    "ReduceLROnPlateau",
    "Rprop",
    "SequentialLR",
    "StepLR",
]
