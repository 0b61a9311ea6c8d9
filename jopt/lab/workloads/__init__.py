"""The workloads a config can name, each a module with an `Options` dataclass and `build`.

- `linear_regression`: generated linear data, half mean squared error; metrics loss and
  excess_loss (the gap to the split's least-squares optimum).
- `logistic_regression`: generated data from a linear teacher with label noise, binary
  cross-entropy; metrics loss and accuracy.
- `mlp`: a multilayer perceptron (flax.nnx) on digits, MNIST or Fashion-MNIST; metrics loss and
  accuracy.
- `cnn`: a small convnet (flax.nnx) on the same data; metrics loss and accuracy.
- `functions2d`: 2-D test functions (canyon, rosenbrock, beale, saddle) whose optimizer paths
  are drawn over their contours; metrics loss and distance to the minimizer.

See `jopt.lab.workloads.base` for the `Workload` every `build` returns. Digits ship with
scikit-learn; MNIST and Fashion-MNIST are read from files the user already has. Nothing here
downloads anything.
"""

from __future__ import annotations

from types import ModuleType

from jopt.lab.workloads import cnn, functions2d, linear_regression, logistic_regression, mlp

WORKLOADS: dict[str, ModuleType] = {
    "linear_regression": linear_regression,
    "logistic_regression": logistic_regression,
    "mlp": mlp,
    "cnn": cnn,
    "functions2d": functions2d,
}

__all__ = ["WORKLOADS"]
