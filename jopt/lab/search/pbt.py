"""Population-based training: `jopt sweep` with `search.method: pbt`.

Jaderberg et al. 2017, "Population Based Training of Neural Networks" (arXiv:1711.09846), in its
synchronous, truncation-selection form. For each optimizer of the config:

1. K trials (`search.population`) take their initial values from optuna: an in-memory study with
   a `RandomSampler(seed=search.seed)`, K `ask()`s (a combination the optimizer refuses is asked
   again). Each trial trains every seed of `search.seeds` (default: the config's), and the K x S
   members run as one vmapped program: the lab's compiled step, built once from the config at the
   dimensions' lower bounds, each member's values set in its state (`population.with_values`).
2. Every `search.pbt.interval` steps, and at the end, each trial is scored: `study.score` of
   `search.objective` on each seed's metric curve (the curve of its parameters: a copy inherits
   the winner's), averaged over seeds. A trial with a diverged seed, or without a finite score,
   has no score and ranks last.
3. Exploit (not at the end): n = ceil(K * quantile), at most K // 2. Ranked best first (ties: the
   lower trial number first), the top n healthy trials are the winners; the worst n, and every
   trial without a score, are the losers. Each loser, worst first, copies a winner drawn
   uniformly: seed s of the loser takes seed s of the winner's parameters, whole optimizer state
   and divergence flag, bitwise (a diverged member is thereby revived).
4. Explore: each searched value of the winner is multiplied by a factor drawn from
   `search.pbt.factors`, clipped to the dimension's [low, high] (an integer rounded, and moved by
   at least 1 when the factor is not 1; a discretized range snapped to its nearest point) and set
   in the loser's state with `jopt.set_hparams` from Python numbers, rounded as the constructor
   rounds them. A combination the optimizer refuses keeps the winner's values.

The draws of steps 3-4 come from `numpy.random.default_rng([search.seed, optimizer index])`,
in that order (loser, its winner, then one factor per dimension), so a config and its seed give
the same run. The jitted step never changes: the values are data in the state.

Lineage. The batches of step t depend on the seed and t alone, and a copy takes everything a
member carries, so the final parameters of a trial are exactly those of one run whose values
change at the exploit steps: those of the trial that held its lineage over each interval. This is
its schedule in `pbt_lineage.json` (a trial's own row history in pbt.csv differs from it wherever
it copied another trial).

Written in STUDY_DIR (text atomically; when Ctrl-C stops the sweep, the first three files with
what was done):

    pbt.csv                   optimizer, trial, step, each searched value, score, parent: one row
                              per trial at step 0, at each exploit and at the end. `score` is the
                              trial's objective at `step` before that step's exploit (empty: it
                              diverged); `parent` the trial it copied at `step` (empty if none);
                              the values are those it trains with from `step` on
    pbt_lineage.json          per optimizer: the best trial, and for each trial its final score
                              and values, its `chain` of copies ({step, into, from}, oldest
                              first), its lineage's `schedule` ({step, trial, values}) and scores
    pbt.md                    the summary `run` returns
    pbt_best.yaml             a config `jopt run` reproduces each best lineage with, bitwise: the
                              values that change as `piecewise_constant` schedules. Only for the
                              optimizers whose changing values are schedulable and have nothing
                              derived from them (learning_rate, weight_decay: a decay rate's
                              `1 - x` is rounded differently from a schedule); its header says
                              which are left out
    figures/pbt_hparams-LABEL.png  each searched value against step, one colour per trial (log
                              axis where the range is log); black: the best trial's lineage
    figures/pbt_scores-LABEL.png   each trial's score against step (a copy continues from its
                              parent's score); black: the best trial's lineage
    checkpoints/LABEL.*       the population after each exploit and at the end (params, optimizer
                              state, flags: `jopt.lab.checkpoints`), with LABEL.state-STEP.json
                              (rows, values, curves, random state): `run(..., resume=True)`
                              continues from the last one, bitwise as if never stopped
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optuna
import yaml

import jopt
from jopt.lab import checkpoints, outputs, registry
from jopt.lab import config as config_lib
from jopt.lab.config_optimizers import OptimizerConfig
from jopt.lab.config_values import ConfigError
from jopt.lab.programs import Compiled, compiled_workload, seed_keys, steps_per_epoch
from jopt.lab.search import population, space
from jopt.lab.search.population import Stopped  # raised by `run`, as by the sweep
from jopt.lab.search.space import Dimension, Objective
from jopt.lab.search.study import score

CSV = "pbt.csv"
LINEAGE = "pbt_lineage.json"
SUMMARY = "pbt.md"
BEST = "pbt_best.yaml"
_ASKS_PER_MEMBER = 20  # optuna asks per trial before a space of refused combinations is an error


@dataclasses.dataclass(frozen=True)
class Row:
    """One trial at one step: a line of pbt.csv (see the module docstring)."""

    trial: int
    step: int
    values: Mapping[str, Any]  # what it trains with from `step` on
    score: float  # its objective at `step`, before the exploit; NaN: none (diverged)
    parent: int | None  # the trial it copied at `step`


# -- choosing ------------------------------------------------------------------------------------


def initial_values(
    seed: int, base: OptimizerConfig, dimensions: Sequence[Dimension], k: int
) -> list[dict[str, Any]]:
    """K trials' values, drawn by optuna's RandomSampler(seed); refused combinations re-asked."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    found: list[dict[str, Any]] = []
    for _ in range(_ASKS_PER_MEMBER * k):
        trial = study.ask()
        values = {d.name: d.suggest(trial) for d in dimensions}
        try:
            space.apply(base, values)
        except ConfigError:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        study.tell(trial, 0.0)
        found.append(values)
        if len(found) == k:
            return found
    raise ConfigError(
        f"search.per_optimizer.{base.label}",
        f"{base.label!r} refused almost every combination of the searched values "
        f"({_ASKS_PER_MEMBER * k} drawn, {len(found)} accepted): narrow the ranges.",
    )


