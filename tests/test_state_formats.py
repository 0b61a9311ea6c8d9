"""Smaller optimizer state (`jopt._src.state_formats`): 8-bit block-wise dynamic quantization
checked against a NumPy float64 implementation written from Dettmers et al. (2022), stochastic
rounding to bfloat16 checked for its two candidates and its mean, and Adam's `state_format`
options checked for their bytes, their types through steps and their distance from float Adam.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt._src import state_formats as sf


def reference_map(signed: bool) -> np.ndarray:
    """Dynamic tree quantization's values (Dettmers 2016, section 3): for each exponent e = 0..6,
    a linear fraction of 2**e (signed; 2**(e+1) unsigned) bins over [0.1, 1], their centres times
    10**(e - 6); with 0 and 1. float64."""
    values = {0.0, 1.0}
    for e in range(7):
        bins = 2**e if signed else 2 ** (e + 1)
        edges = 0.1 + 0.9 * np.arange(bins + 1) / bins
        centres = (edges[:-1] + edges[1:]) / 2 * 10.0**e / 1e6
        values |= set(centres) | (set(-centres) if signed else set())
    return np.array(sorted(values))


def reference_quantize(x: np.ndarray, signed: bool, block: int = sf.BLOCK_SIZE):
    """Block-wise absmax normalization, then the nearest value of the map (float64)."""
    table = reference_map(signed)
    flat = np.asarray(x, np.float64).ravel()
    flat = np.pad(flat, (0, -flat.size % block)).reshape(-1, block)
    absmax = np.abs(flat).max(axis=1)
    normalized = flat / np.where(absmax > 0, absmax, 1.0)[:, None]
    codes = np.abs(normalized[..., None] - table).argmin(axis=-1)
    return codes, absmax, table[codes] * absmax[:, None]


@pytest.mark.parametrize("signed", [True, False])
def test_the_dynamic_map_is_the_papers(signed):
    table = sf.dynamic_map(signed)
    assert table.shape == (256,) and table.dtype == np.float32
    np.testing.assert_allclose(table, reference_map(signed), rtol=1e-7, atol=0)
    assert table[-1] == 1.0 and 0.0 in table
    # Signed: 127 negative values, 0 and 128 positive ones, 1 among them; no -1.
    assert (np.sum(table < 0), np.sum(table > 0)) == ((127, 128) if signed else (0, 255))


@pytest.mark.parametrize("signed", [True, False])
def test_quantization_is_the_nearest_value_of_the_map_block_by_block(signed):
    rng = np.random.default_rng(0)
    # Blocks of very different scales, a zero block, and a partial last block.
    x = rng.standard_normal(3 * sf.BLOCK_SIZE + 100) * np.repeat(
        [1e-3, 1.0, 0.0, 50.0], [2048, 2048, 2048, 100]
    )
    x = np.abs(x) if not signed else x
    x = x.astype(np.float32)
    q = jax.jit(sf.quantize, static_argnums=1)(jnp.asarray(x), signed)
    codes, absmax, values = reference_quantize(x, signed)
    np.testing.assert_array_equal(q.absmax, absmax.astype(np.float32))
    got = np.asarray(sf.dequantize(q, jnp.asarray(x), signed))
    want = values.ravel()[: x.size]
    # The same code, or (at a tie between two values, in float32) its neighbour at equal distance.
    assert q.codes.shape == x.shape  # one byte per entry, no padding kept
    same = np.asarray(q.codes).ravel() == codes.ravel()[: x.size]
    assert same.mean() > 0.999
    normalized = x / np.repeat(np.where(absmax > 0, absmax, 1), sf.BLOCK_SIZE)[: x.size]
    table = reference_map(signed)
    error_got = np.abs(
        got / np.repeat(np.where(absmax > 0, absmax, 1), sf.BLOCK_SIZE)[: x.size] - normalized
    )
    error_best = np.abs(table[codes.ravel()[: x.size]] - normalized)
    np.testing.assert_allclose(error_got, error_best, atol=1e-6)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    assert np.all(got[2 * sf.BLOCK_SIZE : 3 * sf.BLOCK_SIZE] == 0.0)  # the zero block


def test_the_codes_keep_the_leafs_shape_and_the_blocks_its_flattened_order():
    """Codes shaped like the leaf (so that they can be sharded as it is), the same bytes and
    blocks as the flattened leaf's."""
    x = jnp.sin(jnp.arange(3 * sf.BLOCK_SIZE + 64, dtype=jnp.float32)).reshape(97, 64)
    leaf, flat = sf.quantize(x, True), sf.quantize(jnp.ravel(x), True)
    assert leaf.codes.shape == (97, 64) and leaf.absmax.shape == (4,)
    np.testing.assert_array_equal(np.ravel(leaf.codes), flat.codes)
    np.testing.assert_array_equal(leaf.absmax, flat.absmax)
    np.testing.assert_array_equal(
        sf.dequantize(leaf, x, True), sf.dequantize(flat, jnp.ravel(x), True).reshape(97, 64)
    )


