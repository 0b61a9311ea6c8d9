"""Schedule-free methods: iterate averaging in place of a learning-rate decay schedule (schedule-
free SGD and AdamW)."""

from __future__ import annotations

from jopt._src.catalogue import LR
from jopt._src.registry_types import Convergence, Example, Optimizer
from jopt._src.transforms import schedule_free

_PAPER = "Defazio et al. 2024, The Road Less Scheduled"
# The paper's form of each (its warmup, and AdamW's bias correction in the learning rate), with
# a warmup, the polynomial weighting t**r and weight decay: the arguments optax does not have.
_PAPER_FORM = {"warmup_steps": 10, "r": 0.5, "weight_decay": 0.01, "form": "paper"}

ENTRIES: list[Optimizer] = [
    Optimizer(
        "schedule_free_sgd",
        schedule_free.schedule_free_sgd,
        schedule_free.SCHEDULE_FREE_SGD,
        _PAPER,
        "contrib.schedule_free_sgd",
        {
            "schedule_free_sgd": Example({"learning_rate": 0.1}, optax=True),
            "schedule_free_sgd_paper": Example({"learning_rate": 0.1, **_PAPER_FORM}),
        },
        # Measured on the params (y), where the gradients are taken, not on x.
        {"schedule_free_sgd": Convergence({"learning_rate": 0.006}, 4350, 978)},
        reads_params=True,
        eval_params=schedule_free.schedule_free_eval_params,
    ),
    Optimizer(
        "schedule_free_adamw",
        schedule_free.schedule_free_adamw,
        schedule_free.SCHEDULE_FREE_ADAMW,
        _PAPER,
        "contrib.schedule_free_adamw",
        {
            "schedule_free_adamw": Example(LR, optax=True),
            "schedule_free_adamw_paper": Example({**LR, **_PAPER_FORM}),
        },
        {"schedule_free_adamw": Convergence({"learning_rate": 0.05}, 1089, 906)},
        scale_invariant=True,
        reads_params=True,
        eval_params=schedule_free.schedule_free_eval_params,
    ),
]
