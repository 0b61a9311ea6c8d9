"""The fused CPU kernels (jopt/_src/kernels/fused_cpu.cc, jopt/_src/fused.py) and the train
steps that take them.

- Each kernel, in each variant and in float32 and float64, equals bit for bit a NumPy evaluation
  of its formula (`_REFERENCE`, written from the optimizers' update rules, each operation rounded
  to the dtype), on leaves of awkward sizes and on one larger than a thread's chunk.
- Each optimizer that declares a fused step computes, step by step from the same state, what
  its plain update followed by `optax.apply_updates` computes, within one unit in the last place
  of each leaf's scale (XLA's code for the plain path contracts some products and sums into
  fused multiply-adds, which the kernels do not; the state's counts and hyperparameters are the
  plain path's own); under a learning-rate schedule too, and under `jax.vmap`.
- `jopt.train_step` takes the kernel by default, not with `fused=False` or JOPT_FUSED=0; it
  warns once and takes the XLA path where the kernels are missing; `fused=True` refuses an
  optimizer without a kernel; donation still deletes the arrays passed in; bfloat16 params and
  flat params are handled.
"""

from __future__ import annotations

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt._src import fused

SIZES = (1, 7, 1000, 3 * (1 << 16) + 5)  # the last spans four chunks: several threads


def test_kernels_are_built():
    """The install built the kernels (CI installs with CMake and g++): nothing else here skips."""
    if os.environ.get("JOPT_BUILD_KERNELS") == "0":
        pytest.skip("JOPT_BUILD_KERNELS=0: installed without the kernels")
    assert fused.unavailable() is None


needs_kernels = pytest.mark.skipif(
    fused.unavailable() is not None, reason="the fused kernels were not built"
)


# NumPy evaluations of each kernel's formula: (scalars c, p, g, buffers, options) -> (p, buffers).
def _momentum(c, p, g, s, options):
    neg_lr, wd, mu, w = c
    if options & 1:
        g = g + wd * p
    m = w * g + mu * s[0]
    return p + neg_lr * (w * g + mu * m if options & 2 else m), [m]


def _adam(c, p, g, s, options):
    b1, cb1, b2, cb2, inv_c1, inv_c2, eps_root, eps, wd, neg_lr, inv_ahead = c
    if options & 16:  # torch's coupled L2 (with neither AdamW's decay nor NAdam's look-ahead)
        g = g + wd * p
    m = cb1 * g + b1 * s[0]
    v = cb2 * (g * g) + b2 * s[1]
    v_hat, out = v * inv_c2, [m, v]
    if options & 2:  # AMSGrad: the maximum of v, or of v_hat
        top = np.maximum(s[2], v_hat if options & 4 else v)
        v_hat, out = (top if options & 4 else top * inv_c2), [m, v, top]
    m_hat = cb1 * (g * inv_c1) + b1 * (m * inv_ahead) if options & 8 else m * inv_c1  # NAdam
    u = m_hat / (np.sqrt(v_hat + eps_root) + eps)
    if options & 1:
        u = u + wd * p
    return p + neg_lr * u, out


def _inverse_root(a, eps, eps_in_sqrt):
    return 1 / np.sqrt(a + eps) if eps_in_sqrt else 1 / (np.sqrt(a) + eps)


def _rmsprop(c, p, g, s, options):
    wd, d, cd, eps, neg_lr, mu = c
    if options & 1:
        g = g + wd * p
    n = cd * (g * g) + d * s[0]
    spread, out = n, [n]
    if options & 4:  # centered: n - m^2
        m = cd * g + d * s[1]
        spread, out = n - m * m, [n, m]
    u = _inverse_root(spread, eps, options >> 1 & 1) * g
    if not options & 8:
        return p + neg_lr * u, out
    v = neg_lr * u + mu * s[len(out)]  # momentum with the learning rate inside
    return p + (neg_lr * u + mu * v if options & 16 else v), [*out, v]


