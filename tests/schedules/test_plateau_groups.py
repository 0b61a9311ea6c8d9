"""`jopt.torch.ReduceLROnPlateau` over two parameter groups and a warmup, against torch.

tests/golden/plateau_groups.npz holds torch's runs of `make_plateau_groups_fixtures.CASES`:
SGD with momentum and AdamW, two param groups of different options, a LinearLR warmup (alone, or
chained with ExponentialLR) stepped every step and ReduceLROnPlateau stepped every 10 steps on a
metric sequence with plateaus, reducing inside and after the warmup, down to per-group min_lrs.
jopt builds the same thing from `jopt.param_groups`, the torch twins and schedulers, and passes
each metric as `update(..., value=)` at the update after the one torch steps the plateau at:

- in float64, every group's learning rate at every step, and every iterate, is torch's to
  1e-10 (relative): the warmup keeps running under the reductions, `lr = schedule * lr_scale`;
- `jopt.current_lr` gives the rate per group and `jopt.get_hparams` the scale each group's
  reductions have reached;
- with torch installed, the same cases run live against torch itself;
- per-group `min_lr` as a list or a mapping, and its errors.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests.golden import make_plateau_groups_fixtures as gen

GOLDEN = Path(gen.__file__).parent
RECORD = json.loads((GOLDEN / "plateau_groups.json").read_text())
ARRAYS = np.load(GOLDEN / "plateau_groups.npz")
CASES = {case.id: case for case in gen.CASES}
NAMES = list(gen.PROBLEM)  # torch's group order: "w", then "v"


def _schedule(case: gen.Case, lr: float):
    linear = {k: v for k, v in case.warmup.items() if k != "gamma"}
    warmup = jopt.torch.LinearLR(lr, **linear)
    if "gamma" not in case.warmup:
        return warmup
    return jopt.torch.ChainedScheduler([warmup, jopt.torch.ExponentialLR(lr, case.warmup["gamma"])])


def build(case: gen.Case) -> optax.GradientTransformation:
    """torch's optimizer with a param group per tensor, warmup on each group's lr, plateau."""
    twin = getattr(jopt.torch, case.optimizer)
    per_group = [
        twin(**{**options, "lr": _schedule(case, options["lr"])}) for options in case.groups
    ]
    groups = jopt.param_groups(
        per_group[0], jopt.Group("v", "v", optimizer=per_group[1]), default="w"
    )
    plateau = dict(case.plateau)
    if isinstance(plateau.get("min_lr"), list):  # torch's list, in its group order: by name
        plateau["min_lr"] = dict(zip(NAMES, plateau["min_lr"], strict=True))
    return jopt.torch.ReduceLROnPlateau(groups, **plateau)


@functools.cache
def run_jopt(case_id: str) -> dict[str, np.ndarray]:
    """jopt's run of the case in float64: rates, scales and iterates, as numpy arrays."""
    with jax.enable_x64(True):
        return _run(CASES[case_id])


