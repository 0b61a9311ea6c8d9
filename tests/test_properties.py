"""Properties that hold for random inputs, checked with hypothesis (float32).

- Zero gradients leave the params unchanged, bit for bit, over several steps, for every optimizer
  without weight decay, from random params and with random hyperparameters in their valid ranges
  (set in the state with `jopt.set_hparams`, so that the examples share one compiled step).
- With eps = 0 (and eps_root = 0, initial accumulators 0), the adaptive optimizers are invariant to
  the scale of the gradients: gradients times c, for c in [1e-3, 1e3], give the same trajectory
  over 10 steps to a relative 1e-5.
- Clipping never makes gradients larger: `clip_by_global_norm` returns a tree whose norm is at most
  min(input norm, max_norm), and `clip` returns values in [-max_delta, max_delta], no larger in
  magnitude than the input and unchanged where already in range.

Every jitted function is built once per optimizer (`functools.cache`) and traced once (checked):
hypothesis examples change values, never shapes.
"""

from __future__ import annotations

import collections
import functools
import inspect

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jopt
from tests import helpers

EXAMPLES = settings(max_examples=25, deadline=None)


def _floats(lo: float, hi: float, **kwargs) -> st.SearchStrategy[float]:
    """float32-representable numbers in [lo, hi] (no subnormals: XLA may flush them to 0).

    Representable, so that the value stored in the float32 state is the value drawn: a decay rate
    such as 0.99999999 is valid (< 1) but rounds to 1.0 in float32, where `1 - b**t` is 0.
    """
    lo, hi = float(np.float32(lo)), float(np.float32(hi))
    return st.floats(lo, hi, width=32, allow_subnormal=False, **kwargs)


def _arrays(shape: tuple[int, ...], bound: float) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float32, shape, elements=_floats(-bound, bound))


_TRACES: collections.Counter[str] = collections.Counter()


def _jit_once(key: str, fn):
    """`jax.jit(fn)`, counting its traces in `_TRACES[key]` (see `_assert_traced_once`)."""

    def counted(*args):
        _TRACES[key] += 1
        return fn(*args)

    return jax.jit(counted)


def _assert_traced_once(key: str) -> None:
    assert _TRACES[key] == 1, f"{key} was traced {_TRACES[key]} times: examples recompile"


def _params(bound: float = 1e30) -> st.SearchStrategy[tuple[np.ndarray, ...]]:
    return st.tuples(*(_arrays(shape, bound) for shape in helpers.SHAPES))


# -- zero gradients ------------------------------------------------------------------------------

ZERO_GRAD_STEPS = 5
_DECAY_RATE = _floats(0.0, 1.0, exclude_max=True)
# Valid values of every hyperparameter of the cases without weight decay. eps is drawn > 0: with
# eps = 0 a zero gradient gives 0 / 0 = NaN in Adam, RMSProp, Adadelta... (as in optax and torch).
HPARAM_VALUES: dict[str, st.SearchStrategy[float]] = {
    "learning_rate": _floats(0.0, 1e3),
    "momentum": _DECAY_RATE,
    "dampening": _floats(0.0, 1.0),
    "decay": _DECAY_RATE,
    "rho": _DECAY_RATE,
    "b1": _DECAY_RATE,
    "b2": _DECAY_RATE,
    "eps": _floats(1e-30, 1.0),
    "eps_root": _floats(0.0, 1.0),
    "alpha": _floats(0.0, 1e3),  # optimistic gradient descent's weights
    # Signum's decay rate, in [0, 1); optimistic gradient descent's beta (>= 0) takes these too.
    "beta": _DECAY_RATE,
    "eta_minus": _floats(0.0, 1.0, exclude_min=True, exclude_max=True),  # Rprop
    "eta_plus": _floats(1.0, 1e3, exclude_min=True),
    "min_step_size": _floats(0.0, 1e3),
    "max_step_size": _floats(0.0, 1e3, exclude_min=True),
    "f_min": _floats(-1e3, 1e3),  # Polyak's
    "max_learning_rate": _floats(0.0, 1e3),
    "scaling": _floats(0.0, 1e3),
}
# Yogi starts both moments at 1e-6, as optax: zero gradients move its params (from a zero start
# they do not: tests/test_adaptive.py).
# Noisy SGD adds noise to zero gradients too.
ZERO_GRAD_CASES = [
    case
    for case in helpers.CASES
    if not case.uses_params and case.optimizer not in ("yogi", "noisy_sgd")
]