@pytest.mark.parametrize("signed", [True, False])
def test_the_initial_8bit_moments_are_the_quantized_zeros(signed):
    params = {"big": jnp.ones((70, 64)), "small": jnp.ones(10)}
    zeros = jax.tree.map(jnp.zeros_like, params)
    initial = sf.initial(params, "8bit", signed)
    encoded = sf.encode_tree(zeros, "8bit", signed, jnp.zeros([], jnp.int32), 0)
    assert jax.tree.structure(initial) == jax.tree.structure(encoded)
    for a, b in zip(jax.tree.leaves(initial), jax.tree.leaves(encoded), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_each_blocks_largest_magnitude_is_kept_exactly_when_positive():
    """The map's 1 represents a block's absmax itself; the signed map's most negative value is
    -0.9930 (it has no -1), so a negative extreme is kept to 0.7%."""
    x = jnp.asarray(np.random.default_rng(1).standard_normal(5000), jnp.float32)
    for signed in (True, False):
        values = jnp.abs(x) if not signed else x
        got = sf.dequantize(sf.quantize(values, signed), values, signed)
        for start in range(0, 5000, sf.BLOCK_SIZE):
            block = slice(start, start + sf.BLOCK_SIZE)
            i = int(jnp.argmax(jnp.abs(values[block])))
            extreme, kept = float(values[block][i]), float(got[block][i])
            if extreme > 0:
                assert kept == extreme
            else:
                np.testing.assert_allclose(kept, extreme * 0.99296874, rtol=1e-6)


def test_stochastic_rounding_picks_a_neighbour_and_is_unbiased():
    x = jnp.full((200_000,), 1.0 + 2.0**-9, jnp.float32)  # a quarter of the way up its bf16 gap
    rounded = sf.stochastic_round_bf16(x, jax.random.key(3)).astype(jnp.float32)
    low, high = 1.0, 1.0 + 2.0**-7
    assert set(np.unique(np.asarray(rounded))) == {low, high}
    assert abs(float(jnp.mean(rounded)) - (1.0 + 2.0**-9)) < 2e-5
    special = jnp.array([jnp.inf, -jnp.inf, jnp.nan, 0.0, -0.0], jnp.float32)
    kept = sf.stochastic_round_bf16(special, jax.random.key(0)).astype(jnp.float32)
    np.testing.assert_array_equal(kept, special)


def test_a_bfloat16_ema_moves_with_stochastic_rounding_where_nearest_rounding_stalls():
    """v = 0.999 v + 0.001 g**2: increments below bfloat16's resolution are lost by rounding to
    nearest, and kept on average by stochastic rounding."""

    def ema(rounding, steps=3000):
        def body(v, t):
            new = 0.999 * v.astype(jnp.float32) + 0.001 * 4.0
            return rounding(new, jax.random.fold_in(jax.random.key(0), t)), None

        return jax.lax.scan(body, jnp.full((64,), 1.0, jnp.bfloat16), jnp.arange(steps))[0]

    exact = 4.0 - 3.0 * 0.999**3000
    nearest = ema(lambda v, _: v.astype(jnp.bfloat16)).astype(jnp.float32)
    stochastic = ema(sf.stochastic_round_bf16).astype(jnp.float32)
    assert float(jnp.max(nearest)) < 0.5 * exact  # stuck near where it started
    np.testing.assert_allclose(float(jnp.mean(stochastic)), exact, rtol=0.02)


# -- Adam's state formats --------------------------------------------------------------------------

PARAMS = {"w": jnp.linspace(-1.0, 1.0, 16_384).reshape(128, 128), "b": jnp.zeros(10)}
TARGET = jax.tree.map(lambda p: jnp.cos(3.0 * p) + 0.5, PARAMS)


def _grad(params):
    return jax.tree.map(lambda p, t: (p - t) * (1.0 + jnp.abs(t)), params, TARGET)


@jax.jit
def _trajectory_distance(steps=300):
    """The params of 8-bit and bfloat16 Adam, relative to float Adam's, after `steps` steps."""
    out = {}
    for fmt in sf.FORMATS:
        tx = jopt.adamw(1e-2, weight_decay=1e-3, state_format=fmt)

        def body(carry, _, tx=tx):
            p, s = carry
            u, s = tx.update(_grad(p), s, p)
            return (optax.apply_updates(p, u), s), None

        out[fmt] = jax.lax.scan(body, (PARAMS, tx.init(PARAMS)), length=steps)[0][0]["w"]
    scale = jnp.max(jnp.abs(out["float"] - PARAMS["w"]))
    return {fmt: jnp.max(jnp.abs(out[fmt] - out["float"])) / scale for fmt in ("bfloat16", "8bit")}


def test_small_state_adam_follows_float_adam():
    distance = _trajectory_distance()
    assert float(distance["bfloat16"]) < 0.01, distance
    assert float(distance["8bit"]) < 0.02, distance


@pytest.mark.parametrize(("fmt", "most"), [("8bit", 2.1), ("bfloat16", 4.0), ("float", 8.0)])
def test_state_bytes_per_parameter(fmt, most):
    params = {"w": jnp.zeros((1024, 1024))}
    state = jopt.adam(1e-3, state_format=fmt).init(params)
    moments = (state[0].mu, state[0].nu)
    per_parameter = sum(x.nbytes for x in jax.tree.leaves(moments)) / 1024**2
    assert per_parameter <= most
    if fmt == "8bit":
        assert per_parameter == 2 * (1 + 4 / sf.BLOCK_SIZE)


@pytest.mark.parametrize("fmt", ["bfloat16", "8bit"])
def test_the_state_keeps_its_types_through_jitted_steps_without_recompiling(fmt):
    tx = jopt.adam(1e-2, state_format=fmt)
    state = tx.init(PARAMS)
    step = jax.jit(tx.update)
    for _ in range(2):
        _, new = step(_grad(PARAMS), state, PARAMS)
        assert jax.tree.structure(new) == jax.tree.structure(state)
        for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state), strict=True):
            assert (a.shape, a.dtype) == (b.shape, b.dtype)
        state = new
    assert step._cache_size() == 1
    if fmt == "8bit":
        assert isinstance(state[0].mu["w"], sf.BlockQuantized)  # 16,384 entries: 8 bits
        assert state[0].mu["b"].dtype == jnp.float32  # 10 entries: float
        assert state[0].mu["w"].codes.dtype == jnp.uint8


def test_bad_state_formats_are_refused_at_construction():
    with pytest.raises(ValueError, match=r"jopt.adam: state_format must be one of 'float', "):
        jopt.adam(1e-3, state_format="4bit")
    with pytest.raises(ValueError, match=r"leave them None with state_format='8bit'"):
        jopt.adamw(1e-3, mu_dtype=jnp.bfloat16, state_format="8bit")


def test_gradients_of_other_params_are_refused():
    tx = jopt.adam(1e-3, state_format="8bit")
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match="the gradients' tree does not match the state's moments"):
        tx.update({"w": PARAMS["w"]}, state, {"w": PARAMS["w"]})