def ranking(scores: Sequence[float], direction: str) -> list[int]:
    """The trials best first: scored ones by score (ties: lower trial first), then the rest."""
    sign = -1.0 if direction == "maximize" else 1.0
    return sorted(
        range(len(scores)),
        key=lambda k: (
            math.isnan(scores[k]),
            0.0 if math.isnan(scores[k]) else sign * scores[k],
            k,
        ),
    )


def select(scores: Sequence[float], quantile: float, direction: str) -> tuple[list[int], list[int]]:
    """(losers, worst first; winners, best first): see step 3 of the module docstring.

    NaN scores (diverged or unscored trials) are always losers; with no scored trial there is
    nothing to copy and both lists are empty.
    """
    k = len(scores)
    n = min(max(1, math.ceil(k * quantile)), k // 2)
    order = ranking(scores, direction)
    winners = [t for t in order if not math.isnan(scores[t])][:n]
    if not winners:
        return [], []
    unscored = sum(math.isnan(s) for s in scores)
    losers = [t for t in reversed(order) if t not in winners][: max(n, unscored)]
    return losers, winners


def perturb(dimension: Dimension, value: float | int, factor: float) -> float | int:
    """`value * factor` in the dimension's range (see step 4 of the module docstring)."""
    d = dimension
    x = min(max(value * factor, d.low), d.high)
    if d.count is not None:  # a discretized range: its nearest point
        points = d.grid()
        if d.log:
            return min(points, key=lambda p: (abs(math.log(p / x)), p))
        return min(points, key=lambda p: (abs(p - x), p))
    if d.step is not None:
        x = d.low + round((x - d.low) / d.step) * d.step
        x = min(x, d.grid()[-1])
    if d.kind == "int":
        moved = round(x)
        if moved == value and factor != 1:
            moved = value + (1 if factor > 1 else -1)
        return int(min(max(moved, d.low), d.high))
    return float(x)


def explore(
    values: Mapping[str, Any],
    dimensions: Sequence[Dimension],
    factors: Sequence[float],
    rng: np.random.Generator,
) -> dict[str, Any]:
    """`values` with each dimension's value perturbed by a factor drawn from `factors`."""
    out = dict(values)
    for d in dimensions:
        factor = float(factors[int(rng.integers(len(factors)))])
        out[d.name] = perturb(d, values[d.name], factor)
    return out


# -- the population ------------------------------------------------------------------------------


def program_config(base: OptimizerConfig, dimensions: Sequence[Dimension]) -> OptimizerConfig:
    """The config the population's program is built from (the values are set in the state)."""
    return space.apply(base, {d.name: d.low for d in dimensions})


def exploit(
    params: Any,
    opt_state: Any,
    diverged: jax.Array,
    copies: Sequence[tuple[int, int, Mapping[str, Any]]],
    seeds: int,
) -> tuple[Any, Any, jax.Array]:
    """The stacked population after each (loser, winner, values) of `copies`: seed s of the
    loser takes seed s of the winner's params, optimizer state and flag (member = trial * seeds
    + seed), then `values` are set in its state with `jopt.set_hparams`. Losers and winners are
    disjoint, so every copy reads the winner as it was."""
    if not copies:
        return params, opt_state, diverged
    source = np.arange(diverged.shape[0])
    for loser, winner, _ in copies:
        source[loser * seeds : (loser + 1) * seeds] = np.arange(
            winner * seeds, (winner + 1) * seeds
        )
    params, opt_state, diverged = _take((params, opt_state, diverged), jnp.asarray(source))
    rows = [(loser * seeds + s, values) for loser, _, values in copies for s in range(seeds)]
    return params, _set_rows(opt_state, rows), diverged


@jax.jit
def _take(tree: Any, source: jax.Array) -> Any:
    """Member i of every leaf becomes member source[i] (one compiled gather per population)."""
    return jax.tree.map(lambda x: x[source], tree)


def _set_rows(opt_state: Any, rows: Sequence[tuple[int, Mapping[str, Any]]]) -> Any:
    """The stacked `opt_state` with `values` set in member `row`'s hyperparameters, for each
    (row, values): `jopt.set_hparams` on that member's `HParams` nodes (from Python numbers, as
    the constructor rounds them); every other row and buffer is left as it is."""
    nodes, treedef = jax.tree.flatten(opt_state, is_leaf=_is_hparams)
    packed = {i: np.array(n.packed) for i, n in enumerate(nodes) if _is_hparams(n)}

    def with_packed(pick: Callable[[int], Any]) -> Any:
        leaves = [jopt.HParams(pick(i), n.meta) if i in packed else n for i, n in enumerate(nodes)]
        return jax.tree.unflatten(treedef, leaves)

    for row, values in rows:
        member = with_packed(lambda i, r=row: packed[i][r])  # other buffers: passed through
        changed = jax.tree.leaves(jopt.set_hparams(member, **values), is_leaf=_is_hparams)
        for i in packed:
            packed[i][row] = np.asarray(changed[i].packed)
    return with_packed(lambda i: jnp.asarray(packed[i]))


def _is_hparams(node: Any) -> bool:
    return isinstance(node, jopt.HParams)


class _Batches:
    """Runs steps of the population, drawing each epoch's order once (as `population.train`)."""

    def __init__(self, compiled: Compiled, step: Callable, data_keys: jax.Array):
        self.compiled, self.step, self.data_keys = compiled, step, data_keys
        self.per_epoch = steps_per_epoch(compiled.workload)
        self.epoch, self.order = -1, None

    def run(self, carry: tuple[Any, Any, jax.Array], start: int, end: int):
        params, opt_state, diverged = carry
        record = None
        for t in range(start, end):
            if self.per_epoch is not None and t // self.per_epoch != self.epoch:
                self.epoch = t // self.per_epoch
                self.order = self.compiled.order(self.data_keys, jnp.asarray(self.epoch, jnp.int32))
            params, opt_state, diverged, record = self.step(
                params, opt_state, diverged, self.order, jnp.asarray(t, jnp.int32)
            )
        return (params, opt_state, diverged), record


def _measure(compiled: Compiled, metric: str, params: Any, record: Any) -> np.ndarray:
    """Every member's `metric` now (the last step's train loss, or an evaluation)."""
    if metric == "train_loss":
        if record is None:
            return np.full(jax.tree.leaves(params)[0].shape[0], np.nan)
        return np.array(record["train_loss"], np.float64)
    evals = compiled.evaluate(params, compiled.workload.valid)
    return np.array(evals[metric.removeprefix("eval_")], np.float64)


def _trial_scores(
    objective: Objective,
    steps: Sequence[int],
    history: np.ndarray,
    diverged: np.ndarray,
    k: int,
    seeds: int,
) -> list[float]:
    """Each trial's score: the mean over its seeds, NaN when a seed diverged or has none."""
    per_member = np.asarray([score(objective, steps, curve) for curve in history])
    per_member[diverged >= 0] = np.nan
    per_trial = per_member.reshape(k, seeds)
    return [float(np.mean(s)) if not np.isnan(s).any() else math.nan for s in per_trial]


@dataclasses.dataclass
class _State:
    """What the loop carries besides the arrays (saved with each checkpoint)."""

    step: int
    values: list[dict[str, Any]]  # each trial's, now
    rows: list[Row]
    eval_steps: list[int]
    history: np.ndarray  # (members, evals): the objective metric of each member's parameters
    rng: np.random.Generator

    def to_json(self) -> str:
        data = {
            "step": self.step,
            "values": self.values,
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "eval_steps": self.eval_steps,
            "history": self.history.tolist(),
            "rng": self.rng.bit_generator.state,
        }
        return json.dumps(data)  # NaN, Infinity as Python writes (and reads back) them

    @classmethod
    def from_json(cls, text: str) -> _State:
        data = json.loads(text)
        rng = np.random.default_rng()
        rng.bit_generator.state = data["rng"]
        return cls(
            data["step"],
            data["values"],
            [Row(**r) for r in data["rows"]],
            data["eval_steps"],
            np.asarray(data["history"], np.float64),
            rng,
        )


def _state_path(stem: Path, step: int) -> Path:
    return stem.with_name(f"{stem.name}.state-{step}.json")


def _save(stem: Path, state: _State, carry: Any, seeds: Sequence[int]) -> None:
    """The state file first, then the arrays, then older state files: a crash at any point
    leaves the arrays of some step next to that step's state file."""
    outputs.write_atomic(_state_path(stem, state.step), state.to_json())
    leaves = jax.tree.leaves(carry)
    record = {"seeds": list(seeds), "members": "trial * len(seeds) + seed"}
    checkpoints.save(stem, leaves, state.step, record, checkpoints.default_format())
    for old in stem.parent.glob(f"{stem.name}.state-*.json"):
        if old != _state_path(stem, state.step):
            old.unlink(missing_ok=True)


def _clear(stem: Path) -> None:
    """Removes the checkpoints at `stem` (a fresh run in a used folder must not resume them)."""
    shutil.rmtree(stem.with_name(f"{stem.name}.orbax"), ignore_errors=True)
    for path in stem.parent.glob(f"{stem.name}.*"):
        if path.suffix in (".npz", ".json"):
            path.unlink(missing_ok=True)


def _restore(stem: Path, fresh: Callable[[], Any]) -> tuple[Any, _State] | None:
    templates, treedef = jax.tree.flatten(jax.eval_shape(fresh))
    stored = checkpoints.load(stem, templates)
    if stored is None or not _state_path(stem, stored[1]).is_file():
        return None
    leaves, step = stored
    carry = jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves])
    return carry, _State.from_json(_state_path(stem, step).read_text())


