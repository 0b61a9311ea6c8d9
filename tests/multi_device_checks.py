"""Sharding checks on 8 simulated CPU devices, run by tests/test_sharding.py in a process of its
own (XLA reads the device count when it starts):

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m tests.multi_device_checks

It prints one JSON object: for each check, a list of failures (empty: passed).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jopt
from tests import helpers

STEPS = 20
# Sums over a sharded leaf (LAMB's trust ratio, Adafactor's RMS) are added in another order across
# devices: within an ulp per step (2**-23 relative, float32; measured: 6 and 2 ulps after 20
# steps). Every other optimizer here is elementwise: bitwise.
ULP_PER_STEP = STEPS * 2.0**-23
REDUCES_OVER_A_LEAF = {"lamb": ULP_PER_STEP, "adafactor": ULP_PER_STEP}


def _params(mesh):
    w = jnp.linspace(-1.0, 1.0, 64 * 8).reshape(64, 8)
    return {
        "w": jax.device_put(w, NamedSharding(mesh, P("x"))),
        "v": jax.device_put(jnp.linspace(0.5, 2.0, 16), NamedSharding(mesh, P("x"))),
        "b": jax.device_put(jnp.ones(3), NamedSharding(mesh, P())),
    }


def _param_shaped(state, params):
    """(where, state leaf, the param it belongs to) for the state's param-shaped leaves."""
    owned = {
        tuple(p): (leaf.shape, leaf) for p, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
    }
    found = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        for param_path, (shape, param) in owned.items():
            if tuple(path[len(path) - len(param_path) :]) == param_path and leaf.shape == shape:
                found.append((jax.tree_util.keystr(path), leaf, param))
    return found


def _follows(state, params) -> list[str]:
    wrong = [
        f"{where}: {leaf.sharding} (param: {param.sharding})"
        for where, leaf, param in _param_shaped(state, params)
        if not leaf.sharding.is_equivalent_to(param.sharding, leaf.ndim)
    ]
    return wrong


def _grad(params):
    targets = jax.tree.map(lambda p: jnp.cos(3.0 * p), params)
    return jax.tree.map(lambda p, t: (p - t) * (1.0 + t * t), params, targets)


def _trajectory(tx, params):
    def body(carry, _):
        p, s = carry
        u, s = tx.update(_grad(p), s, p)
        return (jax.tree.map(jnp.add, p, u), s), None

    return jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), length=STEPS)[0])(params)


def main() -> None:
    mesh = Mesh(np.array(jax.devices()), ("x",))
    params = _params(mesh)
    single = jax.tree.map(lambda p: jax.device_put(p, jax.devices()[0]), params)
    out = {"devices": len(jax.devices()), "eager_init": [], "jit_init": [], "trajectory": []}
    for case in helpers.MACHINERY_CASES:
        tx = case.build()
        out["eager_init"] += [f"{case.id} {e}" for e in _follows(tx.init(params), params)]
        init = jax.jit(tx.init, out_shardings=jopt.state_shardings(tx, params))
        out["jit_init"] += [f"{case.id} {e}" for e in _follows(init(params), params)]
        (sharded, state), (alone, _) = _trajectory(tx, params), _trajectory(tx, single)
        out["trajectory"] += [f"{case.id} state {e}" for e in _follows(state, params)]
        for (path, a), b in zip(
            jax.tree_util.tree_flatten_with_path(sharded)[0], jax.tree.leaves(alone), strict=True
        ):
            tolerance = REDUCES_OVER_A_LEAF.get(case.id, 0.0)
            if not np.allclose(np.asarray(a), np.asarray(b), rtol=tolerance, atol=0.0):
                error = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                out["trajectory"].append(
                    f"{case.id}{jax.tree_util.keystr(path)}: {error:.3g} apart"
                )
    out["data_parallel"] = _data_parallel()
    out["eight_bit"] = _eight_bit(mesh)
    out["fused"] = _fused(mesh)
    print(json.dumps(out))


