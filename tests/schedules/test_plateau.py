"""`jopt.reduce_on_plateau` (= `jopt.torch.ReduceLROnPlateau`) against torch's ReduceLROnPlateau.

tests/golden/schedules.json's "plateau" section holds torch's learning rate after each
`scheduler.step(metric)` for 7 metric sequences (noisy descent, exact plateaus, negative losses,
a constant negative metric, an accuracy, decimal stairs that an absolute threshold of 0.1 decides
on rounding alone, a metric crossing zero) times 8 settings (torch's defaults; min and max modes
with rel and abs thresholds; patience 0, 1, 2; cooldown; min_lr; a large eps). jopt wraps SGD
with the same lr and receives each metric as `update(..., value=metric)` at every 4th update, as
at evaluation steps (the updates between get no `value`); all cases run in one jitted program:

- with x64 (float64, as torch's Python floats), `jopt.current_lr(state)` after each metric equals
  torch's learning rate exactly, on every case;
- in float32, to float32 rounding, on every case but the decimal stairs (there, float32's
  `best - 0.1` differs from float64's: documented in `jopt._src.schedules.plateau`);
- between evaluations the learning rate holds, the reduced rate applies from the update that
  received the metric on (SGD's update is -lr * g), and `num_reductions` counts torch's
  reductions.

The live test (tests/schedules/test_live_frameworks.py) runs torch itself on other settings.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests.schedules import twins

PLATEAU = twins.fixtures()["plateau"]
CASES = PLATEAU["cases"]
SEQUENCES = PLATEAU["sequences"]
EVERY = 4  # in the evaluation-step test, one metric every EVERY updates


@functools.cache
def _results(x64: bool):
    """All cases, a metric every EVERY updates: evaluation k is update EVERY * (k + 1) - 1."""
    with jax.enable_x64(x64):
        return twins.run_plateau(CASES, SEQUENCES, EVERY)


def _after_each_metric(x64, case):
    _, lrs, _ = _results(x64)[case]
    return lrs[EVERY - 1 :: EVERY]


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_float64_lr_after_each_metric_is_torch_exactly(case):
    np.testing.assert_array_equal(_after_each_metric(True, case), CASES[case]["lrs"])


FLOAT32_CASES = [i for i, c in enumerate(CASES) if c["sequence"] != "decimal_stairs"]


@pytest.mark.parametrize("case", FLOAT32_CASES, ids=[CASES[i]["id"] for i in FLOAT32_CASES])
def test_float32_lr_after_each_metric_is_torch_to_rounding(case):
    np.testing.assert_allclose(_after_each_metric(False, case), CASES[case]["lrs"], rtol=1e-6)


def test_fixtures_cover_modes_thresholds_cooldown_min_lr_and_negative_metrics():
    settings = [c["kwargs"] for c in CASES]
    pairs = {(k.get("mode", "min"), k.get("threshold_mode", "rel")) for k in settings}
    assert pairs == {("min", "rel"), ("min", "abs"), ("max", "rel"), ("max", "abs")}
    assert any(k.get("cooldown", 0) > 0 for k in settings)
    assert any(k.get("min_lr", 0) > 0 for k in settings)
    assert {k.get("patience", 10) for k in settings} >= {0, 1, 2, 10}
    assert any(max(SEQUENCES[c["sequence"]]) < 0 for c in CASES)
    # The fixtures do reduce: more than half the cases lower the learning rate, some repeatedly.
    reductions = [int(np.sum(np.diff([c["lr"], *c["lrs"]]) < 0)) for c in CASES]
    assert sum(r > 0 for r in reductions) > len(CASES) / 2 and max(reductions) >= 3


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_metric_fed_only_at_evaluation_steps(x64):
    results = _results(x64)
    for i in range(len(CASES)) if x64 else FLOAT32_CASES:
        case, (used, lrs, reductions) = CASES[i], results[i]
        torch_lrs = np.asarray(case["lrs"])
        # current_lr holds between evaluations; after evaluation k it is torch's k-th lr.
        want = np.repeat(np.concatenate([[case["lr"]], torch_lrs[:-1]]), EVERY)
        want[EVERY - 1 :: EVERY] = torch_lrs
        np.testing.assert_allclose(lrs, want, rtol=0 if x64 else 1e-6, err_msg=case["id"])
        # Each update moves the parameter by the lr that current_lr shows after it.
        np.testing.assert_allclose(used, lrs, rtol=0 if x64 else 1e-6, err_msg=case["id"])
        drops = np.sum(np.diff(np.concatenate([[case["lr"]], torch_lrs])) < 0)
        assert reductions[-1] == drops, case["id"]


def test_current_lr_shows_the_reduced_rate_and_jit_does_not_recompile_per_metric():
    tx = jopt.torch.ReduceLROnPlateau(jopt.torch.SGD(0.1, momentum=0.9), factor=0.5, patience=1)
    params = jnp.zeros(3)
    state = tx.init(params)
    traces = []

    @jax.jit
    def step(params, state, metric):
        traces.append(None)
        updates, state = tx.update(jnp.ones(3), state, params, value=metric)
        return optax.apply_updates(params, updates), state

    seen = []
    for metric in [1.0, 1.0, 1.0, 1.0, 1.0, 0.5]:
        params, state = step(params, state, metric)
        seen.append(float(jopt.current_lr(state)))
    # Metrics 2 and 3 do not improve: over patience 1 at the third; 4 and 5: at the fifth.
    np.testing.assert_allclose(seen, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rtol=1e-7)
    assert int(state.num_reductions) == 2 and len(traces) == 1
