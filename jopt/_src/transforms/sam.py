"""Sharpness-Aware Minimization (Foret et al. 2021, "Sharpness-Aware Minimization for
Efficiently Improving Generalization"): the gradient is taken at the worst point of a ball of
radius rho around the params, found by one (or more) ascent steps, and the outer optimizer steps
from the params with it.

    eps   = rho * g / ||g||                 g = grad L(w)        (the paper's p = 2 solution)
    g_sam = grad L(w + eps)
    w     = w + outer_optimizer(g_sam)

As `optax.contrib.sam`, a wrapper of two optimizers: the outer `optimizer`, and the adversary
that makes the ascent steps, by default the paper's normalized step of radius `rho` (kept in the
state: `jopt.get_hparams`, `jopt.set_hparams(state, rho=...)`), or any `adv_optimizer`, whose
updates are negated (optax's: `chain(optax.contrib.normalize(), optax.sgd(rho))` is the paper's
step). A cycle is `sync_period` updates, `sync_period - 1` ascent steps and one outer step:

- transparent mode (default): each `update` call is one of them. The ascent steps return
  updates that move the params to the adversarial points, where the next gradient is taken; the
  last returns `cache - params + u`, the outer step u applied from the params the cycle started
  at (`cache`). A plain training loop, one gradient per call, runs SAM; the loss and gradients
  seen at the ascent calls are those at the adversarial points.
- opaque mode: one `update` call makes the whole cycle. It takes the gradient at the params and
  `grad_fn(params, i)`, called `sync_period - 1` times for the gradients at the adversarial
  points: `update(grads, state, params, grad_fn=grad_fn)`. `sam_train_step` writes that step.

The numbers are optax's (bitwise, with jopt's or optax's inner optimizers), with three
differences. Where optax multiplies by the 0/1 flags of the cycle, jopt selects: an inf or NaN
in a branch not taken does not leak into the other. The paper's step is 0 for a zero gradient
(optax's normalization divides by 0). With `sync_period=1`, the transparent mode is the outer
optimizer alone; optax 0.2.8's applies each step from the params before the previous one,
x_{t+1} = x_{t-1} + u(x_t) (its cache is read before it is refreshed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import errors, per_leaf, stateful, tree_math, validation
from jopt._src.hparams import HParams
from jopt._src.spec import Flag, Float, HParam, Spec
from jopt._src.validation import NON_NEGATIVE, Range

RHO = Float("rho", NON_NEGATIVE)
# A number of ascent steps per cycle, fixed in the program (the opaque mode unrolls them).
SYNC_PERIOD = HParam("sync_period", "int", Range(1.0), in_state=False)
SAM = Spec(RHO.as_optional(), SYNC_PERIOD, Flag("reset_state"), Flag("opaque_mode"))
DEFAULT_RHO = 0.05  # the paper's radius for CIFAR-10 (Foret et al. 2021, Appendix C)


class SAMState(NamedTuple):
    """optax's `SAMState`, with the hyperparameters."""

    steps_since_sync: jax.Array  # updates since the last outer step, int32 (0 in opaque mode)
    opt_state: Any  # the outer optimizer's state
    adv_state: Any  # the adversary's state (empty for the paper's step)
    cache: Any  # the params at the start of the cycle (None in opaque mode)
    hparams: HParams  # rho (for the paper's step; none with an adv_optimizer)


class AscentState(NamedTuple):
    """The state of the paper's ascent step: nothing (its rho is in `SAMState.hparams`)."""


def _ascent(updates: Any, rho: jax.Array) -> Any:
    """rho * g / ||g|| (0 where g = 0), in each leaf's dtype."""
    norm = tree_math.global_norm(updates)
    safe = jnp.where(norm > 0, norm, jnp.ones_like(norm))

    def leaf(g):
        dt = norm.dtype
        step = rho.astype(dt) * (g.astype(dt) / safe)
        return jnp.where(norm > 0, step, jnp.zeros_like(step)).astype(g.dtype)

    return jax.tree.map(leaf, updates)


