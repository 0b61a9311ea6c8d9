"""Linear regression on generated data: the classic first optimization problem.

    x ~ N(0, I_dim),   y = x . w* + b* + noise * N(0, 1),   w* ~ N(0, I_dim), b* ~ N(0, 1)

The data (teacher and all three splits) comes from `data_seed`, never from the trial seed, so every
seed trains on the same problem; each split has its own stream, so changing `n_valid` leaves the
training data unchanged. With `cv_folds`, the training and validation examples are then re-split
into folds (see `base.GeneratedDataOptions`); the test split stays as generated. The model is
`x . w + b`, the loss half the mean squared error

    L(w, b) = 1/(2n) sum_i (x_i . w + b - y_i)^2.

Metrics: `loss`, and `excess_loss` = L(w, b) - min L on the same examples (>= 0; the optimization
error, free of the noise floor). It is computed as 1/(2n) ||Q^T r||^2, where r is the residual and
Q an orthonormal basis of the columns of [x, 1]: the part of the residual that (w, b) can still
remove. Unlike a difference of two nearly equal losses, this keeps its relative precision in
float32 down to ~1e-12. The least-squares optimum of each split (NumPy float64 `lstsq`) is in
`info`, so `excess_loss == loss - info['optimal_loss'][split]` up to rounding.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jopt._src import validation
from jopt.lab.workloads.base import GeneratedDataOptions, Split, Workload, fold_generated

NAME = "linear_regression"
INIT_SCALE = 0.01  # std of the initial weights and bias


@dataclasses.dataclass(frozen=True)
class Options(GeneratedDataOptions):
    """Options of the `linear_regression` workload.

    Attributes:
      n_train, n_valid, n_test: examples in each split (each >= 1).
      dim: number of input features (>= 1).
      data_seed: seed of the generated data (teacher and splits), the same for every trial seed.
      batch_size: examples per step, in [1, training split's size]; null: full batch.
      cv_folds, cv_fold: k-fold cross-validation on the n_train + n_valid examples (see
        `base.GeneratedDataOptions`); null, 0: the usual fixed split.
      noise: std of the Gaussian label noise (>= 0); the optimal loss is about noise**2 / 2.
    """

    NAME: ClassVar[str] = NAME
    noise: float = 0.1

    def __post_init__(self):
        super().__post_init__()
        validation.check_number(NAME, "noise", self.noise, validation.NON_NEGATIVE)


def metric_names(options: Options) -> tuple[str, ...]:
    """The keys of `metrics` (known from the options alone, before building anything)."""
    return ("loss", "excess_loss")


def init_linear(key: jax.Array, dim: int) -> dict[str, jax.Array]:
    """{'w': (dim,), 'b': ()} float32, each entry N(0, INIT_SCALE^2)."""
    w_key, b_key = jax.random.split(key)
    return {
        "w": INIT_SCALE * jax.random.normal(w_key, (dim,), jnp.float32),
        "b": INIT_SCALE * jax.random.normal(b_key, (), jnp.float32),
    }


def _lstsq(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The float64 least-squares (w, b) of a split, as one vector [w, b], and its loss."""
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    theta = np.linalg.lstsq(design, y, rcond=None)[0]
    return theta, float(0.5 * np.mean((design @ theta - y) ** 2))


def build(options: Options) -> Workload:
    dim, seed = options.dim, options.data_seed
    teacher = np.random.default_rng((seed, 0))
    w_star, b_star = teacher.normal(size=dim), float(teacher.normal())
    splits64 = {}
    sizes = {"train": options.n_train, "valid": options.n_valid, "test": options.n_test}
    for i, (split, n) in enumerate(sizes.items(), start=1):
        rng = np.random.default_rng((seed, i))
        x = rng.normal(size=(n, dim))
        splits64[split] = (x, x @ w_star + b_star + options.noise * rng.normal(size=n))
    splits64 = fold_generated(options, splits64)
    optima = {split: _lstsq(x, y) for split, (x, y) in splits64.items()}

    def loss(params, x, y):
        return 0.5 * jnp.mean((x @ params["w"] + params["b"] - y) ** 2)

    def metrics(params, x, y):
        residual = x @ params["w"] + params["b"] - y
        design = jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)
        basis = jnp.linalg.qr(design, mode="reduced")[0]
        return {
            "loss": 0.5 * jnp.mean(residual**2),
            "excess_loss": 0.5 * jnp.sum((basis.T @ residual) ** 2) / x.shape[0],
        }

    train_theta = optima["train"][0]
    info = {
        "teacher": {"w": w_star.tolist(), "b": b_star},
        "optimum": {"w": train_theta[:-1].tolist(), "b": float(train_theta[-1])},
        "optimal_loss": {split: loss64 for split, (_, loss64) in optima.items()},
    }
    as_split = {
        split: Split(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
        for split, (x, y) in splits64.items()
    }
    return Workload(
        name=NAME,
        init_params=lambda key: init_linear(key, dim),
        loss=loss,
        metrics=metrics,
        **as_split,
        batch_size=options.batch_size,
        info=info,
    )
