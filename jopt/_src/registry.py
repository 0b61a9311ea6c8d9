"""The catalogue: every optimizer jopt ships, with what the library, the lab and the tests know
of it, and the frameworks' twins and schedules by name.

One entry per optimizer (`OPTIMIZERS`): its factory (`jopt.adam`), the declarations of its
hyperparameters by argument name (what the lab validates and searches), the paper, optax's
function with the same convention, the configurations worth checking on their own (one per
convention it offers), and a configuration that reaches the minimum of the test problems with
the steps it took. From these tables come the lab's names, and the shared test suites (every
example against its NumPy reference, optax, dtypes, shape errors, skipped steps, convergence);
`jopt.__init__`, `jopt.torch` and `jopt.keras` list their names explicitly, and
`tests/test_registry.py` checks that they agree with the tables, and that each declaration is
what the optimizer does (ranges refused under the declared name, hyperparameters in the state).

Adding an optimizer: its building block, state and optimizer in one file of `jopt/_src/transforms`
(with the `Spec` of its arguments), one entry in its family's module of `jopt/_src/catalogue`
(the first twelve are here), its name in `jopt/__init__.py`, and its NumPy reference `run_<name>`
in a module of `tests/reference` (listed in `tests/reference/__init__.py`). A framework twin
adds its file's function, its name in `jopt.torch` / `jopt.keras`, a `Twin` here, and cases in
the golden fixture generator (then rerun it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jopt import keras as jkeras
from jopt import schedules as jschedules
from jopt import torch as jtorch
from jopt._src import registry_types
from jopt._src.catalogue import LR as _LR
from jopt._src.catalogue import (
    adaptive,
    factored,
    learning_rate_free,
    loss_based,
    modern,
    online,
    orthogonal,
    schedule_free,
    sign,
    trust_ratio,
)
from jopt._src.catalogue import halving as _halving
from jopt._src.registry_types import Convergence, Example, Optimizer, Twin, frozen
from jopt._src.transforms import (
    adadelta,
    adagrad,
    adam,
    adamax,
    amsgrad,
    lion,
    momentum,
    radam,
    rms,
)

Factory = registry_types.Factory


_ENTRIES = [
    Optimizer(
        "sgd",
        momentum.sgd,
        momentum.SGD,
        "Robbins & Monro 1951; momentum Polyak 1964; Nesterov: Sutskever et al. 2013",
        "sgd",
        {
            "sgd": Example({"learning_rate": 0.05}, optax=True),
            "sgd_momentum": Example({"learning_rate": 0.05, "momentum": 0.9}, optax=True),
            "sgd_nesterov": Example(
                {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}, optax=True
            ),
            "sgd_dampening": Example({"learning_rate": 0.05, "momentum": 0.9, "dampening": 0.3}),
            "sgd_ema": Example({"learning_rate": 0.1, "momentum": 0.9, "momentum_form": "ema"}),
            "sgd_ema_nesterov": Example(
                {"learning_rate": 0.1, "momentum": 0.9, "momentum_form": "ema", "nesterov": True}
            ),
            "sgd_lr_inside": Example(
                {"learning_rate": 0.05, "momentum": 0.9, "momentum_form": "lr_inside"}
            ),
            "sgd_lr_inside_nesterov": Example(
                {
                    "learning_rate": 0.05,
                    "momentum": 0.9,
                    "momentum_form": "lr_inside",
                    "nesterov": True,
                }
            ),
            "sgd_weight_decay": Example(
                {"learning_rate": 0.05, "momentum": 0.5, "weight_decay": 0.01}
            ),
        },
        {
            "sgd": Convergence({"learning_rate": 0.0015}, 4668, 11379),
            "sgd_momentum": Convergence({"learning_rate": 0.001, "momentum": 0.9}, 638, 1580),
            "sgd_nesterov": Convergence(
                {"learning_rate": 0.001, "momentum": 0.9, "nesterov": True}, 644, 1620
            ),
        },
    ),
    Optimizer(
        "rmsprop",
        rms.rmsprop,
        rms.RMSPROP,
        "Tieleman & Hinton 2012; centered: Graves 2013",
        "rmsprop",
        {
            "rmsprop": Example({"learning_rate": 0.01, "eps": 0.1}, optax=True),
            "rmsprop_torch_style": Example(
                {
                    "learning_rate": 0.01,
                    "eps": 0.1,
                    "decay": 0.99,
                    "eps_in_sqrt": False,
                    "momentum": 0.9,
                    "momentum_form": "classic",
                }
            ),
            "rmsprop_centered_nesterov": Example(
                {
                    "learning_rate": 0.005,
                    "eps": 0.1,
                    "centered": True,
                    "momentum": 0.9,
                    "nesterov": True,
                },
                optax=True,
            ),
            "rmsprop_bias_correction": Example(
                {"learning_rate": 0.01, "eps": 0.1, "bias_correction": True, "initial_scale": 0.1},
                optax=True,
            ),
        },
        {"rmsprop": Convergence({"learning_rate": _halving(0.01, 1000)}, 3475, 6169)},
    ),
    Optimizer(
        "adam",
        adam.adam,
        adam.ADAM,
        "Kingma & Ba 2015, Adam: A Method for Stochastic Optimization",
        "adam",
        {
            "adam": Example(_LR, optax=True),
            "adam_eps_root": Example(
                {"learning_rate": 0.01, "eps": 1e-6, "eps_root": 1e-8}, optax=True
            ),
            "adam_no_bias_correction": Example({**_LR, "bias_correction": False}),
        },
        {"adam": Convergence({"learning_rate": 0.05}, 298, 1803)},
        scale_invariant=True,
    ),
    Optimizer(
        "nadam",
        adam.nadam,
        adam.ADAM,
        "Dozat 2016, Incorporating Nesterov Momentum into Adam",
        "nadam",
        {"nadam": Example(_LR, optax=True)},
        {"nadam": Convergence({"learning_rate": 0.05}, 280, 1504)},
        scale_invariant=True,
    ),
    Optimizer(
        "adamw",
        adam.adamw,
        adam.ADAMW,
        "Loshchilov & Hutter 2019, Decoupled Weight Decay Regularization",
        "adamw",
        {"adamw": Example({"learning_rate": 0.01, "weight_decay": 0.01}, optax=True)},
        # Without decay: decay moves the minimum away from the problem's.
        {"adamw": Convergence({"learning_rate": 0.05, "weight_decay": 0.0}, 298, 1803)},
    ),
    Optimizer(
        "nadamw",
        adam.nadamw,
        adam.ADAMW,
        "Dozat 2016; Loshchilov & Hutter 2019",
        "nadamw",
        {"nadamw": Example({"learning_rate": 0.01, "weight_decay": 0.01}, optax=True)},
        {"nadamw": Convergence({"learning_rate": 0.05, "weight_decay": 0.0}, 280, 1504)},
    ),
    Optimizer(
        "amsgrad",
        amsgrad.amsgrad,
        amsgrad.AMSGRAD,
        "Reddi et al. 2018, On the Convergence of Adam and Beyond",
        "amsgrad",
        {
            "amsgrad": Example(_LR),
            "amsgrad_corrected": Example(
                {"learning_rate": 0.01, "max_of": "corrected"}, optax=True
            ),
        },
        {"amsgrad": Convergence({"learning_rate": 0.05}, 318, 2757)},
        scale_invariant=True,
    ),
    Optimizer(
        "adamax",
        adamax.adamax,
        adamax.ADAMAX,
        "Kingma & Ba 2015, sec. 7.1",
        "adamax",
        {"adamax": Example(_LR, optax=True)},
        {"adamax": Convergence({"learning_rate": 0.1}, 631, 3025)},
        scale_invariant=True,
    ),
    Optimizer(
        "radam",
        radam.radam,
        radam.RADAM,
        "Liu et al. 2020, On the Variance of the Adaptive Learning Rate and Beyond",
        "radam",
        {"radam": Example(_LR, optax=True)},
        {"radam": Convergence({"learning_rate": 0.001}, 6371, 10331)},
    ),
    Optimizer(
        "adagrad",
        adagrad.adagrad,
        adagrad.ADAGRAD,
        "Duchi et al. 2011, Adaptive Subgradient Methods",
        "adagrad",
        {
            "adagrad": Example({"learning_rate": 0.1}, optax=True),
            "adagrad_torch_style": Example(
                {
                    "learning_rate": 0.1,
                    "initial_accumulator_value": 0.0,
                    "eps": 1e-10,
                    "eps_in_sqrt": False,
                }
            ),
        },
        {"adagrad": Convergence({"learning_rate": 0.5}, 207, 8923)},
    ),
    Optimizer(
        "adadelta",
        adadelta.adadelta,
        adadelta.ADADELTA,
        "Zeiler 2012, ADADELTA: An Adaptive Learning Rate Method",
        "adadelta",
        {
            "adadelta": Example({"learning_rate": 1.0}, optax=True),
            "adadelta_weight_decay": Example(
                {"learning_rate": 1.0, "weight_decay": 0.01}, optax=True
            ),
        },
        {"adadelta": Convergence({"learning_rate": _halving(1.0, 1000)}, 3067, 6812)},
    ),
    Optimizer(
        "lion",
        lion.lion,
        lion.LION,
        "Chen et al. 2023, Symbolic Discovery of Optimization Algorithms",
        "lion",
        # A power-of-two learning rate keeps float32's rounding of theta -= lr * sign(c) small.
        {"lion": Example({"learning_rate": 2**-13, "weight_decay": 0.01}, optax=True)},
        {
            "lion": Convergence(
                {"learning_rate": _halving(0.001, 3000), "weight_decay": 0.0}, 2343, 4869
            )
        },
        scale_invariant=True,
    ),
]

_ENTRIES += [*adaptive.ENTRIES, *trust_ratio.ENTRIES, *sign.ENTRIES, *modern.ENTRIES]
_ENTRIES += [*factored.ENTRIES, *schedule_free.ENTRIES]
_ENTRIES += [*orthogonal.ENTRIES, *learning_rate_free.ENTRIES, *loss_based.ENTRIES, *online.ENTRIES]
OPTIMIZERS: Mapping[str, Optimizer] = frozen({entry.name: entry for entry in _ENTRIES})


def _twins(framework: str, module: Any, mirrors: Mapping[str, str]) -> list[Twin]:
    return [Twin(framework, name, vars(module)[name], of) for name, of in mirrors.items()]


_TWINS = [
    *_twins(
        "torch",
        jtorch,
        {
            "SGD": "sgd",
            "RMSprop": "rmsprop",
            "Adam": "adam",
            "AdamW": "adamw",
            "Adamax": "adamax",
            "NAdam": "nadam",
            "RAdam": "radam",
            "Adagrad": "adagrad",
            "Adadelta": "adadelta",
            "Muon": "muon",
            "ASGD": "asgd",
            "Rprop": "rprop",
            "Adafactor": "adafactor",
            "LBFGS": "lbfgs",
        },
    ),
    *_twins(
        "keras",
        jkeras,
        {
            "SGD": "sgd",
            "RMSprop": "rmsprop",
            "Adam": "adam",
            "AdamW": "adamw",
            "Adamax": "adamax",
            "Nadam": "nadam",
            "Adagrad": "adagrad",
            "Adadelta": "adadelta",
            "Lion": "lion",
            "Muon": "muon",
            "Ftrl": "ftrl",
            "Lamb": "lamb",
            "Adafactor": "adafactor",
            "ScheduleFreeAdamW": "schedule_free_adamw",
        },
    ),
]
TWINS: Mapping[str, Twin] = frozen({twin.key: twin for twin in _TWINS})

# Schedules by name: jopt's own, and the frameworks' under "torch." / "keras.". Left out: the
# helpers that take schedules (per_epoch) and the wrapper that takes an optimizer
# (jopt.torch.ReduceLROnPlateau); SequentialLR and ChainedScheduler take lists of schedulers;
# LambdaLR and MultiplicativeLR take a Python function, which a config (data) cannot hold.
_NOT_A_SCHEDULE = {"Schedule", "per_epoch", "ReduceLROnPlateau", "SequentialLR", "ChainedScheduler"}
_NOT_A_SCHEDULE |= {"LambdaLR", "MultiplicativeLR"}
TORCH_OPTIMIZERS = frozenset(t.name for t in _TWINS if t.framework == "torch")
KERAS_OPTIMIZERS = frozenset(t.name for t in _TWINS if t.framework == "keras")
SCHEDULES: Mapping[str, Callable[..., Any]] = frozen(
    {
        **{n: vars(jschedules)[n] for n in jschedules.__all__ if n not in _NOT_A_SCHEDULE},
        **{
            f"torch.{n}": vars(jtorch)[n]
            for n in jtorch.__all__
            if n not in TORCH_OPTIMIZERS and n not in _NOT_A_SCHEDULE
        },
        **{f"keras.{n}": vars(jkeras)[n] for n in jkeras.__all__ if n not in KERAS_OPTIMIZERS},
    }
)
