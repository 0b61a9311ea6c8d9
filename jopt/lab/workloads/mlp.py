"""A multilayer perceptron (flax.nnx) classifying images: digits, MNIST or Fashion-MNIST.

Dense layers of `hidden_sizes` units with ReLU, then a dense layer to the 10 classes; trained with
softmax cross-entropy. The parameters are the plain nested dict of the model's arrays
(`nnx.split(model)` then `.to_pure_dict()`); `loss` and `metrics` rebuild the model from them with
`nnx.merge`. `classifier` below is shared with the `cnn` workload.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jopt._src import validation
from jopt.lab.workloads import datasets
from jopt.lab.workloads.base import Split, Workload

NAME = "mlp"
EVAL_CHUNK = 2048  # examples per forward pass when evaluating a whole split (bounds memory)


@dataclasses.dataclass(frozen=True)
class Options(datasets.ImageDataOptions):
    """Options of the `mlp` workload: the data options of `datasets.ImageDataOptions`
    (dataset, data_dir, batch_size, n_valid, max_train, cv_folds, cv_fold), and

    Attributes:
      hidden_sizes: units of each hidden layer (each >= 1); () makes a linear softmax model.
    """

    NAME: ClassVar[str] = NAME
    hidden_sizes: tuple[int, ...] = (64,)

    def __post_init__(self):
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        super().__post_init__()
        for i, size in enumerate(self.hidden_sizes):
            validation.check_int(NAME, f"hidden_sizes[{i}]", size, minimum=1)


def metric_names(options: Options) -> tuple[str, ...]:
    """The keys of `metrics` (known from the options alone, before loading any data)."""
    return ("loss", "accuracy")


class MLP(nnx.Module):
    """Flatten, then dense + ReLU for each hidden size, then dense to `num_classes` logits."""

    def __init__(self, in_features: int, hidden_sizes: tuple[int, ...], num_classes: int, rngs):
        sizes = (in_features, *hidden_sizes)
        self.hidden = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.output = nnx.Linear(sizes[-1], num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for layer in self.hidden:
            x = nnx.relu(layer(x))
        return self.output(x)


def classifier(
    name: str,
    make_model: Callable[[nnx.Rngs], nnx.Module],
    data: datasets.ImageData,
    batch_size: int | None,
    info: dict[str, Any],
) -> Workload:
    """A softmax cross-entropy workload for `make_model` on `data` (metrics: loss, accuracy)."""
    datasets.check_batch_size(name, batch_size, len(data.train_y))
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: make_model(nnx.Rngs(0))))

    def init_params(key: jax.Array) -> dict:
        return nnx.to_pure_dict(nnx.state(make_model(nnx.Rngs(key))))

    def logits(params, x):
        return nnx.merge(graphdef, params)(x)

    def loss(params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(logits(params, x), y).mean()

    def sums(params, x, y):
        z = logits(params, x)
        losses = optax.softmax_cross_entropy_with_integer_labels(z, y)
        return jnp.stack([losses.sum(), (jnp.argmax(z, axis=-1) == y).sum().astype(z.dtype)])

    def metrics(params, x, y):
        n = x.shape[0]
        full = (n // EVAL_CHUNK) * EVAL_CHUNK
        total = sums(params, x[full:], y[full:])
        if full:
            chunks_x = x[:full].reshape(-1, EVAL_CHUNK, *x.shape[1:])
            chunks_y = y[:full].reshape(-1, EVAL_CHUNK)
            per_chunk = jax.lax.map(lambda xy: sums(params, *xy), (chunks_x, chunks_y))
            total = total + per_chunk.sum(axis=0)
        return {"loss": total[0] / n, "accuracy": total[1] / n}

    n_params = sum(leaf.size for leaf in jax.tree.leaves(abstract))
    return Workload(
        name=name,
        init_params=init_params,
        loss=loss,
        metrics=metrics,
        train=Split(jnp.asarray(data.train_x), jnp.asarray(data.train_y)),
        valid=Split(jnp.asarray(data.valid_x), jnp.asarray(data.valid_y)),
        test=Split(jnp.asarray(data.test_x), jnp.asarray(data.test_y)),
        batch_size=batch_size,
        info={**info, "num_params": int(n_params), "split_sizes": data.sizes()},
    )


def load_data(options: datasets.ImageDataOptions) -> datasets.ImageData:
    """The splits the data options of `mlp` or `cnn` ask for (errors prefixed by their NAME)."""
    return datasets.load(
        options.NAME,
        options.dataset,
        options.data_dir,
        options.n_valid,
        options.max_train,
        options.cv_folds,
        options.cv_fold,
    )


def build(options: Options) -> Workload:
    data = load_data(options)
    in_features = math.prod(data.image_shape)
    return classifier(
        NAME,
        lambda rngs: MLP(in_features, options.hidden_sizes, datasets.NUM_CLASSES, rngs),
        data,
        options.batch_size,
        {"dataset": options.dataset, "image_shape": list(data.image_shape)},
    )
