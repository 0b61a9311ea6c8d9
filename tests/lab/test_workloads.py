"""Every registered workload: builds from its default options, initialises as a pure function of
the key under jax.vmap and jax.jit, trains (a few optimizer steps lower the training loss), and
reports its documented metrics; bad options fail with clear errors before any compute; the
cross-validation options load from a config and build. Then each workload's own promises: the
cnn's pooling against a NumPy forward pass, linear regression's excess loss, the generated data's
independence of the trial seed and its folds partitioning train and valid, the 2-D functions'
minimizers, curvature, starts and plot windows. (The image folds are in test_datasets.py.)

Compiling is most of the cost (a program that draws random numbers takes seconds to compile on the
CPU), so builds, initial parameters and jitted functions are shared through functools.cache, and
only the initialisation test compiles the random draws.
"""

from __future__ import annotations

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt.lab import config as config_lib
from jopt.lab.workloads import WORKLOADS, folds, functions2d, linear_regression

NAMES = tuple(WORKLOADS)
METRIC_KEYS = {
    "linear_regression": {"loss", "excess_loss"},
    "logistic_regression": {"loss", "accuracy"},
    "mlp": {"loss", "accuracy"},
    "cnn": {"loss", "accuracy"},
    "functions2d": {"loss", "distance"},
}
KEYS = jax.random.split(jax.random.key(0), 2)
THREE_KEYS = jnp.stack([KEYS[0], KEYS[1], KEYS[0]])  # seeds 0 and 2 share a key


# Cached by (name, Options): equal options (e.g. {} and the defaults spelled out) share one entry.
def _workload(name: str, **options):
    return _built(name, WORKLOADS[name].Options(**options))


def _params(name: str, **options):
    """Params for THREE_KEYS, initialised under jit(vmap(init))."""
    return _initialised(name, WORKLOADS[name].Options(**options))


@functools.cache
def _built(name: str, options):
    return WORKLOADS[name].build(options)


@functools.cache
def _initialised(name: str, options):
    return jax.jit(jax.vmap(_built(name, options).init_params))(THREE_KEYS)


def _metrics(name: str, **options):
    """The workload's metrics, jitted and vmapped over stacked params."""
    return _jitted_metrics(name, WORKLOADS[name].Options(**options))


@functools.cache
def _jitted_metrics(name: str, options):
    return jax.jit(jax.vmap(_built(name, options).metrics, in_axes=(0, None, None)))


def _split_args(split):
    return (None, None) if split is None else (split.x, split.y)


def test_registry_lists_exactly_the_documented_workloads():
    assert set(WORKLOADS) == set(METRIC_KEYS)
    for name, module in WORKLOADS.items():
        assert dataclasses.is_dataclass(module.Options), name
        assert module.Options.__dataclass_params__.frozen, name
        assert _workload(name).name == name
        assert set(module.metric_names(module.Options())) == METRIC_KEYS[name]


def _check_init_is_a_pure_function_of_the_key_under_vmap_and_jit(name):
    params = _params(name)
    chex.assert_tree_all_finite(params)
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        assert leaf.dtype == jnp.float32, jax.tree_util.keystr(path)
        assert leaf.shape[0] == 3, jax.tree_util.keystr(path)
    first, second, third = (jax.tree.map(lambda a, i=i: a[i], params) for i in range(3))
    chex.assert_trees_all_equal(first, third)  # same key, same params
    if name != "functions2d":  # without start_noise every 2-D seed starts at the same point
        assert any(
            not np.array_equal(a, b)
            for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True)
        )


def _check_metrics_are_the_documented_finite_scalars_per_seed(name):
    workload = _workload(name)
    for split in (workload.train, workload.valid, workload.test):
        x, y = _split_args(split)
        metrics = _metrics(name)(_params(name), x, y)
        assert set(metrics) == METRIC_KEYS[name]
        chex.assert_tree_all_finite(metrics)
        chex.assert_shape(list(metrics.values()), (3,))


