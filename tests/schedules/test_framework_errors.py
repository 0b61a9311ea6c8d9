"""Bad arguments to jopt.keras and jopt.torch schedules raise under the framework's names.

Each row calls one twin with one bad argument; the message must start with the twin's public
name (`jopt.keras.CosineDecay:`, `jopt.torch.StepLR:`) and hold the framework's argument name
and the value, never the name of the jopt schedule it is built on (`transition_steps`,
`jopt.exponential_decay`). Ranges are the frameworks' (Keras 3: `decay_steps > 0`; torch 2.13:
`T_mult >= 1`, `start_factor` in (0, 1], ...), narrowed where a framework takes nonsense silently:
NaN or infinite numbers, negative `warmup_steps`, step counts below 1; cycles that start above
their peak (CyclicLR's base_lr > max_lr or base_momentum > max_momentum, OneCycleLR's
div_factor < 1) or end above their start (final_div_factor < 1), growth without bound (gamma > 1
in StepLR, MultiStepLR, ExponentialLR and CyclicLR's exp_range); ReduceLROnPlateau's
factor <= 0, negative patience, cooldown, threshold or eps.

jopt.torch.ReduceLROnPlateau takes torch's argument order, so a call in `jopt.reduce_on_plateau`'s
order (factor second) fails on `mode`, and a list of per-group min_lr is refused by name.
"""

from __future__ import annotations

import math
import re

import jax.numpy as jnp
import pytest

import jopt

NAN, INF = math.nan, math.inf
KERAS = (
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
)
TORCH = (
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "CyclicLR",
    "LinearLR",
    "PolynomialLR",
    "ConstantLR",
    "SequentialLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
)


def _flat(step):
    return 0.1 + 0 * step


_step_a = jopt.torch.StepLR(0.1, 2)
_step_b = jopt.torch.StepLR(0.2, 2)
_sgd = jopt.sgd(0.1)


def _vector_scale(x):
    return jnp.stack([x, x])


def _row(id, twin, args, kwargs, fragment, error=ValueError):
    """`jopt.<twin>(*args, **kwargs)` raises `error` with "jopt.<twin>: <fragment>"."""
    module, name = twin.split(".")
    return pytest.param(module, name, args, kwargs, f"jopt.{twin}: {fragment}", error, id=id)


def _k(id, name, args, kwargs, fragment, error=ValueError):
    return _row(f"keras-{name}-{id}", f"keras.{name}", args, kwargs, fragment, error)


def _t(id, name, args, kwargs, fragment, error=ValueError):
    return _row(f"torch-{name}-{id}", f"torch.{name}", args, kwargs, fragment, error)


_STEPS = "must be an integer >= 1, got"