@functools.cache
def _zero_grad_runner(case_id: str):
    """(tx, names of its hyperparameters, jitted `(params, state) -> params after zero grads`)."""
    tx = helpers.CASES_BY_ID[case_id].build()
    names = tuple(jopt.get_hparams(tx.init(helpers.random_problem()[2](jnp.float32))))

    def run(params, state):
        def body(carry, _):
            p, s = carry
            u, s = tx.update(jax.tree.map(jnp.zeros_like, p), s, p)
            return (optax.apply_updates(p, u), s), None

        (params, _), _ = jax.lax.scan(body, (params, state), None, length=ZERO_GRAD_STEPS)
        return params

    return tx, names, _jit_once(f"zero_grads/{case_id}", run)


@pytest.mark.parametrize("case", ZERO_GRAD_CASES, ids=repr)
@EXAMPLES
@given(params=_params(), data=st.data())
def test_zero_grads_leave_params_unchanged(case, params, data):
    tx, names, run = _zero_grad_runner(case.id)
    missing = sorted(set(names) - set(HPARAM_VALUES))
    assert not missing, f"add a strategy for {missing} to HPARAM_VALUES"
    hparams = {name: data.draw(HPARAM_VALUES[name], label=name) for name in names}
    params = tuple(jnp.asarray(p) for p in params)
    state = jopt.set_hparams(tx.init(params), **hparams)
    chex.assert_trees_all_equal(run(params, state), params)
    _assert_traced_once(f"zero_grads/{case.id}")


# -- invariance to the scale of the gradients ----------------------------------------------------

SCALE_STEPS = 10
# Optimizers whose trajectory depends on the gradients' scale even with eps = 0.
_SCALE_DEPENDENT = {
    jopt.sgd: "the step is proportional to the gradient",
    jopt.schedule_free_sgd: "the step of z is proportional to the gradient",
    jopt.optimistic_gradient_descent: "the step is proportional to the gradients",
    jopt.radam: "the first steps (rho_t <= threshold) are plain momentum, not normalized",
    jopt.adadelta: "with eps = 0 it never moves (the first step is sqrt(0) / sqrt(v) * g = 0)",
    jopt.polyak_sgd: "the Polyak step (f - f*) / |g|^2 scales as 1 / scale",
    jopt.momo: "the model's step reads the loss, which the gradients' scale leaves unchanged",
    jopt.momo_adam: "the model's step reads the loss, which the gradients' scale leaves unchanged",
    jopt.lbfgs: "the line search evaluates the loss",
    jopt.asgd: "the step is proportional to the gradient",
    jopt.noisy_sgd: "the step is proportional to the gradient, the noise added to it is not",
    jopt.ftrl: "l1, l2, l2_shrinkage and beta are absolute (without them: tests/test_online.py)",
}
# Constructor arguments that break scale invariance unless 0.
_SCALE_PARAMETERS = ("eps", "eps_root", "initial_scale", "initial_accumulator_value")
SCALE_FREE_CASES = [
    case for case in helpers.CASES if case.scale_invariant or case.make not in _SCALE_DEPENDENT
]


