"""Shared test fixtures: the table of optimizer cases, and JAX twins of the reference problems.

Each `Case` pairs a jopt constructor call (an example of the registry, `jopt._src.registry`)
with the independent NumPy float64 reference in `tests/reference` (same
hyperparameters), and with optax where the convention is optax's. Test files parametrize over
`CASES` so that every optimizer meets every check; a new registry entry meets them all.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jopt._src import registry
from tests.reference import problems, runner


@dataclasses.dataclass(frozen=True)
class Case:
    """One optimizer configuration, as jopt builds it and as the reference computes it."""

    id: str
    make: Callable[..., optax.GradientTransformation]  # jopt constructor
    kwargs: dict[str, Any]  # jopt arguments; `learning_rate` included
    reference: Callable[..., list[np.ndarray]]  # tests.reference's run_<name>
    ref_kwargs: dict[str, Any]  # reference arguments; `learning_rate` included
    optax_make: Callable[..., optax.GradientTransformation] | None = None  # same convention
    optax_kwargs: dict[str, Any] | None = None  # defaults to `kwargs`
    uses_params: bool = False  # update needs params (weight decay)
    scale_invariant: bool = False  # with eps = 0, invariant to the scale of the gradients
    seed: int = 0  # of `random_problem` for trajectory tests
    optimizer: str = ""  # the registry's name of `make`
    reads_value: bool = False  # update needs the loss (`value=`; `grad=`, `value_fn=`)

    def build(self, **overrides: Any) -> optax.GradientTransformation:
        return self._given_a_loss(self.make(**{**self.kwargs, **overrides}))

    def build_optax(self) -> optax.GradientTransformation:
        assert self.optax_make is not None
        return self._given_a_loss(self.optax_make(**(self.optax_kwargs or self.kwargs)))

    def _given_a_loss(self, tx: optax.GradientTransformation) -> optax.GradientTransformation:
        return with_stand_in_loss(tx) if self.reads_value else tx

    def __repr__(self) -> str:  # readable pytest ids
        return self.id


# The seed of `random_problem` where an example needs another one than 0. Lion's sign is
# discontinuous where the momentum crosses zero, near a coordinate's minimum; from seed 6 every
# coordinate stays > 0.3 away from it for 1000 steps, so float32 rounding cannot flip a sign.
SEEDS = {"lion": 6}


def _reference_kwargs(reference: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` under the reference's own names: its SGD calls `momentum_form` `form`."""
    accepted = inspect.signature(reference).parameters
    return {
        ("form" if key == "momentum_form" and key not in accepted else key): value
        for key, value in kwargs.items()
    }


def _uses_params(kwargs: dict[str, Any], entry: registry.Optimizer) -> bool:
    """Whether `update` needs the params: a weight decay block is in the chain, or the optimizer
    reads them anyway (a trust ratio, Adafactor's relative step, schedule-free's y)."""
    decay = kwargs.get("weight_decay", entry.defaults.get("weight_decay"))
    return entry.reads_params or decay is not None


def _cases() -> list[Case]:
    """One Case per example of every optimizer in the registry, with its NumPy reference
    `run_<name>` (`tests.reference.runner`) and, where the example is optax's convention, the
    optax function of the registry's name given the arguments it takes."""
    cases = []
    for name, entry in registry.OPTIMIZERS.items():
        reference = runner(name)
        for case_id, example in entry.examples.items():
            kwargs = dict(example.kwargs)
            optax_make = entry.optax_function if example.optax else None
            optax_kwargs = None
            if optax_make is not None:
                takes = inspect.signature(optax_make).parameters
                optax_kwargs = {k: v for k, v in kwargs.items() if k in takes}
            cases.append(
                Case(
                    case_id,
                    entry.factory,
                    kwargs,
                    reference,
                    _reference_kwargs(reference, kwargs),
                    optax_make,
                    optax_kwargs,
                    uses_params=_uses_params(kwargs, entry),
                    scale_invariant=entry.scale_invariant,
                    seed=SEEDS.get(case_id, 0),
                    optimizer=name,
                    reads_value=entry.reads_value,
                )
            )
    return cases