def _adagrad(c, p, g, s, options):
    eps, neg_lr = c
    a = g * g + s[0]
    r = _inverse_root(a, eps, options & 1)
    if options & 1:
        r = np.where(a + eps > 0, r, np.zeros_like(r))
    return p + neg_lr * (r * g), [a]


def _lion(c, p, g, s, options):
    b1, cb1, b2, cb2, wd, neg_lr = c
    u = np.sign(cb1 * g + b1 * s[0]) + wd * p
    return p + neg_lr * u, [cb2 * g + b2 * s[0]]


_REFERENCE = {
    "momentum": _momentum,
    "adam": _adam,
    "rmsprop": _rmsprop,
    "adagrad": _adagrad,
    "lion": _lion,
}
# (kernel, options, number of buffers, scalars as (low, high) ranges).
_DECAY, _LR, _SMALL, _EPS = (0.5, 0.999), (-0.1, -1e-4), (0.0, 0.1), (1e-8, 1e-3)
_MOMENTUM = [_LR, _SMALL, _DECAY, _DECAY]
_RMSPROP = [_SMALL, _DECAY, _SMALL, _EPS, _LR, _DECAY]
_ADAM = [_DECAY, _SMALL, _DECAY, _SMALL, (1, 10), (1, 1e3), _SMALL, _EPS, _SMALL, _LR, (1, 10)]
_VARIANTS = [
    *(("momentum", o, 1, _MOMENTUM) for o in range(4)),
    *(("adam", o, 2, _ADAM) for o in (0, 1, 8, 9)),
    *(("adam", o, 3, _ADAM) for o in (2, 3, 6, 7)),
    ("adam", 16, 2, _ADAM),  # coupled L2
    *(("adam", o, 3, _ADAM) for o in (18, 22)),  # coupled L2, AMSGrad
    *(("rmsprop", o, 1, _RMSPROP) for o in range(4)),
    *(("rmsprop", o, 2, _RMSPROP) for o in range(4, 8)),
    *(("rmsprop", o, 2, _RMSPROP) for o in (8, 11, 27)),  # momentum (nesterov at 27)
    *(("rmsprop", o, 3, _RMSPROP) for o in (12, 31)),  # centered, momentum
    *(("adagrad", o, 1, [(0.0, 1e-3), _LR]) for o in (0, 1)),
    ("lion", 0, 1, [_DECAY, _SMALL, _DECAY, _SMALL, _SMALL, _LR]),
]


