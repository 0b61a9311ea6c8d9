"""jopt.torch and jopt.keras against the installed torch and Keras, on freshly drawn problems.

Runs only where torch (resp. Keras) is installed. Every jopt.torch and jopt.keras optimizer gets
one case whose hyperparameters, learning rate, learning-rate schedule (or none) and problem seed
are drawn at collection, as are each framework's parameter shapes, from a generator seeded by the
case's name and by the environment variable JOPT_LIVE_SEED (default 0): the draws are the same
for every run with the same JOPT_LIVE_SEED, so a failure reproduces, and
`JOPT_LIVE_SEED=<n> pytest tests/conventions/test_live_parity.py` draws new problems. They differ
from the golden fixtures' (checked): other problem seeds, shapes and hyperparameters.

Each case runs STEPS steps with the framework (the generator's runners: torch in-process, Keras
in a subprocess per dtype with KERAS_BACKEND=jax) and with the jopt twin given the framework's
learning rates; the trajectories must agree at the golden tolerances,
|x - x_framework| <= 1e-10 * max(1, |x_framework|) in float64 and 1e-5 * max(1, |x_framework|) in
float32, at every EVERY-th step, and the learning rates must be those of the jopt.torch /
jopt.keras schedule twins. A failure message prints the drawn case.

The ranges drawn from keep the problems well-conditioned (see the generator's docstring on
amplification): short horizons, moderate learning rates, epsilons large enough to bound RMSprop's
step when it has momentum or is centered, learning rates that stay above 0, and for Lion a rate
small enough that no coordinate reaches its minimum (where its sign decisions would flip on
rounding). Each case's amplification, measured with the jopt twin from a perturbed start, must
stay within the fixtures' bound, and a failure message says whether the draw was chaotic.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import os
import zlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from tests import conventions, helpers
from tests.golden import make_optimizer_fixtures as gen
from tests.golden.make_optimizer_fixtures import Case

STEPS, EVERY = 200, 10
BASE_SEED = int(os.environ.get("JOPT_LIVE_SEED", "0"))


class Draw:
    """Draws for one case, from a generator seeded by the case's name and BASE_SEED. Numbers are
    rounded to 4 significant digits, so that the printed case is the case run."""

    def __init__(self, name: str):
        self.rng = np.random.default_rng([zlib.crc32(name.encode()), BASE_SEED])

    def uniform(self, lo: float, hi: float) -> float:
        return float(f"{self.rng.uniform(lo, hi):.4g}")

    def log_uniform(self, lo: float, hi: float) -> float:
        return float(f"{np.exp(self.rng.uniform(np.log(lo), np.log(hi))):.4g}")

    def integer(self, lo: int, hi: int) -> int:
        """In [lo, hi], both included."""
        return int(self.rng.integers(lo, hi + 1))

    def coin(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def pick(self, options: tuple) -> Any:
        return options[self.integer(0, len(options) - 1)]

    def betas(self, beta_2_from: float = 0.95) -> tuple[float, float]:
        return self.uniform(0.8, 0.95), self.uniform(beta_2_from, 0.998)

    def shapes(self, min_rank: int = 0) -> tuple[tuple[int, ...], ...]:
        """1 to 3 arrays of rank min_rank to 3, sides 1 to 4."""
        count = self.integer(1, 3)
        return tuple(
            tuple(self.integer(1, 4) for _ in range(self.integer(min_rank, 3)))
            for _ in range(count)
        )


def _f32(x: float) -> float:
    """`x` rounded to float32: exact in Keras' float32 learning-rate variable."""
    return float(np.float32(x))


# ------------------------------------------------------------------------------- torch draws


def _torch_decay(d: Draw, kwargs: dict[str, Any], always: bool = False) -> dict[str, Any]:
    """weight_decay (always, or in half the cases) and maximize (in a quarter)."""
    kwargs["weight_decay"] = d.uniform(0.001, 0.05) if always or d.coin() else 0.0
    kwargs["maximize"] = d.coin(0.25)
    return kwargs


def _torch_adam_like(d: Draw, decoupled: bool, beta_2_from: float = 0.95) -> dict[str, Any]:
    kwargs = {"betas": d.betas(beta_2_from), "eps": d.log_uniform(1e-8, 1e-5)}
    if decoupled:
        kwargs["decoupled_weight_decay"] = d.coin()
    return kwargs


