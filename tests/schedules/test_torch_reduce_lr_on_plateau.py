"""`jopt.torch.ReduceLROnPlateau`: torch's arguments, in torch's order, giving torch's numbers.

torch 2.13: `ReduceLROnPlateau(optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8)`; `jopt.reduce_on_plateau` puts `factor`
second, so the twin is its own function, not an alias.

- Every case of tests/golden/schedules.json's "plateau" section (torch's lr after each
  `scheduler.step(metric)`, 7 metric sequences times 8 settings), rebuilt with all eight
  arguments given by position in torch's order (torch's defaults where the case leaves one
  out), gives torch's learning rates exactly in float64; torch is not needed.
- Keyword calls with torch's names store the same hyperparameters as `jopt.reduce_on_plateau`.
- Edges torch accepts and jopt keeps: threshold, patience, cooldown, min_lr and eps 0.
- With torch installed, torch's scheduler and the twin, both called with the same positional
  arguments (a prefix of the eight, down to none), agree exactly on seeded metric sequences.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from tests.schedules import twins

PLATEAU = twins.fixtures()["plateau"]
CASES = PLATEAU["cases"]
SEQUENCES = PLATEAU["sequences"]

# torch 2.13's arguments after `optimizer`, in order, with its defaults (written out from its
# documentation; tests/schedules/test_torch_signatures.py checks them against torch itself).
TORCH_ORDER = {
    "mode": "min",
    "factor": 0.1,
    "patience": 10,
    "threshold": 1e-4,
    "threshold_mode": "rel",
    "cooldown": 0,
    "min_lr": 0,
    "eps": 1e-8,
}


def positional(kwargs: dict) -> tuple:
    """The eight arguments by position, torch's defaults where `kwargs` leaves one out."""
    return tuple(kwargs.get(name, default) for name, default in TORCH_ORDER.items())


def run(cases: list[tuple[float, tuple, list[float]]]) -> list[np.ndarray]:
    """current_lr after each metric, for `ReduceLROnPlateau(sgd(lr), *args)` fed `metrics`.

    Cases sharing mode and threshold_mode (closure constants) share one vmapped scan; the other
    settings and the lr live in each case's own state. One compiled program for all cases.
    """
    txs = [jopt.torch.ReduceLROnPlateau(jopt.sgd(lr), *args) for lr, args, _ in cases]
    groups: dict[tuple, list[int]] = {}
    for i, (_, args, _) in enumerate(cases):
        full = args + positional({})[len(args) :]
        groups.setdefault((full[0], full[4]), []).append(i)
    metrics = [jnp.asarray([cases[i][2] for i in group]) for group in groups.values()]

    @jax.jit
    def feed_all(metrics):
        out = []
        for group, group_metrics in zip(groups.values(), metrics, strict=True):
            tx = txs[group[0]]
            states = [txs[i].init(jnp.zeros(1)) for i in group]
            stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)

            def feed(state, metrics, tx=tx):
                def step(state, metric):
                    _, state = tx.update(jnp.ones(1), state, jnp.zeros(1), value=metric)
                    return state, jopt.current_lr(state)

                return jax.lax.scan(step, state, metrics)[1]

            out.append(jax.vmap(feed)(stacked, group_metrics))
        return out

    results = feed_all(metrics)
    lrs = [None] * len(cases)
    for group, values in zip(groups.values(), results, strict=True):
        for k, i in enumerate(group):
            lrs[i] = np.asarray(values[k], np.float64)
    return lrs


@functools.cache
def _fixture_lrs() -> list[np.ndarray]:
    with jax.enable_x64(True):
        return run([(c["lr"], positional(c["kwargs"]), SEQUENCES[c["sequence"]]) for c in CASES])


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_positional_torch_order_gives_torchs_lr_after_each_metric(case):
    np.testing.assert_array_equal(_fixture_lrs()[case], CASES[case]["lrs"])


def test_fixture_settings_use_every_positional_slot():
    """Each of the eight positions holds a non-default value in some case (so a swap shows)."""
    for k, (name, default) in enumerate(TORCH_ORDER.items()):
        assert any(positional(c["kwargs"])[k] != default for c in CASES), name


def test_keywords_under_torchs_names_store_the_same_hyperparameters():
    kwargs = {"factor": 0.5, "patience": 3, "threshold": 0.01, "cooldown": 2, "min_lr": 1e-3}
    ours = jopt.torch.ReduceLROnPlateau(
        optimizer=jopt.sgd(0.1), mode="max", threshold_mode="abs", eps=1e-6, **kwargs
    )
    theirs = jopt.reduce_on_plateau(
        jopt.sgd(0.1), mode="max", threshold_mode="abs", eps=1e-6, **kwargs
    )
    got = jopt.get_hparams(ours.init(jnp.zeros(2)))
    want = jopt.get_hparams(theirs.init(jnp.zeros(2)))
    assert set(got) == set(want) == {*kwargs, "eps", "learning_rate"}
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    np.testing.assert_allclose(float(got["patience"]), 3.0)


def test_edges_torch_accepts_are_accepted():
    tx = jopt.torch.ReduceLROnPlateau(jopt.sgd(0.1), "min", 0.5, 0, 0.0, "abs", 0, 0.0, 0.0)
    (lrs,) = run([(0.1, ("min", 0.5, 0, 0.0, "abs", 0, 0.0, 0.0), [1.0, 1.0, 0.5, 0.5])])
    np.testing.assert_allclose(lrs, [0.1, 0.05, 0.05, 0.025], rtol=1e-6)
    assert isinstance(tx.init(jnp.zeros(1)), jopt._src.schedules.plateau.ReduceOnPlateauState)


# -- torch, live ---------------------------------------------------------------------------------

LIVE = [
    (),
    ("max",),
    ("min", 0.5, 1),
    ("max", 0.3, 0, 1e-3, "abs", 1),
    ("min", 0.7, 2, 0.05, "rel", 0, 0.02),
    ("min", 0.5, 1, 0.0, "abs", 2, 0.0, 1e-3),
]


def _torch_lrs(torch, lr: float, args: tuple, metrics: list[float]) -> list[float]:
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, *args)
    lrs = []
    for metric in metrics:
        scheduler.step(metric)
        lrs.append(float(optimizer.param_groups[0]["lr"]))
    return lrs


def _live_sequences() -> dict[str, list[float]]:
    rng = np.random.default_rng(11)
    k = np.arange(60)
    sequences = {
        "noisy_loss": 1 / (1 + 0.2 * k) + 0.03 * rng.standard_normal(60),
        "accuracy": np.minimum(0.4 + 0.03 * k, 0.85) + 0.002 * rng.standard_normal(60),
        "negative": -1 - np.repeat(np.arange(6.0), 10) * 0.1,
    }
    return {name: [float(v) for v in values] for name, values in sequences.items()}


def test_positional_calls_match_torch():
    torch = pytest.importorskip("torch")
    sequences = _live_sequences()
    cases = [(0.1, args, metrics) for args in LIVE for metrics in sequences.values()]
    with jax.enable_x64(True):
        got = run(cases)
    reduced = 0
    for (lr, args, metrics), lrs in zip(cases, got, strict=True):
        want = _torch_lrs(torch, lr, args, metrics)
        np.testing.assert_array_equal(lrs, want, err_msg=repr(args))
        reduced += want[-1] < lr
    assert reduced >= len(cases) // 2  # the settings do bite
