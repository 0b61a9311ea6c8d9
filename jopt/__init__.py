"""jopt: JAX optimizers as optax transforms, with hyperparameters in state, validated, exact."""

from jopt import keras, schedules, torch
from jopt._src.adam_family import adam, adamax, adamw, amsgrad, lion, nadam, nadamw, radam
from jopt._src.hparams import HParams, current_lr, get_hparams, set_hparams
from jopt._src.optimizers import adadelta, adagrad, rmsprop, sgd
from jopt._src.schedules.plateau import reduce_on_plateau
from jopt._src.transforms.adadelta import scale_by_adadelta
from jopt._src.transforms.adagrad import scale_by_rss
from jopt._src.transforms.adam import scale_by_adam, scale_by_adamax, scale_by_amsgrad
from jopt._src.transforms.clipping import clip, clip_by_global_norm, clip_by_leaf_norm, clipped_norm
from jopt._src.transforms.learning_rate import scale_by_learning_rate
from jopt._src.transforms.lion import scale_by_lion
from jopt._src.transforms.momentum import ema, momentum_lr_inside, scale_by_momentum, trace
from jopt._src.transforms.nadam import scale_by_nadam
from jopt._src.transforms.nonfinite import skip_nonfinite, skipped_steps
from jopt._src.transforms.radam import scale_by_radam
from jopt._src.transforms.regularization import add_decayed_weights, add_l1_penalty
from jopt._src.transforms.rms import scale_by_rms, scale_by_stddev
from jopt.schedules import *  # noqa: F403 - the schedules are part of the public API

__version__ = "0.1.0"

__all__ = [
    *schedules.__all__,
    "clip_by_leaf_norm",
    "keras",
    "reduce_on_plateau",
    "scale_by_nadam",
    "schedules",
    "torch",
    "HParams",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "add_decayed_weights",
    "add_l1_penalty",
    "amsgrad",
    "clip",
    "clip_by_global_norm",
    "clipped_norm",
    "current_lr",
    "ema",
    "get_hparams",
    "lion",
    "momentum_lr_inside",
    "nadam",
    "nadamw",
    "radam",
    "rmsprop",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_amsgrad",
    "scale_by_learning_rate",
    "scale_by_lion",
    "scale_by_momentum",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_stddev",
    "set_hparams",
    "sgd",
    "skip_nonfinite",
    "skipped_steps",
    "trace",
]