def _train(name: str, options: dict, tx, steps: int):
    """Trains the three seeds of `_params` for `steps` steps of `tx` (vmapped); returns each
    seed's loss on the whole training split (the metric `loss`) before and after.

    Minibatches are the first `batch_size` examples of a fresh permutation at every step (drawn
    with NumPy, so that the compiled step holds no random draws); a Python loop calls the jitted
    step, as the runner does (XLA on the CPU runs convolutions inside a loop slowly).
    """
    workload = _workload(name, **options)
    x_all, y_all = _split_args(workload.train)
    # The batch size changes neither the data nor the initial params: share their compilations.
    same_data = {k: v for k, v in options.items() if k != "batch_size"}
    params = _params(name, **same_data)
    state = jax.vmap(tx.init)(params)

    def one_seed(params, state, x, y):
        grads = jax.grad(workload.loss)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(jax.vmap(one_seed, in_axes=(0, 0, None, None)))
    rng = np.random.default_rng(1)
    for _ in range(steps):
        if workload.batch_size is None:
            x, y = x_all, y_all
        else:
            index = rng.permutation(workload.train.size)[: workload.batch_size]
            x, y = x_all[index], y_all[index]
        params, state = step(params, state, x, y)
    loss = _metrics(name, **same_data)
    return loss(_params(name, **same_data), x_all, y_all)["loss"], loss(params, x_all, y_all)[
        "loss"
    ]


def _check_training_lowers_the_loss(name, options, tx, steps, ratio):
    before, after = _train(name, options, tx, steps)
    assert np.all(np.isfinite(after)) and np.all(after < ratio * before), (name, before, after)


# name: optimizer, steps, the largest final/initial training loss ratio allowed (default options)
DEFAULT_TRAINING = {
    "linear_regression": (jopt.sgd(0.1, momentum=0.9), 40, 0.05),
    "logistic_regression": (jopt.adam(0.05), 40, 0.7),
    "mlp": (jopt.sgd(0.05, momentum=0.9), 30, 0.5),
    "cnn": (jopt.adam(0.01), 30, 0.6),
    "functions2d": (jopt.adam(0.05), 50, 0.2),  # rosenbrock
}


@pytest.mark.parametrize("name", NAMES)
def test_each_workload_initialises_reports_its_metrics_and_trains(name):
    """Three checks in one test, so that they share the compiled init (seconds for the flax
    models) whichever pytest-xdist worker runs them: init is a pure function of the key under
    vmap and jit; the metrics are the documented finite scalars, one per seed, on every split;
    a few optimizer steps from the initial params lower the training loss."""
    _check_init_is_a_pure_function_of_the_key_under_vmap_and_jit(name)
    _check_metrics_are_the_documented_finite_scalars_per_seed(name)
    _check_training_lowers_the_loss(name, {}, *DEFAULT_TRAINING[name])


MORE_TRAINING = [  # workload, options, optimizer, steps, ratio as in DEFAULT_TRAINING
    ("linear_regression", {"batch_size": None}, jopt.adam(0.1), 40, 0.1),
    ("functions2d", {"function": "beale"}, jopt.adam(0.05), 50, 0.2),
    ("functions2d", {"function": "canyon"}, jopt.sgd(0.01, momentum=0.9), 50, 0.2),
]


@pytest.mark.parametrize(
    ("name", "options", "tx", "steps", "ratio"),
    MORE_TRAINING,
    ids=[f"{t[0]}-{'-'.join(map(str, t[1].values()))}" for t in MORE_TRAINING],
)
def test_a_few_optimizer_steps_lower_the_training_loss(name, options, tx, steps, ratio):
    _check_training_lowers_the_loss(name, options, tx, steps, ratio)


def test_gradient_descent_escapes_the_saddle_downhill():
    before, after = _train("functions2d", {"function": "saddle"}, jopt.sgd(0.1), 40)
    assert np.all(after < before - 1.0), (before, after)