def _data_parallel() -> list[str]:
    """Linear regression, the batch split over 4 devices and the weights' columns over 2: the
    params after 10 donated jopt.train_step steps against one device's (the loss's sums run in
    another order: float32 rounding apart)."""
    mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("data", "model"))
    rng = np.random.default_rng(0)
    x, w_true = rng.standard_normal((64, 16)), rng.standard_normal((16, 4))
    y = x @ w_true
    batch = [jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)]

    def loss_fn(params, x, y):
        return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)

    tx = jopt.adam(0.05)
    results = []
    for sharded in (True, False):
        params = {"w": jnp.zeros((16, 4)), "b": jnp.zeros(4)}
        data = list(batch)
        if sharded:
            params = {
                "w": jax.device_put(params["w"], NamedSharding(mesh, P(None, "model"))),
                "b": jax.device_put(params["b"], NamedSharding(mesh, P("model"))),
            }
            data = [jax.device_put(a, NamedSharding(mesh, P("data"))) for a in data]
        state = tx.init(params)
        step = jopt.train_step(loss_fn, tx)
        for _ in range(10):
            params, state, loss = step(params, state, *data)
        results.append((params, state))
    (sharded, state), (alone, _) = results
    errors = []
    if not state[0].mu["w"].sharding.is_equivalent_to(sharded["w"].sharding, 2):
        errors.append(f"mu['w'] is {state[0].mu['w'].sharding}, w is {sharded['w'].sharding}")
    if len(sharded["w"].sharding.device_set) != 8:
        errors.append(f"w on {len(sharded['w'].sharding.device_set)} devices")
    for name in ("w", "b"):
        gap = float(np.max(np.abs(np.asarray(sharded[name]) - np.asarray(alone[name]))))
        if gap > 1e-5:
            errors.append(f"{name}: {gap:.3g} from one device's")
    return errors


def _eight_bit(mesh) -> list[str]:
    """8-bit Adam on params sharded by rows: a leaf whose shards hold whole blocks (16 rows of
    1,024 per device: one block of 2,048 each), one whose shards cut blocks (6,400 entries, 800 per
    device) and a small float32 one. The codes follow their params' shardings (eagerly and under
    jit), and 20 sharded steps are one device's bitwise (quantization is exact wherever it runs)."""
    params = {
        "aligned": jnp.linspace(-1.0, 1.0, 128 * 128).reshape(128, 128),
        "cut": jnp.linspace(-2.0, 3.0, 800 * 8).reshape(800, 8),
        "small": jnp.linspace(0.5, 2.0, 16),
    }
    sharded = {k: jax.device_put(v, NamedSharding(mesh, P("x"))) for k, v in params.items()}
    tx = jopt.adam(1e-2, state_format="8bit")
    errors = []
    init = jax.jit(tx.init, out_shardings=jopt.state_shardings(tx, sharded))
    for how, state in (("eager", tx.init(sharded)), ("jit", init(sharded))):
        for name in ("aligned", "cut"):
            for moment in ("mu", "nu"):
                codes = getattr(state[0], moment)[name].codes
                if not codes.sharding.is_equivalent_to(sharded[name].sharding, codes.ndim):
                    errors.append(f"{how} {moment}[{name}].codes: {codes.sharding}")
                if codes.addressable_shards[0].data.size * 8 != codes.size:
                    errors.append(f"{how} {moment}[{name}].codes: not split over 8 devices")
    (p_sharded, s_sharded), (p_alone, s_alone) = _trajectory(tx, sharded), _trajectory(tx, params)
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path((p_sharded, s_sharded))[0],
        jax.tree.leaves((p_alone, s_alone)),
        strict=True,
    ):
        if not np.array_equal(np.asarray(a), np.asarray(b)):
            errors.append(f"8-bit trajectory{jax.tree_util.keystr(path)}: not one device's")
    for name in ("aligned", "cut"):
        codes = s_sharded[0].mu[name].codes
        if not codes.sharding.is_equivalent_to(sharded[name].sharding, 2):
            errors.append(f"after 20 steps, mu[{name}].codes: {codes.sharding}")
    return errors


