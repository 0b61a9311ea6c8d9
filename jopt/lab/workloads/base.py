"""What a workload is: data, a model with its initial parameters, a loss and metrics.

A workload module defines an `Options` frozen dataclass (the config keys it accepts, with
defaults and types; the config loader validates against it), `build(options) -> Workload`, and
`metric_names(options)`, the keys its `metrics` return (so that a config's target metric is
checked before any data is loaded).
Everything a training step touches is a pure function of arrays, so the runner can jit it and
vmap it over seeds; the data lives on the device and batches are drawn by index from the step
number, which makes every run exactly resumable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import numpy as np

from jopt._src import validation
from jopt.lab.workloads import datasets, folds

Params = Any
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a dataset: inputs and targets, first axis = examples."""

    x: jax.Array
    y: jax.Array

    @property
    def size(self) -> int:
        return int(self.x.shape[0])


@dataclasses.dataclass(frozen=True)
class Workload:
    """A training problem.

    Attributes:
      name: the registry name.
      init_params: key -> params (a pytree of float32 arrays).
      loss: (params, x, y) -> scalar mean loss over the batch (differentiated by the runner).
      metrics: (params, x, y) -> {"loss": ..., and e.g. "accuracy": ...}, evaluated on whole
        splits; every value a scalar.
      train, valid, test: the splits; None for workloads without data (2-D test functions).
      batch_size: examples per step; None for full-batch (or data-free) training.
      info: facts for metadata and plots (e.g. the closed-form optimum loss, the 2-D function's
        minimizer and plot window).
      record_params: log the parameters at every logged step (2-D paths).
    """

    name: str
    init_params: Callable[[jax.Array], Params]
    loss: Callable[[Params, Any, Any], jax.Array]
    metrics: Callable[[Params, Any, Any], Metrics]
    train: Split | None = None
    valid: Split | None = None
    test: Split | None = None
    batch_size: int | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    record_params: bool = False


@dataclasses.dataclass(frozen=True)
class GeneratedDataOptions:
    """The options every workload on generated data has (see its own `Options` for the rest).

    Attributes:
      n_train, n_valid, n_test: examples in each split (each >= 1). With `cv_folds`, n_train +
        n_valid is the number of examples the folds share.
      dim: number of input features (>= 1).
      data_seed: seed of the generated data (teacher and splits), the same for every trial seed.
      batch_size: examples per step, in [1, training split's size]; null: full batch.
      cv_folds: k >= 2 for k-fold cross-validation: the n_train + n_valid examples of the usual
        training and validation splits are dealt into k folds (a fixed permutation, NumPy seed 0,
        whatever the trial seed and data_seed; sizes as equal as possible, see
        `folds.fold_indices`); fold `cv_fold` is the validation split, the other folds the
        training split. The test split is unchanged. Null: the usual fixed split.
      cv_fold: the fold used for validation, in [0, cv_folds); must be 0 without `cv_folds`.
    """

    NAME: ClassVar[str]  # the workload's registry name, for error messages

    n_train: int = 512
    n_valid: int = 256
    n_test: int = 256
    dim: int = 8
    data_seed: int = 0
    batch_size: int | None = 32
    cv_folds: int | None = None
    cv_fold: int = 0

    def __post_init__(self):
        for name in ("n_train", "n_valid", "n_test", "dim"):
            validation.check_int(self.NAME, name, getattr(self, name), minimum=1)
        validation.check_int(self.NAME, "data_seed", self.data_seed, minimum=0)
        if self.batch_size is not None:
            validation.check_int(self.NAME, "batch_size", self.batch_size, minimum=1)
        cv_folds, cv_fold = folds.check_folds(self.NAME, self.cv_folds, self.cv_fold)
        object.__setattr__(self, "cv_folds", cv_folds)
        object.__setattr__(self, "cv_fold", cv_fold)
        if cv_folds is not None:
            pool = self.n_train + self.n_valid
            validation.require(
                self.NAME,
                cv_folds <= pool,
                f"cv_folds must be at most n_train + n_valid = {pool} (the examples the folds "
                f"share), got {cv_folds}.",
                argument="cv_folds",
                value=cv_folds,
            )
        datasets.check_batch_size(self.NAME, self.batch_size, self.split_sizes()["train"])

    def split_sizes(self) -> dict[str, int]:
        """Examples in each split: n_train, n_valid, n_test, or with `cv_folds` the fold's."""
        if self.cv_folds is None:
            return {"train": self.n_train, "valid": self.n_valid, "test": self.n_test}
        pool = self.n_train + self.n_valid
        train, valid = folds.fold_sizes(pool, self.cv_folds, self.cv_fold)
        return {"train": train, "valid": valid, "test": self.n_test}


def fold_generated(
    options: GeneratedDataOptions, splits: dict[str, tuple[np.ndarray, ...]]
) -> dict[str, tuple[np.ndarray, ...]]:
    """The generated `splits` ({'train', 'valid', 'test'} -> arrays with examples first) with
    train and valid re-split into fold `options.cv_fold` (see `folds.fold_split`); unchanged
    without `cv_folds`."""
    if options.cv_folds is None:
        return splits
    train, valid = folds.fold_split(
        splits["train"], splits["valid"], options.cv_folds, options.cv_fold
    )
    return {**splits, "train": train, "valid": valid}
