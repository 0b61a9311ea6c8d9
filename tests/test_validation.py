"""Arguments are validated at construction, with messages that say what to change.

- One table of bad constructor calls, covering every public constructor in `jopt` that takes
  numbers (optimizers, building blocks, schedules, `reduce_on_plateau`): negative, NaN and
  infinite learning rates, learning rates given as strings (as PyYAML reads `1e-3`), decay rates
  outside [0, 1), negative eps / eps_root / weight decay / clipping bounds / initial accumulators,
  impossible combinations (nesterov without momentum, dampening in a form that has none), unknown
  choices, non-floating dtypes, masks that are not bools, non-bools for flags and bools for
  numbers. Each row calls the constructor alone (no `init`, no update): the error is raised at
  construction. Each message names the public function, the argument, the value it got and what
  is allowed.
- Values at the closed ends of the allowed ranges are accepted.
- `jopt.set_hparams` applies the constructor's rules to the values it writes into a state.
- A schedule (any callable of the step count) is accepted wherever a learning rate is.
- Every public optimizer and building block accepts its documented defaults, given explicitly:
  it builds, and one update on a small params tree gives finite updates shaped like the params.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
import pytest

import jopt
from jopt._src import registry, validation
from tests import helpers

NAN = math.nan
INF = math.inf


def _fmt(value: Any) -> str:
    """A short, deterministic rendering of an argument for test ids (no memory addresses)."""
    if isinstance(value, optax.GradientTransformation):
        return "tx"
    if callable(value):
        return getattr(value, "__name__", "fn")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_fmt, value)) + "]"
    return repr(value)


def _row(error, match: str, fn: Callable[..., Any], *args, **kwargs):
    """A table row: `fn(*args, **kwargs)` raises `error` with message `jopt.<fn name>: <match>`."""
    shown = [_fmt(a) for a in args] + [f"{k}={_fmt(v)}" for k, v in kwargs.items()]
    pattern = re.escape(f"jopt.{fn.__name__}: ") + match
    test_id = f"{fn.__name__}({','.join(shown)})"
    return pytest.param(fn, args, kwargs, error, pattern, id=test_id)


def _constant(step):
    return 0.1 * jnp.ones_like(step, jnp.float32)


V, T = ValueError, TypeError

ROWS = [
    # -- learning rates: negative, NaN, infinite, strings, bools, non-scalars ---------------------
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.sgd, -0.1),
    _row(V, r"learning_rate must be >= 0, got nan", jopt.adam, NAN),
    _row(V, r"learning_rate must be a finite number >= 0, got inf", jopt.adamw, INF),
    _row(V, r"learning_rate must be a finite number >= 0, got -inf", jopt.nadam, -INF),
    _row(V, r"learning_rate must be >= 0, got -0\.001", jopt.nadamw, -1e-3),
    _row(V, r"learning_rate must be >= 0, got nan", jopt.amsgrad, NAN),
    _row(V, r"learning_rate must be >= 0, got -1\.0", jopt.adamax, -1.0),
    _row(V, r"learning_rate must be a finite number >= 0, got inf", jopt.radam, INF),
    _row(V, r"learning_rate must be >= 0, got -0\.01", jopt.rmsprop, -0.01),
    _row(V, r"learning_rate must be >= 0, got nan", jopt.adagrad, NAN),
    _row(V, r"learning_rate must be >= 0, got -1\.0", jopt.adadelta, -1.0),
    _row(V, r"learning_rate must be >= 0, got -0\.0001", jopt.lion, -1e-4),
    _row(V, r"learning_rate must be >= 0, got nan", jopt.scale_by_learning_rate, NAN),
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.momentum_lr_inside, -0.1),
    _row(
        T,
        r"learning_rate must be a number or a schedule .*got the string '1e-3'",
        jopt.adam,
        "1e-3",
    ),
    _row(
        T,
        r"learning_rate must be a number or a schedule .*got the string '0\.1'",
        jopt.sgd,
        "0.1",
    ),
    _row(T, r"learning_rate must be a real number, got the bool True", jopt.sgd, True),
    _row(T, r"learning_rate must be a real scalar, got None", jopt.adam, None),
    _row(T, r"learning_rate must be a real scalar, got \[0\.001\]", jopt.adam, [1e-3]),
    # -- decay rates: b1, b2, momentum, decay, rho must be in [0, 1) ------------------------------
    _row(V, r"b1 must be in \[0, 1\), got 1\.5", jopt.adam, 1e-3, b1=1.5),
    _row(V, r"b2 must be in \[0, 1\), got 1\.0", jopt.adam, 1e-3, b2=1.0),
    _row(T, r"b1 must be a real number, got the bool True", jopt.adam, 1e-3, b1=True),
    _row(
        T, r"b1 must be a number or a schedule .*got the string '0\.9'", jopt.adamw, 1e-3, b1="0.9"
    ),
    _row(V, r"b2 must be in \[0, 1\), got nan", jopt.adamw, 1e-3, b2=NAN),
    _row(V, r"b1 must be in \[0, 1\), got -0\.1", jopt.nadam, 1e-3, b1=-0.1),
    _row(V, r"b2 must be in \[0, 1\), got 1\.5", jopt.nadamw, 1e-3, b2=1.5),
    _row(V, r"b1 must be in \[0, 1\), got 1\.0", jopt.amsgrad, 1e-3, b1=1.0),
    _row(V, r"b2 must be in \[0, 1\), got -0\.1", jopt.adamax, 1e-3, b2=-0.1),
    _row(V, r"b2 must be in \[0, 1\), got 1\.0", jopt.radam, 1e-3, b2=1.0),
    _row(V, r"b1 must be in \[0, 1\), got nan", jopt.lion, 1e-3, b1=NAN),
    _row(V, r"b2 must be in \[0, 1\), got 1\.0", jopt.lion, 1e-3, b2=1.0),
    _row(V, r"b1 must be in \[0, 1\), got 1\.5", jopt.adabelief, 1e-3, b1=1.5),
    _row(V, r"eps_root must be >= 0, got -1e-16", jopt.scale_by_belief, eps_root=-1e-16),
    # -- the trust ratio family: LARS, LAMB, Fromage ----------------------------------------------
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.lars, -0.1),
    _row(V, r"weight_decay must be >= 0, got -0\.01", jopt.lars, 0.1, weight_decay=-0.01),
    _row(V, r"trust_coefficient must be > 0, got 0\.0", jopt.lars, 0.1, trust_coefficient=0.0),
    _row(V, r"eps must be >= 0, got -1\.0", jopt.lars, 0.1, eps=-1.0),
    _row(V, r"momentum must be in \[0, 1\), got 1\.0", jopt.lars, 0.1, momentum=1.0),
    _row(T, r"nesterov must be True or False, got 'yes'", jopt.lars, 0.1, nesterov="yes"),
    _row(T, r"split_norm must be True or False, got 1", jopt.lars, 0.1, split_norm=1),
    _row(T, r"weight_decay_mask must be None, .*got 3", jopt.lars, 0.1, weight_decay_mask=3),
    _row(T, r"trust_ratio_mask must be None, .*got 'all'", jopt.lars, 0.1, trust_ratio_mask="all"),
    _row(V, r"b2 must be in \[0, 1\), got 1\.0", jopt.lamb, 1e-3, b2=1.0),
    _row(V, r"weight_decay must be >= 0, got -1\.0", jopt.lamb, 1e-3, weight_decay=-1.0),
    _row(V, r"phi_min must be >= 0, got -1\.0", jopt.lamb, 1e-3, phi_min=-1.0),
    _row(V, r"phi_max must be > 0, got 0\.0", jopt.lamb, 1e-3, phi_max=0.0),
    _row(
        V, r"phi_min=2\.0 must not exceed phi_max=1\.0", jopt.lamb, 1e-3, phi_min=2.0, phi_max=1.0
    ),
    _row(T, r"mask must be None, .*got 1\.0", jopt.lamb, 1e-3, mask=1.0),
    _row(V, r"learning_rate must be >= 0, got -1\.0", jopt.fromage, -1.0),
    _row(V, r"min_norm must be >= 0, got -1e-06", jopt.fromage, 0.01, min_norm=-1e-6),
    _row(V, r"min_norm must be >= 0, got -1\.0", jopt.scale_by_trust_ratio, min_norm=-1.0),
    _row(
        V,
        r"trust_coefficient must be > 0, got 0\.0",
        jopt.scale_by_trust_ratio,
        trust_coefficient=0.0,
    ),
    _row(V, r"eps must be >= 0, got nan", jopt.scale_by_trust_ratio, eps=NAN),
    _row(V, r"phi_max must be > 0, got -1\.0", jopt.scale_by_trust_ratio, phi_max=-1.0),
    # -- the factored family: Adafactor, SM3 ------------------------------------------------------
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.adafactor, -0.1),
    _row(
        V,
        r"min_dim_size_to_factor must be an integer >= 0, got -1",
        jopt.adafactor,
        min_dim_size_to_factor=-1,
    ),
    _row(V, r"decay_rate must be >= 0, got -0\.8", jopt.adafactor, decay_rate=-0.8),
    _row(T, r"decay_offset must be an integer >= 0, got 1\.5", jopt.adafactor, decay_offset=1.5),
    _row(
        T,
        r"multiply_by_parameter_scale must be True or False, got 'yes'",
        jopt.adafactor,
        multiply_by_parameter_scale="yes",
    ),
    _row(V, r"clipping_threshold must be > 0, got 0\.0", jopt.adafactor, clipping_threshold=0.0),
    _row(V, r"momentum must be in \[0, 1\), got 1\.0", jopt.adafactor, momentum=1.0),
    _row(T, r"dtype_momentum must be a floating dtype", jopt.adafactor, dtype_momentum="int32"),
    _row(V, r"weight_decay_rate must be >= 0, got -0\.01", jopt.adafactor, weight_decay_rate=-0.01),
    _row(V, r"eps must be >= 0, got -1e-30", jopt.adafactor, eps=-1e-30),
    _row(T, r"factored must be True or False, got 1", jopt.adafactor, factored=1),
    _row(T, r"weight_decay_mask must be None, a callable", jopt.adafactor, weight_decay_mask="b"),
    _row(V, r"eps2 must be >= 0, got -0\.001", jopt.adafactor, eps2=-1e-3),
    _row(V, r"decay_rate must be >= 0, got nan", jopt.scale_by_factored_rms, decay_rate=NAN),
    _row(
        V,
        r"step_offset must be an integer >= 0, got -1",
        jopt.scale_by_factored_rms,
        step_offset=-1,
    ),
    _row(
        T,
        r"min_dim_size_to_factor must be an integer >= 0, got 2\.5",
        jopt.scale_by_factored_rms,
        min_dim_size_to_factor=2.5,
    ),
    _row(V, r"epsilon must be >= 0, got -1\.0", jopt.scale_by_factored_rms, epsilon=-1.0),
    _row(T, r"factored must be True or False, got 'no'", jopt.scale_by_factored_rms, factored="no"),
    _row(
        T,
        r"decay_rate_fn must be a function \(step, rate\) -> b, got 'pow'",
        jopt.scale_by_factored_rms,
        decay_rate_fn="pow",
    ),
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.sm3, -0.1),
    _row(V, r"momentum must be in \[0, 1\), got 1\.0", jopt.sm3, 0.1, momentum=1.0),
    _row(V, r"eps must be >= 0, got -1e-08", jopt.sm3, 0.1, eps=-1e-8),
    _row(V, r"b1 must be in \[0, 1\), got 1\.0", jopt.scale_by_sm3, b1=1.0),
    _row(V, r"b2 must be in \[0, 1\], got 1\.5", jopt.scale_by_sm3, b2=1.5),
    _row(V, r"eps must be >= 0, got nan", jopt.scale_by_sm3, eps=NAN),
    # -- schedule-free: the wrapper, SGD and AdamW -------------------------------------------------
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.schedule_free_sgd, -0.1),
    _row(V, r"b1 must be in \(0, 1\), got 0\.0", jopt.schedule_free_sgd, 0.1, b1=0.0),
    _row(V, r"b1 must be in \(0, 1\), got 1\.0", jopt.schedule_free_adamw, b1=1.0),
    _row(V, r"warmup_steps must be an integer >= 1, got 0", jopt.schedule_free_sgd, 0.1, 0),
    _row(T, r"warmup_steps must be an integer >= 1, got 2\.5", jopt.schedule_free_adamw, 0.1, 2.5),
    _row(V, r"warmup_steps must be an integer below 2\*\*24", jopt.schedule_free_sgd, 0.1, 2**24),
    _row(V, r"weight_decay must be >= 0, got -0\.01", jopt.schedule_free_sgd, weight_decay=-0.01),
    _row(
        V, r"weight_lr_power must be >= 0, got -1\.0", jopt.schedule_free_sgd, weight_lr_power=-1.0
    ),
    _row(V, r"r must be >= 0, got -0\.5", jopt.schedule_free_adamw, r=-0.5),
    _row(V, r"b2 must be in \[0, 1\), got 1\.0", jopt.schedule_free_adamw, b2=1.0),
    _row(V, r"eps must be >= 0, got -1e-08", jopt.schedule_free_adamw, eps=-1e-8),
    _row(
        V,
        r"form must be one of 'optax', 'paper', got 'official'",
        jopt.schedule_free_adamw,
        form="official",
    ),
    _row(
        T,
        r"state_dtype must be a floating dtype or None",
        jopt.schedule_free_sgd,
        state_dtype="int32",
    ),
    _row(
        T,
        r"base_optimizer must be an optax.GradientTransformation, got 'sgd'",
        jopt.schedule_free,
        "sgd",
        0.1,
    ),
    _row(V, r"learning_rate must be >= 0, got nan", jopt.schedule_free, jopt.sgd(0.1), NAN),
    _row(V, r"b1 must be in \(0, 1\), got 1\.5", jopt.schedule_free, jopt.sgd(0.1), 0.1, b1=1.5),
    _row(
        V,
        r"weight_lr_power must be >= 0, got nan",
        jopt.schedule_free,
        jopt.sgd(0.1),
        0.1,
        weight_lr_power=NAN,
    ),
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.yogi, -0.1),
    _row(V, r"b2 must be in \[0, 1\), got 1\.0", jopt.yogi, 1e-3, b2=1.0),
    _row(
        V,
        r"initial_accumulator_value must be >= 0, got -1e-06",
        jopt.scale_by_yogi,
        initial_accumulator_value=-1e-6,
    ),
    _row(V, r"weight_decay must be >= 0, got -0\.01", jopt.adamaxw, 1e-3, weight_decay=-0.01),
    _row(V, r"b1 must be in \[0, 1\), got 1\.0", jopt.novograd, 1e-3, b1=1.0),
    _row(V, r"weight_decay must be >= 0, got nan", jopt.scale_by_novograd, weight_decay=NAN),
    _row(T, r"mu_dtype must be a floating dtype or None", jopt.scale_by_novograd, mu_dtype="int32"),
    _row(V, r"b3 must be in \[0, 1\), got 1\.0", jopt.adan, 1e-3, b3=1.0),
    _row(V, r"eps_root must be >= 0, got -1e-08", jopt.scale_by_adan, eps_root=-1e-8),
    _row(
        V, r"form must be one of 'optax', 'paper', got 'official'", jopt.adan, 1e-3, form="official"
    ),
    # -- the sign family: signSGD, Signum, Rprop ---------------------------------------------------
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.sign_sgd, -0.1),
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.signum, -0.1),
    _row(V, r"beta must be in \[0, 1\), got 1\.0", jopt.signum, 1e-3, beta=1.0),
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.rprop, -0.1),
    _row(T, r"learning_rate is Rprop's initial step size", jopt.rprop, _constant),
    _row(V, r"eta_minus must be in \(0, 1\), got 1\.0", jopt.rprop, 0.1, eta_minus=1.0),
    _row(V, r"eta_minus must be in \(0, 1\), got 0\.0", jopt.scale_by_rprop, 0.1, eta_minus=0.0),
    _row(V, r"eta_plus must be > 1, got 1\.0", jopt.rprop, 0.1, eta_plus=1.0),
    _row(V, r"min_step_size must be >= 0, got -1e-06", jopt.rprop, 0.1, min_step_size=-1e-6),
    _row(V, r"max_step_size must be > 0, got 0\.0", jopt.scale_by_rprop, 0.1, max_step_size=0.0),
    _row(
        V,
        r"min_step_size must be <= max_step_size, got 1\.0 > 0\.5",
        jopt.rprop,
        0.1,
        min_step_size=1.0,
        max_step_size=0.5,
    ),
    _row(
        V,
        r"stale_update=True .* has no backtracking form",
        jopt.rprop,
        0.1,
        weight_backtracking=True,
        stale_update=True,
    ),
    # -- the modern family: ADOPT, AdEMAMix, optimistic gradient descent and Adam ---------------
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.adopt, -0.1),
    _row(V, r"b1 must be in \[0, 1\), got 1\.0", jopt.adopt, 1e-3, b1=1.0),
    _row(V, r"b2 must be in \[0, 1\), got -0\.1", jopt.scale_by_adopt, b2=-0.1),
    _row(V, r"eps must be >= 0, got -1e-06", jopt.adopt, 1e-3, eps=-1e-6),
    _row(V, r"clip_value_fn must be >= 0, got -1\.0", jopt.scale_by_adopt, clip_value_fn=-1.0),
    _row(
        T,
        r"clip_value_fn must be a number or a schedule .*got the string 'sqrt'",
        jopt.adopt,
        1e-3,
        clip_value_fn="sqrt",
    ),
    _row(T, r"use_clipping must be True or False, got 1", jopt.adopt, 1e-3, use_clipping=1),
    _row(T, r"nesterov must be True or False, got 'yes'", jopt.scale_by_adopt, nesterov="yes"),
    _row(V, r"learning_rate must be >= 0, got nan", jopt.ademamix, NAN),
    _row(V, r"b1 must be in \[0, 1\), got 1\.5", jopt.scale_by_ademamix, b1=1.5),
    _row(V, r"b2 must be in \[0, 1\), got 1\.0", jopt.ademamix, 1e-3, b2=1.0),
    _row(V, r"b3 must be in \[0, 1\), got 1\.0", jopt.ademamix, 1e-3, b3=1.0),
    _row(V, r"b3 must be in \[0, 1\), got nan", jopt.scale_by_ademamix, b3=NAN),
    _row(V, r"alpha must be >= 0, got -1\.0", jopt.ademamix, 1e-3, alpha=-1.0),
    _row(V, r"eps must be >= 0, got -1e-08", jopt.scale_by_ademamix, eps=-1e-8),
    _row(V, r"eps_root must be >= 0, got -1\.0", jopt.ademamix, 1e-3, eps_root=-1.0),
    _row(V, r"weight_decay must be >= 0, got -0\.1", jopt.ademamix, 1e-3, weight_decay=-0.1),
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.optimistic_gradient_descent, -0.1),
    _row(V, r"alpha must be >= 0, got -1\.0", jopt.optimistic_gradient_descent, 0.1, alpha=-1.0),
    _row(V, r"beta must be >= 0, got nan", jopt.optimistic_gradient_descent, 0.1, beta=NAN),
    _row(
        V,
        r"previous_init must be one of 'current', 'zero', got 'last'",
        jopt.optimistic_gradient_descent,
        0.1,
        previous_init="last",
    ),
    _row(V, r"alpha must be a finite number >= 0, got inf", jopt.scale_by_optimistic_gradient, INF),
    _row(V, r"beta must be >= 0, got -0\.5", jopt.scale_by_optimistic_gradient, beta=-0.5),
    _row(V, r"learning_rate must be >= 0, got -0\.001", jopt.optimistic_adam, -1e-3),
    _row(V, r"optimism must be >= 0, got -0\.1", jopt.optimistic_adam, 1e-3, optimism=-0.1),
    _row(V, r"b1 must be in \[0, 1\), got 1\.0", jopt.optimistic_adam, 1e-3, b1=1.0),
    _row(V, r"b2 must be in \[0, 1\), got -0\.1", jopt.optimistic_adam, 1e-3, b2=-0.1),
    _row(V, r"eps must be >= 0, got -1e-08", jopt.optimistic_adam, 1e-3, eps=-1e-8),
    _row(V, r"eps_root must be >= 0, got nan", jopt.optimistic_adam, 1e-3, eps_root=NAN),
    _row(T, r"nesterov must be True or False, got 'no'", jopt.optimistic_adam, 1e-3, nesterov="no"),
    _row(
        V,
        r"previous_init must be one of 'current', 'zero', got 'none'",
        jopt.optimistic_adam,
        1e-3,
        previous_init="none",
    ),
    _row(V, r"momentum must be in \[0, 1\), got 1\.0", jopt.sgd, 1e-3, momentum=1.0),
    _row(V, r"momentum must be in \[0, 1\), got -0\.1", jopt.sgd, 1e-3, momentum=-0.1),
    _row(
        V,
        r"momentum must be in \[0, 1\), got 1\.5",
        jopt.sgd,
        1e-3,
        momentum=1.5,
        momentum_form="lr_inside",
    ),
    _row(V, r"decay must be in \[0, 1\), got 1\.0", jopt.rmsprop, 1e-3, decay=1.0),
    _row(V, r"momentum must be in \[0, 1\), got nan", jopt.rmsprop, 1e-3, momentum=NAN),
    _row(V, r"rho must be in \[0, 1\), got 1\.0", jopt.adadelta, rho=1.0),
    _row(V, r"rho must be in \[0, 1\), got nan", jopt.adadelta, rho=NAN),
    _row(V, r"b1 must be in \[0, 1\), got 1\.0", jopt.scale_by_adam, b1=1.0),
    _row(V, r"b2 must be in \[0, 1\), got 1\.5", jopt.scale_by_amsgrad, b2=1.5),
    _row(V, r"b1 must be in \[0, 1\), got nan", jopt.scale_by_adamax, b1=NAN),
    _row(V, r"b1 must be in \[0, 1\), got -0\.1", jopt.scale_by_radam, b1=-0.1),
    _row(V, r"b2 must be in \[0, 1\), got 1\.0", jopt.scale_by_nadam, b2=1.0),
    _row(V, r"b2 must be in \[0, 1\), got 1\.5", jopt.scale_by_lion, b2=1.5),
    _row(V, r"decay must be in \[0, 1\), got 1\.0", jopt.scale_by_rms, decay=1.0),
    _row(V, r"decay must be in \[0, 1\), got -0\.1", jopt.scale_by_stddev, decay=-0.1),
    _row(V, r"rho must be in \[0, 1\), got 1\.5", jopt.scale_by_adadelta, rho=1.5),
    _row(V, r"momentum must be in \[0, 1\), got 1\.0", jopt.scale_by_momentum, momentum=1.0),
    _row(
        V,
        r"momentum must be in \[0, 1\), got 1\.0",
        jopt.momentum_lr_inside,
        0.1,
        momentum=1.0,
    ),
    _row(V, r"decay must be in \[0, 1\), got 1\.0", jopt.ema, decay=1.0),
    _row(V, r"decay must be in \[0, 1\), got 1\.0", jopt.trace, decay=1.0),
    _row(
        T, r"decay must be a number or a schedule .*got the string '0\.9'", jopt.trace, decay="0.9"
    ),
    # -- eps and eps_root must be >= 0 ---------------------------------------------------------
    _row(V, r"eps must be >= 0, got -1e-08", jopt.adam, 1e-3, eps=-1e-8),
    _row(V, r"eps_root must be >= 0, got -1e-08", jopt.adam, 1e-3, eps_root=-1e-8),
    _row(V, r"eps_root must be >= 0, got nan", jopt.amsgrad, 1e-3, eps_root=NAN),
    _row(V, r"eps_root must be >= 0, got -1\.0", jopt.radam, 1e-3, eps_root=-1.0),
    _row(V, r"eps must be a finite number >= 0, got inf", jopt.adamax, 1e-3, eps=INF),
    _row(V, r"eps must be >= 0, got -0\.1", jopt.rmsprop, 1e-3, eps=-0.1),
    _row(V, r"eps must be >= 0, got -1e-07", jopt.adagrad, 1e-3, eps=-1e-7),
    _row(T, r"eps must be a real number, got the bool False", jopt.adagrad, 1e-3, eps=False),
    _row(V, r"eps must be >= 0, got -1e-06", jopt.adadelta, eps=-1e-6),
    _row(T, r"eps must be a real scalar, got <function", jopt.adam, 1e-3, eps=_constant),
    # -- dampening: in [0, 1], classic form only, with a momentum ---------------------------------
    _row(
        V, r"dampening must be in \[0, 1\], got 1\.5", jopt.sgd, 1e-3, momentum=0.9, dampening=1.5
    ),
    _row(
        V, r"dampening must be in \[0, 1\], got -0\.1", jopt.sgd, 1e-3, momentum=0.9, dampening=-0.1
    ),
    _row(V, r"dampening must be in \[0, 1\], got nan", jopt.sgd, 1e-3, momentum=0.9, dampening=NAN),
    _row(V, r"dampening=0\.3 needs a momentum value", jopt.sgd, 1e-3, dampening=0.3),
    _row(
        V,
        r"dampening must be in \[0, 1\], got 1\.5",
        jopt.sgd,
        1e-3,
        momentum=0.9,
        dampening=1.5,
        momentum_form="lr_inside",
    ),
    _row(
        V,
        r"dampening.*0\.3.*momentum_form='lr_inside'",
        jopt.sgd,
        1e-3,
        momentum=0.9,
        dampening=0.3,
        momentum_form="lr_inside",
    ),
    _row(
        V,
        r"dampening.*0\.3.*momentum_form='ema'",
        jopt.sgd,
        1e-3,
        momentum=0.9,
        dampening=0.3,
        momentum_form="ema",
    ),
    _row(V, r"dampening must be in \[0, 1\], got 1\.5", jopt.trace, decay=0.9, dampening=1.5),
    _row(
        V,
        r"dampening applies to the classic form only, got dampening=0\.5 with form='ema'",
        jopt.scale_by_momentum,
        dampening=0.5,
        form="ema",
    ),
    # -- nesterov: a bool, and only with a momentum -----------------------------------------------
    _row(V, r"nesterov=True needs a momentum value", jopt.sgd, 1e-3, nesterov=True),
    _row(V, r"nesterov=True needs a momentum value", jopt.rmsprop, 1e-3, nesterov=True),
    _row(
        T,
        r"nesterov must be True or False, got 'yes'",
        jopt.sgd,
        1e-3,
        momentum=0.9,
        nesterov="yes",
    ),
    _row(T, r"nesterov must be True or False, got 'yes'", jopt.adam, 1e-3, nesterov="yes"),
    _row(T, r"nesterov must be True or False, got 1", jopt.radam, 1e-3, nesterov=1),
    _row(T, r"bias_correction must be True or False, got 0", jopt.adam, 1e-3, bias_correction=0),
    _row(
        V,
        r"eps_hat is a form of the bias correction: it is not defined with bias_correction=False",
        jopt.scale_by_adam,
        eps_hat=True,
        bias_correction=False,
    ),
    # -- other flags must be bools ----------------------------------------------------------------
    _row(T, r"centered must be True or False, got 'no'", jopt.rmsprop, 1e-3, centered="no"),
    _row(
        T,
        r"bias_correction_mu must be True or False, got 1",
        jopt.amsgrad,
        1e-3,
        bias_correction_mu=1,
    ),
    _row(T, r"eps_in_sqrt must be True or False, got None", jopt.adagrad, 1e-3, eps_in_sqrt=None),
    _row(T, r"debias must be True or False, got 'yes'", jopt.ema, decay=0.9, debias="yes"),
    _row(
        T,
        r"flip_sign must be True or False, got 1",
        jopt.scale_by_learning_rate,
        0.1,
        flip_sign=1,
    ),
    # -- choices: unknown names list the valid ones -----------------------------------------------
    _row(
        V,
        r"momentum_form must be one of 'classic', 'ema', 'lr_inside', got 'heavy_ball'",
        jopt.sgd,
        1e-3,
        momentum=0.9,
        momentum_form="heavy_ball",
    ),
    _row(
        V,
        r"momentum_form must be .*'lr_inside'.*'classic'.*got 'ema'",
        jopt.rmsprop,
        1e-3,
        momentum_form="ema",
    ),
    # rmsprop offers two forms; its message must not list the third, which it rejects.
    _row(
        V,
        r"momentum_form must be (?!.*'ema').*got 'heavy_ball'",
        jopt.rmsprop,
        1e-3,
        momentum_form="heavy_ball",
    ),
    _row(
        V, r"max_of must be one of 'raw', 'corrected', got 'max'", jopt.amsgrad, 1e-3, max_of="max"
    ),
    _row(
        V,
        r"max_of must be one of 'raw', 'corrected', got 'v_hat'",
        jopt.scale_by_amsgrad,
        max_of="v_hat",
    ),
    _row(
        V,
        r"form must be one of 'classic', 'ema', got 'nesterov'",
        jopt.scale_by_momentum,
        form="nesterov",
    ),
    # -- weight decay and L1 must be >= 0 ---------------------------------------------------------
    _row(V, r"weight_decay must be >= 0, got -0\.0001", jopt.sgd, 1e-3, weight_decay=-1e-4),
    _row(V, r"weight_decay must be >= 0, got nan", jopt.sgd, 1e-3, weight_decay=NAN),
    _row(V, r"weight_decay must be >= 0, got -0\.01", jopt.adamw, 1e-3, weight_decay=-0.01),
    _row(
        V,
        r"weight_decay must be a finite number >= 0, got inf",
        jopt.nadamw,
        1e-3,
        weight_decay=INF,
    ),
    _row(V, r"weight_decay must be >= 0, got -0\.001", jopt.lion, 1e-3, weight_decay=-1e-3),
    _row(V, r"weight_decay must be >= 0, got -0\.0001", jopt.adadelta, weight_decay=-1e-4),
    _row(V, r"weight_decay must be >= 0, got -1\.0", jopt.rmsprop, 1e-3, weight_decay=-1.0),
    _row(V, r"weight_decay must be >= 0, got -1\.0", jopt.add_decayed_weights, weight_decay=-1.0),
    _row(V, r"l1 must be >= 0, got -1\.0", jopt.add_l1_penalty, l1=-1.0),
    _row(
        V,
        r"weight_decay must be >= 0, got -1\.0",
        jopt.momentum_lr_inside,
        0.1,
        weight_decay=-1.0,
    ),
    # -- masks must be trees of bools (or callables) ----------------------------------------------
    _row(
        T,
        r"mask must be None, a callable .* or a tree of bools .*got \{'w': 1\}",
        jopt.adamw,
        1e-3,
        mask={"w": 1},
    ),
    _row(T, r"mask must be None, a callable .*got 'yes'", jopt.lion, 1e-3, mask="yes"),
    _row(
        T,
        r"mask must be None, a callable .*got \(1\.0, 0\.0\)",
        jopt.add_decayed_weights,
        weight_decay=0.1,
        mask=(1.0, 0.0),
    ),
    _row(
        T,
        r"weight_decay_mask must be None, a callable .*got \[0\.5\]",
        jopt.sgd,
        1e-3,
        weight_decay=0.1,
        weight_decay_mask=[0.5],
    ),
    # Checked even while weight decay is off (weight_decay=0.0, the default).
    _row(
        T,
        r"weight_decay_mask must be None, a callable .*got 'yes'",
        jopt.rmsprop,
        1e-3,
        weight_decay_mask="yes",
    ),
    # -- clipping bounds --------------------------------------------------------------------------
    _row(V, r"max_delta must be >= 0, got -1\.0", jopt.clip, max_delta=-1.0),
    _row(
        T,
        r"max_delta must be a number or a schedule .*got the string '1\.0'",
        jopt.clip,
        max_delta="1.0",
    ),
    _row(V, r"max_norm must be >= 0, got -1\.0", jopt.clip_by_global_norm, max_norm=-1.0),
    _row(V, r"max_norm must be >= 0, got nan", jopt.clip_by_global_norm, max_norm=NAN),
    _row(V, r"max_norm must be > 0, got 0\.0", jopt.clip_by_leaf_norm, max_norm=0.0),
    # -- initial accumulators ---------------------------------------------------------------------
    _row(
        V,
        r"initial_accumulator_value must be >= 0, got -0\.1",
        jopt.adagrad,
        1e-3,
        initial_accumulator_value=-0.1,
    ),
    _row(
        V,
        r"initial_accumulator_value must be >= 0, got nan",
        jopt.scale_by_rss,
        initial_accumulator_value=NAN,
    ),
    _row(V, r"initial_scale must be >= 0, got -1\.0", jopt.rmsprop, 1e-3, initial_scale=-1.0),
    _row(
        V,
        r"initial_scale must be a finite number >= 0, got inf",
        jopt.scale_by_stddev,
        initial_scale=INF,
    ),
    # -- other numbers ----------------------------------------------------------------------------
    _row(
        V,
        r"threshold must be [^,]*finite[^,]*, got nan",
        jopt.radam,
        1e-3,
        threshold=NAN,
    ),
    _row(
        T, r"threshold must be a real number, got the bool True", jopt.radam, 1e-3, threshold=True
    ),
    _row(V, r"momentum_decay must be >= 0, got -1\.0", jopt.scale_by_nadam, momentum_decay=-1.0),
    # -- dtypes must be floating ------------------------------------------------------------------
    _row(
        T,
        r"mu_dtype must be a floating dtype or None, got .*int32",
        jopt.adam,
        1e-3,
        mu_dtype=jnp.int32,
    ),
    _row(
        T,
        r"nu_dtype must be a floating dtype or None, got 'int8'",
        jopt.adam,
        1e-3,
        nu_dtype="int8",
    ),
    _row(
        T,
        r"mu_dtype must be a floating dtype or None, got 'not a dtype'",
        jopt.adamw,
        1e-3,
        mu_dtype="not a dtype",
    ),
    _row(
        T,
        r"mu_dtype must be a floating dtype or None, got .*bool",
        jopt.lion,
        1e-3,
        mu_dtype=jnp.bool_,
    ),
    _row(
        T,
        r"accumulator_dtype must be a floating dtype or None, got .*int32",
        jopt.sgd,
        1e-3,
        momentum=0.9,
        accumulator_dtype=jnp.int32,
    ),
    # -- reduce_on_plateau ------------------------------------------------------------------------
    _row(
        V,
        r"factor must be in \(0, 1\), got 1\.0",
        jopt.reduce_on_plateau,
        tx=jopt.sgd(0.1),
        factor=1.0,
    ),
    _row(
        V,
        r"patience must be an integer >= 0, got -1",
        jopt.reduce_on_plateau,
        tx=jopt.sgd(0.1),
        patience=-1,
    ),
    _row(
        T,
        r"patience must be an integer >= 0, got 2\.5",
        jopt.reduce_on_plateau,
        tx=jopt.sgd(0.1),
        patience=2.5,
    ),
    _row(
        V,
        r"min_lr must be >= 0, got -1e-06",
        jopt.reduce_on_plateau,
        tx=jopt.sgd(0.1),
        min_lr=-1e-6,
    ),
    _row(
        V,
        r"min_lr\[1\] must be >= 0, got -0\.1",
        jopt.reduce_on_plateau,
        tx=jopt.sgd(0.1),
        min_lr=[0.0, -0.1],
    ),
    # -- parameter groups -------------------------------------------------------------------------
    _row(
        V,
        r"group 'g': jopt\.adamw: b1 must be in \[0, 1\), got 1\.5",
        jopt.param_groups,
        functools.partial(jopt.adamw, learning_rate=0.1),
        jopt.Group("g", "x", b1=1.5),
    ),
    _row(
        V,
        r"decay must be in \(0, 1\], got 1\.5",
        jopt.layerwise_groups,
        lambda path, leaf: 0,
        decay=1.5,
        num_layers=2,
    ),
    _row(
        V,
        r"num_layers must be an integer >= 0, got -1",
        jopt.layerwise_groups,
        lambda path, leaf: 0,
        decay=0.5,
        num_layers=-1,
    ),
    # -- accumulation and averages ---------------------------------------------------------------
    _row(
        V,
        r"every_k must be an integer >= 1, got 0",
        jopt.accumulate_gradients,
        jopt.sgd(0.1),
        every_k=0,
    ),
    _row(V, r"decay must be in \[0, 1\), got 1\.5", jopt.ema_params, jopt.sgd(0.1), decay=1.5),
    _row(V, r"start must be an integer >= 1, got 0", jopt.swa_params, jopt.sgd(0.1), start=0),
    _row(V, r"sync_period must be an integer >= 1, got 0", jopt.lookahead, jopt.sgd(0.1), 0, 0.5),
    # -- skip_nonfinite ---------------------------------------------------------------------------
    _row(
        V,
        r"max_consecutive must be an integer >= 0, got -1",
        jopt.skip_nonfinite,
        jopt.sgd(0.1),
        max_consecutive=-1,
    ),
    _row(T, r"tx must be an optax.GradientTransformation", jopt.skip_nonfinite, "adam"),
    # -- schedules --------------------------------------------------------------------------------
    _row(T, r"value must be a real number, got the bool True", jopt.constant_schedule, True),
    _row(
        V,
        r"value must be [^,]*finite[^,]*, got nan",
        jopt.constant_schedule,
        NAN,
    ),
    _row(V, r"decay_rate must be > 0, got -0\.5", jopt.exponential_decay, 0.1, 10, -0.5),
    _row(
        T,
        r"transition_steps must be an integer >= 1, got 2\.5",
        jopt.exponential_decay,
        0.1,
        2.5,
        0.5,
    ),
    _row(V, r"decay_rate must be >= 0, got -1\.0", jopt.inverse_time_decay, 0.1, 10, -1.0),
    _row(V, r"step_size must be an integer >= 1, got 0", jopt.step_decay, 0.1, 0),
    _row(V, r"init_value must be a finite number, got nan", jopt.step_decay, NAN, 10),
    _row(
        V, r"milestones must be non-decreasing, got \[30, 10\]", jopt.multistep_decay, 0.1, [30, 10]
    ),
    _row(V, r"power must be > 0, got -1\.0", jopt.polynomial_schedule, 0.1, 0.0, -1.0, 10),
    _row(
        V,
        r"transition_steps must be an integer >= 1, got 0",
        jopt.linear_schedule,
        0.1,
        0.0,
        0,
    ),
    _row(V, r"end_value must be a finite number, got inf", jopt.linear_schedule, 0.1, INF, 10),
    _row(V, r"decay_steps must be an integer >= 1, got -1", jopt.cosine_decay_schedule, 0.1, -1),
    _row(V, r"t_mul must be >= 1, got 0\.5", jopt.cosine_decay_restarts, 0.1, 10, 0.5),
    _row(V, r"pct_start must be in \(0, 1\), got 1\.5", jopt.one_cycle_schedule, 100, 0.1, 1.5),
    _row(
        V,
        r"base_momentum=0\.95 must not exceed max_momentum=0\.85",
        jopt.one_cycle_momentum,
        100,
        0.95,
        0.85,
    ),
    _row(
        V,
        r"pct_start must be in \(0, 1\), got 1\.5",
        jopt.cosine_onecycle_schedule,
        100,
        0.1,
        1.5,
    ),
    _row(
        V,
        r"div_factor must be >= 1, got 0\.0",
        jopt.cosine_onecycle_schedule,
        100,
        0.1,
        div_factor=0.0,
    ),
    _row(
        V,
        r"final_div_factor must be >= 1, got -1\.0",
        jopt.cosine_onecycle_schedule,
        100,
        0.1,
        final_div_factor=-1.0,
    ),
    _row(V, r"peak_value must be >= 0, got nan", jopt.cosine_onecycle_schedule, 100, NAN),
    _row(
        V, r"pct_start must be in \(0, 1\), got 0\.0", jopt.cosine_onecycle_schedule, 100, 0.1, 0.0
    ),
    _row(V, r"base_value must be >= 0, got -0\.1", jopt.cyclic_schedule, -0.1, 0.1),
    _row(V, r"base_momentum must be in \[0, 1\), got 1\.0", jopt.cyclic_momentum, 1.0),
    _row(
        V,
        r"boundaries must be strictly increasing, got \[10, 5\]",
        jopt.piecewise_constant,
        [10, 5],
        [1.0, 2.0, 3.0],
    ),
    _row(
        V, r"scale\[0\] must be >= 0, got -0\.5", jopt.piecewise_constant_schedule, 0.1, {10: -0.5}
    ),
    _row(
        V,
        r"interpolate_type must be one of 'linear', 'cosine', got 'cubic'",
        jopt.piecewise_interpolate_schedule,
        "cubic",
        0.1,
    ),
    _row(
        V,
        r"boundaries must be strictly increasing, got \[10, 5\]",
        jopt.piecewise_linear,
        [10, 5],
        [1.0, 2.0],
    ),
    _row(
        V,
        r"boundaries\[0\] must be an integer >= 0, got -5",
        jopt.join_schedules,
        [_constant, _constant],
        [-5],
    ),
    _row(T, r"schedules\[0\] must be callable, got 0\.5", jopt.multiply_schedules, 0.5),
    _row(V, r"steps_per_epoch must be an integer >= 1, got 0", jopt.per_epoch, _constant, 0),
    _row(V, r"warmup_steps must be an integer >= 0, got -1", jopt.with_warmup, _constant, -1),
    _row(
        V,
        r"warmup_steps must be an integer >= 0, got -1",
        jopt.warmup_constant_schedule,
        0.0,
        0.1,
        -1,
    ),
    _row(
        V,
        r"decay_steps=50 must exceed warmup_steps=100",
        jopt.warmup_cosine_decay_schedule,
        0.0,
        0.1,
        100,
        50,
    ),
    _row(
        V,
        r"exponent must be > 0, got 0\.0",
        jopt.warmup_cosine_decay_schedule,
        0.0,
        0.1,
        10,
        100,
        exponent=0.0,
    ),
    _row(
        V,
        r"warmup_shape must be one of 'linear', 'cosine', got 'cubic'",
        jopt.warmup_cosine_decay_schedule,
        0.0,
        0.1,
        10,
        100,
        warmup_shape="cubic",
    ),
    _row(
        V,
        r"decay_rate must be > 0, got -0\.5",
        jopt.warmup_exponential_decay_schedule,
        0.0,
        0.1,
        10,
        10,
        -0.5,
    ),
    _row(
        V,
        r"peak_value must be a finite number, got inf",
        jopt.warmup_exponential_decay_schedule,
        0.0,
        INF,
        10,
        10,
        0.5,
    ),
    _row(
        V,
        r"end_value=0\.5 is never reached from peak_value=0\.1 with decay_rate=0\.5",
        jopt.warmup_exponential_decay_schedule,
        0.0,
        0.1,
        10,
        10,
        0.5,
        end_value=0.5,
    ),
    _row(
        V,
        r"transition_steps must be an integer >= 1, got 0",
        jopt.warmup_exponential_decay_schedule,
        0.0,
        0.1,
        10,
        0,
        0.5,
    ),
    # Methods that read the loss: Polyak, MoMo, L-BFGS and its line search, SAM.
    _row(V, r"variant must be one of 'sps', 'sps\+', got 'sps\*'", jopt.polyak_sgd, variant="sps*"),
    _row(V, r"max_learning_rate must be >= 0, got -1\.0", jopt.polyak_sgd, max_learning_rate=-1.0),
    _row(V, r"f_min must be a finite number, got nan", jopt.scale_by_polyak, f_min=float("nan")),
    _row(V, r"beta must be in \[0, 1\), got 1\.0", jopt.momo, beta=1.0),
    _row(V, r"lower_bound must be a finite number, got inf", jopt.momo_adam, lower_bound=INF),
    _row(V, r"form must be one of 'optax', 'paper', got 'keras'", jopt.momo_adam, form="keras"),
    _row(V, r"memory_size must be an integer >= 1, got 0", jopt.lbfgs, memory_size=0),
    _row(
        V,
        r"linesearch must be one of 'zoom', got 'backtracking'",
        jopt.lbfgs,
        linesearch="backtracking",
    ),
    _row(
        V,
        r"curv_rtol set the zoom line search, but linesearch is None",
        jopt.lbfgs,
        linesearch=None,
        curv_rtol=0.5,
    ),
    _row(
        V,
        r"increase_factor must be > 1, got 1\.0",
        jopt.scale_by_zoom_linesearch,
        10,
        increase_factor=1.0,
    ),
    _row(
        V,
        r"slope_rtol must be < curv_rtol",
        jopt.scale_by_zoom_linesearch,
        10,
        slope_rtol=0.5,
        curv_rtol=0.4,
    ),
    _row(V, r"verbose=True is not offered", jopt.scale_by_zoom_linesearch, 10, verbose=True),
    _row(V, r"sync_period must be an integer >= 1, got 0", jopt.sam, jopt.sgd(0.1), sync_period=0),
    _row(
        V,
        r"rho is the radius of jopt's own ascent step",
        jopt.sam,
        jopt.sgd(0.1),
        jopt.sgd(0.1),
        rho=0.1,
    ),
    _row(T, r"loss_fn must be a callable", jopt.sam_train_step, 0.1, jopt.sgd(0.1)),
    # Learning-rate-free: Prodigy, D-Adaptation, DoG, DoWG, COCOB, Mechanic.
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.prodigy, -0.1),
    _row(V, r"b1 must be in \[0, 1\), got 1\.0", jopt.prodigy, b1=1.0),
    _row(V, r"beta3 must be in \[0, 1\), got 1\.0", jopt.prodigy, beta3=1.0),
    _row(V, r"estim_lr0 must be > 0, got 0\.0", jopt.prodigy, estim_lr0=0.0),
    _row(V, r"estim_lr_coef must be > 0, got 0\.0", jopt.prodigy, estim_lr_coef=0.0),
    _row(T, r"safeguard_warmup must be True or False, got 1", jopt.prodigy, safeguard_warmup=1),
    _row(V, r"form must be one of 'optax', 'paper', got 'torch'", jopt.prodigy, form="torch"),
    _row(V, r"b2 must be in \[0, 1\), got -0\.1", jopt.dadapt_adamw, b2=-0.1),
    _row(V, r"betas must be a pair \(b1, b2\), got 0\.9", jopt.dadapt_adamw, betas=0.9),
    _row(V, r"b2 must be in \[0, 1\), got 1\.0", jopt.prodigy, betas=(0.9, 1.0)),
    _row(
        V,
        r"give betas or b1 and b2, not both: got betas=\(0\.9, 0\.99\) and b1=0\.8",
        jopt.prodigy,
        betas=(0.9, 0.99),
        b1=0.8,
    ),
    _row(V, r"eps must be >= 0, got -1e-08", jopt.dadapt_adamw, eps=-1e-8),
    _row(V, r"weight_decay must be >= 0, got -0\.01", jopt.dadapt_adamw, weight_decay=-0.01),
    _row(
        V,
        r"init_step must be one of 'heuristic', 'distance', 'learning_rate', got 'fast'",
        jopt.dog,
        init_step="fast",
    ),
    _row(
        V,
        r"init_step must be one of .*, or optax's pair \(kind, value\), got \('distance',\)",
        jopt.dog,
        init_step=("distance",),
    ),
    _row(V, r"init_step_value must be > 0, got 0\.0", jopt.dog, init_step=("distance", 0.0)),
    _row(V, r"eps must be >= 0, got -1e-08", jopt.scale_by_dog, eps=-1e-8),
    _row(V, r"init_estim_sq_dist must be > 0, got 0\.0", jopt.dowg, init_estim_sq_dist=0.0),
    _row(V, r"eps=0 needs an init_estim_sq_dist > 0", jopt.scale_by_dowg, eps=0.0),
    _row(T, r"mask must be None, a callable", jopt.dowg, weight_decay=0.1, mask=[1]),
    _row(V, r"alpha must be > 0, got 0\.0", jopt.cocob, alpha=0.0),
    _row(V, r"eps must be >= 0, got -1\.0", jopt.scale_by_cocob, eps=-1.0),
    _row(T, r"base_optimizer must be an optax\.GradientTransformation, got 3", jopt.mechanize, 3),
    _row(
        V, r"num_betas must be an integer >= 1, got 0", jopt.mechanize, jopt.sgd(0.1), num_betas=0
    ),
    _row(V, r"eps must be > 0, got 0\.0", jopt.mechanize, jopt.sgd(0.1), eps=0.0),
    _row(V, r"s_init must be > 0, got -1\.0", jopt.mechanize, jopt.sgd(0.1), s_init=-1.0),
    _row(
        V, r"weight_decay must be >= 0, got -1\.0", jopt.mechanize, jopt.sgd(0.1), weight_decay=-1.0
    ),
    # The online family: averaged SGD, FTRL.
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.asgd, -0.1),
    _row(V, r"l2 must be >= 0, got -0\.0001", jopt.asgd, 0.1, l2=-1e-4),
    _row(V, r"alpha must be >= 0, got nan", jopt.asgd, 0.1, alpha=NAN),
    _row(V, r"t0 must be a finite number >= 0, got inf", jopt.asgd, 0.1, t0=INF),
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.ftrl, -0.1),
    _row(V, r"learning_rate_power must be <= 0, got 0\.5", jopt.ftrl, 0.1, learning_rate_power=0.5),
    _row(
        V,
        r"initial_accumulator_value must be >= 0, got -0\.1",
        jopt.ftrl,
        0.1,
        initial_accumulator_value=-0.1,
    ),
    _row(V, r"l1 must be >= 0, got -1\.0", jopt.ftrl, 0.1, l1=-1.0),
    _row(V, r"l2 must be >= 0, got -1\.0", jopt.ftrl, 0.1, l2=-1.0),
    _row(V, r"l2_shrinkage must be >= 0, got -1\.0", jopt.ftrl, 0.1, l2_shrinkage=-1.0),
    _row(V, r"beta must be >= 0, got -1\.0", jopt.ftrl, 0.1, beta=-1.0),
    _row(V, r"weight_decay must be >= 0, got -0\.1", jopt.ftrl, 0.1, weight_decay=-0.1),
    _row(
        T,
        r"weight_decay_mask must be None, a callable .*got 'yes'",
        jopt.ftrl,
        0.1,
        weight_decay_mask="yes",
    ),
    _row(V, r"memory_size must be an integer >= 1, got 0", jopt.scale_by_lbfgs, memory_size=0),
    _row(T, r"loss_fn must be callable, got 3", jopt.train_step, 3, jopt.sgd(0.1)),
    _row(T, r"loss_fn must be callable, got 3", jopt.flat_train_step, 3, jopt.sgd(0.1)),
    # Orthogonalized and noisy updates, adaptive clipping, centralization.
    _row(V, r"learning_rate must be >= 0, got -0\.1", jopt.muon, -0.1),
    _row(V, r"beta must be in \[0, 1\), got 1\.0", jopt.muon, 0.02, beta=1.0),
    _row(V, r"adam_b2 must be in \[0, 1\), got 1\.0", jopt.muon, 0.02, adam_b2=1.0),
    _row(V, r"eps must be >= 0, got -1e-08", jopt.muon, 0.02, eps=-1e-8),
    _row(
        V,
        r"ns_coeffs has 5 triples \(one per step\), more than ns_steps=3",
        jopt.muon,
        0.02,
        ns_coeffs="dion",
        ns_steps=3,
    ),
    _row(V, r"preconditioning must be one of 'frobenius'", jopt.muon, 0.02, preconditioning="x"),
    _row(V, r"beta must be in \[0, 1\), got -0\.1", jopt.scale_by_muon, beta=-0.1),
    _row(V, r"ns_steps must be an integer >= 1, got 0", jopt.scale_by_muon, ns_steps=0),
    _row(V, r"eta must be >= 0, got -0\.01", jopt.noisy_sgd, 0.01, eta=-0.01),
    _row(T, r"key must be an integer seed", jopt.noisy_sgd, 0.01, key="seed"),
    _row(V, r"gamma must be >= 0, got -1\.0", jopt.add_noise, gamma=-1.0),
    _row(V, r"clipping must be > 0, got 0\.0", jopt.adaptive_grad_clip, 0.0),
    _row(T, r"axis must be None, an integer or a tuple", jopt.adaptive_grad_clip, 0.1, axis=1.5),
    _row(T, r"keep_axis must be an integer \(an axis\), got 'last'", jopt.centralize, "last"),
]


@pytest.mark.parametrize(
    ("allowed", "words"),
    [
        (validation.ANY_FINITE, "a finite number"),
        (validation.NON_NEGATIVE, ">= 0"),
        (validation.POSITIVE, "> 0"),
        (validation.Range(1.0, lo_open=True), "> 1"),
        (validation.Range(hi=0.0, hi_open=True), "< 0"),
        (validation.Range(hi=2.5), "<= 2.5"),
        (validation.DECAY, "in [0, 1)"),
        (validation.UNIT, "in [0, 1]"),
        (validation.Range(0.0, 1.0, lo_open=True, hi_open=True), "in (0, 1)"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_range_describes_itself_as_it_tests_membership(allowed, words):
    assert allowed.describe() == words
    # The words match membership at the finite bounds, and no range holds inf or nan.
    for bound, is_open in ((allowed.lo, allowed.lo_open), (allowed.hi, allowed.hi_open)):
        if math.isfinite(bound):
            assert (bound in allowed) is not is_open
    assert all(x not in allowed for x in (INF, -INF, NAN))


# Public names that are not constructors taking numbers.
_NOT_CONSTRUCTORS = {
    "ArgumentError",
    "ArgumentTypeError",
    "Group",  # its own errors name the group: tests/test_groups.py
    "assign_groups",
    "averaged_params",
    "schedule_free_eval_params",  # reads a state
    "asgd_eval_params",  # reads a state
    "describe_groups",
    "HParams",
    "Schedule",
    "current_lr",
    "get_hparams",
    "set_hparams",
    "clipped_norm",
    "skipped_steps",
    "scale_by_sign",  # takes no arguments
    "FlatParams",  # made by flatten_params
    "flatten_params",  # takes params: tests/test_flat_params.py
    "state_shardings",  # takes an optimizer and params: tests/test_sharding.py
}
_MODULES = {"hparams", "keras", "schedules", "torch"}


def test_every_public_constructor_has_a_row():
    covered = {row.values[0].__name__ for row in ROWS}
    public = set(jopt.__all__) - _NOT_CONSTRUCTORS - _MODULES
    assert public - covered == set()


@pytest.mark.parametrize(("fn", "args", "kwargs", "error", "match"), ROWS)
def test_bad_argument_raises_at_construction_naming_function_argument_value_and_range(
    fn, args, kwargs, error, match
):
    # Only the constructor runs: no init, no update. The error must come from construction.
    with pytest.raises(error, match=match) as raised:
        fn(*args, **kwargs)
    # A wrong type is a TypeError and a ValueError: `except ValueError` catches every refusal.
    assert isinstance(raised.value, ValueError)
    # The message's facts are the error's attributes: the function, and the argument it names.
    error = raised.value
    assert isinstance(error, jopt.ArgumentError)
    assert str(error) == f"{error.fn}: {error.detail}"
    assert error.fn == fn.public_name
    if error.argument is not None:
        assert error.detail.startswith(error.argument) or f" {error.argument}" in error.detail


@pytest.mark.parametrize(
    "build",
    [
        lambda: jopt.adam(0.0, b1=0.0, b2=0.0, eps=0.0, eps_root=0.0),
        lambda: jopt.sgd(0.0, momentum=0.0, dampening=1.0, weight_decay=0.0),
        lambda: jopt.rmsprop(0.0, decay=0.0, eps=0.0, initial_scale=0.0, momentum=0.0),
        lambda: jopt.adadelta(0.0, rho=0.0, eps=0.0),
        lambda: jopt.adagrad(0.0, initial_accumulator_value=0.0, eps=0.0),
        lambda: jopt.lion(0.0, b1=0.0, b2=0.0, weight_decay=0.0),
        lambda: jopt.radam(0.0, threshold=-1e30),
        lambda: jopt.clip(0.0),
        lambda: jopt.clip_by_global_norm(0.0),
    ],
    ids=["adam", "sgd", "rmsprop", "adadelta", "adagrad", "lion", "radam", "clip", "global_norm"],
)
def test_closed_ends_of_the_allowed_ranges_are_accepted(build):
    assert isinstance(build(), optax.GradientTransformation)


# -- set_hparams applies the constructor's rules -------------------------------------------------

_PARAMS = {"w": jnp.array([0.5, -1.0]), "b": jnp.array(0.25)}


def _set_row(error, match: str, name: str, value: Any, make: Callable[..., Any], *args, **kwargs):
    """`set_hparams(make(*args, **kwargs).init(params), name=value)` raises `error`, `match`."""
    pattern = re.escape("jopt.set_hparams: ") + match
    test_id = f"{make.__name__}-{name}={_fmt(value)}"
    return pytest.param(make(*args, **kwargs), name, value, error, pattern, id=test_id)


SET_ROWS = [
    _set_row(V, r"b1 must be in \[0, 1\), got 1\.5", "b1", 1.5, jopt.adam, 1e-3),
    _set_row(V, r"b2 must be in \[0, 1\), got nan", "b2", NAN, jopt.adam, 1e-3),
    _set_row(V, r"eps must be >= 0, got -1e-08", "eps", -1e-8, jopt.adam, 1e-3),
    _set_row(V, r"learning_rate must be >= 0, got -0\.1", "learning_rate", -0.1, jopt.adam, 1e-3),
    _set_row(
        V,
        r"learning_rate must be a finite number >= 0, got inf",
        "learning_rate",
        INF,
        jopt.adam,
        1e-3,
    ),
    _set_row(
        T,
        r"learning_rate must be a real scalar, got '1e-3'",
        "learning_rate",
        "1e-3",
        jopt.adam,
        1e-3,
    ),
    _set_row(T, r"b1 must be a real number, got the bool True", "b1", True, jopt.adam, 1e-3),
    _set_row(V, r"eps_root must be >= 0, got -1\.0", "eps_root", -1.0, jopt.radam, 1e-3),
    _set_row(V, r"momentum must be in \[0, 1\), got 1\.0", "momentum", 1.0, jopt.sgd, 1e-3, 0.9),
    _set_row(V, r"dampening must be in \[0, 1\], got 1\.5", "dampening", 1.5, jopt.sgd, 1e-3, 0.9),
    _set_row(V, r"decay must be in \[0, 1\), got 1\.0", "decay", 1.0, jopt.rmsprop, 1e-3),
    _set_row(V, r"rho must be in \[0, 1\), got nan", "rho", NAN, jopt.adadelta),
    _set_row(V, r"weight_decay must be >= 0, got -0\.01", "weight_decay", -0.01, jopt.adamw, 1e-3),
    _set_row(V, r"b2 must be in \[0, 1\), got 1\.0", "b2", 1.0, jopt.lion, 1e-3),
    _set_row(V, r"eps must be >= 0, got -1\.0", "eps", -1.0, jopt.adagrad, 1e-3),
    _set_row(
        V, r"max_norm must be >= 0, got -1\.0", "max_norm", -1.0, jopt.clip_by_global_norm, 1.0
    ),
    _set_row(V, r"max_norm must be > 0, got 0\.0", "max_norm", 0.0, jopt.clip_by_leaf_norm, 1.0),
    _set_row(
        V,
        r"factor must be in \(0, 1\), got 1\.0",
        "factor",
        1.0,
        jopt.reduce_on_plateau,
        jopt.sgd(0.1),
    ),
]


@pytest.mark.parametrize(("tx", "name", "value", "error", "match"), SET_ROWS)
def test_set_hparams_applies_the_constructor_rules(tx, name, value, error, match):
    state = tx.init(_PARAMS)
    with pytest.raises(error, match=match) as raised:
        jopt.set_hparams(state, **{name: value})
    assert (raised.value.fn, raised.value.argument) == ("jopt.set_hparams", name)


def test_set_hparams_accepts_the_closed_ends_of_the_ranges():
    state = jopt.sgd(0.1, momentum=0.9, dampening=0.3).init(_PARAMS)
    state = jopt.set_hparams(state, learning_rate=0.0, momentum=0.0, dampening=1.0)
    chex.assert_trees_all_equal(
        jopt.get_hparams(state),
        {"learning_rate": 0.0, "momentum": 0.0, "dampening": 1.0},
        strict=False,
    )


# -- schedules where learning rates go, and the documented defaults ------------------------------

OPTIMIZERS = [
    name for name, entry in registry.OPTIMIZERS.items() if "learning_rate" in entry.hparams
]


def _halving(count):
    return 0.1 * 0.5 ** count.astype(jnp.float32)


# Rprop's learning_rate is its initial step size, a number (jopt/_src/transforms/rprop.py).
SCHEDULED_LR = [
    name for name in OPTIMIZERS if registry.OPTIMIZERS[name].hparams["learning_rate"].schedulable
]


@pytest.mark.parametrize("name", SCHEDULED_LR)
def test_a_schedule_is_accepted_as_learning_rate_and_evaluated_each_step(name):
    # A plain function of the step count: jopt's own schedules are such functions too.
    tx = getattr(jopt, name)(learning_rate=_halving)
    if registry.OPTIMIZERS[name].reads_value:
        tx = helpers.with_stand_in_loss(tx)
    state = tx.init(_PARAMS)
    grads = jax.tree.map(jnp.ones_like, _PARAMS)
    updates, state = tx.update(grads, state, _PARAMS)
    chex.assert_tree_all_finite(updates)
    chex.assert_trees_all_close(jopt.current_lr(state), 0.1)
    _, state = tx.update(grads, state, _PARAMS)
    chex.assert_trees_all_close(jopt.current_lr(state), 0.05)


# Arguments without a default that the constructors need; everything else is left at (and
# passed explicitly as) its documented default.
REQUIRED: dict[str, dict[str, Any]] = {
    name: {"learning_rate": 0.1}
    for name in OPTIMIZERS
    if "learning_rate" not in registry.OPTIMIZERS[name].defaults  # adadelta's is 1.0
}
REQUIRED |= {
    "lookahead": {"fast_optimizer": jopt.sgd(0.1), "sync_period": 5, "slow_step_size": 0.5},
    "scale_by_learning_rate": {"learning_rate": 0.1},
    "momentum_lr_inside": {"learning_rate": 0.1},
    "scale_by_rprop": {"learning_rate": 0.1},
    "trace": {"decay": 0.9},
    "ema": {"decay": 0.9},
    "clip": {"max_delta": 1.0},
    "clip_by_global_norm": {"max_norm": 1.0},
    "clip_by_leaf_norm": {"max_norm": 1.0},
    "reduce_on_plateau": {"tx": jopt.sgd(0.1)},
    "skip_nonfinite": {"tx": jopt.sgd(0.1)},
    "param_groups": {"optimizer": functools.partial(jopt.adam, learning_rate=0.1)},
    "accumulate_gradients": {"tx": jopt.sgd(0.1), "every_k": 2},
    "ema_params": {"tx": jopt.sgd(0.1)},
    "swa_params": {"tx": jopt.sgd(0.1)},
    "schedule_free": {"base_optimizer": jopt.sgd(0.1), "learning_rate": 0.1},
    "sam": {"optimizer": jopt.sgd(0.1)},
    "mechanize": {"base_optimizer": jopt.sgd(0.1)},
    "scale_by_zoom_linesearch": {"max_linesearch_steps": 15},
    "adaptive_grad_clip": {"clipping": 0.1},
}
_NOT_TRANSFORMS = {"layerwise_groups"}  # constructors of groups, given to param_groups
_NOT_TRANSFORMS |= {"train_step", "sam_train_step", "flat_train_step"}  # jitted training steps
TRANSFORMS = sorted(
    set(jopt.__all__) - _NOT_CONSTRUCTORS - _NOT_TRANSFORMS - _MODULES - set(jopt.schedules.__all__)
)


def test_required_arguments_table_names_public_transforms():
    assert set(REQUIRED) - set(TRANSFORMS) == set()


def _stand_in_loss(params):
    return sum(jnp.sum(p**2) for p in jax.tree.leaves(params))


@pytest.mark.parametrize("name", TRANSFORMS)
def test_documented_defaults_build_and_take_one_finite_step(name):
    make = getattr(jopt, name)
    defaults = {
        arg: p.default
        for arg, p in inspect.signature(make).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    tx = make(**{**defaults, **REQUIRED.get(name, {})})
    params = optax.LookaheadParams.init_synced(_PARAMS) if name == "lookahead" else _PARAMS
    grads = {"w": jnp.array([0.3, -2.0]), "b": jnp.array(1.5)}
    if name == "scale_by_muon":  # matrices only
        params, grads = {"w": jnp.ones((2, 3))}, {"w": jnp.full((2, 3), 0.5)}
    state = tx.init(params)
    # value= is what reduce_on_plateau and the methods that read the loss take (a line search
    # also grad= and value_fn=); every other transform ignores extra arguments.
    loss = {"value": jnp.asarray(1.0), "grad": grads, "value_fn": _stand_in_loss}
    updates, _ = tx.update(grads, state, params, **loss)
    chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)
    chex.assert_tree_all_finite(updates)
