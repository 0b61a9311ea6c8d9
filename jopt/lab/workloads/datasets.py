"""Image data for the `mlp` and `cnn` workloads, read from disk: nothing here downloads anything.

- `digits`: scikit-learn's bundled 8x8 handwritten digits (1797 images, shipped inside the
  scikit-learn package). The split is fixed, whatever the trial seed: a permutation drawn with
  NumPy seed 0; its first 300 images are the test split, the next `n_valid` (300 by default) the
  validation split, the rest (1197 by default) the training split.
- `mnist`, `fashion_mnist`: 28x28 images from files the user already has, in `data_dir`:
  either the four IDX files of the original distributions (each raw or gzipped)

      train-images-idx3-ubyte   train-labels-idx1-ubyte
      t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

  or a NumPy archive `mnist.npz` (`fashion_mnist.npz` for Fashion-MNIST) with the arrays
  `x_train`, `y_train`, `x_test`, `y_test` (Keras' layout); `data_dir` may also name the `.npz`
  file itself. The validation split is the last `n_valid` (5000 by default) training images; the
  test split is the 10000 `t10k` images.

With `cv_folds` = k (k-fold cross-validation), the usual training and validation images together
(all 1497 non-test digits, all the MNIST training images) are split into k folds by `fold_split`:
fold `cv_fold` is the validation split, the other k - 1 folds the training split. The test split
never moves.

Every split comes out as images of shape (N, H, W, 1), float32 in [0, 1], and int32 labels.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import struct
from pathlib import Path
from typing import ClassVar

import numpy as np

from jopt._src import validation
from jopt.lab.workloads import folds

DATASETS = ("digits", "mnist", "fashion_mnist")
NUM_CLASSES = 10
DIGITS_TEST = 300  # the digits test split: the first 300 images of the fixed permutation
DEFAULT_N_VALID = {"digits": 300, "mnist": 5000, "fashion_mnist": 5000}
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
NPZ_FILES = {"mnist": "mnist.npz", "fashion_mnist": "fashion_mnist.npz"}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"); data is big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclasses.dataclass(frozen=True)
class ImageDataOptions:
    """The data options of the image workloads (`mlp`, `cnn`), checked without touching a file.

    Attributes:
      dataset: 'digits' (scikit-learn's bundled 8x8 digits), 'mnist' or 'fashion_mnist' (read
        from `data_dir`).
      data_dir: the folder holding the MNIST / Fashion-MNIST files (or the .npz itself); unused
        for 'digits'. Nothing is ever downloaded.
      batch_size: examples per step, at most the training split's size; null: full batch.
      n_valid: size of the validation split; null: 300 for digits, 5000 for MNIST. Must be null
        with `cv_folds` (the folds decide the validation split).
      max_train: keep only the first `max_train` training examples (for speed); null: all. With
        `cv_folds`, applied to the fold's training split (after the fold split).
      cv_folds: k >= 2 for k-fold cross-validation: the usual training and validation examples
        together are dealt into k folds (a fixed permutation, NumPy seed 0, whatever the trial
        seed; sizes as equal as possible); fold `cv_fold` is the validation split, the other
        folds the training split. The test split is unchanged. Null: the usual fixed split.
      cv_fold: the fold used for validation, in [0, cv_folds); must be 0 without `cv_folds`.
    """

    NAME: ClassVar[str]  # the workload's registry name, for error messages

    dataset: str = "digits"
    data_dir: str | None = None
    batch_size: int | None = 64
    n_valid: int | None = None
    max_train: int | None = None
    cv_folds: int | None = None
    cv_fold: int = 0

    def __post_init__(self):
        validation.check_choice(self.NAME, "dataset", self.dataset, DATASETS)
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise validation.wrong_type(
                self.NAME, "data_dir", self.data_dir, "a path string or null"
            )
        for name in ("batch_size", "n_valid", "max_train"):
            value = getattr(self, name)
            if value is not None:
                validation.check_int(self.NAME, name, value, minimum=1)
        cv_folds, cv_fold = folds.check_folds(self.NAME, self.cv_folds, self.cv_fold)
        object.__setattr__(self, "cv_folds", cv_folds)
        object.__setattr__(self, "cv_fold", cv_fold)
        _check_n_valid_without_folds(self.NAME, self.n_valid, cv_folds)


@dataclasses.dataclass(frozen=True)
class ImageData:
    """Three splits of NumPy arrays: images (N, H, W, 1) float32 in [0, 1], labels (N,) int32."""

    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "valid": len(self.valid_y), "test": len(self.test_y)}


def check_batch_size(owner: str, batch_size: int | None, n_train: int) -> None:
    """A batch holds between 1 and `n_train` examples (None: the whole training split)."""
    if batch_size is not None and batch_size > n_train:
        raise validation.ArgumentError(
            owner,
            f"batch_size must be at most the training split's size {n_train}, got {batch_size} "
            "(use null for full-batch training).",
            argument="batch_size",
            value=batch_size,
        )


def _check_n_valid_without_folds(owner: str, n_valid: int | None, cv_folds: int | None) -> None:
    validation.require(
        owner,
        cv_folds is None or n_valid is None,
        f"n_valid must be null with cv_folds (the folds decide the validation split), got "
        f"n_valid={n_valid} with cv_folds={cv_folds}.",
        argument="n_valid",
        value=n_valid,
    )


def load(
    owner: str,
    dataset: str,
    data_dir: str | None = None,
    n_valid: int | None = None,
    max_train: int | None = None,
    cv_folds: int | None = None,
    cv_fold: int = 0,
) -> ImageData:
    """Loads `dataset` and splits it; `owner` (the workload's name) prefixes every error.

    With `cv_folds`, the training split and the validation split (of the default size; `n_valid`
    must be None) are re-split by `fold_split`, then `max_train` cuts the fold's training split.
    """
    validation.check_choice(owner, "dataset", dataset, DATASETS)
    cv_folds, cv_fold = folds.check_folds(owner, cv_folds, cv_fold)
    _check_n_valid_without_folds(owner, n_valid, cv_folds)
    if n_valid is None:
        n_valid = DEFAULT_N_VALID[dataset]
    if dataset == "digits":
        x, y = load_digits()
        train, valid, test = digits_split(n_valid, owner)
        parts = (x[train], y[train], x[valid], y[valid], x[test], y[test])
    else:
        if data_dir is None:
            raise validation.ArgumentError(
                owner,
                f"dataset {dataset!r} is read from files you already have: set data_dir to a "
                f"folder holding {_expected(dataset)} (nothing is downloaded).",
                argument="data_dir",
            )
        x_train, y_train, x_test, y_test = load_mnist_files(data_dir, dataset)
        if cv_folds is not None:
            n_valid = 0  # the folds pool all the training images, whatever the default n_valid
        validation.require(
            owner,
            n_valid < len(y_train),
            f"n_valid must be smaller than the {len(y_train)} training images of {dataset!r}, "
            f"got {n_valid}.",
            argument="n_valid",
            value=n_valid,
        )
        cut = len(y_train) - n_valid
        parts = (x_train[:cut], y_train[:cut], x_train[cut:], y_train[cut:], x_test, y_test)
    if cv_folds is not None:
        pool = len(parts[1]) + len(parts[3])
        validation.require(
            owner,
            cv_folds <= pool,
            f"cv_folds must be at most the {pool} training and validation examples of "
            f"{dataset!r}, got {cv_folds}.",
            argument="cv_folds",
            value=cv_folds,
        )
        train, valid = folds.fold_split(parts[0:2], parts[2:4], cv_folds, cv_fold)
        parts = (*train, *valid, *parts[4:])
    if max_train is not None:
        parts = (parts[0][:max_train], parts[1][:max_train], *parts[2:])
    return ImageData(*parts)


# -- digits ----------------------------------------------------------------------------------------


@functools.cache
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 bundled 8x8 digits: images (1797, 8, 8, 1) in [0, 1], int32 labels.

    Read once per process; the arrays are read-only.
    """
    from sklearn.datasets import load_digits as sklearn_digits  # bundled with the package

    bunch = sklearn_digits()
    images = (np.asarray(bunch.images, np.float32) / 16.0)[..., None]  # pixel values 0..16
    labels = np.asarray(bunch.target, np.int32)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def digits_split(n_valid: int = 300, owner: str = "digits") -> tuple[np.ndarray, ...]:
    """(train, valid, test) indices into `load_digits()`: fixed, disjoint, covering all 1797.

    The permutation comes from NumPy seed 0, never from a trial seed; the test split (its first
    300 indices) does not move when `n_valid` changes.
    """
    n = 1797
    validation.require(
        owner,
        1 <= n_valid < n - DIGITS_TEST,
        f"n_valid must be in [1, {n - DIGITS_TEST - 1}] for 'digits', got {n_valid}.",
        argument="n_valid",
        value=n_valid,
    )
    order = np.random.default_rng(0).permutation(n)
    test, valid, train = np.split(order, [DIGITS_TEST, DIGITS_TEST + n_valid])
    return train, valid, test


# -- MNIST and Fashion-MNIST from disk -------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """Reads an IDX file (raw, or gzipped when the name ends in .gz) into a NumPy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: not an IDX file (the first bytes should be 0, 0, a type code in "
            f"{sorted(_IDX_DTYPES)} and the number of dimensions; got {list(data[:4])})."
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: IDX header cut short ({len(data)} bytes).")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path}: the IDX header says shape {shape} of {dtype.name} ({expected} bytes), "
            f"but the file holds {len(data)} bytes."
        )
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def load_mnist_files(
    data_dir: str | Path, dataset: str = "mnist"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) from IDX files or an .npz; images (N, H, W, 1) in [0, 1].

    Raises FileNotFoundError naming the path and the files expected there.
    """
    root = Path(data_dir).expanduser()
    if root.is_file() and root.suffix == ".npz":
        return _from_npz(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{dataset}: data_dir {str(root)!r} does not exist or is not a folder; it should hold "
            f"{_expected(dataset)}. Nothing is downloaded."
        )
    found = {name: _find(root, name) for name in IDX_FILES}
    if all(found.values()):
        images_train, labels_train, images_test, labels_test = (
            read_idx(found[name]) for name in IDX_FILES
        )
        return (
            *_checked(root, images_train, labels_train, "train"),
            *_checked(root, images_test, labels_test, "t10k"),
        )
    npz = root / NPZ_FILES[dataset]
    if npz.is_file():
        return _from_npz(npz)
    missing = [name for name, path in found.items() if path is None]
    partly = f" (IDX files missing: {', '.join(missing)})" if len(missing) < len(IDX_FILES) else ""
    raise FileNotFoundError(
        f"{dataset}: no data in {str(root)!r}{partly}; expected {_expected(dataset)}. "
        "Nothing is downloaded."
    )


def _expected(dataset: str) -> str:
    return (
        f"the four IDX files {', '.join(IDX_FILES)} (each raw or .gz), or {NPZ_FILES[dataset]} "
        f"with the arrays {', '.join(NPZ_KEYS)}"
    )


def _find(root: Path, name: str) -> Path | None:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _from_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in NPZ_KEYS if key not in archive.files]
        if missing:
            raise ValueError(
                f"{path}: missing the arrays {', '.join(missing)} (found {archive.files}); "
                f"expected {', '.join(NPZ_KEYS)}."
            )
        x_train, y_train, x_test, y_test = (archive[key] for key in NPZ_KEYS)
    return (
        *_checked(path, x_train, y_train, "train"),
        *_checked(path, x_test, y_test, "test"),
    )


def _checked(
    where: Path, images: np.ndarray, labels: np.ndarray, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) or (N, H, W, 1) and labels (N,) in [0, 10) -> float32 [0, 1], int32."""
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"{where}: {split} images must have shape (N, H, W) and labels (N,), got "
            f"{images.shape} and {labels.shape}."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(
            f"{where}: {split} labels must be in [0, {NUM_CLASSES}), got values from "
            f"{labels.min()} to {labels.max()}."
        )
    if np.issubdtype(images.dtype, np.integer):
        images = images.astype(np.float32) / 255.0
    return images.astype(np.float32)[..., None], labels.astype(np.int32)