ROWS = [
    # -- Keras --------------------------------------------------------------------------------
    _k("decay_steps_0", "ExponentialDecay", (0.1, 0, 0.5), {}, f"decay_steps {_STEPS} 0."),
    _k("decay_steps_frac", "ExponentialDecay", (0.1, 2.5, 0.5), {},
       f"decay_steps {_STEPS} 2.5.", TypeError),
    _k("decay_rate_nan", "ExponentialDecay", (0.1, 10, NAN), {},
       "decay_rate must be in (0, 1], got nan."),
    _k("decay_rate_above_1", "ExponentialDecay", (0.1, 10, 1.3), {},
       "decay_rate must be in (0, 1], got 1.3."),
    _k("initial_inf", "ExponentialDecay", (INF, 10, 0.5), {},
       "initial_learning_rate must be a finite number, got inf."),
    _k("staircase_str", "ExponentialDecay", (0.1, 10, 0.5), {"staircase": "yes"},
       "staircase must be True or False, got 'yes'.", TypeError),
    _k("boundaries_equal", "PiecewiseConstantDecay", ([5, 5], [1.0, 0.5, 0.1]), {},
       "boundaries must be strictly increasing, got [5, 5]."),
    _k("boundaries_negative", "PiecewiseConstantDecay", ([-1], [1.0, 0.5]), {},
       "boundaries[0] must be an integer >= 0, got -1."),
    _k("values_count", "PiecewiseConstantDecay", ([5], [1.0, 0.5, 0.1]), {},
       "values must have one more element than boundaries, got 3 values and 1 boundaries."),
    _k("values_nan", "PiecewiseConstantDecay", ([5], [1.0, NAN]), {},
       "values[1] must be a finite number, got nan."),
    _k("decay_steps_0", "PolynomialDecay", (0.1, 0), {}, f"decay_steps {_STEPS} 0."),
    _k("end_learning_rate_nan", "PolynomialDecay", (0.1, 10), {"end_learning_rate": NAN},
       "end_learning_rate must be a finite number, got nan."),
    _k("power_0", "PolynomialDecay", (0.1, 10), {"power": 0.0}, "power must be > 0, got 0.0."),
    _k("decay_steps_negative", "InverseTimeDecay", (0.1, -3, 0.5), {},
       f"decay_steps {_STEPS} -3."),
    _k("decay_rate_negative", "InverseTimeDecay", (0.1, 10, -0.5), {},
       "decay_rate must be >= 0, got -0.5."),
    _k("decay_steps_0", "CosineDecay", (0.1, 0), {}, f"decay_steps {_STEPS} 0."),
    _k("warmup_steps_negative", "CosineDecay", (0.1, 10), {"warmup_steps": -1},
       "warmup_steps must be an integer >= 0, got -1."),
    _k("warmup_steps_negative_with_target", "CosineDecay", (0.1, 10),
       {"warmup_target": 1.0, "warmup_steps": -1}, "warmup_steps must be an integer >= 0, got -1."),
    _k("warmup_target_nan", "CosineDecay", (0.1, 10), {"warmup_target": NAN, "warmup_steps": 5},
       "warmup_target must be a finite number, got nan."),
    _k("alpha_inf", "CosineDecay", (0.1, 10), {"alpha": INF},
       "alpha must be in [0, 1], got inf."),
    _k("alpha_nan_with_target", "CosineDecay", (0.1, 10),
       {"alpha": NAN, "warmup_target": 1.0, "warmup_steps": 5},
       "alpha must be in [0, 1], got nan."),
    _k("alpha_negative", "CosineDecay", (0.1, 10), {"alpha": -0.5},
       "alpha must be in [0, 1], got -0.5."),
    _k("first_decay_steps_0", "CosineDecayRestarts", (0.1, 0), {},
       f"first_decay_steps {_STEPS} 0."),
    _k("t_mul_below_1", "CosineDecayRestarts", (0.1, 10), {"t_mul": 0.5},
       "t_mul must be >= 1, got 0.5."),
    _k("m_mul_negative", "CosineDecayRestarts", (0.1, 10), {"m_mul": -1.0},
       "m_mul must be in [0, 1], got -1.0."),
    _k("m_mul_above_1", "CosineDecayRestarts", (0.1, 10), {"m_mul": 1.5},
       "m_mul must be in [0, 1], got 1.5."),
    _k("alpha_nan", "CosineDecayRestarts", (0.1, 10), {"alpha": NAN},
       "alpha must be in [0, 1], got nan."),
    _k("alpha_above_1", "CosineDecayRestarts", (0.1, 10), {"alpha": 2.0},
       "alpha must be in [0, 1], got 2.0."),
    # -- torch --------------------------------------------------------------------------------
    _t("lr_negative", "StepLR", (-1.0, 2), {}, "lr must be >= 0, got -1.0."),
    _t("step_size_0", "StepLR", (0.1, 0), {}, f"step_size {_STEPS} 0."),
    _t("gamma_0", "StepLR", (0.1, 2), {"gamma": 0.0}, "gamma must be in (0, 1], got 0.0."),
    _t("gamma_above_1", "StepLR", (0.1, 2), {"gamma": 1.5}, "gamma must be in (0, 1], got 1.5."),
    _t("milestone_negative", "MultiStepLR", (0.1, [3, -1]), {},
       "milestones[1] must be an integer >= 0, got -1."),
    _t("milestones_not_a_sequence", "MultiStepLR", (0.1, 3), {},
       "milestones must be a sequence of integers, got 3.", TypeError),
    _t("gamma_nan", "MultiStepLR", (0.1, [3]), {"gamma": NAN},
       "gamma must be in (0, 1], got nan."),
    _t("gamma_above_1", "MultiStepLR", (0.1, [3]), {"gamma": 1.5},
       "gamma must be in (0, 1], got 1.5."),
    _t("gamma_negative", "ExponentialLR", (0.1, -0.5), {}, "gamma must be in (0, 1], got -0.5."),
    _t("gamma_inf", "ExponentialLR", (0.1, INF), {}, "gamma must be in (0, 1], got inf."),
    _t("gamma_above_1", "ExponentialLR", (0.1, 1.05), {}, "gamma must be in (0, 1], got 1.05."),
    _t("T_max_0", "CosineAnnealingLR", (0.1, 0), {}, f"T_max {_STEPS} 0."),
    _t("eta_min_negative", "CosineAnnealingLR", (0.1, 10), {"eta_min": -1.0},
       "eta_min must be >= 0, got -1.0."),
    _t("T_0_0", "CosineAnnealingWarmRestarts", (0.1, 0), {}, f"T_0 {_STEPS} 0."),
    _t("T_mult_0", "CosineAnnealingWarmRestarts", (0.1, 10), {"T_mult": 0},
       f"T_mult {_STEPS} 0."),
    _t("eta_min_nan", "CosineAnnealingWarmRestarts", (0.1, 10), {"eta_min": NAN},
       "eta_min must be >= 0, got nan."),
    _t("eta_min_above_lr", "CosineAnnealingLR", (0.1, 10), {"eta_min": 0.2},
       "eta_min must be at most lr=0.1 (an annealing that rises is refused), got 0.2."),
    _t("eta_min_above_lr", "CosineAnnealingWarmRestarts", (0.1, 10), {"eta_min": 0.2},
       "eta_min must be at most lr=0.1 (an annealing that rises is refused), got 0.2."),
    _t("max_lr_nan", "OneCycleLR", (NAN, 100), {}, "max_lr must be >= 0, got nan."),
    _t("total_steps_1", "OneCycleLR", (0.1, 1), {}, "total_steps must be an integer >= 2, got 1."),
    _t("epochs_0", "OneCycleLR", (0.1,), {"epochs": 0, "steps_per_epoch": 10},
       f"epochs {_STEPS} 0."),
    _t("pct_start_1", "OneCycleLR", (0.1, 100), {"pct_start": 1.0},
       "pct_start must be in (0, 1), got 1.0."),
    _t("anneal_strategy", "OneCycleLR", (0.1, 100), {"anneal_strategy": "cosine"},
       "anneal_strategy must be one of 'cos', 'linear', got 'cosine'."),
    _t("div_factor_0", "OneCycleLR", (0.1, 100), {"div_factor": 0.0},
       "div_factor must be >= 1, got 0.0."),
    _t("div_factor_below_1", "OneCycleLR", (0.1, 100), {"div_factor": 0.5},
       "div_factor must be >= 1, got 0.5."),
    _t("final_div_factor_negative", "OneCycleLR", (0.1, 100), {"final_div_factor": -1.0},
       "final_div_factor must be >= 1, got -1.0."),
    _t("final_div_factor_below_1", "OneCycleLR", (0.1, 100), {"final_div_factor": 0.5},
       "final_div_factor must be >= 1, got 0.5."),
    _t("base_momentum_1", "OneCycleLR", (0.1, 100), {"base_momentum": 1.0},
       "base_momentum must be in [0, 1), got 1.0."),
    _t("momenta_swapped", "OneCycleLR", (0.1, 100), {"base_momentum": 0.9, "max_momentum": 0.8},
       "base_momentum=0.9 must not exceed max_momentum=0.8."),
    _t("base_lr_negative", "CyclicLR", (-1.0, 0.1), {}, "base_lr must be >= 0, got -1.0."),
    _t("max_lr_inf", "CyclicLR", (0.01, INF), {}, "max_lr must be a finite number >= 0, got inf."),
    _t("step_size_up_0", "CyclicLR", (0.01, 0.1), {"step_size_up": 0},
       f"step_size_up {_STEPS} 0."),
    _t("step_size_down_0", "CyclicLR", (0.01, 0.1), {"step_size_down": 0},
       f"step_size_down {_STEPS} 0."),
    _t("mode", "CyclicLR", (0.01, 0.1), {"mode": "tri"},
       "mode must be one of 'triangular', 'triangular2', 'exp_range', got 'tri'."),
    _t("base_above_max", "CyclicLR", (0.5, 0.1), {}, "base_lr=0.5 must not exceed max_lr=0.1."),
    _t("gamma_0", "CyclicLR", (0.01, 0.1), {"mode": "exp_range", "gamma": 0.0},
       "gamma must be in (0, 1], got 0.0."),
    _t("gamma_above_1", "CyclicLR", (0.01, 0.1), {"mode": "exp_range", "gamma": 1.01},
       "gamma must be in (0, 1], got 1.01."),
    _t("max_momentum_1.5", "CyclicLR", (0.01, 0.1), {"max_momentum": 1.5},
       "max_momentum must be in [0, 1), got 1.5."),
    _t("momenta_swapped", "CyclicLR", (0.01, 0.1), {"base_momentum": 0.9, "max_momentum": 0.8},
       "base_momentum=0.9 must not exceed max_momentum=0.8."),
    _t("scale_fn_not_callable", "CyclicLR", (0.01, 0.1), {"scale_fn": 0.5},
       "scale_fn must be None or a function of one number, got 0.5.", TypeError),
    _t("scale_fn_untraceable", "CyclicLR", (0.01, 0.1), {"scale_fn": math.exp},
       "scale_fn must be a JAX-traceable function of one scalar array", TypeError),
    _t("scale_fn_vector", "CyclicLR", (0.01, 0.1), {"scale_fn": _vector_scale},
       "scale_fn must return one real scalar", TypeError),
    _t("scale_mode", "CyclicLR", (0.01, 0.1), {"scale_fn": abs, "scale_mode": "iteration"},
       "scale_mode must be one of 'cycle', 'iterations', got 'iteration'."),
    _t("start_factor_0", "LinearLR", (0.1,), {"start_factor": 0.0},
       "start_factor must be in (0, 1], got 0.0."),
    _t("end_factor_1.5", "LinearLR", (0.1,), {"end_factor": 1.5},
       "end_factor must be in [0, 1], got 1.5."),
    _t("total_iters_0", "LinearLR", (0.1,), {"total_iters": 0}, f"total_iters {_STEPS} 0."),
    _t("total_iters_0", "PolynomialLR", (0.1,), {"total_iters": 0}, f"total_iters {_STEPS} 0."),
    _t("power_0", "PolynomialLR", (0.1,), {"power": 0.0}, "power must be > 0, got 0.0."),
    _t("lr_inf", "PolynomialLR", (INF,), {}, "lr must be a finite number >= 0, got inf."),
    _t("factor_1.5", "ConstantLR", (0.1,), {"factor": 1.5}, "factor must be in [0, 1], got 1.5."),
    _t("total_iters_negative", "ConstantLR", (0.1,), {"total_iters": -1},
       "total_iters must be an integer >= 0, got -1."),
    _t("milestones_equal", "SequentialLR", ([_flat, _flat, _flat], [5, 5]), {},
       "milestones must be strictly increasing, got [5, 5]."),
    _t("count", "SequentialLR", ([_flat, _flat], [5, 10]), {},
       "needs one scheduler more than milestones, got 2 schedulers and 2 milestones."),
    _t("empty", "SequentialLR", ([], []), {}, "needs at least one scheduler."),
    _t("not_callable", "SequentialLR", ([_flat, 3], [5]), {},
       "schedulers[1] must be callable, got 3.", TypeError),
    _t("empty", "ChainedScheduler", ([],), {}, "needs at least one scheduler."),
    _t("not_callable", "ChainedScheduler", ([_step_a, 3],), {},
       "schedulers[1] must be callable, got 3.", TypeError),
    _t("bases_differ", "ChainedScheduler", ([_step_a, _step_b],), {},
       "needs jopt.torch schedulers built on the same base learning rate."),
    _t("optimizer_not_a_transform", "ReduceLROnPlateau", (0.1,), {},
       "optimizer must be an optax.GradientTransformation (a jopt optimizer), got 0.1.",
       TypeError),
    _t("factor_in_mode_position", "ReduceLROnPlateau", (_sgd, 0.5), {},
       "mode must be one of 'min', 'max', got 0.5."),
    _t("threshold_mode", "ReduceLROnPlateau", (_sgd, "max", 0.5, 2, 1e-3, "relative"), {},
       "threshold_mode must be one of 'rel', 'abs', got 'relative'."),
    _t("factor_1", "ReduceLROnPlateau", (_sgd, "min", 1.0), {},
       "factor must be in (0, 1), got 1.0."),
    _t("factor_0", "ReduceLROnPlateau", (_sgd,), {"factor": 0.0},
       "factor must be in (0, 1), got 0.0."),
    _t("patience_negative", "ReduceLROnPlateau", (_sgd, "min", 0.5, -1), {},
       "patience must be an integer >= 0, got -1."),
    _t("patience_frac", "ReduceLROnPlateau", (_sgd,), {"patience": 2.5},
       "patience must be an integer >= 0, got 2.5.", TypeError),
    _t("threshold_negative", "ReduceLROnPlateau", (_sgd,), {"threshold": -1e-4},
       "threshold must be >= 0, got -0.0001."),
    _t("cooldown_negative", "ReduceLROnPlateau", (_sgd,), {"cooldown": -2},
       "cooldown must be an integer >= 0, got -2."),
    _t("min_lr_list_negative", "ReduceLROnPlateau", (_sgd,), {"min_lr": [1e-5, -1.0]},
       "min_lr[1] must be >= 0, got -1.0."),
    _t("min_lr_negative", "ReduceLROnPlateau", (_sgd,), {"min_lr": -0.1},
       "min_lr must be >= 0, got -0.1."),
    _t("eps_nan", "ReduceLROnPlateau", (_sgd,), {"eps": NAN}, "eps must be >= 0, got nan."),
]  # fmt: skip

