"""A small convolutional network (flax.nnx) classifying images: digits, MNIST or Fashion-MNIST.

For each entry of `channels`: a 3x3 convolution ('SAME' padding), ReLU, and 2x2 pooling (stride
2; average pooling by default, max pooling with `pooling: max`); then a dense layer to the 10
classes. With the default (16, 32) on 8x8 digits the feature maps go 8x8x1 -> 4x4x16 -> 2x2x32
-> 10 logits; on 28x28 MNIST, 28 -> 14 -> 7 (odd sizes round down). Trained with softmax
cross-entropy; parameters, loss and metrics as in `mlp` (a plain dict of arrays). The classic
tutorial CNN (one 3x3 conv with 32 filters, 2x2 max pooling, a dense layer, batch 32) is
`channels: [32], pooling: max, batch_size: 32`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
from flax import nnx

from jopt._src import validation
from jopt.lab.workloads import datasets, mlp
from jopt.lab.workloads.base import Workload

NAME = "cnn"
POOLING = {"avg": nnx.avg_pool, "max": nnx.max_pool}  # 2x2 windows, stride 2, 'VALID' padding


@dataclasses.dataclass(frozen=True)
class Options(datasets.ImageDataOptions):
    """Options of the `cnn` workload: the data options of `datasets.ImageDataOptions`
    (dataset, data_dir, batch_size, n_valid, max_train, cv_folds, cv_fold), and

    Attributes:
      channels: output channels of each conv layer (each >= 1, at least one layer); every layer
        halves the image, so 8x8 digits allow at most 3 layers.
      pooling: the 2x2, stride-2 pooling after each conv: 'avg' (average, the default) or 'max'.
    """

    NAME: ClassVar[str] = NAME
    channels: tuple[int, ...] = (16, 32)
    pooling: str = "avg"

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(self.channels))
        super().__post_init__()
        validation.require(
            NAME,
            len(self.channels) >= 1,
            "channels must list at least one conv layer, got ().",
            argument="channels",
            value=self.channels,
        )
        for i, size in enumerate(self.channels):
            validation.check_int(NAME, f"channels[{i}]", size, minimum=1)
        validation.check_choice(NAME, "pooling", self.pooling, tuple(POOLING))


def metric_names(options: Options) -> tuple[str, ...]:
    """The keys of `metrics` (known from the options alone, before loading any data)."""
    return ("loss", "accuracy")


class CNN(nnx.Module):
    """(3x3 conv, ReLU, 2x2 pool) per entry of `channels`, then dense to the logits.

    `pooling` ('avg' or 'max') names the pooling; it holds no parameters.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels,
        num_classes: int,
        rngs,
        pooling: str = "avg",
    ):
        self.pooling = pooling
        height, width, in_channels = image_shape
        sizes = (in_channels, *channels)
        self.convs = nnx.List(
            [
                nnx.Conv(a, b, kernel_size=(3, 3), padding="SAME", rngs=rngs)
                for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        )
        shrink = 2 ** len(channels)
        self.output = nnx.Linear(
            (height // shrink) * (width // shrink) * sizes[-1], num_classes, rngs=rngs
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        pool = POOLING[self.pooling]
        for conv in self.convs:
            x = pool(nnx.relu(conv(x)), window_shape=(2, 2), strides=(2, 2))
        return self.output(x.reshape(x.shape[0], -1))


def build(options: Options) -> Workload:
    data = mlp.load_data(options)
    image_shape = data.image_shape
    smallest = min(image_shape[:2]) // 2 ** len(options.channels)
    validation.require(
        NAME,
        smallest >= 1,
        f"channels has {len(options.channels)} conv layers, each halving the image, but the "
        f"{options.dataset!r} images are only {image_shape[0]}x{image_shape[1]}; use at most "
        f"{min(image_shape[:2]).bit_length() - 1} layers.",
        argument="channels",
        value=options.channels,
    )
    return mlp.classifier(
        NAME,
        lambda rngs: CNN(
            image_shape, options.channels, datasets.NUM_CLASSES, rngs, options.pooling
        ),
        data,
        options.batch_size,
        {"dataset": options.dataset, "image_shape": list(image_shape)},
    )