def train(
    experiment: config_lib.ExperimentConfig,
    index: int,
    rows: list[Row],
    *,
    stop: Callable[[], bool],
    progress: bool,
    checkpoint: Path | None = None,
    resume: bool = False,
) -> list[Row]:
    """Runs PBT on the config's optimizer `index`, appending its rows to `rows` as they are made
    (what a `Stopped` leaves there is complete up to its last step); returns `rows`.

    `checkpoint` is the stem of its checkpoints (None: none); `resume` continues from them.
    """
    search, pbt = experiment.search, experiment.search.pbt
    base = experiment.optimizers[index]
    dimensions = search.spaces[base.label]
    seeds = list(search.seeds or experiment.seeds)
    k, s, steps = search.population, len(seeds), experiment.steps
    compiled = compiled_workload(experiment.workload)
    programs = compiled.programs_for(program_config(base, dimensions))
    init_keys, data_keys = seed_keys([seed for _ in range(k) for seed in seeds])

    def fresh():
        params = compiled.init_params(init_keys)
        return params, programs.init_state(params), jnp.full((k * s,), -1, jnp.int32)

    if checkpoint is not None and not resume:
        _clear(checkpoint)
    restored = _restore(checkpoint, fresh) if resume and checkpoint is not None else None
    if restored is not None:
        carry, state = restored
    else:
        values = initial_values(search.seed, base, dimensions, k)
        params, opt_state, diverged = fresh()
        opt_state = population.with_values(opt_state, [v for v in values for _ in seeds])
        carry = (params, opt_state, diverged)
        metric = _measure(compiled, search.objective.metric, params, None)
        state = _State(
            0, values, [], [0], metric[:, None], np.random.default_rng([search.seed, index])
        )
        scores = _trial_scores(
            search.objective, state.eval_steps, state.history, np.asarray(diverged), k, s
        )
        state.rows += [Row(t, 0, dict(values[t]), scores[t], None) for t in range(k)]
    rows.extend(state.rows)
    points = sorted(
        {*range(experiment.eval_every, steps, experiment.eval_every)}
        | {*range(pbt.interval, steps, pbt.interval)}
        | {steps}
    )
    batches = _Batches(compiled, programs.step, data_keys)
    bar = _bar(progress, base.label, steps, state.step)
    try:
        for point in (p for p in points if p > state.step):
            if stop():
                raise Stopped
            carry, record = batches.run(carry, state.step, point)
            state.step = point
            metric = _measure(compiled, search.objective.metric, carry[0], record)
            metric[np.asarray(carry[2]) >= 0] = np.nan
            state.history = np.concatenate([state.history, metric[:, None]], axis=1)
            state.eval_steps.append(point)
            if bar is not None:
                bar.update(point - bar.n)
            if point % pbt.interval and point != steps:
                continue
            carry = _generation(state, carry, search, dimensions, k, s, base, point == steps)
            rows.extend(state.rows[-k:])
            if checkpoint is not None:
                _save(checkpoint, state, carry, seeds)
    finally:
        if bar is not None:
            bar.close()
    return rows