BAD_OPTIONS = [  # workload, options, error type, words the message must contain
    ("linear_regression", {"dim": 0}, ValueError, "dim must be an integer >= 1, got 0"),
    ("linear_regression", {"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
    ("linear_regression", {"batch_size": 600}, ValueError, "at most the training split's size 512"),
    ("linear_regression", {"noise": -0.1}, ValueError, "noise must be >= 0, got -0.1"),
    ("linear_regression", {"n_train": 2.5}, TypeError, "n_train must be an integer"),
    ("logistic_regression", {"label_noise": 0.5}, ValueError, "label_noise must be in [0, 0.5)"),
    ("mlp", {"hidden_sizes": (32, 0)}, ValueError, "hidden_sizes[1] must be an integer >= 1"),
    ("mlp", {"dataset": "cifar10"}, ValueError, "dataset must be one of 'digits'"),
    ("mlp", {"batch_size": 1198}, ValueError, "at most the training split's size 1197"),
    ("mlp", {"max_train": 100, "batch_size": 101}, ValueError, "training split's size 100"),
    ("mlp", {"n_valid": 1497}, ValueError, "n_valid must be in [1, 1496] for 'digits'"),
    ("mlp", {"dataset": "mnist"}, ValueError, "set data_dir"),
    ("cnn", {"channels": ()}, ValueError, "at least one conv layer"),
    ("cnn", {"channels": (4, 4, 4, 4)}, ValueError, "use at most 3 layers"),
    ("cnn", {"pooling": "min"}, ValueError, "pooling must be one of 'avg', 'max', got 'min'"),
    ("mlp", {"cv_folds": 1}, ValueError, "cv_folds must be an integer >= 2, got 1"),
    ("mlp", {"cv_folds": 3, "cv_fold": 3}, ValueError, "cv_fold must be in [0, 2]"),
    ("cnn", {"cv_fold": 1}, ValueError, "cv_fold selects one of cv_folds folds"),
    ("mlp", {"cv_folds": 3, "n_valid": 100}, ValueError, "n_valid must be null with cv_folds"),
    ("mlp", {"cv_folds": 2, "batch_size": 749}, ValueError, "training split's size 748"),
    ("mlp", {"cv_folds": 1500}, ValueError, "at most the 1497 training and validation"),
    ("linear_regression", {"cv_folds": 2.5}, TypeError, "cv_folds must be an integer >= 2"),
    ("linear_regression", {"cv_fold": -1}, ValueError, "cv_fold must be an integer >= 0"),
    ("linear_regression", {"cv_folds": 2, "batch_size": 400}, ValueError, "split's size 384"),
    ("logistic_regression", {"cv_folds": 4, "n_train": 2, "n_valid": 1}, ValueError, "= 3"),
    ("functions2d", {"function": "himmelblau"}, ValueError, "function must be one of 'canyon'"),
    ("functions2d", {"start": (1.0,)}, ValueError, "start must be a pair"),
    ("functions2d", {"start_noise": -1.0}, ValueError, "start_noise must be >= 0"),
    ("functions2d", {"condition": 0.5}, ValueError, "condition must be >= 1"),
]


@pytest.mark.parametrize(
    ("name", "options", "error", "words"),
    BAD_OPTIONS,
    ids=[f"{name}-{'-'.join(options)}" for name, options, *_ in BAD_OPTIONS],
)
def test_bad_options_raise_a_clear_error_naming_the_workload(name, options, error, words):
    module = WORKLOADS[name]
    with pytest.raises(error) as info:
        module.build(module.Options(**options))
    assert str(info.value).startswith(f"{name}: "), str(info.value)
    assert words in str(info.value), str(info.value)


BAD_FOLDS = [  # options, the argument the error names
    ({"cv_folds": 1}, "cv_folds"),
    ({"cv_folds": 0}, "cv_folds"),
    ({"cv_folds": "3"}, "cv_folds"),
    ({"cv_fold": -1}, "cv_fold"),
    ({"cv_fold": 1}, "cv_fold"),
    ({"cv_folds": 3, "cv_fold": 3}, "cv_fold"),
    ({"cv_folds": 2, "cv_fold": 1.5}, "cv_fold"),
]


@pytest.mark.parametrize("name", ["linear_regression", "logistic_regression", "mlp", "cnn"])
@pytest.mark.parametrize(("options", "argument"), BAD_FOLDS, ids=lambda o: str(o))
def test_bad_fold_options_name_the_argument_and_value(name, options, argument):
    with pytest.raises(jopt.ArgumentError) as info:
        WORKLOADS[name].Options(**options)  # refused without loading any data
    assert info.value.argument == argument
    assert info.value.value == options[argument]
    assert str(info.value).startswith(f"{name}: {argument} ")


def test_only_workloads_with_data_have_fold_options():
    for name, module in WORKLOADS.items():
        fields = {f.name for f in dataclasses.fields(module.Options)}
        assert {"cv_folds", "cv_fold"} <= fields or name == "functions2d", name
    assert not {"cv_folds", "cv_fold"} & {f.name for f in dataclasses.fields(functions2d.Options)}


CV_CONFIGS = [  # workload options as a YAML config gives them
    {"name": "mlp", "cv_folds": 3, "cv_fold": 1},
    {"name": "cnn", "cv_folds": 3, "cv_fold": 1, "channels": [32], "pooling": "max"},
    {"name": "linear_regression", "cv_folds": 3, "cv_fold": 1},
    {"name": "logistic_regression", "cv_folds": "3", "cv_fold": 1.0},  # converted to ints
]


@pytest.mark.parametrize("workload", CV_CONFIGS, ids=lambda w: w["name"])
def test_fold_options_load_from_a_config_round_trip_and_build(workload):
    raw = {
        "name": "cv",
        "workload": workload,
        "optimizers": [{"name": "sgd", "learning_rate": 0.1}],
    }
    config = config_lib.from_dict(raw)
    options = config.workload.options
    assert (options.cv_folds, options.cv_fold) == (3, 1)
    assert type(options.cv_folds) is int and type(options.cv_fold) is int
    assert hash(options) == hash(dataclasses.replace(options))  # hashable: a cache key
    again = config_lib.from_dict(config_lib.to_dict(config))
    assert again.workload == config.workload
    built = WORKLOADS[workload["name"]].build(options)
    usual = _workload(workload["name"])  # the default options: the fixed split
    pool = usual.train.size + usual.valid.size
    assert built.valid.size == pool // 3 + (1 < pool % 3)
    assert built.train.size + built.valid.size == pool
    chex.assert_trees_all_equal((built.test.x, built.test.y), (usual.test.x, usual.test.y))


def test_a_fold_error_in_a_config_is_placed_at_its_key():
    raw = {"name": "cv", "optimizers": [{"name": "sgd", "learning_rate": 0.1}]}
    raw["workload"] = {"name": "mlp", "cv_folds": 3, "cv_fold": 5}
    with pytest.raises(config_lib.ConfigError) as info:
        config_lib.from_dict(raw)
    assert info.value.path == "workload.cv_fold"
    raw["workload"] = {"name": "mlp", "cv_folds": 3, "n_valid": 200}
    with pytest.raises(config_lib.ConfigError) as info:
        config_lib.from_dict(raw)
    assert info.value.path == "workload.n_valid"


# -- the cnn's pooling -----------------------------------------------------------------------------


def _reference_cnn_logits(params, images: np.ndarray, pooling: str) -> np.ndarray:
    """conv 3x3 'SAME' -> ReLU -> 2x2 pool (stride 2) per layer -> dense, in NumPy float64."""
    x = np.asarray(images, np.float64)
    for i in range(len(params["convs"])):
        kernel = np.asarray(params["convs"][i]["kernel"], np.float64)  # (3, 3, in, out)
        bias = np.asarray(params["convs"][i]["bias"], np.float64)
        n, h, w, _ = x.shape
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        out = np.zeros((n, h, w, kernel.shape[-1])) + bias
        for di in range(3):
            for dj in range(3):
                out += padded[:, di : di + h, dj : dj + w, :] @ kernel[di, dj]
        out = np.maximum(out, 0.0)
        windows = out[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, -1)
        x = windows.max(axis=(2, 4)) if pooling == "max" else windows.mean(axis=(2, 4))
    kernel = np.asarray(params["output"]["kernel"], np.float64)
    bias = np.asarray(params["output"]["bias"], np.float64)
    return x.reshape(len(x), -1) @ kernel + bias


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_cnn_pooling_matches_a_numpy_forward_pass(pooling):
    """The classic tutorial CNN (one 3x3 conv of 32 filters, 2x2 pooling, dense, batch 32):
    per-example losses equal those of an independent NumPy forward pass with the same params."""
    options = WORKLOADS["cnn"].Options(channels=(32,), pooling=pooling, batch_size=32)
    workload = _built("cnn", options)
    # Params drawn with NumPy in the shapes init_params gives (compiling its draws takes seconds),
    # nonzero biases included, so that every term is checked.
    rng = np.random.default_rng(0)
    shapes = jax.eval_shape(workload.init_params, jax.random.key(0))
    params = jax.tree.map(lambda a: 0.3 * rng.standard_normal(a.shape, np.float32), shapes)
    x, y = np.asarray(workload.train.x[:16]), np.asarray(workload.train.y[:16])
    want = _cross_entropy(_reference_cnn_logits(params, x, pooling), y)
    per_example = jax.jit(jax.vmap(lambda xi, yi: workload.loss(params, xi[None], yi[None])))
    np.testing.assert_allclose(per_example(x, y), want, rtol=1e-4, atol=1e-5)
    other = "avg" if pooling == "max" else "max"
    assert not np.allclose(want, _cross_entropy(_reference_cnn_logits(params, x, other), y))


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(labels)), labels]


