"""Sanity tests for the NumPy reference optimizers and problems (no JAX / optax / jopt)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from . import MODULES, problems
from . import optimizers as ref

ALL_RUNNERS = [
    run for module in MODULES for name, run in vars(module).items() if name.startswith("run_")
]


def _identity_grad(x):
    """Gradient of f(x) = 0.5 |x|^2."""
    return x.copy()


def _constant_grad(g):
    g = np.asarray(g, dtype=np.float64)
    return lambda x: g.copy()


def _fd_grad(f, x, h=1e-6):
    out = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (f(x + e) - f(x - e)) / (2 * h)
    return out


# --------------------------------------------------------------------------- problems


def test_quadratic_gradient_matches_finite_differences():
    p = problems.quadratic(dim=5, condition=100.0, seed=3)
    x = np.random.default_rng(1).standard_normal(5)
    np.testing.assert_allclose(p.grad(x), _fd_grad(p.value, x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.linalg.eigvalsh(p.extras["A"]), np.logspace(0, 2, 5))
    assert p.value(p.x_star) == 0.0
    np.testing.assert_allclose(p.grad(p.x_star), 0.0, atol=1e-12)


def test_rosenbrock_gradient_matches_finite_differences():
    p = problems.rosenbrock()
    for x in (p.x0, np.array([0.3, -0.7]), np.array([2.0, 1.5])):
        np.testing.assert_allclose(p.grad(x), _fd_grad(p.value, x), rtol=1e-6, atol=1e-5)
    assert p.value(p.x_star) == 0.0
    np.testing.assert_array_equal(p.grad(p.x_star), [0.0, 0.0])
    assert p.value(p.x0) == pytest.approx(24.2)


def test_random_problem_gradient_split_join_and_optimum():
    p = problems.random_problem(shapes=((3,), (2, 4)), seed=0)
    assert p.sizes == (3, 8) and p.x0.shape == (11,)
    x = np.random.default_rng(2).standard_normal(11) * 3
    np.testing.assert_allclose(p.grad(x), _fd_grad(p.value, x), rtol=1e-6, atol=1e-6)
    parts = p.split(x)
    assert [a.shape for a in parts] == [(3,), (2, 4)]
    np.testing.assert_array_equal(p.join(parts), x)
    np.testing.assert_allclose(p.grad(p.x_star), 0.0, atol=1e-12)
    assert np.all(p.extras["a"] >= 0.5) and np.all(p.extras["a"] <= 2.0)


# --------------------------------------------------------------------------- generic


@pytest.mark.parametrize("run", ALL_RUNNERS, ids=lambda f: f.__name__)
def test_trajectory_shape_dtype_and_x0_untouched(run):
    p = problems.random_problem()
    x0 = p.x0.copy()
    kwargs = {} if run is ref.run_adadelta else {"learning_rate": 1e-2}
    if "value_fn" in inspect.signature(run).parameters:  # the methods that read the loss
        kwargs["value_fn"] = p.value
    if "learning_rate" not in inspect.signature(run).parameters:  # Polyak's step
        kwargs.pop("learning_rate", None)
    xs = run(p.grad, p.x0, 4, **kwargs)
    assert len(xs) == 5
    assert all(x.dtype == np.float64 and x.shape == x0.shape for x in xs)
    np.testing.assert_array_equal(xs[0], x0)
    np.testing.assert_array_equal(p.x0, x0)
    assert xs[0] is not p.x0


DECREASE_CASES = [
    (ref.run_sgd, {"learning_rate": 0.05}),
    (ref.run_sgd, {"learning_rate": 0.02, "momentum": 0.9, "nesterov": True}),
    (ref.run_sgd, {"learning_rate": 0.1, "momentum": 0.9, "form": "ema"}),
    (ref.run_sgd, {"learning_rate": 0.02, "momentum": 0.9, "form": "lr_inside"}),
    (ref.run_rmsprop, {"learning_rate": 0.01}),
    (
        ref.run_rmsprop,
        {"learning_rate": 0.01, "centered": True, "momentum": 0.9, "momentum_form": "classic"},
    ),
    (
        ref.run_rmsprop,
        {"learning_rate": 0.01, "bias_correction": True, "nesterov": True, "momentum": 0.5},
    ),
    (ref.run_adam, {"learning_rate": 0.05}),
    (ref.run_nadam, {"learning_rate": 0.05}),
    (ref.run_adamw, {"learning_rate": 0.05}),
    (ref.run_amsgrad, {"learning_rate": 0.05}),
    (ref.run_amsgrad, {"learning_rate": 0.05, "max_of": "corrected"}),
    (ref.run_adamax, {"learning_rate": 0.05}),
    (ref.run_radam, {"learning_rate": 0.05}),
    (ref.run_adagrad, {"learning_rate": 0.5}),
    (ref.run_adadelta, {"learning_rate": 1.0}),
    (ref.run_lion, {"learning_rate": 0.01}),
]


@pytest.mark.parametrize(
    ("run", "hparams"),
    DECREASE_CASES,
    ids=[f"{r.__name__}-{i}" for i, (r, _) in enumerate(DECREASE_CASES)],
)
def test_each_optimizer_decreases_quadratic_loss(run, hparams):
    p = problems.quadratic(condition=10.0)
    xs = run(p.grad, p.x0, 200, **hparams)
    assert np.all(np.isfinite(xs[-1]))
    assert p.value(xs[-1]) < 0.2 * p.value(p.x0)


def test_callable_learning_rate_gets_zero_based_step():
    seen = []

    def lr(t):
        seen.append(t)
        return 0.1

    p = problems.quadratic()
    xs_sched = ref.run_adam(p.grad, p.x0, 5, learning_rate=lr)
    xs_const = ref.run_adam(p.grad, p.x0, 5, learning_rate=0.1)
    assert seen == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(xs_sched[-1], xs_const[-1])
    # A schedule that is zero on the first step only: x1 == x0.
    xs = ref.run_sgd(p.grad, p.x0, 2, learning_rate=lambda t: 0.0 if t == 0 else 0.1)
    np.testing.assert_array_equal(xs[1], xs[0])
    assert not np.array_equal(xs[2], xs[1])


# --------------------------------------------------------------------------- SGD


@pytest.mark.parametrize("form", ["classic", "ema", "lr_inside"])
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_without_momentum_is_hand_gradient_descent(form, nesterov):
    p = problems.quadratic(dim=4, condition=10.0, seed=1)
    lr = 0.05
    x = p.x0.copy()
    expected = [x.copy()]
    for _ in range(3):
        x = x - lr * (p.extras["A"] @ (x - p.x_star))
        expected.append(x)
    xs = ref.run_sgd(p.grad, p.x0, 3, learning_rate=lr, form=form, nesterov=nesterov, dampening=0.5)
    for got, want in zip(xs, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize(
    ("form", "nesterov", "x1", "x2"),
    [
        ("classic", False, 0.9, 0.72),
        ("classic", True, 0.81, 0.5751),
        ("lr_inside", False, 0.9, 0.72),
        ("lr_inside", True, 0.81, 0.5751),
        ("ema", False, 0.99, 0.9711),
        ("ema", True, 0.981, 0.954261),
    ],
)
def test_sgd_momentum_hand_values(form, nesterov, x1, x2):
    # f = x^2 / 2, x0 = 1, lr = 0.1, momentum = 0.9; m starts at 0 (not torch's m_1 = g).
    xs = ref.run_sgd(
        _identity_grad,
        np.array([1.0]),
        2,
        learning_rate=0.1,
        momentum=0.9,
        nesterov=nesterov,
        form=form,
    )
    assert xs[1][0] == pytest.approx(x1, rel=1e-14)
    assert xs[2][0] == pytest.approx(x2, rel=1e-14)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_forms_are_equivalent_for_constant_lr(nesterov):
    p = problems.random_problem()
    lr, mu = 0.03, 0.8
    classic = ref.run_sgd(p.grad, p.x0, 50, lr, momentum=mu, nesterov=nesterov)
    inside = ref.run_sgd(p.grad, p.x0, 50, lr, momentum=mu, nesterov=nesterov, form="lr_inside")
    ema = ref.run_sgd(p.grad, p.x0, 50, lr / (1 - mu), momentum=mu, nesterov=nesterov, form="ema")
    np.testing.assert_allclose(inside[-1], classic[-1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ema[-1], classic[-1], rtol=1e-12, atol=1e-12)


def test_sgd_dampening_and_weight_decay():
    p = problems.random_problem()
    damp = ref.run_sgd(p.grad, p.x0, 20, 0.05, momentum=0.9, dampening=0.3)
    scaled = ref.run_sgd(p.grad, p.x0, 20, 0.05 * 0.7, momentum=0.9)
    np.testing.assert_allclose(damp[-1], scaled[-1], rtol=1e-12, atol=1e-12)
    wd = 0.2
    coupled = ref.run_sgd(p.grad, p.x0, 20, 0.05, momentum=0.9, weight_decay=wd)
    explicit = ref.run_sgd(lambda x: p.grad(x) + wd * x, p.x0, 20, 0.05, momentum=0.9)
    np.testing.assert_allclose(coupled[-1], explicit[-1], rtol=1e-14, atol=1e-14)


# --------------------------------------------------------------------------- RMSProp


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_momentum_forms_agree_for_constant_lr(nesterov, centered):
    p = problems.random_problem()
    kw = dict(learning_rate=0.01, momentum=0.9, nesterov=nesterov, centered=centered)
    a = ref.run_rmsprop(p.grad, p.x0, 30, momentum_form="lr_inside", **kw)
    b = ref.run_rmsprop(p.grad, p.x0, 30, momentum_form="classic", **kw)
    np.testing.assert_allclose(a[-1], b[-1], rtol=1e-12, atol=1e-12)


def test_rmsprop_first_step_hand_values():
    g = np.array([2.0, -0.5, 0.0])
    x0 = np.zeros(3)
    lr, decay = 0.1, 0.9
    xs = ref.run_rmsprop(_constant_grad(g), x0, 1, lr, decay=decay, eps=1e-8)
    np.testing.assert_allclose(xs[1], -lr * g / np.sqrt(0.1 * g**2 + 1e-8), rtol=1e-15)
    xs = ref.run_rmsprop(
        _constant_grad(g), x0, 1, lr, eps=1e-8, eps_in_sqrt=False, initial_scale=1.0
    )
    np.testing.assert_allclose(xs[1], -lr * g / (np.sqrt(0.9 + 0.1 * g**2) + 1e-8), rtol=1e-15)
    xs = ref.run_rmsprop(
        _constant_grad(g[:2]), x0[:2], 1, lr, eps=0.0, eps_in_sqrt=False, bias_correction=True
    )
    np.testing.assert_allclose(xs[1], -lr * np.sign(g[:2]), rtol=1e-15)


# --------------------------------------------------------------------------- Adam family


def test_adam_first_step_is_lr_times_sign():
    g = np.array([3.0, -1e-3, 50.0])
    xs = ref.run_adam(_constant_grad(g), np.zeros(3), 1, 0.01, eps=0.0)
    np.testing.assert_allclose(xs[1], -0.01 * np.sign(g), rtol=1e-14)
    # Constant gradient: every bias-corrected step is exactly lr * sign(g).
    xs = ref.run_adam(_constant_grad(g), np.zeros(3), 10, 0.01, eps=0.0)
    np.testing.assert_allclose(xs[10], -0.1 * np.sign(g), rtol=1e-12)


def test_nadam_first_step_and_aliases():
    g = np.array([3.0, -2.0])
    b1 = 0.9
    xs = ref.run_nadam(_constant_grad(g), np.zeros(2), 1, 0.01, eps=0.0)
    np.testing.assert_allclose(xs[1], -0.01 * (1 + b1 / (1 + b1)) * np.sign(g), rtol=1e-14)
    p = problems.random_problem()
    a = ref.run_nadam(p.grad, p.x0, 25, 0.02, weight_decay=0.01)
    b = ref.run_adam(p.grad, p.x0, 25, 0.02, nesterov=True, weight_decay=0.01)
    np.testing.assert_array_equal(a[-1], b[-1])
    a = ref.run_adamw(p.grad, p.x0, 25, 0.02)
    b = ref.run_adam(p.grad, p.x0, 25, 0.02, weight_decay=1e-4)
    np.testing.assert_array_equal(a[-1], b[-1])
    assert not np.array_equal(a[-1], ref.run_adam(p.grad, p.x0, 25, 0.02)[-1])


def test_adamw_decoupled_decay_with_zero_gradient():
    x0 = np.array([1.0, -2.0])
    xs = ref.run_adamw(lambda x: np.zeros_like(x), x0, 5, 0.1, weight_decay=0.5)
    np.testing.assert_allclose(xs[5], x0 * (1 - 0.05) ** 5, rtol=1e-14)


def test_amsgrad_raw_vs_corrected():
    p = problems.quadratic(condition=10.0)
    raw = ref.run_amsgrad(p.grad, p.x0, 50, 0.05, max_of="raw")
    cor = ref.run_amsgrad(p.grad, p.x0, 50, 0.05, max_of="corrected")
    adam = ref.run_adam(p.grad, p.x0, 50, 0.05)
    assert np.max(np.abs(raw[-1] - cor[-1])) > 1e-6
    assert np.max(np.abs(raw[-1] - adam[-1])) > 1e-6
    assert np.max(np.abs(cor[-1] - adam[-1])) > 1e-6
    # Constant gradient: v_t and v_t / (1 - b2^t) never decrease, so both equal Adam.
    g = _constant_grad([1.0, -3.0])
    x0 = np.zeros(2)
    for max_of in ("raw", "corrected"):
        got = ref.run_amsgrad(g, x0, 10, 0.05, max_of=max_of)
        np.testing.assert_allclose(got[-1], ref.run_adam(g, x0, 10, 0.05)[-1], rtol=1e-14)


def test_adamax_constant_gradient():
    g = np.array([2.0, -0.25])
    eps = 1e-8
    xs = ref.run_adamax(_constant_grad(g), np.zeros(2), 7, 0.01, eps=eps)
    np.testing.assert_allclose(xs[7], -0.07 * g / (np.abs(g) + eps), rtol=1e-13)
    # Decreasing gradient magnitude: u_inf decays with b2 instead of following |g|.
    xs = ref.run_adamax(
        lambda x: np.array([4.0]) if x[0] == 0.0 else np.array([1.0]),
        np.zeros(1),
        2,
        1.0,
        b1=0.0,
        b2=0.5,
        eps=0.0,
    )
    assert xs[2][0] == pytest.approx(-1.0 - 1.0 / 2.0)


def test_radam_without_rectification_is_bias_corrected_ema_momentum():
    p = problems.random_problem()
    b1, lr = 0.9, 0.02
    radam = ref.run_radam(p.grad, p.x0, 40, lr, b1=b1, threshold=np.inf)
    ema = ref.run_sgd(p.grad, p.x0, 40, lambda t: lr / (1 - b1 ** (t + 1)), momentum=b1, form="ema")
    for a, b in zip(radam, ema, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    # Default threshold 5 with b2 = 0.999: rho_t < 5 for t <= 5, rectified afterwards.
    default = ref.run_radam(p.grad, p.x0, 40, lr, b1=b1)
    np.testing.assert_array_equal(default[5], radam[5])
    assert not np.allclose(default[6], radam[6])


def test_radam_rectified_step_hand_value():
    # b2 = 0.9: rho_inf = 19, rho_1 = 1; rho_t crosses the threshold 5 at t = 6.
    b2 = 0.9
    rho_inf = 19.0
    assert rho_inf - 2 * b2 / (1 - b2) == pytest.approx(1.0)
    g = _constant_grad([2.0])
    xs = ref.run_radam(g, np.zeros(1), 10, 1.0, b1=0.0, b2=b2, eps=0.0, threshold=5.0)
    expected = 0.0
    for t in range(1, 11):
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho_t >= 5.0:
            r = np.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            expected -= r * 1.0  # m_hat / sqrt(v_hat) = sign(g) = 1
        else:
            expected -= 2.0  # u = m_hat = g
    assert xs[10][0] == pytest.approx(expected, rel=1e-13)


# --------------------------------------------------------------------------- others


def test_adagrad_hand_values_and_zero_accumulator():
    g = np.array([1.0, -2.0])
    lr, a0, eps = 0.1, 0.1, 1e-7
    xs = ref.run_adagrad(
        _constant_grad(g), np.zeros(2), 3, lr, initial_accumulator_value=a0, eps=eps
    )
    expected = -lr * sum(g / np.sqrt(a0 + t * g**2 + eps) for t in (1, 2, 3))
    np.testing.assert_allclose(xs[3], expected, rtol=1e-14)
    xs = ref.run_adagrad(
        _constant_grad(g),
        np.zeros(2),
        3,
        lr,
        initial_accumulator_value=a0,
        eps=eps,
        eps_in_sqrt=False,
    )
    expected = -lr * sum(g / (np.sqrt(a0 + t * g**2) + eps) for t in (1, 2, 3))
    np.testing.assert_allclose(xs[3], expected, rtol=1e-14)
    with np.errstate(all="raise"):
        xs = ref.run_adagrad(
            _constant_grad([0.0, 1.0]), np.ones(2), 2, lr, initial_accumulator_value=0.0, eps=0.0
        )
    assert xs[2][0] == 1.0 and np.all(np.isfinite(xs[2]))


def test_adadelta_first_step_and_weight_decay():
    g = np.array([1.0, -3.0])
    rho, eps = 0.9, 1e-6
    xs = ref.run_adadelta(_constant_grad(g), np.zeros(2), 2, 1.0, rho=rho, eps=eps)
    dx1 = np.sqrt(eps) / np.sqrt((1 - rho) * g**2 + eps) * g
    np.testing.assert_allclose(xs[1], -dx1, rtol=1e-14)
    e_dx = (1 - rho) * dx1**2
    dx2 = np.sqrt(e_dx + eps) / np.sqrt((1 - rho**2) * g**2 + eps) * g
    np.testing.assert_allclose(xs[2], -dx1 - dx2, rtol=1e-14)
    p = problems.random_problem()
    a = ref.run_adadelta(p.grad, p.x0, 10, 0.5, weight_decay=0.1)
    b = ref.run_adadelta(lambda x: p.grad(x) + 0.1 * x, p.x0, 10, 0.5)
    np.testing.assert_allclose(a[-1], b[-1], rtol=1e-14, atol=1e-14)


def test_lion_sign_updates_and_weight_decay():
    g = np.array([0.3, -7.0, 0.0])
    xs = ref.run_lion(_constant_grad(g), np.ones(3), 4, 0.1)
    np.testing.assert_allclose(xs[4], 1.0 - 0.4 * np.sign(g), rtol=1e-14)
    xs = ref.run_lion(lambda x: np.zeros_like(x), np.array([2.0]), 3, 0.1, weight_decay=0.5)
    assert xs[3][0] == pytest.approx(2.0 * 0.95**3, rel=1e-14)
    # Interpolation uses the old m (b1) and update uses b2: sign flips after a gradient flip.
    seq = iter([np.array([1.0]), np.array([-1.0]), np.array([-1.0])])
    xs = ref.run_lion(lambda x: next(seq), np.zeros(1), 3, 1.0, b1=0.9, b2=0.99)
    # t=1: c = 0.1 > 0 -> -1; m = 0.01. t=2: c = 0.009 - 0.1 < 0 -> +1; m = -0.0001.
    # t=3: c = -0.00009 - 0.1 < 0 -> +1.
    np.testing.assert_allclose([x[0] for x in xs], [0.0, -1.0, 0.0, 1.0])