def _generation(state: _State, carry, search, dimensions, k: int, s: int, base, last: bool):
    """Scores the trials at `state.step`, exploits and explores unless `last`; appends the rows
    of that step to `state.rows`; returns the new arrays."""
    diverged = np.asarray(carry[2])
    scores = _trial_scores(search.objective, state.eval_steps, state.history, diverged, k, s)
    parents: dict[int, int] = {}
    copies = []
    if not last:
        losers, winners = select(scores, search.pbt.quantile, search.objective.direction)
        for loser in losers:
            winner = winners[int(state.rng.integers(len(winners)))]
            values = explore(state.values[winner], dimensions, search.pbt.factors, state.rng)
            try:
                space.apply(base, values)
            except ConfigError:
                values = dict(state.values[winner])
            parents[loser] = winner
            copies.append((loser, winner, values))
    carry = exploit(*carry, copies, s)
    for loser, winner, values in copies:
        state.values[loser] = values
        members = slice(loser * s, (loser + 1) * s)
        state.history[members] = state.history[winner * s : (winner + 1) * s]
    state.rows += [
        Row(t, state.step, dict(state.values[t]), scores[t], parents.get(t)) for t in range(k)
    ]
    return carry


def _bar(enabled: bool, label: str, total: int, initial: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=label, unit="step", dynamic_ncols=True)