def test_cnn_pooling_defaults_to_avg_and_holds_no_parameters():
    options = WORKLOADS["cnn"].Options()
    assert options.pooling == "avg"
    avg, with_max = (_built("cnn", dataclasses.replace(options, pooling=p)) for p in ("avg", "max"))
    assert avg.info["num_params"] == with_max.info["num_params"]
    key = jax.random.key(0)
    chex.assert_trees_all_equal(
        jax.eval_shape(avg.init_params, key), jax.eval_shape(with_max.init_params, key)
    )


# -- linear and logistic regression ----------------------------------------------------------------


def test_excess_loss_is_the_loss_minus_each_splits_least_squares_optimum():
    workload = _workload("linear_regression")
    optimum = workload.info["optimum"]
    at_optimum = {
        "w": jnp.asarray(optimum["w"], jnp.float32),
        "b": jnp.asarray(optimum["b"], jnp.float32),
    }
    rng = np.random.default_rng(0)  # a point near the initial params
    dim = linear_regression.Options().dim
    at_init = {
        "w": jnp.asarray(linear_regression.INIT_SCALE * rng.normal(size=dim), jnp.float32),
        "b": jnp.asarray(linear_regression.INIT_SCALE * rng.normal(), jnp.float32),
    }
    metrics = jax.jit(workload.metrics)
    for split in ("train", "valid", "test"):
        data = getattr(workload, split)
        best = workload.info["optimal_loss"][split]
        for params in (at_init, at_optimum):
            m = metrics(params, data.x, data.y)
            np.testing.assert_allclose(m["excess_loss"], m["loss"] - best, rtol=1e-4, atol=1e-7)
            assert m["excess_loss"] >= 0.0
    train = metrics(at_optimum, workload.train.x, workload.train.y)
    assert train["excess_loss"] < 1e-9  # zero at the training optimum, to float32 precision
    noise = linear_regression.Options().noise
    assert 0.5 * 0.5 * noise**2 < workload.info["optimal_loss"]["train"] < 2 * 0.5 * noise**2


