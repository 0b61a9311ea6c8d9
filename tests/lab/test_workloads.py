"""Every registered workload: builds from its default options, initialises as a pure function of
the key under jax.vmap and jax.jit, trains (a few optimizer steps lower the training loss), and
reports its documented metrics; bad options fail with clear errors before any compute. Then each
workload's own promises: linear regression's excess loss, the generated data's independence of
the trial seed, the 2-D functions' minimizers, curvature, starts and plot windows.

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
from jopt.lab.workloads import WORKLOADS, functions2d, linear_regression

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
