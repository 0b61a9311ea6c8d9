"""The building blocks `jopt.adaptive_grad_clip` (Brock et al. 2021, unit-wise AGC) and
`jopt.centralize` (Yong et al. 2020, gradient centralization).

- Both against NumPy float64 written from the papers, on leaves of every rank they treat, and
  against optax bitwise: `optax.centralize` as it is, `optax.adaptive_grad_clip` given its
  clipping as an array (as jopt keeps it, in the state); with the clipping baked in as a Python
  float, XLA may reassociate optax's arithmetic: two ulps apart at most.
- AGC: `clipping` is in the state and may follow a schedule; zero-initialized parameters still
  move (eps); a leaf without a default unit is refused naming it; custom unit axes.
- centralize: `keep_axis=-1` is the paper's form on JAX's (in, out) layouts; vectors pass.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt._src.transforms.adaptive_clipping import adaptive_grad_clip
from jopt._src.transforms.centralization import centralize

# A unit's axes by rank in JAX's layouts: the fan-in of one output unit.
UNIT_AXES = {2: (0,), 3: (0,), 4: (0, 1, 2), 5: (0, 1, 2, 3)}


def _tree(seed: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"scalar": (), "bias": (3,), "row": (1, 4), "kernel": (3, 4), "heads": (2, 3, 4)}
    shapes |= {"conv": (2, 2, 3, 4), "conv3d": (2, 1, 2, 3, 2)}
    return {name: scale * rng.normal(size=shape) for name, shape in shapes.items()}


def reference_agc(grads, params, clipping, eps=1e-3):
    """Brock et al. 2021, eq. 3, per unit i (Frobenius norms over the unit's fan-in):
    G_i <- lambda max(||W_i||, eps) / ||G_i|| G_i  where  ||G_i|| / max(||W_i||, eps) > lambda."""

    def leaf(g, w):
        squeezed = np.squeeze(g).ndim <= 1
        axes = tuple(range(g.ndim)) if squeezed else UNIT_AXES[g.ndim]
        g_norm = np.sqrt(np.sum(g * g, axis=axes, keepdims=True))
        w_norm = np.maximum(np.sqrt(np.sum(w * w, axis=axes, keepdims=True)), eps)
        clip = g_norm > clipping * w_norm
        return np.where(clip, clipping * w_norm / np.where(clip, g_norm, 1.0) * g, g)

    return {k: leaf(grads[k], params[k]) for k in grads}


def reference_centralize(g, keep_axis):
    """Yong et al. 2020, eq. 4: each unit's weight gradient minus its mean (matrices and up)."""
    if g.ndim <= 1:
        return g
    others = tuple(a for a in range(g.ndim) if a != keep_axis % g.ndim)
    return g - g.mean(axis=others, keepdims=True)


@pytest.mark.parametrize("clipping", [0.3, 10.0], ids=["some", "none"])
def test_agc_is_the_papers_and_optax_given_its_clipping_as_an_array(clipping):
    params, grads = _tree(0), _tree(1, scale=0.5)
    with jax.enable_x64(True):
        p64, g64 = (jax.tree.map(jnp.asarray, t) for t in (params, grads))
        tx = adaptive_grad_clip(clipping)
        got, _ = tx.update(g64, tx.init(p64), p64)
    want = reference_agc(grads, params, clipping)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-14, atol=0, err_msg=name)
    clipped = [name for name in want if not np.array_equal(want[name], grads[name])]
    assert clipped if clipping < 1 else not clipped
    p32, g32 = (jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), t) for t in (params, grads))
    ours, _ = jax.jit(tx.update)(g32, tx.init(p32), p32)
    theirs = jax.jit(lambda g, p, c: optax.adaptive_grad_clip(c).update(g, None, p)[0])(
        g32, p32, jnp.float32(clipping)
    )
    chex.assert_trees_all_equal(ours, theirs)
    baked, _ = jax.jit(optax.adaptive_grad_clip(clipping).update)(g32, None, p32)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(baked), strict=True):
        assert np.all(np.abs(a - b) <= 2 * np.spacing(np.abs(b)))