def _select(condition: jax.Array, if_true: Any, if_false: Any) -> Any:
    """`if_true` where `condition`, else `if_false`, leaf by leaf (HParams nodes: the current,
    `if_false`'s, so that a reset keeps the values set with `jopt.set_hparams`)."""

    def leaf(a, b):
        if isinstance(b, HParams):
            return b
        return jnp.where(condition, a, b)

    return jax.tree.map(leaf, if_true, if_false, is_leaf=lambda x: isinstance(x, HParams))


@errors.public("jopt.sam")
def sam(
    optimizer: optax.GradientTransformation,
    adv_optimizer: optax.GradientTransformation | None = None,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
    *,
    rho: float | None = None,
) -> optax.GradientTransformationExtraArgs:
    """SAM (Foret et al. 2021) around `optimizer`; a drop-in for `optax.contrib.sam` (see the
    module docstring for the two modes).

        eps = rho g / ||g||;   w = w + optimizer(grad L(w + eps))

    Args:
      optimizer: the outer optimizer, stepping from the params with the adversarial gradient.
      adv_optimizer: the adversary, whose updates are negated into ascent steps (optax's
        argument; `optax.chain(optax.contrib.normalize(), optax.sgd(rho))` is the paper's
        step). Default None: the paper's step of radius `rho`, kept in the state.
      sync_period: updates per cycle, an integer >= 1: `sync_period - 1` ascent steps, then
        the outer step. Default 2 (the paper's single ascent step).
      reset_state: re-initialize the adversary's state at every outer step.
      opaque_mode: make the whole cycle in one `update`, which then needs
        `grad_fn(params, i) -> gradients` (see `sam_train_step`).
      batch_axis_name: in opaque mode under `pmap`, the axis to average the adversarial
        gradients over (`jax.lax.pmean`).
      rho: the radius of the paper's ascent step, >= 0 (default 0.05, the paper's for
        CIFAR-10); only without `adv_optimizer`.

    `update` ignores other keyword arguments; the inner optimizers are given none.
    """
    fn = errors.current_function()
    validation.check_transform(fn, "optimizer", optimizer)
    if adv_optimizer is not None:
        validation.check_transform(fn, "adv_optimizer", adv_optimizer)
        validation.require(
            fn,
            rho is None,
            "rho is the radius of jopt's own ascent step; with an adv_optimizer the ascent is "
            "its (optax.chain(optax.contrib.normalize(), optax.sgd(rho)) is the paper's step): "
            "leave rho out, or leave adv_optimizer out.",
            argument="rho",
            value=rho,
        )
    elif rho is None:
        rho = DEFAULT_RHO
    bound = SAM.bind(
        fn, rho=rho, sync_period=sync_period, reset_state=reset_state, opaque_mode=opaque_mode
    )
    if batch_axis_name is not None and not isinstance(batch_axis_name, str):
        raise validation.wrong_type(fn, "batch_axis_name", batch_axis_name, "a str or None")
    period, reset_state = bound["sync_period"], bound["reset_state"]
    opaque_mode = bound["opaque_mode"]
    outer = optax.with_extra_args_support(optimizer)
    adversary = None if adv_optimizer is None else optax.with_extra_args_support(adv_optimizer)

    def adv_init(params):
        return AscentState() if adversary is None else adversary.init(params)

    def adv_step(updates, adv_state, params, hp):
        """The ascent step from `params`: (updates that ascend, the adversary's state)."""
        if adversary is None:
            return _ascent(updates, hp["rho"]), adv_state
        descent, adv_state = adversary.update(updates, adv_state, params)
        return jax.tree.map(lambda x: -x, descent), adv_state

    def init_fn(params):
        return SAMState(
            steps_since_sync=jnp.zeros([], jnp.int32),
            opt_state=outer.init(params),
            adv_state=adv_init(params),
            cache=None if opaque_mode else jax.tree.map(jnp.array, params),
            hparams=bound.init(),
        )

    def transparent_update(updates, state, params, grad_fn):
        del grad_fn
        hp = state.hparams
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == period - 1
        cache = _select(first, params, state.cache)
        ascent, adv_state = adv_step(updates, state.adv_state, params, hp)
        step, opt_state = outer.update(updates, state.opt_state, cache)
        outer_step = jax.tree.map(lambda c, p, u: c - p + u, cache, params, step)
        updates = _select(last, outer_step, ascent)
        if reset_state:
            adv_state = _select(last, adv_init(params), adv_state)
        else:
            adv_state = _select(last, state.adv_state, adv_state)
        opt_state = _select(last, opt_state, state.opt_state)
        steps = (state.steps_since_sync + 1) % period
        return updates, SAMState(steps.astype(jnp.int32), opt_state, adv_state, cache, hp)

    def opaque_update(updates, state, params, grad_fn):
        if grad_fn is None:
            raise ValueError(
                f"{fn}: opaque_mode=True needs grad_fn(params, i) -> the gradients at params: "
                "call update(grads, state, params, grad_fn=grad_fn), or use "
                "jopt.sam_train_step."
            )
        hp = state.hparams
        adv_params, adv_updates, adv_state = params, updates, state.adv_state
        for i in range(period - 1):
            ascent, adv_state = adv_step(adv_updates, adv_state, adv_params, hp)
            adv_params = optax.apply_updates(adv_params, ascent)
            adv_updates = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                adv_updates = jax.lax.pmean(adv_updates, axis_name=batch_axis_name)
        if reset_state:  # the adversary's hyperparameters as they are now
            adv_state = _select(True, adv_init(params), adv_state)
        updates, opt_state = outer.update(adv_updates, state.opt_state, params)
        return updates, SAMState(jnp.zeros([], jnp.int32), opt_state, adv_state, None, hp)

    def update_fn(updates, state, params=None, *, grad_fn=None, **extra_args):
        del extra_args
        if type(state) is not SAMState:
            raise stateful.foreign_state(fn, state, "a SAMState")
        if params is None:
            raise ValueError(f"{fn}: needs the params: call update(grads, state, params).")
        if opaque_mode:
            return opaque_update(updates, state, params, grad_fn)
        return transparent_update(updates, state, params, grad_fn)

    wrapped = optax.GradientTransformationExtraArgs(init_fn, update_fn)
    return per_leaf.inherit(wrapped, optimizer, adv_optimizer)


