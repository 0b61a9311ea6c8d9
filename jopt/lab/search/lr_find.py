"""The learning-rate range test: `jopt lr-find CONFIG [KEY.SUB=VALUE ...]`.

For each optimizer of a config, train from the seeds' initial parameters while the learning rate
grows exponentially from `min_lr` to `max_lr` over `steps` steps,

    lr_t = min_lr * (max_lr / min_lr) ** (t / (steps - 1)),   t = 0 .. steps - 1

(the two ends exactly `min_lr` and `max_lr`), and record the training loss against it. The loss
first barely moves (too small a rate), then falls, then rises and blows up (too large a rate); a
good constant learning rate lies on the falling part, well before the minimum. The loss at step t
is the minibatch loss of the parameters *before* the update with lr_t, as fastai records it.

All the config's seeds train at once in the lab's compiled, vmapped step (`jopt.lab.programs`),
with the learning rate set *in the optimizer state* before every step (`jopt.set_hparams`), so
the step compiles once. The loss of a step is the mean over the seeds whose loss is still finite.
Its exponential moving average, bias-corrected as fastai's `AvgSmoothLoss` (beta = `smoothing`),

    a_t = beta * a_{t-1} + (1 - beta) * loss_t,  a_{-1} = 0,   smoothed_t = a_t / (1 - beta^(t+1)),

stops the test early once it is not finite or exceeds the best smoothed loss so far by the factor
`diverge_factor` (for a negative best loss: rises above it by (factor - 1) * |best|).

Suggestions (`suggest`, on the smoothed curve, without the points of the first tenth of the
ramp's steps and the last five points, as fastai's `lr_find`: the start is flat and noisy, the
end is the blow-up):
  - steepest: the learning rate where the smoothed loss falls fastest per unit of log(lr), the
    minimum of its gradient (central differences, `np.gradient`; fastai takes forward
    differences); None if it never falls. With few steps or noisy minibatches it can land in
    the noise of the flat start: look at the figure, or run more steps.
  - minimum / 10: a tenth of the learning rate of the lowest smoothed loss.
A learning rate given by a schedule in the config is replaced by the ramp (the test measures
constant rates; the other hyperparameters keep their config values and schedules); an optimizer
whose rate cannot be set in its state (torch.Adagrad with `lr_decay`, which makes it a schedule)
is refused before anything runs.

References: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017
(arXiv:1506.01186, 2015), section 3.3; fastai's `Learner.lr_find` (`LRFinder`, `steep`,
`minimum`).

Written to OUTPUT_DIR/NAME-lr-find (NAME-lr-find-2, ... if taken):
    config.yaml        the resolved config (overrides applied)
    lr_find.csv        optimizer, step, learning_rate (as stored in the state), loss, smoothed_loss
    suggestions.json   the options, and per optimizer its suggestions, steps run and why it stopped
    summary.md         the table printed at the end
    lr_find.png        smoothed loss against learning rate, suggestions marked (not --no-plots)

The command is `lr_find_cli`; what it writes, `lr_find_report`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jopt
from jopt.lab import config as config_lib
from jopt.lab import programs, registry
from jopt.lab.progress import bar as progress_bar

CSV_COLUMNS = ("optimizer", "step", "learning_rate", "loss", "smoothed_loss")
SKIP_END = 5  # last points `suggest` ignores (fastai's too); the first: a tenth of the steps


class OptionError(ValueError):
    """An lr-find option out of range (the command exits with status 2)."""


@dataclasses.dataclass(frozen=True)
class Options:
    """The ramp and the stopping rule (see the module docstring)."""

    min_lr: float = 1e-7
    max_lr: float = 10.0
    steps: int = 100
    smoothing: float = 0.98
    diverge_factor: float = 4.0

    def __post_init__(self):
        def bad(option, value, allowed):
            raise OptionError(f"--{option} must be {allowed}, got {value!r}.")

        if not (math.isfinite(self.min_lr) and self.min_lr > 0):
            bad("min-lr", self.min_lr, "a finite number > 0")
        if not (math.isfinite(self.max_lr) and self.max_lr > self.min_lr):
            bad("max-lr", self.max_lr, f"a finite number > --min-lr ({self.min_lr!r})")
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)):
            bad("steps", self.steps, "an integer >= 2")
        if self.steps < 2:
            bad("steps", self.steps, "an integer >= 2")
        if not 0 <= self.smoothing < 1:
            bad("smoothing", self.smoothing, "in [0, 1) (0: no smoothing)")
        if not self.diverge_factor > 1:  # NaN fails too; inf: stop only on a non-finite loss
            bad("diverge-factor", self.diverge_factor, "> 1 (inf: never stop on a rise)")


@dataclasses.dataclass(frozen=True)
class Curve:
    """One optimizer's range test: arrays over the steps that ran."""

    label: str
    name: str
    learning_rates: np.ndarray  # as stored in the optimizer state (float32 unless x64)
    losses: np.ndarray  # mean over the seeds whose loss is finite
    smoothed: np.ndarray
    stopped: str | None  # None (ran every step), "diverged" or "not finite"
    schedule_replaced: bool  # the config's learning rate was a schedule
    planned: int  # the steps of the ramp (more than ran if it stopped early)

    @property
    def suggestions(self) -> dict[str, Any]:
        return suggest(self.learning_rates, self.smoothed, skip_start=self.planned // 10)


# -- the pure parts --------------------------------------------------------------------------------


def ramp(min_lr: float, max_lr: float, steps: int) -> np.ndarray:
    """The float64 learning rates min_lr * (max_lr/min_lr) ** (t/(steps-1)), ends exact."""
    rates = min_lr * (max_lr / min_lr) ** (np.arange(steps) / (steps - 1))
    rates[0], rates[-1] = min_lr, max_lr  # (max/min) * min may differ from max by an ulp
    return rates


def _smooth_step(average: float, loss: float, t: int, beta: float) -> tuple[float, float]:
    """(new running average, bias-corrected smoothed loss) after loss number t (from 0)."""
    average = beta * average + (1 - beta) * loss
    return average, average / (1 - beta ** (t + 1))


def smooth(losses: Sequence[float], beta: float) -> np.ndarray:
    """The bias-corrected exponential moving average of `losses` (float64), as fastai smooths:
    a_t = beta a_{t-1} + (1 - beta) loss_t from a_{-1} = 0, divided by 1 - beta^(t+1), so that
    the first value is the first loss and a constant sequence stays constant. beta in [0, 1)."""
    out = np.empty(len(losses))
    average = 0.0
    for t, loss in enumerate(np.asarray(losses, np.float64)):
        average, out[t] = _smooth_step(average, float(loss), t, beta)
    return out


def diverged(smoothed: float, best: float, factor: float) -> bool:
    """Whether `smoothed` exceeds the best smoothed loss so far by `factor`: above factor * best
    for a positive best, above best + (factor - 1) * |best| in general (negative losses)."""
    return smoothed > best + (factor - 1) * abs(best)


def window(n: int, skip_start: int | None = None) -> slice:
    """The points of a finite curve of `n` points that `suggest` reads: without the first
    `skip_start` (default n // 10) and the last 5, as fastai's `lr_find` (which skips a tenth
    of the planned steps), or all n where fewer than 3 would remain."""
    start = n // 10 if skip_start is None else skip_start
    return slice(start, n - SKIP_END) if n - SKIP_END - start >= 3 else slice(0, n)


def suggest(
    learning_rates: Sequence[float], losses: Sequence[float], skip_start: int | None = None
) -> dict[str, Any]:
    """Learning rates suggested by a range-test curve (`losses`: the smoothed losses).

    The curve is cut at its first non-finite loss, then read in its `window` (the first
    `skip_start` points and the last 5 dropped). With fewer than 3 points every suggestion is
    None.

    Returns:
      steepest: the learning rate where d loss / d log(lr) (central differences) is lowest, None
        if the loss never falls; steepest_loss its loss.
      minimum: the learning rate of the lowest loss; minimum_loss that loss.
      minimum_over_10: minimum / 10, the usual choice from the minimum.
      points: the number of points the suggestions were read from.
    """
    rates = np.asarray(learning_rates, np.float64)
    values = np.asarray(losses, np.float64)
    if rates.shape != values.shape or rates.ndim != 1:
        raise ValueError(f"suggest: shapes differ or are not 1-D: {rates.shape}, {values.shape}.")
    finite = np.isfinite(values) & np.isfinite(rates) & (rates > 0)
    n = len(values) if finite.all() else int(np.argmin(finite))
    keep = window(n, skip_start)
    rates, values = rates[:n][keep], values[:n][keep]
    result: dict[str, Any] = dict.fromkeys(
        ("steepest", "steepest_loss", "minimum", "minimum_loss", "minimum_over_10")
    )
    result["points"] = len(values)
    if len(values) < 3:
        return result
    slopes = np.gradient(values, np.log(rates))
    low = int(np.argmin(values))
    result.update(minimum=rates[low], minimum_loss=values[low], minimum_over_10=rates[low] / 10)
    if slopes.min() < 0:
        steep = int(np.argmin(slopes))
        result.update(steepest=rates[steep], steepest_loss=values[steep])
    return {k: float(v) if isinstance(v, np.floating) else v for k, v in result.items()}


def mean_of_live_seeds(losses: np.ndarray, diverged_at: np.ndarray) -> float:
    """The mean loss over the seeds that have not diverged (NaN if none is left)."""
    live = (np.asarray(diverged_at) < 0) & np.isfinite(losses)
    return float(np.mean(losses[live])) if live.any() else math.nan


# -- running ---------------------------------------------------------------------------------------


@jax.jit
def _set_lr(opt_state: Any, learning_rate: jax.Array) -> Any:
    """The stacked state with every seed's learning rate set (one compiled program per state
    structure: the rate is an argument, never a constant). Set inside `vmap`, one seed at a
    time: `set_hparams` on the stacked state would broadcast the scalar over the seeds only
    where the node holds other hyperparameters (sgd's holds none, and would lose its seed axis).
    """
    return jax.vmap(lambda s: jopt.set_hparams(s, learning_rate=learning_rate))(opt_state)


def constant_rate(
    optimizer: config_lib.OptimizerConfig, where: str, options: Options
) -> tuple[config_lib.OptimizerConfig, bool]:
    """`optimizer` with a schedule for its learning rate replaced by the constant `min_lr`, and
    whether one was; checks that its state holds one learning rate that can be set to each end
    of the ramp.

    Raises ConfigError at `where` for an optimizer whose learning rate cannot be set.
    """
    parameters = inspect.signature(registry.OPTIMIZERS[optimizer.name]).parameters
    argument = next((a for a in ("learning_rate", "lr") if a in parameters), None)
    hparams = dict(optimizer.hparams)
    replaced = isinstance(hparams.get(argument), config_lib.ScheduleConfig)
    if replaced:
        hparams[argument] = options.min_lr
    optimizer = dataclasses.replace(optimizer, hparams=hparams)
    try:  # the state's structure does not depend on the parameters' shapes
        state = config_lib.build_optimizer(optimizer).init({"w": jnp.zeros((1,))})
        jopt.current_lr(state)
        for rate in (options.min_lr, options.max_lr):
            jopt.set_hparams(state, learning_rate=rate)
    except ValueError as e:
        raise config_lib.ConfigError(
            where,
            f"{optimizer.name} ({optimizer.label!r}): the range test sets the learning rate in "
            f"the optimizer state at every step, which this optimizer refuses: {e}",
        ) from None
    return optimizer, replaced


def run_one(
    compiled: programs.Compiled,
    optimizer: config_lib.OptimizerConfig,
    seeds: Sequence[int],
    options: Options,
    *,
    schedule_replaced: bool = False,
    progress: bool = False,
) -> Curve:
    """The range test of one optimizer (with a settable learning rate) on every seed at once."""
    compiled_programs = compiled.programs_for(optimizer)
    init_keys, data_keys = programs.seed_keys(seeds)
    params = compiled.init_params(init_keys)
    state = compiled_programs.init_state(params)
    diverged_at = jnp.full((len(seeds),), -1, jnp.int32)
    batches = programs.Batches(compiled, compiled_programs.step, data_keys)  # as the runner's
    dtype = jax.dtypes.canonicalize_dtype(np.float64)  # the state's float
    rates = ramp(options.min_lr, options.max_lr, options.steps).astype(dtype)
    recorded, losses, smoothed = [], [], []
    average, best, stopped = 0.0, math.inf, None
    bar = progress_bar(progress, f"lr-find {optimizer.label}", options.steps)
    try:
        for t, rate in enumerate(rates):
            state = _set_lr(state, rate)
            (params, state, diverged_at), record = batches.run(
                (params, state, diverged_at), t, t + 1
            )
            loss, lr, dead = jax.device_get(
                (record["train_loss"], record["learning_rate"], diverged_at)
            )
            losses.append(mean_of_live_seeds(loss, dead))
            recorded.append(float(lr[0]))
            average, value = _smooth_step(average, losses[-1], t, options.smoothing)
            smoothed.append(value)
            if bar is not None:
                bar.set_postfix(lr=f"{lr[0]:.3g}", loss=f"{value:.4g}", refresh=False)
                bar.update(1)
            if not math.isfinite(value):
                stopped = "not finite"
                break
            best = min(best, value)
            if diverged(value, best, options.diverge_factor):
                stopped = "diverged"
                break
    finally:
        if bar is not None:
            bar.close()
    return Curve(
        optimizer.label,
        optimizer.name,
        np.asarray(recorded),
        np.asarray(losses),
        np.asarray(smoothed),
        stopped,
        schedule_replaced,
        options.steps,
    )


def select(
    config: config_lib.ExperimentConfig, labels: Sequence[str] | None, options: Options
) -> list[tuple[config_lib.OptimizerConfig, bool]]:
    """The optimizers to test (all, or those labelled `labels`), each with a constant learning
    rate (see `constant_rate`) and whether its schedule was replaced."""
    known = [o.label for o in config.optimizers]
    for label in labels or ():
        if label not in known:
            raise OptionError(
                f"--optimizer {label!r} is not a label of the config"
                f"{registry.closest(label, known)}; its labels are: {', '.join(map(repr, known))}."
            )
    return [
        constant_rate(o, f"optimizers[{i}]", options)
        for i, o in enumerate(config.optimizers)
        if not labels or o.label in labels
    ]