def test_agc_moves_zero_initialized_parameters_and_keeps_its_clipping_in_the_state():
    params = {"bias": jnp.zeros(3)}
    grads = {"bias": jnp.asarray([3.0, 0.0, -4.0])}
    tx = adaptive_grad_clip(0.1, eps=1e-3)
    state = tx.init(params)
    assert set(jopt.get_hparams(state)) == {"clipping"}
    updates, _ = tx.update(grads, state, params)
    np.testing.assert_allclose(updates["bias"], [6e-5, 0.0, -8e-5], rtol=1e-6)  # 1e-4 / 5
    doubled, _ = tx.update(grads, jopt.set_hparams(state, clipping=0.2), params)
    np.testing.assert_allclose(doubled["bias"], 2 * updates["bias"], rtol=1e-6)
    scheduled = adaptive_grad_clip(jopt.linear_schedule(0.1, 0.2, 1))
    first, state = scheduled.update(grads, scheduled.init(params), params)
    second, _ = scheduled.update(grads, state, params)
    np.testing.assert_allclose(first["bias"], updates["bias"], rtol=1e-6)
    np.testing.assert_allclose(second["bias"], doubled["bias"], rtol=1e-6)


def test_agc_custom_unit_axes_and_a_leaf_without_default_units():
    rng = np.random.default_rng(2)
    w, g = rng.normal(size=(2, 3, 4)), 5 * rng.normal(size=(2, 3, 4))
    with jax.enable_x64(True):
        tx = adaptive_grad_clip(0.05, axis=(1, 2))
        got, _ = tx.update({"w": jnp.asarray(g)}, tx.init({"w": jnp.asarray(w)}), {"w": w})
    norms = np.sqrt(np.sum(g * g, axis=(1, 2), keepdims=True))
    w_norms = np.sqrt(np.sum(w * w, axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(got["w"], 0.05 * w_norms / norms * g, rtol=1e-14)
    six = {"t": jnp.ones((2, 1, 1, 1, 1, 2))}
    with pytest.raises(ValueError, match=r"jopt.adaptive_grad_clip: the parameter at \['t'\] has"):
        adaptive_grad_clip(0.1).update(six, adaptive_grad_clip(0.1).init(six), six)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"clipping": 0.0}, jopt.ArgumentError, "clipping must be > 0, got 0.0."),
        ({"clipping": 0.1, "eps": -1.0}, jopt.ArgumentError, "eps must be >= 0, got -1.0."),
        ({"clipping": 0.1, "axis": 1.5}, jopt.ArgumentTypeError, "axis must be None, an integer"),
    ],
    ids=["clipping", "eps", "axis"],
)
def test_agc_refuses_bad_arguments(kwargs, error, message):
    with pytest.raises(error) as raised:
        adaptive_grad_clip(**kwargs)
    assert str(raised.value).startswith("jopt.adaptive_grad_clip: " + message)


@pytest.mark.parametrize("keep_axis", [0, -1], ids=["optax", "jax_layout"])
def test_centralize_is_the_papers_and_optax_at_keep_axis_zero(keep_axis):
    grads = _tree(3)
    with jax.enable_x64(True):
        tx = centralize(keep_axis)
        got, _ = tx.update(jax.tree.map(jnp.asarray, grads), tx.init(grads))
    for name, g in grads.items():
        np.testing.assert_allclose(got[name], reference_centralize(g, keep_axis), atol=1e-15)
    np.testing.assert_array_equal(got["bias"], grads["bias"])
    g32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), grads)
    ours, _ = jax.jit(tx.update)(g32, tx.init(g32))
    if keep_axis == 0:
        chex.assert_trees_all_equal(ours, jax.jit(optax.centralize().update)(g32, None)[0])
    else:  # each output column of the (in, out) kernel sums to 0, not each input row
        np.testing.assert_allclose(np.sum(ours["kernel"], axis=0), 0.0, atol=1e-6)
        assert np.abs(np.sum(ours["kernel"], axis=1)).max() > 1e-2


def test_centralize_refuses_a_keep_axis_that_is_not_an_integer():
    with pytest.raises(jopt.ArgumentTypeError, match="jopt.centralize: keep_axis must be an"):
        centralize(keep_axis="last")