@errors.public("jopt.sam_train_step")
def sam_train_step(
    loss_fn: Callable[..., jax.Array], optimizer: optax.GradientTransformation
) -> Callable[..., tuple[Any, Any, jax.Array]]:
    """SAM's training step with its extra gradient evaluations, for `jopt.sam(...,
    opaque_mode=True)`:

        step = jopt.sam_train_step(loss_fn, jopt.sam(jopt.sgd(0.1), opaque_mode=True))
        params, state, loss = step(params, state, *batch)

    computes `loss, g = value_and_grad(loss_fn)(params, *batch)`, then `update(g, state, params,
    grad_fn=...)`, which takes `sync_period - 1` more gradients of `loss_fn` on the same batch at
    the adversarial points (one for the paper's SAM: two gradient evaluations per step), and
    returns the new params, the state and the loss at the params. Jit it (`jax.jit(step)`). With
    a transparent-mode SAM, each call is one of the cycle's updates (one gradient each).

    Args:
      loss_fn: `loss_fn(params, *args, **kwargs) -> scalar loss`.
      optimizer: the SAM optimizer (any optax transform accepting `grad_fn=`).
    """
    fn = errors.current_function()
    validation.check_callable(fn, "loss_fn", loss_fn, "a callable (params, *batch) -> loss")
    validation.check_transform(fn, "optimizer", optimizer)
    tx = optax.with_extra_args_support(optimizer)

    def step(params, state, *args, **kwargs):
        loss, grads = jax.value_and_grad(loss_fn)(params, *args, **kwargs)

        def grad_fn(adversarial_params, i):
            del i  # the same batch at every ascent step
            return jax.grad(loss_fn)(adversarial_params, *args, **kwargs)

        updates, state = tx.update(grads, state, params, grad_fn=grad_fn)
        return optax.apply_updates(params, updates), state, loss

    return step
