"""Population-based training (`jopt.lab.search.pbt`): exploit copies members bitwise, explore
multiplies by a listed factor and clips, the step compiles once, the outputs and lineages are
consistent, a lineage is exactly one run of its schedule, divergence is replaced, runs are
deterministic, and Ctrl-C leaves complete files that a resume finishes bitwise.
"""

from __future__ import annotations

import copy
import csv
import io
import math

import jax
import jax.numpy as jnp
import numpy as np
import optuna
import pytest
import yaml

import jopt
from jopt.lab import config as config_lib
from jopt.lab import outputs, programs, runner
from jopt.lab.search import pbt, pbt_report, population, space
from jopt.lab.search.space import Dimension

K, SEEDS, STEPS, INTERVAL, QUANTILE = 8, [0, 1], 60, 20, 0.25
FACTORS = (0.8, 1.2)

CONFIG = {
    "name": "pbt",
    # A data workload (batches drawn per epoch); options no other test uses, so that this
    # file's programs are compiled here.
    "workload": {
        "name": "linear_regression",
        "n_train": 64,
        "n_valid": 32,
        "n_test": 16,
        "dim": 4,
        "batch_size": 16,
        "data_seed": 7,
    },
    "optimizers": [
        {"name": "sgd", "label": "GD", "learning_rate": 0.1},
        {"name": "sgd", "label": "momentum", "learning_rate": 0.1, "momentum": 0.5},
    ],
    "seeds": SEEDS,
    "steps": STEPS,
    "eval_every": 10,
    "search": {
        "method": "pbt",
        "population": K,
        "seed": 3,
        "objective": {"metric": "eval_loss", "mode": "min"},
        "space": {"learning_rate": {"low": 0.003, "high": 0.3, "log": True}},
        "per_optimizer": {"momentum": {"momentum": {"low": 0.1, "high": 0.95}}},
        "pbt": {"interval": INTERVAL, "quantile": QUANTILE, "factors": list(FACTORS)},
    },
}


def _experiment(raw=CONFIG):
    return config_lib.from_dict(copy.deepcopy(raw))


def _rows(study_dir) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((study_dir / pbt_report.CSV).read_text())))