@pytest.mark.parametrize("name", ["linear_regression", "logistic_regression"])
def test_generated_data_depends_on_the_data_seed_and_nothing_else(name):
    module = WORKLOADS[name]
    first = module.build(module.Options())
    again = module.build(module.Options())
    other_seed = module.build(module.Options(data_seed=1))
    other_valid = module.build(module.Options(n_valid=10))
    for split in ("train", "valid", "test"):
        a, b = getattr(first, split), getattr(again, split)
        chex.assert_trees_all_equal((a.x, a.y), (b.x, b.y))
    assert not np.array_equal(first.train.x, other_seed.train.x)
    chex.assert_trees_all_equal(first.train.x, other_valid.train.x)
    assert other_valid.valid.size == 10


def _rows(*arrays) -> list[bytes]:
    """Each example (its inputs and target, as float32) as bytes: a multiset of examples."""
    flat = [np.asarray(a, np.float32).reshape(len(a), -1) for a in arrays]
    return sorted(row.tobytes() for row in np.concatenate(flat, axis=1))


@pytest.mark.parametrize("name", ["linear_regression", "logistic_regression"])
def test_folds_partition_the_generated_training_and_validation_examples(name):
    module, k = WORKLOADS[name], 3
    usual = module.build(module.Options(n_train=100, n_valid=50))
    pool = _rows(
        np.concatenate([usual.train.x, usual.valid.x]),
        np.concatenate([usual.train.y, usual.valid.y]),
    )
    folds = [
        module.build(module.Options(n_train=100, n_valid=50, cv_folds=k, cv_fold=i))
        for i in range(k)
    ]
    for i, fold in enumerate(folds):
        assert (fold.train.size, fold.valid.size) == (100, 50)  # 150 examples, 3 folds
        assert (
            _rows(
                *(
                    np.concatenate([fold.train.x, fold.valid.x]),
                    np.concatenate([fold.train.y, fold.valid.y]),
                )
            )
            == pool
        )
        others = [folds[j].valid for j in range(k) if j != i]
        assert _rows(fold.train.x, fold.train.y) == _rows(
            np.concatenate([v.x for v in others]), np.concatenate([v.y for v in others])
        )
        chex.assert_trees_all_equal((fold.test.x, fold.test.y), (usual.test.x, usual.test.y))
    every_valid = [
        np.concatenate([f.valid.x for f in folds]),
        np.concatenate([f.valid.y for f in folds]),
    ]
    assert _rows(*every_valid) == pool  # no overlap, nothing lost


