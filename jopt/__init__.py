"""jopt: JAX optimizers as optax transforms, with hyperparameters in state, validated, exact.

The public API is this module's `__all__` and the modules `jopt.schedules`, `jopt.torch`,
`jopt.keras` and `jopt.hparams`; everything under `jopt._src` is implementation and may change.
The lab (`jopt.lab`, the `jopt` command) is an application built on the library.
"""

from jopt import hparams, keras, schedules, torch
from jopt._src import flax_serialization as _flax_serialization
from jopt._src.errors import ArgumentError, ArgumentTypeError
from jopt._src.flat_params import FlatParams, flat_train_step, flatten_params
from jopt._src.groups import Group, assign_groups, describe_groups, param_groups
from jopt._src.hparam_access import current_lr, get_hparams, set_hparams
from jopt._src.hparams import HParams
from jopt._src.layerwise import layerwise_groups
from jopt._src.schedules.compose import (
    join_schedules,
    multiply_schedules,
    per_epoch,
    piecewise_constant,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    piecewise_linear,
)
from jopt._src.schedules.cyclic import (
    cosine_onecycle_schedule,
    cyclic_momentum,
    cyclic_schedule,
    one_cycle_momentum,
    one_cycle_schedule,
)
from jopt._src.schedules.decay import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    inverse_time_decay,
    linear_schedule,
    multistep_decay,
    polynomial_schedule,
    step_decay,
)
from jopt._src.schedules.plateau import reduce_on_plateau
from jopt._src.schedules.restarts import cosine_decay_restarts
from jopt._src.schedules.schedule import Schedule
from jopt._src.schedules.warmup import (
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
    with_warmup,
)
from jopt._src.sharding import state_shardings
from jopt._src.train_step import train_step
from jopt._src.transforms.accumulation import accumulate_gradients
from jopt._src.transforms.adabelief import adabelief, scale_by_belief
from jopt._src.transforms.adadelta import adadelta, scale_by_adadelta
from jopt._src.transforms.adafactor import adafactor, scale_by_factored_rms
from jopt._src.transforms.adagrad import adagrad, scale_by_rss
from jopt._src.transforms.adam import adam, adamw, nadam, nadamw, scale_by_adam
from jopt._src.transforms.adamax import adamax, adamaxw, scale_by_adamax
from jopt._src.transforms.adan import adan, scale_by_adan
from jopt._src.transforms.adaptive_clipping import adaptive_grad_clip
from jopt._src.transforms.ademamix import ademamix, scale_by_ademamix
from jopt._src.transforms.adopt import adopt, scale_by_adopt
from jopt._src.transforms.amsgrad import amsgrad, scale_by_amsgrad
from jopt._src.transforms.asgd import asgd, asgd_eval_params
from jopt._src.transforms.averaging import averaged_params, ema_params, swa_params
from jopt._src.transforms.centralization import centralize
from jopt._src.transforms.clipping import (
    clip,
    clip_by_global_norm,
    clip_by_leaf_norm,
    clipped_norm,
)
from jopt._src.transforms.cocob import cocob, scale_by_cocob
from jopt._src.transforms.dadapt import dadapt_adamw
from jopt._src.transforms.dog import dog, dowg, scale_by_dog, scale_by_dowg
from jopt._src.transforms.fromage import fromage
from jopt._src.transforms.ftrl import ftrl
from jopt._src.transforms.lamb import lamb
from jopt._src.transforms.lars import lars
from jopt._src.transforms.lbfgs import lbfgs, scale_by_lbfgs
from jopt._src.transforms.learning_rate import scale_by_learning_rate
from jopt._src.transforms.lion import lion, scale_by_lion
from jopt._src.transforms.lookahead import lookahead
from jopt._src.transforms.mechanize import mechanize
from jopt._src.transforms.momentum import (
    ema,
    momentum_lr_inside,
    scale_by_momentum,
    sgd,
    trace,
)
from jopt._src.transforms.momo import momo, momo_adam
from jopt._src.transforms.muon import muon, scale_by_muon
from jopt._src.transforms.nadam import scale_by_nadam
from jopt._src.transforms.noisy_sgd import add_noise, noisy_sgd
from jopt._src.transforms.nonfinite import skip_nonfinite, skipped_steps
from jopt._src.transforms.novograd import novograd, scale_by_novograd
from jopt._src.transforms.optimistic import (
    optimistic_adam,
    optimistic_gradient_descent,
    scale_by_optimistic_gradient,
)
from jopt._src.transforms.polyak import polyak_sgd, scale_by_polyak
from jopt._src.transforms.prodigy import prodigy
from jopt._src.transforms.radam import radam, scale_by_radam
from jopt._src.transforms.regularization import add_decayed_weights, add_l1_penalty
from jopt._src.transforms.rms import rmsprop, scale_by_rms, scale_by_stddev
from jopt._src.transforms.rprop import rprop, scale_by_rprop
from jopt._src.transforms.sam import sam, sam_train_step
from jopt._src.transforms.schedule_free import (
    schedule_free,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)
from jopt._src.transforms.sign import scale_by_sign, sign_sgd, signum
from jopt._src.transforms.sm3 import scale_by_sm3, sm3
from jopt._src.transforms.trust_ratio import scale_by_trust_ratio
from jopt._src.transforms.yogi import scale_by_yogi, yogi
from jopt._src.transforms.zoom_linesearch import scale_by_zoom_linesearch

__version__ = "0.1.0"

_flax_serialization.register()

__all__ = [
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