def _float(cell: str) -> float:
    return math.nan if cell == "" else float(cell)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One PBT sweep of CONFIG, run twice from a cold compile cache."""
    programs._compiled.cache_clear()  # the cache behind compiled_workload
    experiment = _experiment()
    dirs = [tmp_path_factory.mktemp("pbt"), tmp_path_factory.mktemp("pbt_again")]
    texts = [pbt.run(experiment, d, stop=lambda: False, progress=False) for d in dirs]
    compiled = programs.compiled_workload(experiment.workload)
    cache_sizes = [
        compiled.programs_for(
            pbt.program_config(o, experiment.search.spaces[o.label])
        ).step._cache_size()
        for o in experiment.optimizers
    ]
    return experiment, dirs, texts, cache_sizes


# -- the pieces ----------------------------------------------------------------------------------


def test_exploit_copies_the_winners_members_bitwise_and_sets_the_explored_values(sweep):
    experiment = sweep[0]  # its compiled step, warm
    base = experiment.optimizers[1]
    dims = experiment.search.spaces[base.label]
    compiled = programs.compiled_workload(experiment.workload)
    program = compiled.programs_for(pbt.program_config(base, dims))
    s = len(SEEDS)
    init_keys, data_keys = programs.seed_keys([seed for _ in range(K) for seed in SEEDS])
    params = compiled.init_params(init_keys)
    values = [{"learning_rate": 0.01 * (t + 1), "momentum": 0.1 + 0.1 * t} for t in range(K)]
    opt_state = population.with_values(
        program.init_state(params), [v for v in values for _ in SEEDS]
    )
    diverged = jnp.full((K * s,), -1, jnp.int32)
    order = compiled.order(data_keys, jnp.asarray(0, jnp.int32))
    for t in range(3):  # the members' params and momentum buffers now differ
        params, opt_state, diverged, _ = program.step(
            params, opt_state, diverged, order, jnp.asarray(t, jnp.int32)
        )
    diverged = jnp.full((K * s,), -1, jnp.int32).at[4].set(2)  # trial 2, seed 0
    before = jax.tree.map(np.array, (params, opt_state, diverged))
    explored = {"learning_rate": 0.0123, "momentum": 0.456}

    new = pbt.exploit(params, opt_state, diverged, [(2, 0, explored)], s)

    after = jax.tree.map(np.array, new)
    loser, winner, others = [4, 5], [0, 1], [i for i in range(K * s) if i not in (4, 5)]
    is_node = lambda x: isinstance(x, jopt.HParams)  # noqa: E731
    old_leaves = jax.tree.leaves(before, is_leaf=is_node)
    new_leaves = jax.tree.leaves(after, is_leaf=is_node)
    fresh = config_lib.build_optimizer(space.apply(base, explored)).init(
        jax.tree.map(lambda x: x[0], params)
    )
    fresh_nodes = iter([n for n in jax.tree.leaves(fresh, is_leaf=is_node) if is_node(n)])
    for old, now in zip(old_leaves, new_leaves, strict=True):
        if is_node(old):  # hyperparameters: the constructor's, at the explored values
            expected = np.asarray(next(fresh_nodes).packed)
            assert now.packed[loser].tobytes() == np.stack([expected, expected]).tobytes()
            assert now.packed[others].tobytes() == old.packed[others].tobytes()
            continue
        assert now[loser].tobytes() == old[winner].tobytes()  # seed s <- the winner's seed s
        assert now[others].tobytes() == old[others].tobytes()  # everyone else untouched
    assert old_leaves[0][0].tobytes() != old_leaves[0][1].tobytes()  # seeds differ
    assert after[2].tolist() == [-1] * K * s  # the diverged seed is revived with the winner's flag
    member = jax.tree.map(lambda x: x[5], new[1])
    assert float(jopt.get_hparams(member)["learning_rate"]) == float(np.float32(0.0123))


def test_explore_multiplies_each_value_by_a_listed_factor_and_clips_to_the_range():
    dims = [
        Dimension("learning_rate", "float", 1e-3, 1.0, log=True),
        Dimension("warmup", "int", 1, 10),
    ]
    rng = np.random.default_rng(0)
    for _ in range(50):
        old = {"learning_rate": float(rng.uniform(1e-3, 1.0)), "warmup": int(rng.integers(3, 8))}
        new = pbt.explore(old, dims, FACTORS, rng)
        ratio = new["learning_rate"] / old["learning_rate"]
        assert any(math.isclose(ratio, f, rel_tol=1e-12) for f in FACTORS) or new[
            "learning_rate"
        ] in (1e-3, 1.0)
        assert isinstance(new["warmup"], int) and abs(new["warmup"] - old["warmup"]) >= 1
    lr, warmup = dims
    assert pbt.perturb(lr, 0.9, 1.2) == 1.0  # clipped to high
    assert pbt.perturb(lr, 0.0011, 0.8) == 1e-3  # clipped to low
    assert pbt.perturb(lr, 0.5, 0.8) == 0.4
    assert pbt.perturb(warmup, 5, 1.2) == 6  # rounded
    assert pbt.perturb(warmup, 2, 1.2) == 3  # 2.4 would round back to 2: moved by one
    assert pbt.perturb(warmup, 10, 1.2) == 10  # and clipped
    stepped = Dimension("momentum", "float", 0.1, 0.9, step=0.2)
    assert pbt.perturb(stepped, 0.5, 1.2) == pytest.approx(0.5)  # 0.6 snaps to 0.5
    assert pbt.perturb(stepped, 0.7, 1.2) == pytest.approx(0.9)


def test_select_puts_unscored_trials_among_the_losers_and_breaks_ties_by_trial():
    nan = math.nan
    assert pbt.select([1.0, nan, 0.5, 2.0, 0.2], 0.25, "minimize") == ([1, 3], [4, 2])
    assert pbt.select([1.0, nan, 0.5, 2.0, 0.2], 0.25, "maximize") == ([1, 4], [3, 0])
    assert pbt.select([nan, 3.0, nan, nan, 1.0], 0.25, "minimize") == ([3, 2, 0], [4, 1])
    assert pbt.select([1.0, 1.0, 1.0, 1.0], 0.5, "minimize") == ([3, 2], [0, 1])
    assert pbt.select([1.0, 2.0], 0.25, "minimize") == ([1], [0])
    assert pbt.select([nan, nan], 0.25, "minimize") == ([], [])


# -- a sweep -------------------------------------------------------------------------------------


def test_the_step_compiles_once_for_the_whole_sweep(sweep):
    experiment, dirs, _, cache_sizes = sweep
    assert any(r["parent"] for r in _rows(dirs[0]))  # exploits happened
    assert cache_sizes == [1, 1]


def test_outputs_have_their_columns_figures_and_optunas_initial_values(sweep):
    experiment, dirs, texts, _ = sweep
    study_dir = dirs[0]
    rows = _rows(study_dir)
    assert list(rows[0]) == [
        "optimizer",
        "trial",
        "step",
        "learning_rate",
        "momentum",
        "score",
        "parent",
    ]
    steps = [0, 20, 40, 60]
    for label in ("GD", "momentum"):
        mine = [r for r in rows if r["optimizer"] == label]
        assert sorted({int(r["step"]) for r in mine}) == steps
        assert len(mine) == K * len(steps)
        assert all(r["parent"] == "" for r in mine if int(r["step"]) in (0, STEPS))
        assert all(math.isfinite(_float(r["score"])) for r in mine)
        dims = experiment.search.spaces[label]
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
        drawn = [{d.name: d.suggest(study.ask()) for d in dims} for _ in range(K)]
        first = sorted((r for r in mine if r["step"] == "0"), key=lambda r: int(r["trial"]))
        assert [{d.name: float(r[d.name]) for d in dims} for r in first] == drawn
        for name in ("pbt_hparams", "pbt_scores"):
            png = study_dir / "figures" / f"{name}-{label}.png"
            assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000
    assert [r["momentum"] for r in rows if r["optimizer"] == "GD"] == [""] * K * len(steps)
    assert texts[0] == (study_dir / pbt_report.SUMMARY).read_text()
    assert texts[0].startswith("# PBT sweep pbt\n") and "## momentum" in texts[0]


def test_every_copy_is_from_a_top_quantile_trial_into_a_bottom_one_with_factored_values(sweep):
    experiment, dirs, _, _ = sweep
    rows = _rows(dirs[0])
    n = max(1, math.ceil(K * QUANTILE))
    copies = 0
    for label in ("GD", "momentum"):
        dims = experiment.search.spaces[label]
        for step in (20, 40):
            at = {
                int(r["trial"]): r
                for r in rows
                if r["optimizer"] == label and r["step"] == str(step)
            }
            best_first = sorted(at, key=lambda t: (_float(at[t]["score"]), t))
            for t, r in at.items():
                if not r["parent"]:
                    continue
                copies += 1
                parent = int(r["parent"])
                assert parent in best_first[:n] and t in best_first[-n:]
                assert not at[parent]["parent"]  # a winner keeps its parameters and values
                for d in dims:
                    old, new = float(at[parent][d.name]), float(r[d.name])
                    candidates = [min(max(old * f, d.low), d.high) for f in FACTORS]
                    assert any(math.isclose(new, c, rel_tol=1e-12) for c in candidates)
    assert copies == 2 * 2 * n  # every exploit replaces the bottom quantile


def test_the_lineages_follow_the_copies_in_the_rows(sweep):
    _, dirs, _, _ = sweep
    rows = _rows(dirs[0])
    data = outputs.read_json(dirs[0] / pbt_report.LINEAGE)
    for label in ("GD", "momentum"):
        at = {(int(r["trial"]), int(r["step"])): r for r in rows if r["optimizer"] == label}
        finals = {t: _float(at[(t, STEPS)]["score"]) for t in range(K)}
        assert data[label]["best_trial"] == min(finals, key=lambda t: (finals[t], t))
        for trial in data[label]["trials"]:
            t = trial["trial"]
            assert trial["final_score"] == finals[t]
            schedule, chain = trial["schedule"], trial["chain"]
            assert [e["step"] for e in schedule] == [0, 20, 40]
            assert schedule[-1]["trial"] == t
            for entry in schedule:  # the values of the trial that held the lineage then
                row = at[(entry["trial"], entry["step"])]
                assert entry["learning_rate"] == float(row["learning_rate"])
            holders = [e["trial"] for e in schedule]
            for link in chain:
                i = [e["step"] for e in schedule].index(link["step"])
                assert at[(link["into"], link["step"])]["parent"] == str(link["from"])
                assert (holders[i - 1], holders[i]) == (link["from"], link["into"])
            changes = sum(a != b for a, b in zip(holders, holders[1:], strict=False))
            assert len(chain) == changes


def test_a_lineage_is_exactly_one_run_of_its_schedule(sweep):
    """Replayed without PBT (each member trained from its own init, its values set at its
    lineage's steps), each final trial's lineage gives its final score to the last bit."""
    experiment, dirs, _, _ = sweep
    data = outputs.read_json(dirs[0] / pbt_report.LINEAGE)
    compiled = programs.compiled_workload(experiment.workload)
    per_epoch = programs.steps_per_epoch(compiled.workload)
    copies = 0
    for base in experiment.optimizers:
        dims = experiment.search.spaces[base.label]
        program = compiled.programs_for(pbt.program_config(base, dims))
        trials = data[base.label]["trials"]
        copies += sum(len(t["chain"]) for t in trials)
        schedules = [
            {e["step"]: {d.name: e[d.name] for d in dims} for e in t["schedule"]} for t in trials
        ]
        init_keys, data_keys = programs.seed_keys([seed for _ in trials for seed in SEEDS])
        params = compiled.init_params(init_keys)
        opt_state = program.init_state(params)
        diverged = jnp.full((len(trials) * len(SEEDS),), -1, jnp.int32)
        for t in range(STEPS):
            if t in schedules[0]:
                values = [schedule[t] for schedule in schedules for _ in SEEDS]
                opt_state = population.with_values(opt_state, values)
            order = compiled.order(data_keys, jnp.asarray(t // per_epoch, jnp.int32))
            params, opt_state, diverged, _ = program.step(
                params, opt_state, diverged, order, jnp.asarray(t, jnp.int32)
            )
        losses = np.asarray(compiled.evaluate(params, compiled.workload.valid)["loss"], np.float64)
        replayed = losses.reshape(len(trials), len(SEEDS)).mean(axis=1)
        assert replayed.tolist() == [t["final_score"] for t in trials], base.label
    assert copies > 0


def test_pbt_best_yaml_runs_the_best_lineage_to_the_same_score(sweep, tmp_path):
    experiment, dirs, _, _ = sweep
    text = (dirs[0] / pbt_report.BEST).read_text()
    assert "piecewise_constant" in text  # a lineage whose learning rate changed
    # momentum (a decay rate) changed along the other's: left out
    assert "#   momentum: left out, trial " in text
    data = outputs.read_json(dirs[0] / pbt_report.LINEAGE)
    best = config_lib.from_dict(yaml.safe_load(text))
    assert best.search is None and best.seeds == tuple(SEEDS) and best.steps == STEPS
    run_dir = runner.run(best, tmp_path / "run", progress=False)
    for config in best.optimizers:
        finals = []
        for seed in SEEDS:
            trial = run_dir / "trials" / outputs.trial_name(config.label, seed)
            evals = [r for r in outputs.read_metrics(trial / "metrics.jsonl") if "eval_loss" in r]
            assert evals[-1]["step"] == STEPS
            finals.append(evals[-1]["eval_loss"])
        lineage = data[config.label]
        best_score = lineage["trials"][lineage["best_trial"]]["final_score"]
        assert float(np.mean(finals)) == best_score, config.label


def test_pbt_best_yaml_leaves_out_a_lineage_whose_decay_rate_changes(tmp_path):
    # A decay rate's complement is rounded differently from a schedule: momentum may not change.
    experiment = _experiment()
    row = pbt_report.Row
    records = {
        "GD": [
            row(0, 0, {"learning_rate": 0.1}, 1.0, None),
            row(1, 0, {"learning_rate": 0.2}, 1.0, None),
            row(0, 20, {"learning_rate": 0.24}, 2.0, 1),
            row(1, 20, {"learning_rate": 0.2}, 1.0, None),
            row(0, 60, {"learning_rate": 0.24}, 0.1, None),
            row(1, 60, {"learning_rate": 0.2}, 0.2, None),
        ],
        "momentum": [
            row(0, 0, {"learning_rate": 0.1, "momentum": 0.5}, 1.0, None),
            row(1, 0, {"learning_rate": 0.1, "momentum": 0.6}, 1.0, None),
            row(0, 20, {"learning_rate": 0.1, "momentum": 0.72}, 2.0, 1),
            row(1, 20, {"learning_rate": 0.1, "momentum": 0.6}, 1.0, None),
            row(0, 60, {"learning_rate": 0.1, "momentum": 0.72}, 0.1, None),
            row(1, 60, {"learning_rate": 0.1, "momentum": 0.6}, 0.2, None),
        ],
    }
    text = pbt_report.best_config(experiment, records, tmp_path)
    assert "#   GD: trial 0, 0.1\n" in text
    assert "#   momentum: left out, trial 0's lineage changes momentum, which" in text
    (optimizer,) = config_lib.from_dict(yaml.safe_load(text)).optimizers
    assert optimizer.label == "GD"
    schedule = optimizer.hparams["learning_rate"]
    assert (schedule.name, dict(schedule.args)) == (
        "piecewise_constant",
        {"boundaries": (20,), "values": (0.2, 0.24)},
    )


def test_the_same_config_and_seed_give_identical_outputs(sweep):
    _, dirs, texts, _ = sweep
    for name in (pbt_report.CSV, pbt_report.LINEAGE, pbt_report.BEST):
        assert (dirs[0] / name).read_bytes().replace(bytes(dirs[0]), b"") == (
            dirs[1] / name
        ).read_bytes().replace(bytes(dirs[1]), b""), name
    assert texts[0] == texts[1]


def test_ctrl_c_leaves_complete_files_and_resume_finishes_bitwise(sweep, tmp_path):
    experiment, dirs, _, _ = sweep
    calls = []

    def stop() -> bool:  # asked before each chunk of 10 steps: GD's 6, then momentum's
        calls.append(1)
        return len(calls) == 6 + 4  # before momentum's steps 30-40

    with pytest.raises(population.Stopped):
        pbt.run(experiment, tmp_path, stop=stop, progress=False)
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "figures").exists()
    assert not (tmp_path / pbt_report.BEST).exists()
    rows = _rows(tmp_path)
    done = {(r["optimizer"], r["step"]) for r in rows}
    assert done == {("GD", s) for s in ("0", "20", "40", "60")} | {
        ("momentum", "0"),
        ("momentum", "20"),
    }
    assert rows == [r for r in _rows(dirs[0]) if r in rows]  # the rows of the full run
    assert len(rows) == 6 * K
    assert set(outputs.read_json(tmp_path / pbt_report.LINEAGE)) == {"GD", "momentum"}
    assert "## momentum" in (tmp_path / pbt_report.SUMMARY).read_text()

    # GD continues from its last checkpoint (the end), momentum from its exploit at step 20.
    text = pbt.run(experiment, tmp_path, stop=lambda: False, progress=False, resume=True)
    for name in (pbt_report.CSV, pbt_report.LINEAGE, pbt_report.SUMMARY):
        assert (tmp_path / name).read_bytes() == (dirs[0] / name).read_bytes(), name
    assert text == (dirs[0] / pbt_report.SUMMARY).read_text()


# -- divergence ----------------------------------------------------------------------------------


def test_diverged_trials_copy_a_winner_and_train_on(tmp_path):
    raw = copy.deepcopy(CONFIG)
    raw["workload"] = {"name": "functions2d", "function": "canyon", "start_noise": 0.1}
    raw["optimizers"] = [{"name": "sgd", "label": "GD", "learning_rate": 0.01}]
    raw["seeds"] = [0]
    raw["eval_every"] = INTERVAL
    raw["search"]["space"] = {"learning_rate": {"low": 0.003, "high": 3.0, "log": True}}
    raw["search"]["per_optimizer"] = {}
    raw["search"]["pbt"]["quantile"] = 0.5
    raw["search"]["seed"] = 1
    experiment = _experiment(raw)
    pbt.run(experiment, tmp_path, stop=lambda: False, progress=False)
    at = {(int(r["trial"]), int(r["step"])): r for r in _rows(tmp_path)}
    diverged = [(t, s) for (t, s), r in at.items() if s < STEPS and r["score"] == ""]
    assert diverged, "no trial diverged: the test needs a range that diverges"
    for t, s in diverged:
        assert at[(t, s)]["parent"] != ""  # always replaced
        assert at[(int(at[(t, s)]["parent"]), s)]["score"] != ""
    revived = [(t, s) for t, s in diverged if at[(t, s + INTERVAL)]["score"] != ""]
    assert revived  # its flag was reset with the copy: it is scored again
    data = outputs.read_json(tmp_path / pbt_report.LINEAGE)["GD"]
    assert data["best_trial"] is not None
    assert math.isfinite(data["trials"][data["best_trial"]]["final_score"])


def test_a_copy_inherits_the_step_its_parameters_reached_the_target(tmp_path):
    # With at: steps_to_target a score is the first eval step at which the parameters a trial
    # holds reached the target, before it copied them included.
    raw = copy.deepcopy(CONFIG)
    raw["workload"] = {"name": "functions2d", "function": "canyon", "start_noise": 0.3}
    raw["optimizers"] = [{"name": "sgd", "label": "GD", "learning_rate": 0.01}]
    raw["seeds"] = [0]
    raw["eval_every"] = 5
    raw["search"]["objective"] = {
        "metric": "eval_loss",
        "mode": "min",
        "at": "steps_to_target",
        "target": 3.0,
    }
    raw["search"]["space"] = {"learning_rate": {"low": 0.003, "high": 0.03, "log": True}}
    raw["search"]["per_optimizer"] = {}
    pbt.run(_experiment(raw), tmp_path, stop=lambda: False, progress=False)
    rows = _rows(tmp_path)
    score = {(r["trial"], int(r["step"])): r["score"] for r in rows}
    copies = [(r["trial"], int(r["step"]), r["parent"]) for r in rows if r["parent"]]
    inherited = [(t, s, p) for t, s, p in copies if score[(p, s)] != "inf"]
    assert inherited, "no copy of a trial that had reached the target"
    for trial, step, parent in inherited:
        assert float(score[(parent, step)]) <= step
        assert score[(trial, step + INTERVAL)] == score[(parent, step)]