def test_generated_fold_sizes_follow_array_split_and_the_batch_check():
    options = linear_regression.Options(cv_folds=5, cv_fold=4)  # 768 examples: 154 x 3, 153 x 2
    assert options.split_sizes() == {"train": 615, "valid": 153, "test": 256}
    workload = _built("linear_regression", options)
    assert (workload.train.size, workload.valid.size, workload.test.size) == (615, 153, 256)
    sizes = [folds.fold_sizes(768, 5, i) for i in range(5)]
    assert [valid for _, valid in sizes] == [154, 154, 154, 153, 153]
    linear_regression.Options(cv_folds=2, batch_size=384)  # fits the 384 training examples
    with pytest.raises(ValueError, match="training split's size 384"):
        linear_regression.Options(cv_folds=2, batch_size=385)


def test_generated_folds_are_deterministic_and_keep_the_optimum_per_split():
    options = linear_regression.Options(cv_folds=4, cv_fold=2)
    first, again = linear_regression.build(options), linear_regression.build(options)
    for split in ("train", "valid", "test"):
        a, b = getattr(first, split), getattr(again, split)
        chex.assert_trees_all_equal((a.x, a.y), (b.x, b.y))
    assert first.info == again.info
    m = jax.jit(first.metrics)
    optimum = {k: jnp.asarray(v, jnp.float32) for k, v in first.info["optimum"].items()}
    assert m(optimum, first.train.x, first.train.y)["excess_loss"] < 1e-9  # the fold's optimum


