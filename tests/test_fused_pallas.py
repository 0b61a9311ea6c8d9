"""The fused steps' Pallas kernels (jopt/_src/fused_pallas.py), checked on the CPU.

- Each kernel's formula, the function its Pallas kernel applies to each block, evaluated one
  operation at a time, equals bit for bit the NumPy evaluation of fused_cpu.cc's formula that
  the CPU kernels equal (tests/test_fused.py's `_REFERENCE`), in every variant, in float32 and
  float64, zeros and NaNs included.
- The Pallas kernel itself, run by `interpret=True` (each kernel's variant with the most options,
  in float64), is within 2 ulps of that evaluation at the scale of each leaf: the largest
  magnitude among its param, gradient and buffers, before and after. Not
  bit for bit: XLA compiles the interpreted program, contracting some products and sums into
  fused multiply-adds and rewriting 1 / sqrt as rsqrt (measured here: up to 0.85 ulp of that
  scale, 1.4 on other data). The scale of each result alone, as
  `test_fused._within_an_ulp_of_scale` takes it, is not enough: where the random buffers cancel
  the gradient's term (m = w g + mu m), a contracted sum is several ulps of a small result.
- It handles leaves of every shape: a scalar, empty, 1, 7 and 1,000 elements, 2-D, several
  blocks with a partial last one; each param and buffer is updated in place; under `jax.vmap`
  each member takes its own scalars.
- Every variant, in float32 and float64, lowers for the GPU through Triton, each output aliased
  to its input (on this CPU-only machine: lowering checks Triton's rules on shapes and
  operations; what it cannot check is the GPU's arithmetic and speed).
- Behind jopt's steps (`fused.call` pointed at the interpreted kernels): a configuration of
  each of the 18 kernel variants steps as its plain update does, within 2 ulps of each leaf's
  scale (4 where XLA's rsqrt reaches RMSProp's momentum buffer, as on the CPU); a train step
  takes them with `fused=True`; on the GPU only then.
"""

from __future__ import annotations

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt._src import fused, fused_pallas
from tests import test_fused
from tests.test_fused import _LR, _REFERENCE, _VARIANTS

DTYPES = ["float32", "float64"]
ONE_BLOCK = (25, 40)  # 1,000 elements: one block of 1,024, partial
SPANNING = (3, 1029)  # 3,087 elements: four blocks, the last one partial
AWKWARD = [(), (0,), (1,), (7,), (1000,), SPANNING]
# Adagrad with eps = 0 too: its guard against 0 / 0 (eps inside the root), inf * 0 (outside).
_FORMULAS = [*_VARIANTS, ("adagrad", 0, 1, [(0.0, 0.0), _LR]), ("adagrad", 1, 1, [(0.0, 0.0), _LR])]