def _fused(mesh) -> list[str]:
    """The fused kernels over 8 devices: 10 steps of `jopt.train_step(fused=True)` on sharded
    params are, bitwise, the same steps on one device, and the plain sharded steps' to float32
    rounding (1e-5 of each leaf's scale: an ulp per step, carried by the momenta); the state
    keeps the params' shardings, and the program gathers nothing; under `jax.vmap` (one call per
    member) a step is the plain one's to an ulp."""
    params = _params(mesh)
    single = jax.tree.map(lambda p: jax.device_put(p, jax.devices()[0]), params)

    def loss_fn(p):  # well conditioned: rounding differences are not amplified
        return sum(jnp.sum(0.5 * (x - 0.3) ** 2 + 0.1 * jnp.log(jnp.cosh(x))) for x in p.values())

    # One optimizer per kernel layout: 1, 2 and 3 buffers, torch's coupled L2.
    optimizers = {
        "nesterov": jopt.sgd(0.05, 0.9, nesterov=True),
        "rmsprop_centered": jopt.rmsprop(1e-2, centered=True),
        "adamw_amsgrad": jopt.torch.AdamW(1e-2, amsgrad=True),
        "torch_adam_l2": jopt.torch.Adam(1e-2, weight_decay=0.1),
    }
    errors = []
    for name, tx in optimizers.items():
        runs = {}
        for how, fused, start in (
            ("fused", True, params), ("one device", True, single), ("plain", False, params)
        ):  # fmt: skip
            step = jopt.train_step(loss_fn, tx, donate=False, fused=fused)
            p, s = start, tx.init(start)
            for _ in range(10):
                p, s, _ = step(p, s)
            runs[how] = (p, s)
            if how == "fused":
                compiled = step.lower(params, tx.init(params)).compile().as_text()
                if "jopt_fused" not in compiled:
                    errors.append(f"{name}: no kernel in the fused step")
                if "all-gather" in compiled:
                    errors.append(f"{name}: the fused step gathers")
        for (path, a), b, c in zip(
            jax.tree_util.tree_flatten_with_path(runs["fused"])[0],
            jax.tree.leaves(runs["one device"]),
            jax.tree.leaves(runs["plain"]),
            strict=True,
        ):
            where = f"{name}{jax.tree_util.keystr(path)}"
            if not np.array_equal(np.asarray(a), np.asarray(b)):
                errors.append(f"{where}: sharded fused is not one device's fused")
            a, c = np.asarray(a), np.asarray(c)
            if np.max(np.abs(a - c), initial=0) > 1e-5 * np.max(np.abs(c), initial=0):
                errors.append(f"{where}: fused is not the plain step's to 1e-5 of its scale")
        errors += [f"{name} {e}" for e in _follows(runs["fused"][1], params)]
    errors += _fused_under_vmap(params)
    return errors


def _fused_under_vmap(params) -> list[str]:
    """Adam's fused step vmapped over three learning rates, on sharded params: the plain step's
    within an ulp of each leaf's scale."""
    from jopt._src import fused

    tx = jopt.adam(1e-2)
    rule = fused.rule_of(tx)
    states = jax.vmap(lambda lr: jopt.set_hparams(tx.init(params), learning_rate=lr))(
        jnp.array([1e-3, 1e-2, 1e-1])
    )
    grads = _grad(params)

    def plain(state):
        updates, state = tx.update(grads, state, params)
        return jax.tree.map(jnp.add, params, updates), state

    fast = jax.jit(jax.vmap(lambda state: fused.apply(tx, rule, grads, state, params)))
    want = jax.jit(jax.vmap(plain))(states)
    got = fast(states)
    errors = []
    if "jopt_fused" not in fast.lower(states).compile().as_text():
        errors.append("vmap: no kernel in the step")
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path(got)[0], jax.tree.leaves(want), strict=True
    ):
        a, b = np.asarray(a), np.asarray(b)
        if b.dtype.kind == "f" and np.max(np.abs(a - b)) > np.finfo(b.dtype).eps * np.max(
            np.abs(b)
        ):
            errors.append(f"vmap{jax.tree_util.keystr(path)}: not the plain step's")
    return errors


if __name__ == "__main__":
    main()