# -- reading the rows ----------------------------------------------------------------------------


def lineage(rows: Sequence[Row], trial: int, end: int | None = None) -> dict[str, Any]:
    """`trial`'s lineage, traced back from its last row: `chain` ({step, into, from}: the copies
    its final parameters went through, oldest first), `schedule` ({step, trial, values...}: the
    values they trained with from each step on, and the trial that held them), `scores` ({step,
    trial, score}: their score at each step, before that step's exploit). `end`: the last step of
    the run (its schedule entry, which starts nothing, is left out)."""
    at = {(r.trial, r.step): r for r in rows}
    steps = sorted({r.step for r in rows})
    owner, chain, schedule, scores = trial, [], [], []
    for step in reversed(steps):
        row = at[(owner, step)]
        before = owner if row.parent is None else row.parent
        if step != end:
            schedule.append({"step": step, "trial": owner, **row.values})
        scores.append({"step": step, "trial": before, "score": at[(before, step)].score})
        if row.parent is not None:
            chain.append({"step": step, "into": owner, "from": row.parent})
        owner = before
    return {"chain": chain[::-1], "schedule": schedule[::-1], "scores": scores[::-1]}


def best_trial(rows: Sequence[Row], direction: str) -> int | None:
    """The trial with the best score at the last step (None: none has one)."""
    last = max(r.step for r in rows)
    final = sorted((r for r in rows if r.step == last), key=lambda r: r.trial)
    best = ranking([r.score for r in final], direction)[0]
    return None if math.isnan(final[best].score) else final[best].trial