CASES: list[Case] = _cases()
CASES_BY_ID = {case.id: case for case in CASES}
OPTAX_CASES = [case for case in CASES if case.optax_make is not None]
# Each optimizer's first example (its defaults): for the checks of machinery that its other
# conventions do not change (MultiSteps, clipping and donation, jit and vmap of the state's
# hyperparameters, the state's dtypes, the step count), since every example costs CI time.
FIRST_CASES = [c for c in CASES if c.id == next(iter(registry.OPTIMIZERS[c.optimizer].examples))]
FIRST_OPTAX_CASES = [case for case in FIRST_CASES if case.optax_make is not None]
# Checks of how a state composes with what wraps it (optax.MultiSteps' mean of k gradients, a
# donated jitted step after clipping, vmap over a hyperparameter, eager against jit) run on one
# optimizer per kind of state rather than on all: every state is made by the same
# `stateful_transform` and `stateful.chain`, which is what these checks exercise. What each
# optimizer computes, and that its step reads its hyperparameters from the state (no retrace,
# no value baked in), is checked on every optimizer.
MACHINERY_OPTIMIZERS = {
    "sgd": "a momentum trace, then a learning-rate block that keeps the count",
    "rmsprop": "a moment per leaf, the count in a block after the learning rate",
    "adam": "two moments and bias corrections from the count",
    "adagrad": "an accumulator started at a value, not zero",
    "adafactor": "factored moments of other shapes than the params; reads the params",
    "lamb": "a trust ratio per leaf from the params",
    "rprop": "step sizes and the previous gradient's sign",
    "schedule_free_adamw": "a second copy of the params, evaluated elsewhere",
}
MACHINERY_CASES = [case for case in FIRST_CASES if case.optimizer in MACHINERY_OPTIMIZERS]
MACHINERY_OPTAX_CASES = [case for case in MACHINERY_CASES if case.optax_make is not None]
SHAPES = problems.SHAPES


def random_problem(seed: int = 0, shapes: tuple[tuple[int, ...], ...] = SHAPES):
    """The reference `random_problem` and a JAX gradient of the same function on a tuple (of
    leaves of `shapes`)."""
    problem = problems.random_problem(shapes, seed=seed)
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


def random_problem_loss(problem: problems.StructuredProblem) -> Callable[[Any], jax.Array]:
    """The JAX loss of a `random_problem` (whose gradient is `random_problem`'s grad):
    sum(a / 2 * (x - c)**2 + 0.1 * log(cosh(x)))."""
    a_parts, c_parts = problem.split(problem.extras["a"]), problem.split(problem.extras["c"])

    def loss(params):
        terms = [
            jnp.sum(0.5 * jnp.asarray(a, p.dtype) * (p - jnp.asarray(c, p.dtype)) ** 2)
            + 0.1 * jnp.sum(jnp.log(jnp.cosh(p)))
            for p, a, c in zip(params, a_parts, c_parts, strict=True)
        ]
        return sum(terms[1:], terms[0])

    return loss


def _stand_in_loss(params: Any) -> jax.Array:
    """Half the squared norm of the floating-point leaves, in the widest of their real dtypes
    (float32 at least), as a loss is."""
    leaves = [x for x in jax.tree.leaves(params) if jnp.issubdtype(x.dtype, jnp.inexact)]
    dtype = max([np.dtype(np.float32)] + [np.dtype(jnp.finfo(x.dtype).dtype) for x in leaves],
                key=lambda d: d.itemsize)  # fmt: skip
    squares = [jnp.sum(jnp.abs(x).astype(dtype) ** 2) for x in leaves]
    return 0.5 * sum(squares, jnp.zeros([], dtype))


