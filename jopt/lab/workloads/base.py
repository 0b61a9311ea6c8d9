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
from typing import Any

import jax

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