def _torch_sgd(d: Draw) -> tuple[float, dict[str, Any]]:
    momentum = d.uniform(0.5, 0.95) if d.coin(0.75) else 0.0
    nesterov = momentum > 0 and d.coin()
    dampening = d.uniform(0.0, 0.5) if momentum > 0 and not nesterov else 0.0
    kwargs = {"momentum": momentum, "dampening": dampening, "nesterov": nesterov}
    return d.log_uniform(0.01, 0.1), _torch_decay(d, kwargs)


def _torch_rmsprop(d: Draw) -> tuple[float, dict[str, Any]]:
    momentum, centered = d.uniform(0.3, 0.9) if d.coin() else 0.0, d.coin()
    # A small eps with momentum or centering: steps ~ lr * sign(g) near the minimum, chaotic.
    eps = d.log_uniform(3e-3, 3e-2) if momentum or centered else d.log_uniform(1e-5, 1e-2)
    kwargs = {"alpha": d.uniform(0.9, 0.99), "eps": eps, "momentum": momentum, "centered": centered}
    return d.log_uniform(1e-3, 1e-2), _torch_decay(d, kwargs)


def _torch_adam(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = {**_torch_adam_like(d, decoupled=True), "amsgrad": d.coin()}
    return d.log_uniform(2e-3, 2e-2), _torch_decay(d, kwargs)


def _torch_adamw(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = {**_torch_adam_like(d, decoupled=False), "amsgrad": d.coin()}
    return d.log_uniform(2e-3, 2e-2), _torch_decay(d, kwargs, always=True)


def _torch_adamax(d: Draw) -> tuple[float, dict[str, Any]]:
    # u = max(b2 u, |g|) forgets the early gradients at rate b2: with a small b2 the step near
    # the minimum is ~ lr * sign(g), chaotic.
    kwargs = _torch_adam_like(d, decoupled=False, beta_2_from=0.99)
    return d.log_uniform(2e-3, 1e-2), _torch_decay(d, kwargs)


def _torch_nadam(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = {**_torch_adam_like(d, decoupled=True), "momentum_decay": d.log_uniform(1e-3, 1e-2)}
    return d.log_uniform(2e-3, 1e-2), _torch_decay(d, kwargs)


def _torch_radam(d: Draw) -> tuple[float, dict[str, Any]]:
    return d.log_uniform(2e-3, 2e-2), _torch_decay(d, _torch_adam_like(d, decoupled=True))


def _torch_adagrad(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = {
        "lr_decay": d.log_uniform(1e-3, 1e-2) if d.coin() else 0.0,
        "initial_accumulator_value": d.uniform(0.0, 0.5),
        "eps": d.log_uniform(1e-10, 1e-6),
    }
    return d.log_uniform(0.02, 0.2), _torch_decay(d, kwargs)


def _torch_adadelta(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = {"rho": d.uniform(0.8, 0.95), "eps": d.log_uniform(1e-6, 1e-4)}
    return d.uniform(0.5, 1.0), _torch_decay(d, kwargs)


def _torch_asgd(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = {
        "lambd": d.log_uniform(1e-4, 1e-2),
        "alpha": d.uniform(0.5, 1.0),
        "t0": float(d.integer(0, 150)),  # the average does not move the params: any start
    }
    return d.log_uniform(0.01, 0.1), _torch_decay(d, kwargs)


def _torch_rprop(d: Draw) -> tuple[float, dict[str, Any]]:
    # As Lion's: where a gradient changes sign, near a minimum, float32 rounding of the start
    # decides Rprop's sign comparisons (a flip at a step size of 1e-4 amplifies it 100-fold).
    # With step sizes of at most 2e-3, no coordinate (0.5 or more from its minimum) reaches it
    # within STEPS: the draws exercise growth, the clamps and lr above step_sizes[1]; the
    # fixtures (tests/golden) the sign changes.
    kwargs = {
        "etas": (d.uniform(0.3, 0.7), d.uniform(1.1, 1.5)),
        "step_sizes": (d.log_uniform(1e-7, 1e-6), d.uniform(5e-4, 2e-3)),
        "maximize": d.coin(0.25),
    }
    return d.log_uniform(1e-4, 4e-3), kwargs


def _torch_adafactor(d: Draw) -> tuple[float, dict[str, Any]]:
    # beta2_decay > -0.8 forgets V fast enough for steps ~ rho * sign(g) near the minimum,
    # which amplify rounding (see the generator's Adafactor cases).
    eps1 = d.log_uniform(1e-12, 1e-8) if d.coin() else None
    kwargs = {
        "beta2_decay": d.uniform(-1.0, -0.8),
        "eps": (eps1, d.log_uniform(1e-4, 1e-2)),
        "d": d.uniform(1.0, 3.0),
    }
    return d.log_uniform(5e-3, 5e-2), _torch_decay(d, kwargs)


def _torch_schedule(d: Draw, lr: float) -> dict[str, Any] | None:
    """An lr_scheduler stepped after every optimizer step, or None (a third of the cases)."""
    if d.coin(1 / 3):
        return None
    name = d.pick(tuple(TORCH_SCHEDULERS))
    if name == "StepLR":
        return {"name": name, "step_size": d.integer(20, 80), "gamma": d.uniform(0.3, 0.9)}
    if name == "MultiStepLR":
        first = d.integer(10, 100)
        milestones = [first, d.integer(first + 10, 190)]
        return {"name": name, "milestones": milestones, "gamma": d.uniform(0.2, 0.8)}
    if name == "ExponentialLR":
        return {"name": name, "gamma": d.uniform(0.98, 0.999)}
    if name == "CosineAnnealingLR":  # T_max < STEPS: torch's cosine rises again past T_max
        return {"name": name, "T_max": d.integer(50, 300), "eta_min": lr * d.uniform(0, 0.1)}
    if name == "CosineAnnealingWarmRestarts":
        return {
            "name": name,
            "T_0": d.integer(20, 80),
            "T_mult": d.integer(1, 3),
            "eta_min": lr * d.uniform(0, 0.1),
        }
    if name == "LinearLR":
        return {
            "name": name,
            "start_factor": d.uniform(0.1, 0.9),
            "end_factor": d.uniform(0.5, 1.0),
            "total_iters": d.integer(10, 150),
        }
    if name == "PolynomialLR":
        # It ends before 0: with the parameters frozen, centered RMSprop's variance v - m**2
        # rounds below 0 in float32 (torch's trajectory turns to NaN).
        return {"name": name, "total_iters": d.integer(STEPS, 400), "power": d.uniform(0.5, 3.0)}
    assert name == "ConstantLR"
    return {"name": name, "factor": d.uniform(0.2, 0.9), "total_iters": d.integer(10, 150)}


TORCH_DRAWS: dict[str, Callable[[Draw], tuple[float, dict[str, Any]]]] = {
    "SGD": _torch_sgd,
    "RMSprop": _torch_rmsprop,
    "Adam": _torch_adam,
    "AdamW": _torch_adamw,
    "Adamax": _torch_adamax,
    "NAdam": _torch_nadam,
    "RAdam": _torch_radam,
    "Adagrad": _torch_adagrad,
    "Adadelta": _torch_adadelta,
    "ASGD": _torch_asgd,
    "Rprop": _torch_rprop,
    "Adafactor": _torch_adafactor,
}
TORCH_SCHEDULERS = {
    "StepLR": jopt.torch.StepLR,
    "MultiStepLR": jopt.torch.MultiStepLR,
    "ExponentialLR": jopt.torch.ExponentialLR,
    "CosineAnnealingLR": jopt.torch.CosineAnnealingLR,
    "CosineAnnealingWarmRestarts": jopt.torch.CosineAnnealingWarmRestarts,
    "LinearLR": jopt.torch.LinearLR,
    "PolynomialLR": jopt.torch.PolynomialLR,
    "ConstantLR": jopt.torch.ConstantLR,
}

# ------------------------------------------------------------------------------- keras draws


def _keras_globals(d: Draw, kwargs: dict[str, Any], decay: bool | None = None) -> dict[str, Any]:
    """Keras' global arguments: weight_decay (drawn if `decay` is None), one clip option or none."""
    if decay or (decay is None and d.coin()):
        kwargs["weight_decay"] = d.uniform(0.001, 0.05)
    clip = d.pick((None, "clipnorm", "clipvalue", "global_clipnorm"))
    if clip is not None:
        lo, hi = {"clipnorm": (0.5, 2.0), "clipvalue": (0.3, 1.0), "global_clipnorm": (0.5, 2.0)}[
            clip
        ]
        kwargs[clip] = d.uniform(lo, hi)
    return kwargs


def _keras_sgd(d: Draw) -> tuple[float, dict[str, Any]]:
    momentum = d.uniform(0.5, 0.9) if d.coin(0.75) else 0.0
    kwargs = {"momentum": momentum, "nesterov": momentum > 0 and d.coin()}
    return _f32(d.log_uniform(0.01, 0.1)), _keras_globals(d, kwargs)


def _keras_rmsprop(d: Draw) -> tuple[float, dict[str, Any]]:
    momentum, centered = d.uniform(0.3, 0.9) if d.coin() else 0.0, d.coin()
    # A small epsilon with momentum or centering: steps ~ lr * sign(g) near the minimum, chaotic.
    epsilon = d.log_uniform(5e-3, 1e-1) if momentum or centered else d.log_uniform(1e-7, 1e-2)
    kwargs = {"rho": d.uniform(0.8, 0.95), "momentum": momentum, "epsilon": epsilon}
    kwargs["centered"] = centered
    return _f32(d.log_uniform(2e-3, 1e-2)), _keras_globals(d, kwargs)


def _keras_adam_like(d: Draw, beta_2_from: float = 0.95) -> dict[str, Any]:
    beta_1, beta_2 = d.betas(beta_2_from)
    return {"beta_1": beta_1, "beta_2": beta_2, "epsilon": d.log_uniform(1e-7, 1e-5)}


def _keras_adam(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = {**_keras_adam_like(d), "amsgrad": d.coin()}
    return _f32(d.log_uniform(2e-3, 2e-2)), _keras_globals(d, kwargs)


def _keras_adamw(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = {**_keras_adam_like(d), "amsgrad": d.coin()}
    return _f32(d.log_uniform(2e-3, 2e-2)), _keras_globals(d, kwargs, decay=True)


def _keras_adamax(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = _keras_adam_like(d, beta_2_from=0.99)  # as torch's Adamax
    return _f32(d.log_uniform(2e-3, 1e-2)), _keras_globals(d, kwargs)


def _keras_nadam(d: Draw) -> tuple[float, dict[str, Any]]:
    return _f32(d.log_uniform(2e-3, 1e-2)), _keras_globals(d, _keras_adam_like(d))


def _keras_adagrad(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = {
        "initial_accumulator_value": d.uniform(0.05, 0.5),
        "epsilon": d.log_uniform(1e-7, 1e-5),
    }
    return _f32(d.log_uniform(0.03, 0.2)), _keras_globals(d, kwargs)


def _keras_adadelta(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = {"rho": d.uniform(0.85, 0.95), "epsilon": d.log_uniform(1e-7, 1e-5)}
    return _f32(d.uniform(0.5, 1.0)), _keras_globals(d, kwargs)


def _keras_lion(d: Draw) -> tuple[float, dict[str, Any]]:
    beta_1, beta_2 = d.betas()
    # At most 2 * 1e-3 * STEPS = 0.4 travelled (with a warmup to twice the rate): every
    # coordinate starts at least 0.5 from its minimum, so no sign(.) comes near zero.
    return _f32(d.log_uniform(3e-4, 1e-3)), _keras_globals(d, {"beta_1": beta_1, "beta_2": beta_2})


def _keras_ftrl(d: Draw) -> tuple[float, dict[str, Any]]:
    kwargs = {
        "learning_rate_power": d.uniform(-0.8, -0.3),
        "initial_accumulator_value": d.uniform(0.05, 0.5),
        "l1_regularization_strength": d.log_uniform(1e-4, 1e-2) if d.coin() else 0.0,
        "l2_regularization_strength": d.log_uniform(1e-4, 0.05) if d.coin() else 0.0,
        "l2_shrinkage_regularization_strength": d.log_uniform(1e-4, 0.05) if d.coin() else 0.0,
        "beta": d.uniform(0.0, 1.0),
    }
    return _f32(d.log_uniform(0.05, 0.5)), _keras_globals(d, kwargs)


def _keras_lamb(d: Draw) -> tuple[float, dict[str, Any]]:
    # Lamb steps by ~ lr * rms(theta) per coordinate, along a normalized direction: near a
    # minimum it oscillates and amplifies rounding. At these rates no coordinate travels the
    # 0.5 to its minimum within STEPS (as Lion's draws).
    return _f32(d.log_uniform(1e-4, 5e-4)), _keras_globals(d, _keras_adam_like(d))


def _keras_adafactor(d: Draw) -> tuple[float, dict[str, Any]]:
    # beta_2_decay above -0.8 forgets V fast enough for steps ~ rho * sign(g) near the minimum
    # (chaotic, see the generator's torch Adafactor cases).
    kwargs = {
        "beta_2_decay": d.uniform(-1.0, -0.8),
        "epsilon_1": d.log_uniform(1e-30, 1e-20),
        "epsilon_2": d.log_uniform(1e-4, 1e-2),
        "clip_threshold": d.uniform(0.5, 2.0),
        "relative_step": d.coin(),
    }
    return _f32(d.log_uniform(5e-3, 5e-2)), _keras_globals(d, kwargs)


def _keras_schedule_free_adamw(d: Draw) -> tuple[float, dict[str, Any]]:
    beta_1, beta_2 = d.betas()
    kwargs = {
        "beta_1": beta_1,
        "beta_2": beta_2,
        "epsilon": d.log_uniform(1e-8, 1e-6),
        "warmup_steps": d.integer(1, 30) if d.coin() else 0,
    }
    return _f32(d.log_uniform(2e-3, 1e-2)), _keras_globals(d, kwargs)


def _keras_schedule(d: Draw, lr: float) -> dict[str, Any] | None:
    """A keras.optimizers.schedules schedule of initial rate `lr`, or None (a third)."""
    if d.coin(1 / 3):
        return None
    name = d.pick(tuple(KERAS_SCHEDULES))
    if name == "ExponentialDecay":
        return {
            "name": name,
            "decay_steps": d.integer(20, 100),
            "decay_rate": d.uniform(0.3, 0.9),
            "staircase": d.coin(),
        }
    if name == "PolynomialDecay":
        # Keras' float32 rate is NaN where `1 - step / decay_steps` rounds below 0 (at the
        # end of a cycle, under jit) and the power is fractional: those end past STEPS.
        spec = {"name": name, "end_learning_rate": _f32(lr * d.uniform(0.0, 0.2))}
        if d.coin():
            return {**spec, "decay_steps": d.integer(STEPS, 300), "power": d.uniform(0.5, 3.0)}
        power = float(d.integer(1, 3))
        return {**spec, "decay_steps": d.integer(50, 250), "power": power, "cycle": d.coin()}
    if name == "InverseTimeDecay":
        return {
            "name": name,
            "decay_steps": d.integer(10, 100),
            "decay_rate": d.uniform(0.1, 2.0),
            "staircase": d.coin(),
        }
    if name == "CosineDecay":
        spec = {"name": name, "decay_steps": d.integer(50, 300), "alpha": d.uniform(0.0, 0.2)}
        if d.coin():
            spec["warmup_target"] = _f32(lr * d.uniform(1.2, 2.0))
            spec["warmup_steps"] = d.integer(5, 50)
        return spec
    assert name == "CosineDecayRestarts"
    return {
        "name": name,
        "first_decay_steps": d.integer(20, 80),
        "t_mul": d.uniform(1.0, 2.5),
        "m_mul": d.uniform(0.5, 1.0),
        "alpha": d.uniform(0.0, 0.1),
    }


KERAS_DRAWS: dict[str, Callable[[Draw], tuple[float, dict[str, Any]]]] = {
    "SGD": _keras_sgd,
    "RMSprop": _keras_rmsprop,
    "Adam": _keras_adam,
    "AdamW": _keras_adamw,
    "Adamax": _keras_adamax,
    "Nadam": _keras_nadam,
    "Adagrad": _keras_adagrad,
    "Adadelta": _keras_adadelta,
    "Lion": _keras_lion,
    "Ftrl": _keras_ftrl,
    "Lamb": _keras_lamb,
    "Adafactor": _keras_adafactor,
    "ScheduleFreeAdamW": _keras_schedule_free_adamw,
}
KERAS_SCHEDULES = {
    "ExponentialDecay": jopt.keras.ExponentialDecay,
    "PolynomialDecay": jopt.keras.PolynomialDecay,
    "InverseTimeDecay": jopt.keras.InverseTimeDecay,
    "CosineDecay": jopt.keras.CosineDecay,
    "CosineDecayRestarts": jopt.keras.CosineDecayRestarts,
}

# --------------------------------------------------------------------------------- the cases


def _draw_cases(framework: str, draws, schedule) -> list[Case]:
    cases = []
    for optimizer, draw in draws.items():
        d = Draw(f"{framework}/{optimizer}")
        lr, kwargs = draw(d)
        sign = -1.0 if kwargs.get("maximize") else 1.0
        seed = d.integer(10_000, 2**31 - 1)
        cases.append(Case(optimizer, optimizer, lr, kwargs, schedule(d, lr), seed, sign))
    return cases


TORCH_CASES = _draw_cases("torch", TORCH_DRAWS, _torch_schedule)
KERAS_CASES = _draw_cases("keras", KERAS_DRAWS, _keras_schedule)
# The torch runner needs arrays of rank >= 1 (torch.from_numpy takes no NumPy scalars).
SHAPES = {"torch": Draw("torch/shapes").shapes(1), "keras": Draw("keras/shapes").shapes()}


def _describe(framework: str, case: Case) -> str:
    return (
        f"{framework} {case.optimizer} drawn with JOPT_LIVE_SEED={BASE_SEED}: lr={case.lr!r}, "
        f"{case.kwargs}, schedule {case.schedule}, problem seed {case.seed}, shapes "
        f"{SHAPES[framework]}"
    )


def _twin_runs(module, framework: str, case: Case, dtype: str, lrs, starts) -> list[np.ndarray]:
    """The jopt twin's iterates (every EVERY-th, as the framework's) from each flat start in
    `starts`, with one compiled program. `lrs`: the framework's learning rates, or None for
    the constant `case.lr`."""
    shapes = SHAPES[framework]
    prob = gen.problem(case.seed, shapes)
    with jax.enable_x64(dtype == "float64"):
        _, grad = conventions.quadratic(prob, shapes, dtype, case.grad_sign)
        lr = case.lr if lrs is None else conventions.table_schedule(lrs, dtype)
        tx = conventions.build(module, framework, case, lr)
        run = jax.jit(lambda params: helpers.run_jopt(tx, grad, params, STEPS)[0])
        return [
            helpers.flat_trajectory(
                run(tuple(jnp.asarray(x, dtype) for x in conventions.split(x0, shapes)))
            )[::EVERY]
            for x0 in starts
        ]


def _compare(module, framework: str, case: Case, dtype: str, result) -> None:
    what = _describe(framework, case)
    lrs = None if case.schedule is None else result["lr"]
    if lrs is None:
        np.testing.assert_array_equal(result["lr"], case.lr, err_msg=f"{what}: recorded lr")
    x0 = gen.problem(case.seed, SHAPES[framework])["x0"]
    delta = gen.PERTURBATION[dtype]
    signs = np.random.default_rng(12345).choice([-1.0, 1.0], x0.shape)
    got, perturbed = _twin_runs(module, framework, case, dtype, lrs, [x0, x0 * (1 + delta * signs)])
    amplification = gen.amplification(got, perturbed, dtype)
    bound = conventions.MAX_AMPLIFICATION[dtype]
    chaotic = (
        f"the drawn problem amplifies rounding {amplification:.3g}x (at most {bound}): "
        "narrow the ranges it is drawn from"
    )
    try:
        conventions.assert_trajectories_match(got, result["iterates"], dtype, what)
    except AssertionError as e:
        note = chaotic if not amplification <= bound else f"amplification {amplification:.3g}"
        raise AssertionError(f"{e}\n({note})") from None
    assert amplification <= bound, f"{what} ({dtype}): {chaotic}"


def _schedule_values(schedule, steps: int) -> np.ndarray:
    with jax.enable_x64(True):
        return np.asarray(jax.vmap(schedule)(np.arange(steps)))


def _jopt_schedule(twins, case: Case):
    spec = dict(case.schedule)
    return twins[spec.pop("name")](case.lr, **spec)


def _module_optimizers(module) -> set[str]:
    """The optimizers a jopt.torch / jopt.keras module exports (not its schedules)."""
    return {
        name for name in module.__all__ if getattr(module, name).__module__.endswith("_optimizers")
    }


def test_every_optimizer_is_drawn():
    assert set(TORCH_DRAWS) == _module_optimizers(jopt.torch)
    assert set(KERAS_DRAWS) == _module_optimizers(jopt.keras)


def test_draws_differ_from_the_fixtures():
    for framework, drawn, fixtures in (
        ("torch", TORCH_CASES, gen.TORCH_CASES),
        ("keras", KERAS_CASES, gen.KERAS_CASES),
    ):
        assert SHAPES[framework] != gen.SHAPES
        assert not {c.seed for c in drawn} & {c.seed for c in fixtures}
        fixed = {(c.optimizer, c.lr, repr(sorted(c.kwargs.items()))) for c in fixtures}
        assert not {(c.optimizer, c.lr, repr(sorted(c.kwargs.items()))) for c in drawn} & fixed


# ------------------------------------------------------------------------------------------- torch


@pytest.fixture(scope="module")
def torch_runs():
    pytest.importorskip("torch")
    return {
        (case.id, dtype): gen.run_torch(case, dtype, STEPS, EVERY, SHAPES["torch"])
        for case in TORCH_CASES
        for dtype in conventions.DTYPES
    }


@pytest.mark.parametrize("dtype", conventions.DTYPES)
@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda case: case.id)
def test_trajectory_matches_live_torch(torch_runs, case, dtype):
    _compare(jopt.torch, "torch", case, dtype, torch_runs[case.id, dtype])


@pytest.mark.parametrize("case", [c for c in TORCH_CASES if c.schedule], ids=lambda c: c.id)
def test_live_torch_learning_rates_are_the_jopt_torch_schedulers(torch_runs, case):
    got = _schedule_values(_jopt_schedule(TORCH_SCHEDULERS, case), STEPS)
    want = torch_runs[case.id, "float64"]["lr"]
    what = _describe("torch", case)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=what)
    np.testing.assert_array_equal(torch_runs[case.id, "float32"]["lr"], want, err_msg=what)


# ------------------------------------------------------------------------------------------- keras


@pytest.fixture(scope="module")
def keras_runs():
    # Keras is imported only in the subprocesses (its backend is chosen at import).
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    shapes = SHAPES["keras"]
    with concurrent.futures.ThreadPoolExecutor(len(conventions.DTYPES)) as pool:
        futures = {
            dtype: pool.submit(gen.run_keras_subprocess, KERAS_CASES, dtype, STEPS, EVERY, shapes)
            for dtype in conventions.DTYPES
        }
        return {
            (case_id, dtype): result
            for dtype, future in futures.items()
            for case_id, result in future.result().items()
        }


@pytest.mark.parametrize("dtype", conventions.DTYPES)
@pytest.mark.parametrize("case", KERAS_CASES, ids=lambda case: case.id)
def test_trajectory_matches_live_keras(keras_runs, case, dtype):
    _compare(jopt.keras, "keras", case, dtype, keras_runs[case.id, dtype])


@pytest.mark.parametrize("case", [c for c in KERAS_CASES if c.schedule], ids=lambda c: c.id)
def test_live_keras_learning_rates_are_the_jopt_keras_schedules(keras_runs, case):
    """Against the float64 run's rates, as tests/schedules/test_live_frameworks.py. The float32
    run evaluates the schedule in float32, where XLA computes `step / n` as `step * (1 / n)`: a
    stair or a restart can come one step late at a multiple of n (CosineDecayRestarts at
    first_decay_steps = 58); the trajectory tests use those rates as Keras recorded them."""
    got = _schedule_values(_jopt_schedule(KERAS_SCHEDULES, case), STEPS)
    want = keras_runs[case.id, "float64"]["lr"]
    # a few float32 ulps of the largest rate (a warmup rises above the initial one)
    try:
        conventions.assert_keras_learning_rates(got, want, max(case.lr, float(want.max())))
    except AssertionError as e:
        raise AssertionError(f"{_describe('keras', case)}: {e}") from None