def _run(case: gen.Case) -> dict[str, np.ndarray]:
    tx = build(case)
    a = {n: jnp.asarray(p["a"]) for n, p in gen.PROBLEM.items()}
    c = {n: jnp.asarray(p["c"]) for n, p in gen.PROBLEM.items()}

    def grad(params):
        return {n: a[n] * (x - c[n]) for n, x in params.items()}

    @functools.partial(jax.jit, static_argnums=3)
    def step(params, state, metric, evaluated):
        extra = {"value": metric} if evaluated else {}
        updates, state = tx.update(grad(params), state, params, **extra)
        return optax.apply_updates(params, updates), state

    params = {n: jnp.asarray(p["x0"]) for n, p in gen.PROBLEM.items()}
    state = tx.init(params)
    rates, iterates, scales = [], [params], []
    for i in range(gen.STEPS):
        evaluated = i > 0 and i % gen.EVERY == 0  # torch stepped the plateau after update i-1
        metric = gen.METRICS[i // gen.EVERY - 1] if evaluated else 0.0
        params, state = step(params, state, jnp.asarray(metric), evaluated)
        lr = jopt.current_lr(state)
        rates.append([float(lr[n]) for n in NAMES])
        iterates.append(params)
        hparams = jopt.get_hparams(state.inner_state)  # the plateau's eps is Adam's name too
        scales.append([float(hparams[n]["lr_scale"]) for n in NAMES])
    return {
        "lr": np.asarray(rates),
        "scale": np.asarray(scales),
        **{n: np.stack([np.asarray(p[n]) for p in iterates]) for n in NAMES},
    }


def _assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    error = np.abs(got - want) / np.maximum(np.abs(want), 1e-12)
    assert error.max() <= 1e-10, f"{what}: relative error {error.max():.3g}"


@pytest.mark.parametrize("case_id", CASES)
def test_rates_and_iterates_are_torchs_in_float64(case_id):
    got = run_jopt(case_id)
    for key in ("lr", *NAMES):
        _assert_close(got[key], ARRAYS[f"{case_id}/{key}"], f"{case_id} {key}")


@pytest.mark.parametrize("case_id", CASES)
def test_reductions_fall_inside_and_after_the_warmup(case_id):
    scale = run_jopt(case_id)["scale"]
    warmup = CASES[case_id].warmup["total_iters"]
    assert scale[warmup - 1].min() < 1.0, "no reduction inside the warmup"
    assert scale[-1].min() < scale[warmup].min(), "no reduction after the warmup"


def test_fixtures_hold_the_generators_cases():
    import dataclasses

    want = json.loads(json.dumps([dataclasses.asdict(case) for case in gen.CASES]))
    assert RECORD["cases"] == want
    assert (RECORD["steps"], RECORD["every"]) == (gen.STEPS, gen.EVERY)


@pytest.mark.parametrize("case_id", CASES)
def test_live_against_torch(case_id):
    pytest.importorskip("torch")
    want = gen.run_torch(CASES[case_id])
    got = run_jopt(case_id)
    for key in ("lr", *NAMES):
        _assert_close(got[key], want[key], f"{case_id} {key} (live)")


# -- min_lr per group ----------------------------------------------------------------------------

ADAM_GROUPS = jopt.param_groups(
    functools.partial(jopt.adam, learning_rate=1.0), jopt.Group("head", "head")
)
PARAMS = {"head": jnp.ones(2), "body": jnp.ones(3)}


def _lowest_rates(min_lr) -> dict[str, float]:
    tx = jopt.reduce_on_plateau(ADAM_GROUPS, factor=0.1, patience=0, min_lr=min_lr)
    state = tx.init(PARAMS)
    grads = jax.tree.map(jnp.ones_like, PARAMS)
    for metric in (1.0, 1.0, 1.0, 1.0, 1.0):
        _, state = tx.update(grads, state, PARAMS, value=metric)
    return {k: float(v) for k, v in jopt.current_lr(state).items()}


def test_min_lr_per_group_as_a_mapping_or_a_list_of_the_sorted_names():
    want = {"default": pytest.approx(0.01), "head": pytest.approx(0.001)}
    assert _lowest_rates({"head": 1e-3, "default": 1e-2}) == want
    assert _lowest_rates([1e-2, 1e-3]) == want  # sorted: "default", "head"
    assert _lowest_rates(1e-2) == {"default": pytest.approx(0.01), "head": pytest.approx(0.01)}


@pytest.mark.parametrize(
    ("min_lr", "message"),
    [
        (
            [1e-3],
            r"expected 2 min_lrs, one per parameter group with a learning rate "
            r"\(default, head\), got 1",
        ),
        ({"head": 1e-3}, r"min_lr names the groups \['head'\], but the optimizer's groups"),
    ],
)
def test_min_lr_per_group_must_name_every_group(min_lr, message):
    with pytest.raises(jopt.ArgumentError, match=message):
        jopt.reduce_on_plateau(ADAM_GROUPS, min_lr=min_lr).init(PARAMS)


def test_a_list_of_min_lrs_needs_parameter_groups():
    with pytest.raises(jopt.ArgumentError, match="the wrapped optimizer has no groups"):
        jopt.reduce_on_plateau(jopt.adam(0.1), min_lr=[0.0, 0.1]).init(PARAMS)


def test_a_scheduled_rate_keeps_its_schedule_under_the_reductions():
    schedule = jopt.linear_schedule(0.1, 0.2, 10)
    tx = jopt.reduce_on_plateau(jopt.sgd(schedule), factor=0.5, patience=0)
    state = tx.init(jnp.ones(2))
    rates, scales = [], []
    for _ in range(6):
        _, state = tx.update(jnp.ones(2), state, value=1.0)  # never improves after the first
        rates.append(float(jopt.current_lr(state)))
        scales.append(float(jopt.get_hparams(state.inner_state)["lr_scale"]))
    assert scales == [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]
    assert rates == pytest.approx([float(schedule(t)) * s for t, s in enumerate(scales)])
    with pytest.raises(jopt.ArgumentError, match="follows a schedule .* set lr_scale to scale"):
        jopt.set_hparams(state, learning_rate=0.1)