# -- writing -------------------------------------------------------------------------------------


def _names(experiment: config_lib.ExperimentConfig) -> list[str]:
    spaces = experiment.search.spaces
    return list(dict.fromkeys(d.name for dims in spaces.values() for d in dims))


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else value


def write_csv(study_dir: Path, experiment, records: Mapping[str, Sequence[Row]]) -> None:
    names = _names(experiment)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["optimizer", "trial", "step", *names, "score", "parent"])
    for label, rows in records.items():
        for r in sorted(rows, key=lambda r: (r.step, r.trial)):
            values = [_cell(r.values.get(n)) for n in names]
            writer.writerow([label, r.trial, r.step, *values, _cell(r.score), _cell(r.parent)])
    outputs.write_atomic(study_dir / CSV, buffer.getvalue())


def lineages(experiment, records: Mapping[str, Sequence[Row]]) -> dict[str, Any]:
    """pbt_lineage.json's content."""
    search = experiment.search
    direction = search.objective.direction
    out = {}
    for index, config in enumerate(experiment.optimizers):
        rows = records.get(config.label)
        if not rows:
            continue
        last = max(r.step for r in rows)
        trials = []
        for r in sorted((r for r in rows if r.step == last), key=lambda r: r.trial):
            trials.append(
                {
                    "trial": r.trial,
                    "final_score": r.score,
                    "final_values": dict(r.values),
                    **lineage(rows, r.trial, experiment.steps),
                }
            )
        out[config.label] = {
            "best_trial": best_trial(rows, direction),
            "last_step": last,
            "objective": dataclasses.asdict(search.objective),
            "direction": direction,
            "seeds": list(search.seeds or experiment.seeds),
            "exploit_random_seed": [search.seed, index],
            "trials": trials,
        }
    return out


def _exact(config: OptimizerConfig, name: str) -> bool:
    """Whether a `piecewise_constant` schedule of `name` computes exactly what its values set
    in the state compute: a schedulable float from which nothing is derived (a decay rate's
    complement `1 - x` is rounded once from float64 for a number, but computed in float32 from
    a schedule's value)."""
    spec = registry.hparams(config.name)
    return (
        spec is not None
        and name in spec
        and spec[name].schedulable
        and not any(rule.source == name for rule in spec.derived)
    )


def best_config(experiment, records: Mapping[str, Sequence[Row]], study_dir: Path) -> str | None:
    """pbt_best.yaml's text: each optimizer at its best trial's lineage schedule (values that
    change as `piecewise_constant` schedules), which `jopt run` reproduces exactly; optimizers
    whose changing values cannot be given so are left out (said in the header). None: none."""
    search = experiment.search
    optimizers, notes = [], []
    for config in experiment.optimizers:
        rows = records.get(config.label, [])
        best = best_trial(rows, search.objective.direction) if rows else None
        if best is None:
            notes.append(f"#   {config.label}: left out, no trial has a score")
            continue
        schedule = lineage(rows, best, experiment.steps)["schedule"]
        values: dict[str, Any] = {}
        for d in search.spaces[config.label]:
            boundaries, points = [], [schedule[0][d.name]]
            for entry in schedule[1:]:
                if entry[d.name] != points[-1]:
                    boundaries.append(entry["step"])
                    points.append(entry[d.name])
            values[d.name] = points[0]
            if boundaries:
                schedule_data = {"boundaries": boundaries, "values": points}
                values[d.name] = {"schedule": "piecewise_constant", **schedule_data}
        inexact = [n for n, v in values.items() if isinstance(v, dict) and not _exact(config, n)]
        final = _number(
            next(r.score for r in rows if r.trial == best and r.step == experiment.steps)
        )
        if inexact:
            notes.append(
                f"#   {config.label}: left out, trial {best}'s lineage changes "
                f"{', '.join(inexact)}, which a schedule does not compute exactly as a value in "
                f"the state does (its lineage is in {SUMMARY})"
            )
            continue
        optimizers.append(space.apply(config, values))
        notes.append(f"#   {config.label}: trial {best}, {final}")
    if not optimizers:
        return None
    result = dataclasses.replace(
        experiment,
        name=f"{experiment.name}-pbt-best",
        description=f"The best lineage of each optimizer in the PBT sweep {experiment.name}.",
        optimizers=tuple(optimizers),
        seeds=search.seeds or experiment.seeds,
        search=None,
    )
    objective = search.objective
    header = [
        f"# jopt run {study_dir / 'pbt_best.yaml'}",
        "# Trains each optimizer's best PBT trial to its final parameters, bitwise on the same",
        "# device: the values of its lineage, changing where the trials holding it did.",
        f"# Its objective ({objective.at.replace('_', ' ')} {objective.metric}, mean over seeds):",
        *notes,
    ]
    return "\n".join(header) + "\n" + yaml.safe_dump(config_lib.to_dict(result), sort_keys=False)