def _leaves(rng, dtype, nonnegative=False):
    leaves = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    for leaf in leaves:
        leaf[:: max(1, leaf.size // 5)] = 0  # sign(0), 0 / (0 + eps)
    return [np.abs(x) for x in leaves] if nonnegative else leaves


@needs_kernels
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("kernel", "options", "n_buffers", "ranges"), _VARIANTS)
def test_kernel_is_its_formula_bit_for_bit(kernel, options, n_buffers, ranges, dtype):
    rng = np.random.default_rng(options + 10 * len(ranges))
    scalars = np.array([rng.uniform(lo, hi) for lo, hi in ranges], dtype)
    params, grads = _leaves(rng, dtype), _leaves(rng, dtype)
    # Adam's second buffer and RMSProp's and Adagrad's sum squares (>= 0), as AMSGrad's maximum.
    squares = {"adam": (1, 2), "rmsprop": (0,), "adagrad": (0,)}.get(kernel, ())
    buffers = [_leaves(rng, dtype, k in squares) for k in range(n_buffers)]
    if kernel == "rmsprop" and options & 4:  # centered: n >= m^2, as the two EMAs keep them
        scalars[2] = 1 - scalars[1]
        buffers[0] = [
            n + m * m + n.dtype.type(0.01) for n, m in zip(buffers[0], buffers[1], strict=True)
        ]
    with jax.enable_x64(dtype == "float64"):
        run = jax.jit(lambda *a: fused.call(kernel, options, *a))
        got_p, got_s = run(scalars, params, grads, buffers)
        for i in range(len(SIZES)):
            leaf_buffers = [b[i] for b in buffers]
            want_p, want_s = _REFERENCE[kernel](scalars, params[i], grads[i], leaf_buffers, options)
            np.testing.assert_array_equal(np.asarray(got_p[i]), want_p)
            assert np.asarray(got_p[i]).dtype == np.dtype(dtype)
            for k in range(n_buffers):
                np.testing.assert_array_equal(np.asarray(got_s[k][i]), want_s[k])


# The optimizers that declare a fused step, in the configurations that take each variant.
_OPTIMIZERS = {
    "momentum": lambda: jopt.sgd(0.1, 0.9),
    "nesterov_l2": lambda: jopt.sgd(0.05, 0.9, nesterov=True, weight_decay=0.01),
    "momentum_dampened": lambda: jopt.sgd(0.1, 0.8, dampening=0.3, weight_decay=0.1),
    "momentum_ema": lambda: jopt.sgd(0.1, 0.9, momentum_form="ema"),
    "adam": lambda: jopt.adam(1e-2),
    "adam_eps_root": lambda: jopt.adam(1e-2, 0.8, 0.99, eps=1e-6, eps_root=1e-8),
    "adamw": lambda: jopt.adamw(1e-2, weight_decay=0.1),
    "nadam": lambda: jopt.nadam(1e-2),
    "nadamw": lambda: jopt.nadamw(1e-2, weight_decay=0.1),
    "amsgrad": lambda: jopt.amsgrad(1e-2),
    "amsgrad_optax": lambda: jopt.amsgrad(1e-2, max_of="corrected"),
    "amsgrad_uncorrected_mu": lambda: jopt.amsgrad(1e-2, bias_correction_mu=False),
    "rmsprop": lambda: jopt.rmsprop(1e-2),
    "rmsprop_centered": lambda: jopt.rmsprop(1e-2, centered=True),
    "rmsprop_momentum": lambda: jopt.rmsprop(1e-2, momentum=0.9),
    "rmsprop_centered_nesterov": lambda: jopt.rmsprop(
        1e-2, centered=True, momentum=0.5, nesterov=True
    ),
    "rmsprop_centered_torch_eps": lambda: jopt.rmsprop(1e-2, centered=True, eps_in_sqrt=False),
    "rmsprop_torch_eps_l2": lambda: jopt.rmsprop(1e-2, 0.99, eps_in_sqrt=False, weight_decay=0.1),
    "adagrad": lambda: jopt.adagrad(0.1),
    "adagrad_torch": lambda: jopt.adagrad(0.1, 0.0, 1e-10, eps_in_sqrt=False),
    "adagrad_zero_eps": lambda: jopt.adagrad(0.1, 0.0, 0.0),
    "lion": lambda: jopt.lion(1e-3),
    "adam_scheduled": lambda: jopt.adam(jopt.cosine_decay_schedule(1e-2, 10), b1=0.8),
    "lion_scheduled": lambda: jopt.lion(optax.linear_schedule(1e-3, 1e-4, 5), weight_decay=0.1),
    # The torch twins whose layout the kernels compute (weight decay 0.0 included: it is a block).
    "torch_sgd": lambda: jopt.torch.SGD(0.1, momentum=0.9),
    "torch_sgd_nesterov_l2": lambda: jopt.torch.SGD(
        0.05, momentum=0.9, nesterov=True, weight_decay=0.01
    ),
    "torch_sgd_one_cycle": lambda: jopt.torch.SGD(jopt.torch.OneCycleLR(0.1, 12), momentum=0.9),
    "torch_rmsprop": lambda: jopt.torch.RMSprop(1e-2),
    "torch_rmsprop_centered_l2": lambda: jopt.torch.RMSprop(1e-2, centered=True, weight_decay=0.1),
    "torch_adam": lambda: jopt.torch.Adam(1e-2),
    "torch_adam_l2_amsgrad": lambda: jopt.torch.Adam(1e-2, weight_decay=0.1, amsgrad=True),
    "torch_adam_one_cycle": lambda: jopt.torch.Adam(jopt.torch.OneCycleLR(1e-2, 12)),
    "torch_adam_decoupled": lambda: jopt.torch.Adam(
        1e-2, weight_decay=0.1, decoupled_weight_decay=True
    ),
    "torch_adamw_amsgrad": lambda: jopt.torch.AdamW(1e-2, amsgrad=True),
}
_NOT_FUSIBLE = {
    "sgd": lambda: jopt.sgd(0.1),  # XLA's one loop is at the bandwidth
    "sgd_l2": lambda: jopt.sgd(0.1, weight_decay=0.01),
    "nadam_uncorrected": lambda: jopt.nadam(1e-2, bias_correction=False),
    "adam_8bit": lambda: jopt.adam(1e-2, state_format="8bit"),
    "adam_uncorrected": lambda: jopt.adam(1e-2, bias_correction=False),
    "adamw_masked": lambda: jopt.adamw(1e-2, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
    "momentum_keras": lambda: jopt.sgd(0.1, 0.9, momentum_form="lr_inside"),
    "rmsprop_momentum_classic": lambda: jopt.rmsprop(1e-2, momentum=0.9, momentum_form="classic"),
    "lion_masked": lambda: jopt.lion(1e-3, mask={"a": True, "b": False}),
    "optax_adam": lambda: optax.adam(1e-2),
    "torch_sgd_plain": lambda: jopt.torch.SGD(0.1),
    "torch_sgd_dampened": lambda: jopt.torch.SGD(0.1, momentum=0.9, dampening=0.1),  # buf = g first
    "torch_rmsprop_momentum": lambda: jopt.torch.RMSprop(1e-2, momentum=0.9),  # lr outside
    "torch_adam_maximize": lambda: jopt.torch.Adam(1e-2, maximize=True),
    "torch_adam_groups": lambda: jopt.torch.Adam(
        1e-2, param_groups=[{"params": "w"}, {"params": "b", "lr": 1e-3}]
    ),
}


def _params():
    return {"a": jnp.linspace(-1.0, 1.0, 300).reshape(10, 30), "b": jnp.linspace(0.5, 2.0, 7)}


def _loss(params, x):
    leaves = jax.tree.leaves(params)
    return sum(jnp.sum((w * x[: w.size].reshape(w.shape) - 0.3) ** 2) for w in leaves)


def _loss_in_float32(params, x):
    return _loss(jax.tree.map(lambda w: w.astype(jnp.float32), params), x)


X = jnp.cos(jnp.arange(300.0))
_GRAD = jax.jit(jax.grad(_loss))


def _within_an_ulp_of_scale(got, want, ulps=1):
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        g, w = np.asarray(g), np.asarray(w)
        if w.dtype.kind != "f":
            np.testing.assert_array_equal(g, w)  # step counts
            continue
        scale = np.max(np.abs(w))
        np.testing.assert_allclose(g, w, rtol=0, atol=ulps * np.finfo(w.dtype).eps * scale)


def test_the_fusible_configurations_declare_a_rule_and_the_others_none():
    for name, make in _OPTIMIZERS.items():
        assert fused.rule_of(make()) is not None, name
    for name, make in _NOT_FUSIBLE.items():
        assert fused.rule_of(make()) is None, name


# XLA's CPU rsqrt is a few ulps from 1 / sqrt: with momentum, RMSProp's buffer holds lr * u
# itself, so that error shows at the buffer's scale (without it, u is small beside the params).
_ULPS = {"rmsprop_momentum": 4, "rmsprop_centered_nesterov": 4}
# torch's coupled L2 before Adam's moments: XLA contracts g + wd p into one rounding where the
# kernel rounds the product first, and v squares that difference: 1.07 ulps of v's scale seen.
_ULPS |= {"torch_adam_l2_amsgrad": 2}


def _follows_the_plain_step(name, ulps=None):
    tx = _OPTIMIZERS[name]()
    rule = fused.rule_of(tx)

    def plain(grads, state, params):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    plain = jax.jit(plain)
    fast = jax.jit(lambda grads, state, params: fused.apply(tx, rule, grads, state, params))
    params = jax.tree.map(lambda x: x.astype(jnp.result_type(float)), _params())
    state = tx.init(params)
    for _ in range(12):
        grads = _GRAD(params, X)
        want = plain(grads, state, params)
        got = fast(grads, state, params)
        _within_an_ulp_of_scale(got, want, ulps or _ULPS.get(name, 1))
        # The counts and hyperparameters are the plain update's own, bit for bit.
        assert jopt.get_hparams(got[1]) == jopt.get_hparams(want[1])
        params, state = want
    assert jax.tree.leaves(got[0])[0].dtype == jnp.result_type(float)


@needs_kernels
@pytest.mark.parametrize("name", sorted(_OPTIMIZERS))
def test_fused_step_is_the_plain_step_within_an_ulp_of_scale(name):
    _follows_the_plain_step(name)


@needs_kernels
@pytest.mark.parametrize("name", ["momentum_dampened", "adamw", "amsgrad", "rmsprop", "lion"])
def test_in_float64_too(name):
    with jax.enable_x64(True):
        _follows_the_plain_step(name)


@needs_kernels
def test_fused_step_under_vmap_runs_each_member():
    tx = jopt.adam(1e-2)
    rule = fused.rule_of(tx)
    lrs = jnp.array([1e-3, 1e-2, 1e-1])
    params = _params()
    states = jax.vmap(lambda lr: jopt.set_hparams(tx.init(params), learning_rate=lr))(lrs)
    grads = _GRAD(params, X)

    def plain(state):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    fast = jax.vmap(lambda state: fused.apply(tx, rule, grads, state, params))
    _within_an_ulp_of_scale(jax.jit(fast)(states), jax.jit(jax.vmap(plain))(states))


def _kernels_in(step, *args) -> bool:
    return "jopt_fused" in step.lower(*args).as_text()


@needs_kernels
def test_train_step_takes_the_kernel_unless_told_not_to(monkeypatch):
    tx, params = jopt.adam(1e-2), _params()
    state = tx.init(params)
    assert _kernels_in(jopt.train_step(_loss, tx, donate=False), params, state, X)
    assert not _kernels_in(jopt.train_step(_loss, tx, donate=False, fused=False), params, state, X)
    monkeypatch.setenv("JOPT_FUSED", "0")
    assert not _kernels_in(jopt.train_step(_loss, tx, donate=False), params, state, X)
    assert _kernels_in(jopt.train_step(_loss, tx, donate=False, fused=True), params, state, X)


@needs_kernels
def test_fused_train_step_donates_and_follows_the_plain_one():
    tx = jopt.adamw(1e-2, weight_decay=0.1)
    fast, plain = jopt.train_step(_loss, tx), jopt.train_step(_loss, tx, fused=False)
    p1, s1 = _params(), tx.init(_params())
    p2, s2 = _params(), tx.init(_params())
    for _ in range(10):
        old = jax.tree.leaves((p1, s1))
        p1, s1, loss1 = fast(p1, s1, X)
        assert all(leaf.is_deleted() for leaf in old)
        p2, s2, loss2 = plain(p2, s2, X)
    np.testing.assert_allclose(float(loss1), float(loss2), rtol=1e-6)
    for a, b in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((p2, s2)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


@needs_kernels
def test_bfloat16_and_mixed_params_take_the_plain_path():
    tx = jopt.adam(1e-2)
    for params in (
        jax.tree.map(lambda x: x.astype(jnp.bfloat16), _params()),
        {"a": _params()["a"], "b": _params()["b"].astype(jnp.bfloat16)},
    ):
        state = tx.init(params)
        step = jopt.train_step(_loss_in_float32, tx, donate=False)
        assert not _kernels_in(step, params, state, X)
        assert "float32 or all float64" in fused.why_not(fused.rule_of(tx), params, state)


@needs_kernels
def test_flat_train_step_takes_the_kernel_on_its_buffers():
    tx = jopt.sgd(0.1, 0.9, nesterov=True)
    flat = jopt.flatten_params(_params())
    state = tx.init(flat)
    step = jopt.flat_train_step(_loss, tx, donate=False)
    assert _kernels_in(step, flat, state, X)
    plain = jopt.flat_train_step(_loss, tx, donate=False, fused=False)
    _within_an_ulp_of_scale(step(flat, state, X), plain(flat, state, X))


def test_missing_kernels_warn_once_and_take_the_plain_path(monkeypatch):
    monkeypatch.setattr(fused, "unavailable", lambda: "the kernels were not built (test)")
    fused.warn_unavailable.cache_clear()
    tx, params = jopt.adam(1e-2), _params()
    with pytest.warns(RuntimeWarning, match="not built.*XLA path.*JOPT_FUSED=0") as caught:
        step = jopt.train_step(_loss, tx, donate=False)
    assert caught[0].filename == __file__  # the line that built the step
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jopt.train_step(_loss, tx, donate=False)  # once per process
        jopt.train_step(_loss, tx, donate=False, fused=False)
    assert not _kernels_in(step, params, tx.init(params), X)
    with pytest.raises(RuntimeError, match=r"fused=True, but the kernels were not built \(test\)"):
        jopt.train_step(_loss, tx, fused=True)
    fused.warn_unavailable.cache_clear()


def test_fused_true_needs_an_optimizer_with_a_kernel():
    with pytest.raises(ValueError, match="fused=True, but this optimizer has no fused kernel"):
        jopt.train_step(_loss, optax.adam(1e-2), fused=True)
    with pytest.raises(TypeError, match="fused must be True, False or None, got 'yes'"):
        jopt.train_step(_loss, jopt.adam(1e-2), fused="yes")
    with pytest.raises(ValueError, match="unknown fused kernel 'adamax'"):
        fused.declare(jopt.adam(1e-2), fused.FusedRule("adamax", (), 0, lambda s, d: []))


@needs_kernels
def test_the_kernel_refuses_leaves_whose_dtype_is_not_its_scalars():
    with jax.enable_x64(True):
        leaf = jnp.ones(3, jnp.float32)
        scalars = jnp.ones(2, jnp.float64)
        with pytest.raises(jax.errors.JaxRuntimeError, match="leaves and scalars differ in dtype"):
            jax.jit(lambda *a: fused.call("adagrad", 0, *a))(scalars, [leaf], [leaf], [[leaf]])


def test_a_call_that_does_not_fit_its_kernel_is_refused_before_it_runs():
    leaf = jnp.ones(3)
    with pytest.raises(
        ValueError, match="adam kernel with options 2 updates 3 state buffers, got 2"
    ):
        fused.call("adam", 2, jnp.ones(11), [leaf], [leaf], [[leaf], [leaf]])
    with pytest.raises(
        ValueError, match=r"lion kernel takes 6 scalars, got an array of shape \(5,\)"
    ):
        fused.call("lion", 0, jnp.ones(5), [leaf], [leaf], [[leaf]])


def test_a_foreign_state_gets_the_plain_updates_error():
    step = jopt.train_step(_loss, jopt.adam(1e-2), donate=False)
    params = _params()
    for state in (jopt.sgd(0.1, 0.9).init(params), None):
        with pytest.raises(ValueError, match="this state was not made by jopt.adam's init"):
            step(params, state, X)
