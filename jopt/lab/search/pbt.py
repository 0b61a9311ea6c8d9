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

Written in STUDY_DIR: pbt.csv, pbt_lineage.json, pbt.md, pbt_best.yaml and figures, from the rows
`train` makes (`jopt.lab.search.pbt_report`, whose docstring describes them), and

    checkpoints/LABEL.*       the population after each exploit and at the end (params, optimizer
                              state, flags: `jopt.lab.checkpoints`), with LABEL.state-STEP.json
                              (rows, values, curves, random state): `run(..., resume=True)`
                              continues from the last one, bitwise as if never stopped
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optuna

from jopt.lab import config as config_lib
from jopt.lab import outputs
from jopt.lab.config_optimizers import OptimizerConfig
from jopt.lab.config_values import ConfigError
from jopt.lab.programs import Batches, compiled_workload, seed_keys
from jopt.lab.progress import bar as progress_bar
from jopt.lab.search import pbt_report, pbt_resume, population, space
from jopt.lab.search.pbt_report import Row, ranking
from jopt.lab.search.population import Stopped  # raised by `run`, as by the sweep
from jopt.lab.search.section import Objective
from jopt.lab.search.space import Dimension
from jopt.lab.search.study import score

_ASKS_PER_MEMBER = 20  # optuna asks per trial before a space of refused combinations is an error


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
    params, opt_state, diverged = population.take_members(
        (params, opt_state, diverged), jnp.asarray(source)
    )
    rows = [(loser * seeds + s, values) for loser, _, values in copies for s in range(seeds)]
    return params, population.with_values_at(opt_state, rows), diverged


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
    compiled = compiled_workload(experiment.workload, experiment.data_parallel)
    programs = compiled.programs_for(program_config(base, dimensions))
    init_keys, data_keys = seed_keys([seed for _ in range(k) for seed in seeds])

    def fresh():
        params = compiled.init_params(init_keys)
        return params, programs.init_state(params), jnp.full((k * s,), -1, jnp.int32)

    if checkpoint is not None and not resume:
        pbt_resume.clear(checkpoint)
    restored = pbt_resume.restore(checkpoint, fresh) if resume and checkpoint is not None else None
    if restored is not None:
        carry, state = restored
    else:
        values = initial_values(search.seed, base, dimensions, k)
        params, opt_state, diverged = fresh()
        opt_state = population.with_values(opt_state, [v for v in values for _ in seeds])
        carry = (params, opt_state, diverged)
        metric = population.measure(compiled, search.objective.metric, params, None, np.float64)
        state = pbt_resume.State(
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
    batches = Batches(compiled, programs.step, data_keys)
    bar = progress_bar(progress, base.label, steps, state.step)
    try:
        for point in (p for p in points if p > state.step):
            if stop():
                raise Stopped
            carry, record = batches.run(carry, state.step, point)
            state.step = point
            metric = population.measure(
                compiled, search.objective.metric, carry[0], record, np.float64
            )
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
                pbt_resume.save(checkpoint, state, carry, seeds)
    finally:
        if bar is not None:
            bar.close()
    return rows


def _generation(
    state: pbt_resume.State, carry, search, dimensions, k: int, s: int, base, last: bool
):
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
            so_far = {k: v for k, v in records.items() if v}
            pbt_report.write(study_dir, experiment, so_far, done=False)
            raise
    return pbt_report.write(study_dir, experiment, records, done=True)