def plot(study_dir: Path, experiment, label: str, rows: Sequence[Row]) -> list[Path]:
    """pbt_hparams-LABEL.png and pbt_scores-LABEL.png (one colour per trial; black: the best
    trial's lineage)."""
    from jopt.lab.plots import plt, save_figure

    search = experiment.search
    dimensions = search.spaces[label]
    trials = sorted({r.trial for r in rows})
    mine = {t: sorted((r for r in rows if r.trial == t), key=lambda r: r.step) for t in trials}
    at = {(r.trial, r.step): r for r in rows}
    last = max(r.step for r in rows)
    best = best_trial(rows, search.objective.direction)
    path = lineage(rows, best, experiment.steps) if best is not None else None
    name = outputs.safe_name(label)
    figures = study_dir / "figures"

    fig, axes = plt.subplots(
        len(dimensions), 1, figsize=(7, 1 + 2.2 * len(dimensions)), sharex=True, squeeze=False
    )
    for ax, d in zip(axes[:, 0], dimensions, strict=True):
        for t in trials:
            steps, values = [r.step for r in mine[t]], [r.values[d.name] for r in mine[t]]
            ax.step(steps, values, where="post", color=f"C{t % 10}", alpha=0.6, label=f"trial {t}")
        if path is not None:
            steps = [e["step"] for e in path["schedule"]]
            values = [e[d.name] for e in path["schedule"]]
            ax.step(
                [*steps, last],
                [*values, values[-1]],
                where="post",
                color="black",
                lw=2.2,
                label=f"trial {best}'s lineage",
            )
        if d.log:
            ax.set_yscale("log")
        ax.set_ylabel(d.name)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=2)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title(f"{experiment.name} / {label}: PBT values from each step on", fontsize=10)
    written = [save_figure(fig, figures / f"pbt_hparams-{name}.png")]

    fig, ax = plt.subplots(figsize=(7, 4))
    for t in trials:
        # A copy starts a new segment at the parent's score: the parameters the trial now holds.
        xs, ys = [], []
        for r in mine[t]:
            xs.append(r.step)
            ys.append(r.score)
            if r.parent is not None:
                ax.plot(xs, ys, color=f"C{t % 10}", marker=".", alpha=0.6)
                xs, ys = [r.step], [at[(r.parent, r.step)].score]
        ax.plot(xs, ys, color=f"C{t % 10}", marker=".", alpha=0.6, label=f"trial {t}")
    if path is not None:
        ax.plot(
            [e["step"] for e in path["scores"]],
            [e["score"] for e in path["scores"]],
            color="black",
            lw=2.2,
            marker="o",
            label=f"trial {best}'s lineage",
        )
    scores = np.asarray([r.score for r in rows], float)
    finite = scores[np.isfinite(scores)]
    if finite.size and finite.min() > 0 and finite.max() > 100 * finite.min():
        ax.set_yscale("log")
    objective = search.objective
    ax.set_xlabel("step")
    ax.set_ylabel(f"{objective.at.replace('_', ' ')} {objective.metric} (mean over seeds)")
    ax.set_title(
        f"{experiment.name} / {label}: PBT scores (a copy continues from its parent's)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    written.append(save_figure(fig, figures / f"pbt_scores-{name}.png"))
    return written


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(experiment, records: Mapping[str, Sequence[Row]], best_yaml: bool = False) -> str:
    search, pbt = experiment.search, experiment.search.pbt
    objective = search.objective
    lines = [
        f"# PBT sweep {experiment.name}",
        "",
        f"Population-based training: {search.population} trials x seeds "
        f"{list(search.seeds or experiment.seeds)}, exploit and explore every {pbt.interval} "
        f"steps (quantile {pbt.quantile}, factors {list(pbt.factors)}); score: "
        f"{objective.at.replace('_', ' ')} {objective.metric} ({objective.direction}), mean over "
        f"seeds; workload `{experiment.workload.name}`, {experiment.steps} steps.",
    ]
    for config in experiment.optimizers:
        rows = records.get(config.label)
        if not rows:
            continue
        names = [d.name for d in search.spaces[config.label]]
        last = max(r.step for r in rows)
        final = {r.trial: r for r in rows if r.step == last}
        order = ranking([final[t].score for t in sorted(final)], objective.direction)
        lines += ["", f"## {config.label}", "", f"At step {last}, best first (— : diverged):", ""]
        header = ["trial", "score", *names, "copies"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for t in order:
            chain = lineage(rows, t, experiment.steps)["chain"]
            cells = [str(t), _number(final[t].score), *[_number(final[t].values[n]) for n in names]]
            lines.append("| " + " | ".join([*cells, str(len(chain))]) + " |")
        best = best_trial(rows, objective.direction)
        if best is None:
            lines += ["", "No trial has a score."]
            continue
        lines += [
            "",
            f"Trial {best}'s final parameters trained with these values, from each step on, "
            f"in the trial that held them (its lineage; all of it in {LINEAGE}):",
            "",
            "| from step | in trial | " + " | ".join(names) + " |",
            "|" + "---|" * (len(names) + 2),
        ]
        previous = None
        for e in lineage(rows, best, experiment.steps)["schedule"]:
            if e | {"step": None} == previous:
                continue  # the same trial with the same values
            previous = e | {"step": None}
            cells = [str(e["step"]), str(e["trial"]), *[_number(e[n]) for n in names]]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Rows: {CSV}; lineages: {LINEAGE}; figures: figures/pbt_*.png."]
    if best_yaml:
        lines += [f"{BEST}: a config `jopt run` trains the best lineages with (see its header)."]
    return "\n".join(lines) + "\n"


def write(study_dir: Path, experiment, records: Mapping[str, Sequence[Row]], *, done: bool) -> str:
    """Writes pbt.csv, pbt_lineage.json and pbt.md, and once `done` the figures and
    pbt_best.yaml; returns the summary."""
    write_csv(study_dir, experiment, records)
    outputs.write_json(study_dir / LINEAGE, lineages(experiment, records))
    best = best_config(experiment, records, study_dir) if done else None
    if best is not None:
        outputs.write_atomic(study_dir / BEST, best)
    text = markdown(experiment, records, best is not None)
    outputs.write_atomic(study_dir / SUMMARY, text)
    if done:
        for label, rows in records.items():
            plot(study_dir, experiment, label, rows)
    return text


def run(
    experiment: config_lib.ExperimentConfig,
    study_dir: Path,
    *,
    stop: Callable[[], bool],
    progress: bool,
    resume: bool = False,
) -> str:
    """Runs PBT for every optimizer of `experiment` (epochs resolved to steps) and writes the
    outputs in `study_dir`; returns the Markdown summary.

    `stop()` is asked between chunks of steps: True writes the rows done so far (no figures,
    no pbt_best.yaml) and raises `population.Stopped`; `resume=True` then continues each
    optimizer from its last checkpoint (an exploit step), bitwise as if never stopped.
    """
    study_dir = Path(study_dir)
    records: dict[str, list[Row]] = {}
    for index, config in enumerate(experiment.optimizers):
        rows = records.setdefault(config.label, [])
        stem = study_dir / "checkpoints" / outputs.safe_name(config.label)
        try:
            train(
                experiment,
                index,
                rows,
                stop=stop,
                progress=progress,
                checkpoint=stem,
                resume=resume,
            )
        except Stopped:
            write(study_dir, experiment, {k: v for k, v in records.items() if v}, done=False)
            raise
    return write(study_dir, experiment, records, done=True)