@functools.cache
def _scaled_runner(case_id: str):
    """Jitted `scale -> trajectory` of `case` built with eps = 0, its gradients times `scale`."""
    case = helpers.CASES_BY_ID[case_id]
    accepted = inspect.signature(case.make).parameters
    tx = case.build(**{name: 0.0 for name in _SCALE_PARAMETERS if name in accepted})
    _, grad, start = helpers.random_problem(case.seed)
    params = start(jnp.float32)

    def run(scale):
        def scaled_grad(p):
            return jax.tree.map(lambda g: g * scale, grad(p))

        return helpers.run_jopt(tx, scaled_grad, params, SCALE_STEPS)[0]

    # run_jopt jits the scan; the outer jit makes `scale` an argument, traced once.
    return _jit_once(f"scaled/{case_id}", run)


@pytest.mark.parametrize("case", SCALE_FREE_CASES, ids=repr)
@EXAMPLES
@given(exponent=st.floats(-3.0, 3.0))
def test_eps_free_trajectory_is_invariant_to_gradient_scale(case, exponent):
    run = _scaled_runner(case.id)
    want = run(jnp.float32(1.0))
    got = run(jnp.float32(10.0**exponent))
    chex.assert_tree_all_finite(got)
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-5)
    _assert_traced_once(f"scaled/{case.id}")


# -- clipping ------------------------------------------------------------------------------------

_CLIP_SHAPES = ((), (3,), (2, 4))


def _gradients() -> st.SearchStrategy[tuple[np.ndarray, ...]]:
    """Trees of float32 gradients with elements 0 or of magnitude in [1e-6, 1e6].

    The range keeps the squares inside float32: below ~1e-19 they underflow (the global norm of a
    tree of tiny values reads 0, and nothing is clipped), above ~1e19 they overflow (the norm reads
    inf, and the clipped tree is all zeros). Both are reported as limitations, not tested here.
    """
    element = _floats(-1e6, 1e6).map(lambda x: x if abs(x) >= 1e-6 else 0.0)
    return st.tuples(*(hnp.arrays(np.float32, shape, elements=element) for shape in _CLIP_SHAPES))


@functools.cache
def _clip_runner(kind: str):
    tx = {"global_norm": jopt.clip_by_global_norm(1.0), "clip": jopt.clip(1.0)}[kind]
    return tx, _jit_once(f"clip/{kind}", lambda g, s: tx.update(g, s)[0])


def _norm(tree) -> float:
    return float(np.sqrt(sum(np.sum(np.square(np.asarray(x, np.float64))) for x in tree)))


@EXAMPLES
@given(grads=_gradients(), max_norm=_floats(0.0, 1e6))
def test_clip_by_global_norm_never_increases_the_norm(grads, max_norm):
    tx, run = _clip_runner("global_norm")
    grads = tuple(jnp.asarray(g) for g in grads)
    out = run(grads, jopt.set_hparams(tx.init(grads), max_norm=max_norm))
    chex.assert_trees_all_equal_shapes_and_dtypes(out, grads)
    assert _norm(out) <= min(_norm(grads), max_norm) * (1 + 1e-6)
    _assert_traced_once("clip/global_norm")


@EXAMPLES
@given(grads=st.tuples(*(_arrays(shape, 1e30) for shape in _CLIP_SHAPES)), delta=_floats(0, 1e6))
def test_clip_bounds_every_element_and_never_increases_it(grads, delta):
    tx, run = _clip_runner("clip")
    grads = tuple(jnp.asarray(g) for g in grads)
    out = run(grads, jopt.set_hparams(tx.init(grads), max_delta=delta))
    chex.assert_trees_all_equal_shapes_and_dtypes(out, grads)
    for g, o in zip(grads, out, strict=True):
        g, o = np.asarray(g), np.asarray(o)
        assert np.all(np.abs(o) <= delta)
        assert np.all(np.abs(o) <= np.abs(g))
        inside = np.abs(g) <= delta
        np.testing.assert_array_equal(o[inside], g[inside])
    _assert_traced_once("clip/clip")