def _problem(kernel, options, n_buffers, ranges, dtype, shapes, seed=0):
    """Scalars in their ranges, and params, gradients and buffers of the shapes with zeros
    (sign(0), 0 / 0), the kernel's sums of squares nonnegative, as the optimizers keep them."""
    rng = np.random.default_rng(seed + options + 10 * len(ranges))
    scalars = np.array([rng.uniform(lo, hi) for lo, hi in ranges], dtype)

    def leaves(nonnegative=False):
        out = []
        for shape in shapes:
            x = rng.standard_normal(shape).astype(dtype)
            x.reshape(-1)[:: max(1, x.size // 5)] = 0
            out.append(np.abs(x) if nonnegative else x)
        return out

    params, grads = leaves(), leaves()
    squares = {"adam": (1, 2), "rmsprop": (0,), "adagrad": (0,)}.get(kernel, ())
    buffers = [leaves(k in squares) for k in range(n_buffers)]
    if kernel == "rmsprop" and options & 4:  # centered: n >= m^2, as the two EMAs keep them
        scalars[2] = 1 - scalars[1]
        buffers[0] = [n + m * m + n.dtype.type(1) for n, m in zip(*buffers[:2], strict=True)]
    return scalars, params, grads, buffers


def _reference(kernel, options, scalars, params, grads, buffers):
    """`_REFERENCE` leaf by leaf: (params, [each buffer's leaves])."""
    with np.errstate(all="ignore"):  # the NaNs, inf * 0
        out = [
            _REFERENCE[kernel](scalars, p, g, [b[i] for b in buffers], options)
            for i, (p, g) in enumerate(zip(params, grads, strict=True))
        ]
    return [p for p, _ in out], [[s[k] for _, s in out] for k in range(len(buffers))]


def _assert_within_ulps_of_leaf_scale(got, want, inputs, ulps=2):
    """Each leaf of `got` within `ulps` of `want` at the leaf's scale: the largest magnitude
    among its inputs and results."""
    got_p, got_s = got
    want_p, want_s = want
    params, grads, buffers = inputs
    for i in range(len(want_p)):
        leaf = [params[i], grads[i], want_p[i], *(b[i] for b in buffers), *(s[i] for s in want_s)]
        scale = max((float(np.max(np.abs(x))) for x in leaf if x.size), default=0.0)
        atol = ulps * np.finfo(want_p[i].dtype).eps * scale
        pairs = [(got_p[i], want_p[i]), *((s[i], t[i]) for s, t in zip(got_s, want_s, strict=True))]
        for g, w in pairs:
            g = np.asarray(g)
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=0, atol=atol)


def _variant(kernel, options):
    return next(v for v in _VARIANTS if v[:2] == (kernel, options))


# Interpreting a kernel compiles a program (0.2-0.3 s): against the formula here, each kernel's
# variant with the most options in float64; every variant runs in float32 below, driven by the
# optimizers' rules (`test_each_fused_rule_drives_the_pallas_kernels_as_the_plain_step`).
_RICHEST = [("momentum", 3), ("adam", 7), ("rmsprop", 31), ("adagrad", 1), ("lion", 0)]
_INTERPRETED = [(_variant(*k), "float64") for k in _RICHEST]


def _interpreted(kernel, options):
    return jax.jit(lambda *a: fused_pallas.call(kernel, options, *a, interpret=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kernel", "options", "n_buffers", "ranges"), _FORMULAS)
def test_formula_is_the_cpu_kernels_bit_for_bit(kernel, options, n_buffers, ranges, dtype):
    scalars, params, grads, buffers = _problem(kernel, options, n_buffers, ranges, dtype, [(300,)])
    for k, buffer in enumerate(buffers):  # NaN, in a different element of each stream
        buffer[0][1 + k] = np.nan
    grads[0][-1] = np.nan
    math = fused_pallas._FORMULAS[kernel]
    want_p, want_s = _reference(kernel, options, scalars, params, grads, buffers)
    with jax.enable_x64(dtype == "float64"):  # one operation at a time: nothing is contracted
        got_p, got_s = math(
            [jnp.asarray(c) for c in scalars],
            options,
            jnp.asarray(params[0]),
            jnp.asarray(grads[0]),
            [jnp.asarray(b[0]) for b in buffers],
        )
        assert len(got_s) == n_buffers
        for got, want in [(got_p, want_p[0]), *zip(got_s, (s[0] for s in want_s), strict=True)]:
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize(("variant", "dtype"), _INTERPRETED)
def test_interpreted_kernel_follows_its_formula(variant, dtype):
    kernel, options, _, _ = variant
    problem = _problem(*variant, dtype, [ONE_BLOCK])
    with jax.enable_x64(dtype == "float64"):
        got = _interpreted(kernel, options)(*problem)
    _assert_within_ulps_of_leaf_scale(got, _reference(kernel, options, *problem), problem[1:])


@pytest.mark.parametrize(
    ("kernel", "options", "dtype"), [("adam", 7, "float64"), ("rmsprop", 31, "float32")]
)
def test_leaves_of_every_shape(kernel, options, dtype):
    problem = _problem(*_variant(kernel, options), dtype, AWKWARD)
    with jax.enable_x64(dtype == "float64"):
        got = _interpreted(kernel, options)(*problem)
    _assert_within_ulps_of_leaf_scale(got, _reference(kernel, options, *problem), problem[1:])


def test_params_and_buffers_are_updated_in_place():
    scalars, params, grads, buffers = _problem(*_variant("adam", 7), "float32", AWKWARD)
    want = _reference("adam", 7, scalars, params, grads, buffers)
    step = jax.jit(
        lambda c, p, g, s: fused_pallas.call("adam", 7, c, p, g, s, interpret=True),
        donate_argnums=(1, 3),
    )
    donated_params, donated_buffers = jax.device_put((params, buffers))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Some donated buffers were not usable"
        got = step(scalars, donated_params, grads, donated_buffers)
    assert all(x.is_deleted() for x in jax.tree.leaves((donated_params, donated_buffers)))
    _assert_within_ulps_of_leaf_scale(got, want, (params, grads, buffers))


def test_under_vmap_each_member_takes_its_own_scalars():
    kernel, options = "rmsprop", 31
    members = [_problem(*_variant(kernel, options), "float32", [(5, 7)], seed) for seed in (0, 1)]
    stacked = jax.tree.map(lambda *x: np.stack(x), *members)
    got = jax.jit(jax.vmap(lambda *a: fused_pallas.call(kernel, options, *a, interpret=True)))(
        *stacked
    )
    for m, problem in enumerate(members):
        mine = jax.tree.map(lambda x, m=m: x[m], got)
        _assert_within_ulps_of_leaf_scale(mine, _reference(kernel, options, *problem), problem[1:])


def _lowered_for_the_gpu(kernel, options, n_buffers, n_scalars, dtype, shapes):
    leaves = [jax.ShapeDtypeStruct(shape, dtype) for shape in shapes]
    step = jax.jit(lambda *a: fused_pallas.call(kernel, options, *a))
    args = (jax.ShapeDtypeStruct((n_scalars,), dtype), leaves, leaves, [leaves] * n_buffers)
    return step.trace(*args).lower(lowering_platforms=("cuda",)).as_text()


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_variant_lowers_for_the_gpu(dtype):
    with jax.enable_x64(dtype == "float64"):
        for kernel, options, n_buffers, ranges in _VARIANTS:
            text = _lowered_for_the_gpu(kernel, options, n_buffers, len(ranges), dtype, [SPANNING])
            assert text.count("__gpu$xla.gpu.triton") == 1, (kernel, options)


def test_each_output_aliases_its_input_on_the_gpu():
    text = _lowered_for_the_gpu("adam", 7, 3, 11, "float32", AWKWARD)
    aliases = re.findall(r"output_tuple_indices = \[(\d+)\], operand_index = (\d+)", text)
    # One call per leaf but the empty one: operands (scalars, param, gradient, mu, nu, nu_max),
    # results (param, mu, nu, nu_max).
    assert sorted(aliases) == sorted([("0", "1"), ("1", "3"), ("2", "4"), ("3", "5")] * 5)


def test_bad_arguments_are_refused_with_what_to_change():
    x, two = jnp.ones(3), jnp.ones(2)

    def call(kernel="adagrad", options=0, scalars=two, leaf=x, buffers=1, **kwargs):
        return fused_pallas.call(kernel, options, scalars, [leaf], [x], [[x]] * buffers, **kwargs)

    with pytest.raises(ValueError, match="unknown fused kernel 'adamax'"):
        call("adamax")
    with pytest.raises(ValueError, match="adam kernel with options 2 updates 3 state buffers, got"):
        call("adam", 2, jnp.ones(11), buffers=2)
    with pytest.raises(ValueError, match="adagrad kernel takes 2 scalars, got an array of shape"):
        call(scalars=jnp.ones(3))
    with pytest.raises(ValueError, match="leaves of bfloat16 and scalars of float32"):
        call(leaf=x.astype(jnp.bfloat16))
    with pytest.raises(ValueError, match=r"float32\[3\]\) differs from its param \(float32\[4\]\)"):
        call(leaf=jnp.ones(4))
    with pytest.raises(ValueError, match="block must be a power of two, got 1000"):
        call(block=1000)
    big = jax.ShapeDtypeStruct((2**31 + 1,), jnp.float32)  # offsets past int32
    with pytest.raises(ValueError, match="too large for the Pallas kernels, whose offsets are"):
        jax.jit(lambda p: fused_pallas.call("adagrad", 0, two, [p], [p], [[p]])).trace(big)


# -- the Pallas kernels behind jopt's steps ------------------------------------------------------
# On this CPU-only machine `fused.call` is pointed at the interpreted Pallas kernels: each
# optimizer's fused rule (its scalars, its buffers) drives them as it drives the GPU's.


@pytest.fixture
def pallas_kernels(monkeypatch):
    """The kernels that ran: one entry per traced call."""
    ran = []

    def interpreted(kernel, *args):
        ran.append(kernel)
        return fused_pallas.call(kernel, *args, interpret=True)

    monkeypatch.setattr(fused, "call", interpreted)
    return ran


def _one_configuration_per_variant() -> list[str]:
    """The first configuration (by name) of each kernel variant: the rules' scalars are checked
    for every configuration on the CPU's kernels (tests/test_fused.py)."""
    first = {}
    for name in sorted(test_fused._OPTIMIZERS):
        rule = fused.rule_of(test_fused._OPTIMIZERS[name]())
        first.setdefault((rule.kernel, rule.options), name)
    return sorted(first.values())


@pytest.mark.parametrize("name", _one_configuration_per_variant())
def test_each_fused_rule_drives_the_pallas_kernels_as_the_plain_step(pallas_kernels, name):
    test_fused._follows_the_plain_step(name, ulps=max(2, test_fused._ULPS.get(name, 1)))


def test_a_train_step_that_asks_takes_them(pallas_kernels):
    tx, params = jopt.adam(1e-2), test_fused._params()
    state = tx.init(params)
    fast = jopt.train_step(test_fused._loss, tx, donate=False, fused=True)
    plain = jopt.train_step(test_fused._loss, tx, donate=False, fused=False)
    test_fused._within_an_ulp_of_scale(
        fast(params, state, test_fused.X), plain(params, state, test_fused.X), 2
    )
    assert pallas_kernels == ["adam"]


def test_on_the_gpu_they_are_taken_when_asked_for(monkeypatch):
    tx, params = jopt.adam(1e-2), test_fused._params()
    rule, state = fused.rule_of(tx), tx.init(params)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert "taken with fused=True" in fused.why_not(rule, params, state)
    assert fused.why_not(rule, params, state, asked=True) is None
    assert fused.unavailable() is None  # the CPU kernels' library is not needed
    monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
    assert "CPU and GPU backends, not tpu" in fused.why_not(rule, params, state, asked=True)