def with_stand_in_loss(
    tx: optax.GradientTransformation, loss: Callable[[Any], jax.Array] | None = None
) -> optax.GradientTransformationExtraArgs:
    """`tx`, whose update, called without the loss, is given `loss` (the function whose gradient
    the caller passes) or a stand-in's: for an optimizer that reads the loss, in the suites that
    check what does not depend on it (dtypes, shapes, states, hyperparameters). The stand-in's
    value is half the squared norm of the gradients (the loss of `x**2 / 2` at a point whose
    gradient they are), so that it does not depend on whether the params are given; its loss
    function is half the squared norm of the params. Given `value=`, it passes on what it is
    given."""

    def update(updates, state, params=None, **extra):
        if "value" not in extra:
            value = _stand_in_loss(updates) if loss is None else loss(params)
            extra = {"value": value, "grad": updates, **extra}
            extra.setdefault("value_fn", _stand_in_loss if loss is None else loss)
        return tx.update(updates, state, params, **extra)

    return optax.GradientTransformationExtraArgs(tx.init, update)


def run_jopt(tx, grad_fn, params, steps: int, *, with_params: bool = True, loss=None):
    """Runs `steps` updates in one jitted `lax.scan`; returns the stacked iterates (incl. x0).

    With `loss` (the function whose gradient `grad_fn` is), each update is given it as optax's
    methods that read the loss take it: `value=loss(p), grad=g, value_fn=loss`."""
    run = _trajectory(tx, grad_fn, steps, with_params, loss)
    trajectory, state = jax.jit(run)(params)
    return _stacked(params, trajectory), state


def run_jopt_pair(tx, other, grad_fn, params, steps: int, *, loss=None):
    """`run_jopt` of two transforms from the same params, compiled as one program (a third less
    compile time than two: what the suites comparing two trajectories spend most on)."""
    first = _trajectory(tx, grad_fn, steps, True, loss)
    second = _trajectory(other, grad_fn, steps, True, loss)
    (ours, state), (theirs, other_state) = jax.jit(lambda p: (first(p), second(p)))(params)
    return (_stacked(params, ours), state), (_stacked(params, theirs), other_state)


def _stacked(params, trajectory):
    """x0 stacked on the iterates, outside the compiled program (a concatenation in it would
    copy the whole trajectory once more)."""
    return jax.tree.map(lambda x0, xs: jnp.concatenate([x0[None], xs]), params, trajectory)


def _trajectory(tx, grad_fn, steps: int, with_params: bool, loss):
    """`params -> (iterates after each step, final state)` of `steps` updates (`run_jopt`)."""

    def body(carry, _):
        p, s = carry
        g = grad_fn(p)
        extra = {} if loss is None else {"value": loss(p), "grad": g, "value_fn": loss}
        u, s = tx.update(g, s, p if with_params else None, **extra)
        p = optax.apply_updates(p, u)
        return (p, s), p

    def run(p):
        (_, state), trajectory = jax.lax.scan(body, (p, tx.init(p)), None, length=steps)
        return trajectory, state

    return run


def flat_trajectory(stacked) -> np.ndarray:
    """A tuple of (steps+1, *shape) arrays -> a (steps+1, n) float64 array."""
    return np.concatenate(
        [np.asarray(x, np.float64).reshape(x.shape[0], -1) for x in stacked], axis=1
    )


TRAJECTORY_STEPS = 1000  # of the suites that follow a case over `random_problem`


@functools.cache
def case_trajectories(case_id: str, dtype_name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(jopt, optax twin or None) iterates of a case over TRAJECTORY_STEPS steps of its
    `random_problem`, flattened to (steps + 1, n).

    One program for both, the same wherever it is asked for: the suites that check a case's
    trajectory against its float64 reference and against optax compile it once between them
    (in one process by this cache, across test processes by the JAX compilation cache)."""
    case = CASES_BY_ID[case_id]
    dtype = jnp.dtype(dtype_name)
    with jax.enable_x64(dtype == jnp.float64):
        problem, grad, start = random_problem(case.seed)
        params, loss = start(dtype), random_problem_loss(problem)
        if case.optax_make is None:
            ours, _ = run_jopt(case.build(), grad, params, TRAJECTORY_STEPS, loss=loss)
            return flat_trajectory(ours), None
        (ours, _), (theirs, _) = run_jopt_pair(
            case.build(), case.build_optax(), grad, params, TRAJECTORY_STEPS, loss=loss
        )
        chex.assert_trees_all_equal_shapes_and_dtypes(ours, theirs)
        chex.assert_tree_all_finite(theirs)
    return flat_trajectory(ours), flat_trajectory(theirs)
