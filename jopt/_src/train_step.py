"""A jitted training step that donates the params and the optimizer state.

    step = jopt.train_step(loss_fn, optimizer)
    params, opt_state, loss = step(params, opt_state, *batch)

One step computes the loss and its gradients, the optimizer's update and the new params, in one
compiled program. The params and state passed in are donated: XLA writes the new ones into their
buffers instead of allocating a second copy, so a step holds one copy of the params and of the
optimizer state, not two, and skips the allocations. The arrays passed in are deleted by the
call; keep only what it returns (or build with `donate=False`, e.g. to compare two steps from one
state).

Three details that make donation work, which a hand-written `jax.jit(..., donate_argnums=...)`
can miss:
- `keep_unused=True`: `jax.jit` drops an argument the program never reads, and a dropped
  argument is not donated;
- a buffer given twice (a params leaf also held by the state, or one array at two leaves) cannot
  be donated twice; XLA refuses the whole call, and the error here names the two key paths;
- the update is called with `value=loss` (and `grad=`, `value_fn=`), the extra arguments optax's
  methods that read the loss take (Polyak step sizes, line searches), through
  `optax.with_extra_args_support`, so any optax transformation works here.

Fused steps. Where the optimizer has a fused CPU kernel (`jopt.sgd` with momentum, `jopt.adam`,
`jopt.adamw`, `jopt.nadam`, `jopt.nadamw`, `jopt.amsgrad`, `jopt.rmsprop`, `jopt.adagrad`,
`jopt.lion`, in the configurations `jopt._src.fused_rules` lists) and the params are all float32
or all float64 on the CPU, the step updates the params and the state in one pass in that kernel
(`jopt._src.fused`): the update followed by `optax.apply_updates`, each operation rounded on its
own, within an ulp of each leaf's scale of XLA's code for it (which fuses some multiply-adds).
`fused=False` (or JOPT_FUSED=0 in the environment) keeps the XLA path; where the kernels were not
built, the step warns once and keeps it. On the GPU, `fused=True` takes the same kernels written
in Pallas (not by default: they are untimed on a GPU so far).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from jopt._src import errors
from jopt._src import fused as fused_steps

_DONATED_TWICE = "donate the same buffer twice"


@errors.public("jopt.train_step")
def train_step(
    loss_fn: Callable[..., Any],
    optimizer: optax.GradientTransformation,
    *,
    has_aux: bool = False,
    donate: bool = True,
    fused: bool | None = None,
) -> Callable[..., tuple[Any, ...]]:
    """A jitted step `(params, opt_state, *args, **kwargs) -> (params, opt_state, loss)`.

    Args:
      loss_fn: `loss_fn(params, *args, **kwargs) -> loss` (a scalar), or `-> (loss, aux)` with
        `has_aux=True`.
      optimizer: any optax gradient transformation (a jopt optimizer, an `optax.chain`...).
      has_aux: `loss_fn` returns `(loss, aux)`; the step then returns
        `(params, opt_state, loss, aux)`.
      donate: donate `params` and `opt_state` (default). The arrays passed in are deleted by the
        call; with `donate=False` they are kept and the step allocates new ones.
      fused: take the optimizer's fused kernel where it has one (see the module docstring).
        None (default): on the CPU, unless the environment sets JOPT_FUSED=0; False: never;
        True: yes, on the CPU or the GPU, and raise where the kernels were not built or the
        optimizer has none.

    Returns:
      The jitted step. It compiles once per shape of its arguments, like any `jax.jit`.
    """
    fn = errors.current_function()
    if not callable(loss_fn):
        raise errors.ArgumentTypeError(
            fn, f"loss_fn must be callable, got {loss_fn!r}.", argument="loss_fn", value=loss_fn
        )
    if not isinstance(optimizer, optax.GradientTransformation):
        raise errors.ArgumentTypeError(
            fn,
            "optimizer must be an optax.GradientTransformation (an init/update pair), got a "
            f"{type(optimizer).__name__}.",
            argument="optimizer",
            value=optimizer,
        )
    tx = optax.with_extra_args_support(optimizer)
    rule = _fused_rule(fn, optimizer, fused)

    def step(params, opt_state, *args, **kwargs):
        def loss_only(p):
            out = loss_fn(p, *args, **kwargs)
            return out[0] if has_aux else out

        (loss, aux), grads = jax.value_and_grad(_with_aux(loss_fn, has_aux), has_aux=True)(
            params, *args, **kwargs
        )
        if rule is not None and fused_steps.why_not(rule, params, opt_state, fused is True) is None:
            params, opt_state = fused_steps.apply(optimizer, rule, grads, opt_state, params)
        else:
            updates, opt_state = tx.update(
                grads, opt_state, params, value=loss, grad=grads, value_fn=loss_only
            )
            params = optax.apply_updates(params, updates)
        return (params, opt_state, loss, aux) if has_aux else (params, opt_state, loss)

    jitted = jax.jit(step, donate_argnums=(0, 1) if donate else (), keep_unused=True)
    if not donate:
        return jitted

    def donating_step(params, opt_state, *args, **kwargs):
        try:
            return jitted(params, opt_state, *args, **kwargs)
        except jax.errors.JaxRuntimeError as e:
            if _DONATED_TWICE not in str(e):
                raise
            raise ValueError(f"{fn}: {_shared_buffer(params, opt_state)}") from e

    return donating_step


def _fused_rule(
    fn: str, optimizer: optax.GradientTransformation, fused: bool | None
) -> fused_steps.FusedRule | None:
    """The fused step the train step takes (None: the XLA path), after checking `fused`."""
    if fused is not None and not isinstance(fused, bool):
        raise errors.ArgumentTypeError(
            fn, f"fused must be True, False or None, got {fused!r}.", argument="fused", value=fused
        )
    if not fused_steps.wanted(fused):
        return None
    rule = fused_steps.rule_of(optimizer)
    if rule is None and fused:
        raise ValueError(
            f"{fn}: fused=True, but this optimizer has no fused kernel (jopt.sgd with momentum, "
            "adam, adamw, nadam, nadamw, amsgrad, rmsprop, adagrad and lion have one, in their "
            "plain configurations)."
        )
    reason = fused_steps.unavailable() if rule is not None else None
    if reason is not None:
        if fused:
            raise RuntimeError(f"{fn}: fused=True, but {reason}.")
        fused_steps.warn_unavailable(reason)
        return None
    return rule


def _with_aux(loss_fn: Callable[..., Any], has_aux: bool) -> Callable[..., tuple[Any, Any]]:
    if has_aux:
        return loss_fn
    return lambda *args, **kwargs: (loss_fn(*args, **kwargs), None)


def _shared_buffer(params: Any, opt_state: Any) -> str:
    """Names two leaves of `(params, opt_state)` that are one array."""
    seen: dict[int, str] = {}
    leaves = [
        (f"{name}{jax.tree_util.keystr(path)}", leaf)
        for name, tree in (("params", params), ("opt_state", opt_state))
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]
    for where, leaf in leaves:
        if id(leaf) in seen:
            return (
                f"{seen[id(leaf)]} and {where} are one array, which cannot be donated twice: "
                "give the state a copy (jax.tree.map(jnp.copy, ...)), or build the step with "
                "donate=False."
            )
        seen[id(leaf)] = where
    return "an array was given twice among the donated params and state."
