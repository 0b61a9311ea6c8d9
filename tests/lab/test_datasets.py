"""MNIST and Fashion-MNIST read from files already on disk, in every layout the docs promise;
the fixed digits split; the cross-validation folds of both.

The files here are written by the tests themselves: small synthetic images in the real formats
(IDX raw and gzipped, Keras' .npz), so nothing is downloaded and nothing large is needed. Class k
has a bright band at rows 2k..2k+2, which an MLP learns in a few steps.
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import struct

import jax
import numpy as np
import optax
import pytest

import jopt
from jopt.lab.workloads import WORKLOADS, datasets, folds

N_TRAIN, N_TEST = 60, 20
IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C}
IDX_CODES.update({np.float32: 0x0D, np.float64: 0x0E})


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels, strict=True):
        image[2 * label : 2 * label + 3] = 230
    return images, labels


def _write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, IDX_CODES[array.dtype.type], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def _splits():
    return (*_images(N_TRAIN, 0), *_images(N_TEST, 1))


def _idx_folder(tmp_path, gzipped=(False, True, True, False)):
    folder = tmp_path / "idx"
    folder.mkdir()
    for name, array, gz in zip(datasets.IDX_FILES, _splits(), gzipped, strict=True):
        _write_idx(folder / name, array, gz)
    return folder


def _npz(path):
    np.savez(path, **dict(zip(datasets.NPZ_KEYS, _splits(), strict=True)))
    return path


def _check_splits(data: datasets.ImageData, n_valid: int) -> None:
    x_train, y_train, x_test, y_test = _splits()
    cut = N_TRAIN - n_valid
    assert data.sizes() == {"train": cut, "valid": n_valid, "test": N_TEST}
    assert data.image_shape == (28, 28, 1)
    for x, y, want_x, want_y in [
        (data.train_x, data.train_y, x_train[:cut], y_train[:cut]),
        (data.valid_x, data.valid_y, x_train[cut:], y_train[cut:]),  # the last training images
        (data.test_x, data.test_y, x_test, y_test),
    ]:
        assert x.dtype == np.float32 and y.dtype == np.int32
        np.testing.assert_array_equal(x[..., 0], want_x / np.float32(255.0))
        np.testing.assert_array_equal(y, want_y)


@pytest.mark.parametrize("dtype", list(IDX_CODES), ids=lambda t: t.__name__)
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_read_idx_round_trips_every_type_code(tmp_path, dtype, gz):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    _write_idx(tmp_path / "a", array, gz)
    got = datasets.read_idx(tmp_path / ("a.gz" if gz else "a"))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


def test_idx_files_raw_and_gzipped_load_into_fixed_splits(tmp_path):
    folder = _idx_folder(tmp_path)
    _check_splits(datasets.load("mlp", "mnist", str(folder), n_valid=12), 12)


@pytest.mark.parametrize("where", ["folder", "file"])
def test_a_keras_npz_loads_from_its_folder_or_by_its_own_path(tmp_path, where):
    path = _npz(tmp_path / "fashion_mnist.npz")
    data_dir = tmp_path if where == "folder" else path
    data = datasets.load("cnn", "fashion_mnist", str(data_dir), n_valid=10, max_train=30)
    assert data.sizes() == {"train": 30, "valid": 10, "test": N_TEST}
    full = datasets.load("cnn", "fashion_mnist", str(data_dir), n_valid=10)
    _check_splits(full, 10)
    np.testing.assert_array_equal(data.train_x, full.train_x[:30])


def test_images_with_a_channel_axis_and_float_pixels_are_accepted(tmp_path):
    x_train, y_train, x_test, y_test = _splits()
    arrays = [x_train[..., None] / np.float32(255.0), y_train, x_test / 255.0, y_test]
    np.savez(tmp_path / "mnist.npz", **dict(zip(datasets.NPZ_KEYS, arrays, strict=True)))
    _check_splits(datasets.load("mlp", "mnist", str(tmp_path), n_valid=5), 5)


def _corrupt_header(path):
    path.write_bytes(b"\x01\x02\x03\x04rest")


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-7])


@pytest.mark.parametrize(
    ("damage", "error", "words"),
    [
        (lambda f: f.rename(f.with_name("elsewhere")), FileNotFoundError, "is not a folder"),
        (lambda f: [p.unlink() for p in f.iterdir()], FileNotFoundError, "no data in"),
        (lambda f: _corrupt_header(f / datasets.IDX_FILES[0]), ValueError, "not an IDX file"),
        (lambda f: _truncate(f / datasets.IDX_FILES[0]), ValueError, "but the file holds"),
    ],
    ids=["missing-folder", "empty-folder", "bad-header", "truncated"],
)
def test_missing_or_damaged_files_raise_naming_the_path(tmp_path, damage, error, words):
    folder = _idx_folder(tmp_path, gzipped=(False,) * 4)
    damage(folder)
    with pytest.raises(error, match=words) as raised:
        datasets.load("mlp", "mnist", str(folder))
    assert str(folder) in str(raised.value)


def test_a_partial_idx_set_names_the_missing_files_and_nothing_is_downloaded(tmp_path):
    folder = _idx_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="IDX files missing: t10k-labels-idx1-ubyte"):
        datasets.load("mlp", "mnist", str(folder))
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        datasets.load("mlp", "mnist", str(folder))


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"x_train": np.zeros((4, 28, 28), np.uint8)}, "missing the arrays y_train, x_test"),
        (
            {
                "x_train": np.zeros((4, 28, 28)),
                "y_train": np.full(4, 10),
                "x_test": np.zeros((2, 28, 28)),
                "y_test": np.zeros(2),
            },
            r"train labels must be in \[0, 10\), got values from 10 to 10",
        ),
        (
            {
                "x_train": np.zeros((4, 28)),
                "y_train": np.zeros(4),
                "x_test": np.zeros((2, 28, 28)),
                "y_test": np.zeros(2),
            },
            r"train images must have shape \(N, H, W\)",
        ),
    ],
    ids=["missing-arrays", "label-out-of-range", "bad-image-shape"],
)
def test_a_bad_npz_is_refused_with_what_is_wrong(tmp_path, arrays, words):
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(ValueError, match=words):
        datasets.load("mlp", "mnist", str(tmp_path / "mnist.npz"))


def test_n_valid_must_leave_training_images(tmp_path):
    _npz(tmp_path / "mnist.npz")
    with pytest.raises(ValueError, match=f"n_valid must be smaller than the {N_TRAIN} training"):
        datasets.load("mlp", "mnist", str(tmp_path), n_valid=N_TRAIN)


def test_the_mlp_trains_on_mnist_files_from_disk(tmp_path):
    folder = _idx_folder(tmp_path)
    module = WORKLOADS["mlp"]
    options = module.Options(dataset="mnist", data_dir=str(folder), n_valid=10, batch_size=None)
    workload = module.build(options)
    assert workload.train.size == N_TRAIN - 10
    params = workload.init_params(jax.random.key(0))
    tx = jopt.adam(0.01)

    @jax.jit
    def step(params, state):
        grads = jax.grad(workload.loss)(params, workload.train.x, workload.train.y)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    before = workload.metrics(params, workload.valid.x, workload.valid.y)
    state = tx.init(params)
    for _ in range(20):
        params, state = step(params, state)
    after = workload.metrics(params, workload.valid.x, workload.valid.y)
    assert after["loss"] < 0.5 * before["loss"], (before, after)
    assert after["accuracy"] >= 0.9, after


# -- cross-validation folds ------------------------------------------------------------------------


def _examples(x: np.ndarray, y: np.ndarray) -> collections.Counter:
    """The multiset of (image, label) examples: an image that appears twice counts twice."""
    pairs = zip(x, y, strict=True)
    return collections.Counter(image.tobytes() + label.tobytes() for image, label in pairs)


def test_digits_without_folds_are_the_fixed_permutation_split():
    x, y = datasets.load_digits()
    order = np.random.default_rng(0).permutation(1797)
    data = datasets.load("mlp", "digits")
    for got_x, got_y, index in [
        (data.train_x, data.train_y, order[600:]),
        (data.valid_x, data.valid_y, order[300:600]),
        (data.test_x, data.test_y, order[:300]),
    ]:
        np.testing.assert_array_equal(got_x, x[index])
        np.testing.assert_array_equal(got_y, y[index])


def _check_folds_partition(folds: list[datasets.ImageData], usual: datasets.ImageData) -> None:
    """The folds' validation splits partition train ∪ valid of `usual`, each fold trains on the
    others, and the test split is the usual one."""
    pool = _examples(usual.train_x, usual.train_y) + _examples(usual.valid_x, usual.valid_y)
    every_valid = collections.Counter()
    for i, fold in enumerate(folds):
        np.testing.assert_array_equal(fold.test_x, usual.test_x)
        np.testing.assert_array_equal(fold.test_y, usual.test_y)
        train = _examples(fold.train_x, fold.train_y)
        valid = _examples(fold.valid_x, fold.valid_y)
        assert train + valid == pool
        others = sum(
            (_examples(f.valid_x, f.valid_y) for j, f in enumerate(folds) if j != i),
            collections.Counter(),
        )
        assert train == others
        every_valid += valid
    assert every_valid == pool  # no overlap, nothing lost


def test_digits_folds_partition_the_training_and_validation_images():
    k = 4
    folds = [datasets.load("mlp", "digits", cv_folds=k, cv_fold=i) for i in range(k)]
    _check_folds_partition(folds, datasets.load("mlp", "digits"))
    # 1497 non-test images: array_split sizes 375, 374, 374, 374
    assert [f.sizes()["valid"] for f in folds] == [375, 374, 374, 374]
    assert [f.sizes()["train"] for f in folds] == [1122, 1123, 1123, 1123]
    assert all(f.image_shape == (8, 8, 1) for f in folds)


def test_digits_folds_are_deterministic_and_max_train_cuts_the_folds_training_split():
    first = datasets.load("cnn", "digits", cv_folds=3, cv_fold=2)
    again = datasets.load("cnn", "digits", cv_folds=3, cv_fold=2)
    cut = datasets.load("cnn", "digits", max_train=100, cv_folds=3, cv_fold=2)
    for name in ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    np.testing.assert_array_equal(cut.train_x, first.train_x[:100])
    np.testing.assert_array_equal(cut.valid_x, first.valid_x)
    assert cut.sizes() == {"train": 100, "valid": 499, "test": 300}


def test_fold_indices_partition_range_n_with_array_split_sizes():
    n, k = 23, 5
    valid = [folds.fold_indices(n, k, i)[1] for i in range(k)]
    np.testing.assert_array_equal(np.sort(np.concatenate(valid)), np.arange(n))
    assert [len(v) for v in valid] == [5, 5, 5, 4, 4]
    for i in range(k):
        train, fold = folds.fold_indices(n, k, i)
        assert set(train).isdisjoint(fold) and len(train) + len(fold) == n
        assert folds.fold_sizes(n, k, i) == (len(train), len(fold))


def test_mnist_folds_pool_every_training_image_and_keep_the_test_images(tmp_path):
    folder = str(_idx_folder(tmp_path))
    k = 3
    # The default n_valid (5000) exceeds these 60 images: with folds it does not apply.
    folds = [datasets.load("mlp", "mnist", folder, cv_folds=k, cv_fold=i) for i in range(k)]
    _check_folds_partition(folds, datasets.load("mlp", "mnist", folder, n_valid=12))
    assert [f.sizes() for f in folds] == [{"train": 40, "valid": 20, "test": N_TEST}] * k
    with pytest.raises(ValueError, match="cv_folds must be at most the 60 training") as raised:
        datasets.load("mlp", "mnist", folder, cv_folds=61)
    assert raised.value.argument == "cv_folds"
    with pytest.raises(ValueError, match="n_valid must be null with cv_folds"):
        datasets.load("mlp", "mnist", folder, n_valid=12, cv_folds=3)


def test_the_cnn_builds_on_a_mnist_fold_with_a_fitting_batch(tmp_path):
    module = WORKLOADS["cnn"]
    folder = str(_idx_folder(tmp_path))
    options = module.Options(dataset="mnist", data_dir=folder, cv_folds=4, cv_fold=3, batch_size=45)
    workload = module.build(options)
    assert (workload.train.size, workload.valid.size, workload.test.size) == (45, 15, N_TEST)
    with pytest.raises(ValueError, match="at most the training split's size 45"):
        module.build(dataclasses.replace(options, batch_size=46))