# Arguments the frameworks accept at the ends of their ranges: jopt accepts them too.
ACCEPTED = [
    pytest.param("keras", "ExponentialDecay", (0.1, 1, 1.0), {}, id="keras-ExponentialDecay"),
    pytest.param("keras", "InverseTimeDecay", (0.1, 1, 0.0), {}, id="keras-InverseTimeDecay"),
    pytest.param("keras", "CosineDecay", (0.1, 1), {"alpha": 1.0, "warmup_steps": 3},
                 id="keras-CosineDecay-steps_without_target"),
    pytest.param("keras", "CosineDecay", (0.0, 1), {"warmup_target": 0.1},
                 id="keras-CosineDecay-no_warmup_steps"),
    pytest.param("keras", "CosineDecayRestarts", (0.1, 1), {"t_mul": 1.0, "m_mul": 0.0},
                 id="keras-CosineDecayRestarts"),
    pytest.param("keras", "CosineDecayRestarts", (0.1, 1), {"m_mul": 1.0, "alpha": 1.0},
                 id="keras-CosineDecayRestarts-m_mul_alpha_1"),
    pytest.param("keras", "PiecewiseConstantDecay", ([], [0.1]), {},
                 id="keras-PiecewiseConstantDecay"),
    pytest.param("torch", "MultiStepLR", (0.1, [6, 2, 2]), {}, id="torch-MultiStepLR"),
    pytest.param("torch", "CosineAnnealingLR", (0.0, 1), {}, id="torch-CosineAnnealingLR"),
    pytest.param("torch", "LinearLR", (0.1, 1.0, 0.0, 1), {}, id="torch-LinearLR"),
    pytest.param("torch", "ConstantLR", (0.1, 0.0, 0), {}, id="torch-ConstantLR"),
    pytest.param("torch", "CyclicLR", (0.0, 0.0), {"base_momentum": 0.9, "max_momentum": 0.9},
                 id="torch-CyclicLR"),
    pytest.param("torch", "CyclicLR", (0.1, 0.1, 1), {"mode": "exp_range", "gamma": 1.0},
                 id="torch-CyclicLR-gamma_1"),
    pytest.param("torch", "OneCycleLR", (0.0,), {"epochs": 1, "steps_per_epoch": 2,
                 "pct_start": 0.6}, id="torch-OneCycleLR"),
    pytest.param("torch", "OneCycleLR", (0.1, 10), {"div_factor": 1.0, "final_div_factor": 1.0},
                 id="torch-OneCycleLR-div_factors_1"),
]  # fmt: skip


def test_every_twin_has_rows():
    named = {(p.values[0], p.values[1]) for p in ROWS}
    wanted = {("keras", n) for n in KERAS} | {("torch", n) for n in TORCH}
    assert named == wanted
    assert len({p.id for p in ROWS}) == len(ROWS)


@pytest.mark.parametrize(("module", "name", "args", "kwargs", "message", "error"), ROWS)
def test_twin_names_itself_and_its_framework_argument(module, name, args, kwargs, message, error):
    with pytest.raises(error, match=re.escape(message)):
        getattr(getattr(jopt, module), name)(*args, **kwargs)


@pytest.mark.parametrize(("module", "name", "args", "kwargs"), ACCEPTED)
def test_twin_accepts_the_edges_of_the_framework_range(module, name, args, kwargs):
    schedule = getattr(getattr(jopt, module), name)(*args, **kwargs)
    assert math.isfinite(float(schedule(3)))
