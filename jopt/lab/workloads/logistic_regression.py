"""Logistic regression on generated data: a linear teacher with label noise.

    x ~ N(0, I_dim),   label = [x . w* + b* > 0], flipped with probability `label_noise`,
    w* ~ N(0, I_dim),   b* ~ N(0, 0.25)

The data comes from `data_seed`, never from the trial seed; each split has its own stream (with
`cv_folds`, the training and validation examples are then re-split into folds, see
`base.GeneratedDataOptions`). The model is p(label = 1 | x) = sigmoid(x . w + b), trained with
binary cross-entropy on the logits. Label noise keeps the data non-separable, so the loss has a
finite minimizer; the best possible accuracy is about 1 - label_noise
(`info['teacher_accuracy']` gives the teacher's exact accuracy on each split). Metrics: `loss`,
`accuracy`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import optax

from jopt._src import validation
from jopt.lab.workloads.base import GeneratedDataOptions, Split, Workload, fold_generated
from jopt.lab.workloads.linear_regression import init_linear

NAME = "logistic_regression"


@dataclasses.dataclass(frozen=True)
class Options(GeneratedDataOptions):
    """Options of the `logistic_regression` workload.

    Attributes:
      n_train, n_valid, n_test: examples in each split (each >= 1).
      dim: number of input features (>= 1).
      data_seed: seed of the generated data (teacher and splits), the same for every trial seed.
      batch_size: examples per step, in [1, training split's size]; null: full batch.
      cv_folds, cv_fold: k-fold cross-validation on the n_train + n_valid examples (see
        `base.GeneratedDataOptions`); null, 0: the usual fixed split.
      label_noise: probability that a label is flipped, in [0, 0.5); 0 makes the training data
        separable, so the loss has no minimizer and the weights grow without bound.
    """

    NAME: ClassVar[str] = NAME
    label_noise: float = 0.1

    def __post_init__(self):
        super().__post_init__()
        validation.check_number(
            NAME, "label_noise", self.label_noise, validation.Range(0.0, 0.5, hi_open=True)
        )


def metric_names(options: Options) -> tuple[str, ...]:
    """The keys of `metrics` (known from the options alone, before building anything)."""
    return ("loss", "accuracy")


def build(options: Options) -> Workload:
    dim, seed = options.dim, options.data_seed
    teacher = np.random.default_rng((seed, 0))
    w_star, b_star = teacher.normal(size=dim), 0.5 * float(teacher.normal())
    generated = {}
    sizes = {"train": options.n_train, "valid": options.n_valid, "test": options.n_test}
    for i, (split, n) in enumerate(sizes.items(), start=1):
        rng = np.random.default_rng((seed, i))
        x = rng.normal(size=(n, dim))
        clean = x @ w_star + b_star > 0
        generated[split] = (x, clean ^ (rng.random(n) < options.label_noise), clean)
    generated = fold_generated(options, generated)
    teacher_accuracy = {
        split: float(np.mean(labels == clean)) for split, (_, labels, clean) in generated.items()
    }
    splits = {
        split: Split(jnp.asarray(x, jnp.float32), jnp.asarray(labels, jnp.float32))
        for split, (x, labels, _) in generated.items()
    }

    def logits(params, x):
        return x @ params["w"] + params["b"]

    def loss(params, x, y):
        return optax.sigmoid_binary_cross_entropy(logits(params, x), y).mean()

    def metrics(params, x, y):
        z = logits(params, x)
        return {
            "loss": optax.sigmoid_binary_cross_entropy(z, y).mean(),
            "accuracy": jnp.mean((z > 0) == (y > 0.5)).astype(z.dtype),
        }

    return Workload(
        name=NAME,
        init_params=lambda key: init_linear(key, dim),
        loss=loss,
        metrics=metrics,
        **splits,
        batch_size=options.batch_size,
        info={
            "teacher": {"w": w_star.tolist(), "b": b_star},
            "teacher_accuracy": teacher_accuracy,
        },
    )
