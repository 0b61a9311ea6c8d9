"""A small convolutional network (flax.nnx) classifying images: digits, MNIST or Fashion-MNIST.

For each entry of `channels`: a 3x3 convolution ('SAME' padding), ReLU, and 2x2 average pooling
(stride 2); then a dense layer to the 10 classes. With the default (16, 32) on 8x8 digits the
feature maps go 8x8x1 -> 4x4x16 -> 2x2x32 -> 10 logits; on 28x28 MNIST, 28 -> 14 -> 7. Trained
with softmax cross-entropy; parameters, loss and metrics as in `mlp` (a plain dict of arrays).
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


@dataclasses.dataclass(frozen=True)
class Options(datasets.ImageDataOptions):
    """Options of the `cnn` workload: the data options of `datasets.ImageDataOptions`
    (dataset, data_dir, batch_size, n_valid, max_train), and

    Attributes:
      channels: output channels of each conv layer (each >= 1, at least one layer); every layer
        halves the image, so 8x8 digits allow at most 3 layers.
    """

    NAME: ClassVar[str] = NAME
    channels: tuple[int, ...] = (16, 32)

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


def metric_names(options: Options) -> tuple[str, ...]:
    """The keys of `metrics` (known from the options alone, before loading any data)."""
    return ("loss", "accuracy")


class CNN(nnx.Module):
    """(3x3 conv, ReLU, 2x2 average pool) per entry of `channels`, then dense to the logits."""

    def __init__(self, image_shape: tuple[int, int, int], channels, num_classes: int, rngs):
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
        for conv in self.convs:
            x = nnx.avg_pool(nnx.relu(conv(x)), window_shape=(2, 2), strides=(2, 2))
        return self.output(x.reshape(x.shape[0], -1))


def build(options: Options) -> Workload:
    data = datasets.load(
        NAME, options.dataset, options.data_dir, options.n_valid, options.max_train
    )
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
        lambda rngs: CNN(image_shape, options.channels, datasets.NUM_CLASSES, rngs),
        data,
        options.batch_size,
        {"dataset": options.dataset, "image_shape": list(image_shape)},
    )
