"""Shared test fixtures: the table of optimizer cases, and JAX twins of the reference problems.

Each `Case` pairs a jopt constructor call with the independent NumPy float64 reference in
`tests/reference/optimizers.py` (same hyperparameters), and with optax where the convention is
optax's. Test files parametrize over `CASES` so that every optimizer meets every check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jopt
from tests.reference import optimizers as ref
from tests.reference import problems


@dataclasses.dataclass(frozen=True)
class Case:
    """One optimizer configuration, as jopt builds it and as the reference computes it."""

    id: str
    make: Callable[..., optax.GradientTransformation]  # jopt constructor
    kwargs: dict[str, Any]  # jopt arguments; `learning_rate` included
    reference: Callable[..., list[np.ndarray]]  # tests.reference.optimizers.run_*
    ref_kwargs: dict[str, Any]  # reference arguments; `learning_rate` included
    optax_make: Callable[..., optax.GradientTransformation] | None = None  # same convention
    optax_kwargs: dict[str, Any] | None = None  # defaults to `kwargs`
    uses_params: bool = False  # update needs params (weight decay)
    scale_invariant: bool = False  # with eps = 0, invariant to the scale of the gradients
    seed: int = 0  # of `random_problem` for trajectory tests

    def build(self, **overrides: Any) -> optax.GradientTransformation:
        return self.make(**{**self.kwargs, **overrides})

    def build_optax(self) -> optax.GradientTransformation:
        assert self.optax_make is not None
        return self.optax_make(**(self.optax_kwargs or self.kwargs))

    def __repr__(self) -> str:  # readable pytest ids
        return self.id


def _case(id, make, kwargs, reference, ref_kwargs=None, optax_make=None, **extra) -> Case:
    return Case(id, make, kwargs, reference, ref_kwargs or dict(kwargs), optax_make, **extra)


CASES: list[Case] = [
    _case("sgd", jopt.sgd, {"learning_rate": 0.05}, ref.run_sgd, optax_make=optax.sgd),
    _case(
        "sgd_momentum",
        jopt.sgd,
        {"learning_rate": 0.05, "momentum": 0.9},
        ref.run_sgd,
        optax_make=optax.sgd,
    ),
    _case(
        "sgd_nesterov",
        jopt.sgd,
        {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
        ref.run_sgd,
        optax_make=optax.sgd,
    ),
    _case(
        "sgd_dampening",
        jopt.sgd,
        {"learning_rate": 0.05, "momentum": 0.9, "dampening": 0.3},
        ref.run_sgd,
    ),
    _case(
        "sgd_ema",
        jopt.sgd,
        {"learning_rate": 0.1, "momentum": 0.9, "momentum_form": "ema"},
        ref.run_sgd,
        {"learning_rate": 0.1, "momentum": 0.9, "form": "ema"},
    ),
    _case(
        "sgd_ema_nesterov",
        jopt.sgd,
        {"learning_rate": 0.1, "momentum": 0.9, "momentum_form": "ema", "nesterov": True},
        ref.run_sgd,
        {"learning_rate": 0.1, "momentum": 0.9, "form": "ema", "nesterov": True},
    ),
    _case(
        "sgd_lr_inside",
        jopt.sgd,
        {"learning_rate": 0.05, "momentum": 0.9, "momentum_form": "lr_inside"},
        ref.run_sgd,
        {"learning_rate": 0.05, "momentum": 0.9, "form": "lr_inside"},
    ),
    _case(
        "sgd_lr_inside_nesterov",
        jopt.sgd,
        {"learning_rate": 0.05, "momentum": 0.9, "momentum_form": "lr_inside", "nesterov": True},
        ref.run_sgd,
        {"learning_rate": 0.05, "momentum": 0.9, "form": "lr_inside", "nesterov": True},
    ),
    _case(
        "sgd_weight_decay",
        jopt.sgd,
        {"learning_rate": 0.05, "momentum": 0.5, "weight_decay": 0.01},
        ref.run_sgd,
        uses_params=True,
    ),
    _case(
        "rmsprop",
        jopt.rmsprop,
        {"learning_rate": 0.01, "eps": 0.1},
        ref.run_rmsprop,
        optax_make=optax.rmsprop,
    ),
    _case(
        "rmsprop_torch_style",
        jopt.rmsprop,
        {
            "learning_rate": 0.01,
            "eps": 0.1,
            "decay": 0.99,
            "eps_in_sqrt": False,
            "momentum": 0.9,
            "momentum_form": "classic",
        },
        ref.run_rmsprop,
    ),
    _case(
        "rmsprop_centered_nesterov",
        jopt.rmsprop,
        {"learning_rate": 0.005, "eps": 0.1, "centered": True, "momentum": 0.9, "nesterov": True},
        ref.run_rmsprop,
        optax_make=optax.rmsprop,
    ),
    _case(
        "rmsprop_bias_correction",
        jopt.rmsprop,
        {"learning_rate": 0.01, "eps": 0.1, "bias_correction": True, "initial_scale": 0.1},
        ref.run_rmsprop,
        optax_make=optax.rmsprop,
    ),
    _case(
        "adam",
        jopt.adam,
        {"learning_rate": 0.01},
        ref.run_adam,
        optax_make=optax.adam,
        scale_invariant=True,
    ),
    _case(
        "adam_eps_root",
        jopt.adam,
        {"learning_rate": 0.01, "eps": 1e-6, "eps_root": 1e-8},
        ref.run_adam,
        optax_make=optax.adam,
    ),
    _case(
        "nadam",
        jopt.nadam,
        {"learning_rate": 0.01},
        ref.run_nadam,
        optax_make=optax.nadam,
        scale_invariant=True,
    ),
    _case(
        "adamw",
        jopt.adamw,
        {"learning_rate": 0.01, "weight_decay": 0.01},
        ref.run_adamw,
        optax_make=optax.adamw,
        uses_params=True,
    ),
    _case(
        "amsgrad",
        jopt.amsgrad,
        {"learning_rate": 0.01},
        ref.run_amsgrad,
        scale_invariant=True,
    ),
    _case(
        "amsgrad_corrected",
        jopt.amsgrad,
        {"learning_rate": 0.01, "max_of": "corrected"},
        ref.run_amsgrad,
        optax_make=optax.amsgrad,
        optax_kwargs={"learning_rate": 0.01},
    ),
    _case(
        "adamax",
        jopt.adamax,
        {"learning_rate": 0.01},
        ref.run_adamax,
        optax_make=optax.adamax,
        scale_invariant=True,
    ),
    _case("radam", jopt.radam, {"learning_rate": 0.01}, ref.run_radam, optax_make=optax.radam),
    _case(
        "adagrad",
        jopt.adagrad,
        {"learning_rate": 0.1},
        ref.run_adagrad,
        optax_make=optax.adagrad,
    ),
    _case(
        "adagrad_torch_style",
        jopt.adagrad,
        {
            "learning_rate": 0.1,
            "initial_accumulator_value": 0.0,
            "eps": 1e-10,
            "eps_in_sqrt": False,
        },
        ref.run_adagrad,
    ),
    _case(
        "adadelta",
        jopt.adadelta,
        {"learning_rate": 1.0},
        ref.run_adadelta,
        optax_make=optax.adadelta,
    ),
    _case(
        "adadelta_weight_decay",
        jopt.adadelta,
        {"learning_rate": 1.0, "weight_decay": 0.01},
        ref.run_adadelta,
        optax_make=optax.adadelta,
        uses_params=True,
    ),
    _case(
        "lion",
        jopt.lion,
        # A power-of-two learning rate keeps float32's rounding of theta -= lr * sign(c) small.
        {"learning_rate": 2**-13, "weight_decay": 0.01},
        ref.run_lion,
        optax_make=optax.lion,
        uses_params=True,
        scale_invariant=True,
        # Lion's sign is discontinuous where the momentum crosses zero, near a coordinate's
        # minimum; from this seed every coordinate stays > 0.3 away from it for 1000 steps, so
        # float32 rounding cannot flip a sign.
        seed=6,
    ),
]

CASES_BY_ID = {case.id: case for case in CASES}
OPTAX_CASES = [case for case in CASES if case.optax_make is not None]
SHAPES = ((3,), (2, 4))


def random_problem(seed: int = 0):
    """The reference `random_problem` and a JAX gradient of the same function on a tuple."""
    problem = problems.random_problem(SHAPES, seed=seed)
    a_parts = problem.split(problem.extras["a"])
    c_parts = problem.split(problem.extras["c"])

    def grad(params):
        return tuple(
            jnp.asarray(a, p.dtype) * (p - jnp.asarray(c, p.dtype)) + 0.1 * jnp.tanh(p)
            for p, a, c in zip(params, a_parts, c_parts, strict=True)
        )

    def start(dtype):
        return tuple(jnp.asarray(x, dtype) for x in problem.split(problem.x0))

    return problem, grad, start


def run_jopt(tx, grad_fn, params, steps: int, *, with_params: bool = True):
    """Runs `steps` updates in one jitted `lax.scan`; returns the stacked iterates (incl. x0)."""

    def body(carry, _):
        p, s = carry
        u, s = tx.update(grad_fn(p), s, p if with_params else None)
        p = optax.apply_updates(p, u)
        return (p, s), p

    @jax.jit
    def run(p):
        (_, state), trajectory = jax.lax.scan(body, (p, tx.init(p)), None, length=steps)
        return trajectory, state

    trajectory, state = run(params)
    stacked = jax.tree.map(lambda x0, xs: jnp.concatenate([x0[None], xs]), params, trajectory)
    return stacked, state


def flat_trajectory(stacked) -> np.ndarray:
    """A tuple of (steps+1, *shape) arrays -> a (steps+1, n) float64 array."""
    return np.concatenate(
        [np.asarray(x, np.float64).reshape(x.shape[0], -1) for x in stacked], axis=1
    )