def test_logistic_labels_disagree_with_the_teacher_at_the_label_noise_rate():
    workload = _workload("logistic_regression")
    noise = WORKLOADS["logistic_regression"].Options().label_noise
    for accuracy in workload.info["teacher_accuracy"].values():
        assert abs((1.0 - accuracy) - noise) < 0.05
    assert set(np.unique(np.asarray(workload.train.y))) == {0.0, 1.0}


# -- the 2-D functions ----------------------------------------------------------------------------


WITH_MINIMUM = [
    {"function": "rosenbrock"},
    {"function": "beale"},
    {"function": "canyon"},
    {"function": "canyon", "condition": 10.0, "angle": 30.0},
]


@pytest.mark.parametrize("options", WITH_MINIMUM, ids=lambda o: "-".join(map(str, o.values())))
def test_function_is_zero_and_flat_at_its_minimizer(options):
    workload = _workload("functions2d", **options)
    point = jnp.asarray(workload.info["minimizer"], jnp.float32)
    assert workload.info["minimum"] == 0.0
    assert abs(float(workload.loss(point, None, None))) < 1e-6
    chex.assert_trees_all_close(jax.grad(workload.loss)(point, None, None), jnp.zeros(2), atol=1e-4)
    assert float(workload.metrics(point, None, None)["distance"]) == 0.0


@pytest.mark.parametrize("angle", [0.0, 30.0])
def test_canyon_curvatures_are_one_and_the_condition_number(angle):
    workload = _workload("functions2d", function="canyon", condition=25.0, angle=angle)
    hessian = jax.jit(jax.hessian(workload.loss))(jnp.zeros(2), None, None)
    np.testing.assert_allclose(np.linalg.eigvalsh(np.asarray(hessian)), [1.0, 25.0], rtol=1e-5)


@pytest.mark.parametrize("function", list(functions2d.FUNCTIONS))
def test_value_gives_the_loss_on_numpy_grids(function):
    workload = _workload("functions2d", function=function)
    points = np.random.default_rng(0).uniform(-2.0, 2.0, size=(5, 2))
    grid = workload.info["value"](points[:, 0], points[:, 1])
    assert isinstance(grid, np.ndarray) and grid.dtype == np.float64
    losses = [float(workload.loss(jnp.asarray(p, jnp.float32), None, None)) for p in points]
    np.testing.assert_allclose(grid, losses, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("function", list(functions2d.FUNCTIONS))
@pytest.mark.parametrize("start", [None, (10.0, -10.0)], ids=["default", "far"])
def test_window_shows_the_start_and_the_minimizer(function, start):
    info = _workload("functions2d", function=function, start=start).info
    (x0, x1), (y0, y1) = info["window"]
    points = [info["start"]] + ([info["minimizer"]] if info["minimizer"] is not None else [])
    for x, y in points:
        assert x0 < x < x1 and y0 < y < y1, (info["window"], x, y)
    if start is not None:
        assert info["start"] == list(start)


def test_saddle_has_no_minimizer_and_reports_only_the_loss():
    workload = _workload("functions2d", function="saddle")
    assert workload.info["minimizer"] is None and workload.info["minimum"] is None
    assert set(workload.metrics(jnp.ones(2), None, None)) == {"loss"}
    assert functions2d.metric_names(functions2d.Options(function="saddle")) == ("loss",)


def test_start_noise_spreads_the_seeds_around_the_start():
    still = _workload("functions2d")
    noisy = _workload("functions2d", start_noise=0.1)
    start = jnp.asarray(still.info["start"], jnp.float32)
    assert still.info["function"] == "rosenbrock"
    chex.assert_trees_all_equal(_params("functions2d"), jnp.stack([start] * 3))
    spread = _params("functions2d", start_noise=0.1)
    assert not np.array_equal(spread[0], spread[1])
    chex.assert_trees_all_equal(spread[0], spread[2])  # the same key
    assert float(jnp.max(jnp.abs(spread - start))) < 1.0
    assert noisy.train is None and noisy.batch_size is None and noisy.record_params
