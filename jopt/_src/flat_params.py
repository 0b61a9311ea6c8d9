"""Params kept flat across steps: one contiguous buffer per dtype, so that an optimizer's step over
a tree of many leaves is one loop per buffer, and its program compiles as for a single leaf.

    flat = jopt.flatten_params(params)           # FlatParams: {dtype name: 1-D buffer}
    step = jopt.flat_train_step(loss_fn, tx)     # loss_fn(params tree, *batch) as usual
    opt_state = tx.init(flat)
    flat, opt_state, loss = step(flat, opt_state, *batch)
    params = flat.unflatten()                    # the tree, when it is needed

`FlatParams` is a pytree whose leaves are the buffers, so any optax transformation takes it as
its params (the state holds one moment buffer per dtype, not one per leaf). The loss function
sees the tree: inside the jitted step it is given `flat.unflatten()`, slices of the buffers that
XLA fuses into their uses, and the gradient with respect to the buffers comes out flat. Flattening
a tree into buffers at every step would copy the params and the gradients twice (three to seven
times the cost of an Adam step): here it happens once, before training.

Equivalence. An optimizer whose update is elementwise (SGD, momentum, RMSProp, the Adam family,
Adagrad, Lion...) computes the same numbers on the buffers as on the tree. One that reduces over a
leaf (LAMB's, LARS's and Fromage's trust ratios, NovoGrad's norms, Adafactor's factored moments,
SM3's covers, Muon's orthogonalization, per-leaf clipping, parameter groups chosen by path) would
reduce over a whole buffer: a different optimizer. jopt's own declare it (`jopt._src.per_leaf`),
and `flat_train_step` refuses them, wrapped or chained by jopt; an `optax.chain` of one's own
carries no declaration and is taken as it is. Global-norm clipping reduces over everything either
way (in another order of summation: an ulp apart).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jopt._src import base, errors, per_leaf
from jopt._src.train_step import train_step


class _Slot(NamedTuple):
    """Where one leaf lives: its buffer (named by its dtype), offset and shape."""

    buffer: str
    start: int
    shape: tuple[int, ...]


@jax.tree_util.register_pytree_node_class
class FlatParams:
    """A params tree stored as one 1-D buffer per dtype (see the module docstring).

    Its leaves are the buffers (`flat.buffers`, a dict from dtype name to array); the layout,
    which says where each leaf of the tree lives, is static (part of the tree structure).
    """

    def __init__(self, buffers: dict[str, jax.Array], treedef: Any, slots: tuple[_Slot, ...]):
        self.buffers, self.treedef, self.slots = buffers, treedef, slots

    def tree_flatten(self):
        names = tuple(sorted(self.buffers))
        return [self.buffers[n] for n in names], (names, self.treedef, self.slots)

    @classmethod
    def tree_unflatten(cls, aux, children):
        names, treedef, slots = aux
        return cls(dict(zip(names, children, strict=True)), treedef, slots)

    def unflatten(self) -> Any:
        """The params tree: each leaf a reshaped slice of its buffer."""
        leaves = [
            jax.lax.slice(self.buffers[s.buffer], (s.start,), (s.start + _size(s.shape),)).reshape(
                s.shape
            )
            for s in self.slots
        ]
        return jax.tree.unflatten(self.treedef, leaves)

    @property
    def size(self) -> int:
        return sum(_size(s.shape) for s in self.slots)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}: {b.shape[0]}" for name, b in sorted(self.buffers.items()))
        return f"FlatParams({len(self.slots)} leaves in {{{sizes}}})"


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


@errors.public("jopt.flatten_params")
def flatten_params(params: Any) -> FlatParams:
    """`params` as one contiguous buffer per dtype (leaves in tree order within each buffer)."""
    fn = errors.current_function()
    if isinstance(params, FlatParams):
        return params
    base.check_inexact(fn, params, "parameter")
    leaves, treedef = jax.tree.flatten(params)
    if not leaves:
        raise ValueError(f"{fn}: params has no leaves to flatten.")
    offsets: dict[str, int] = {}
    slots, parts = [], {}
    for leaf in leaves:
        leaf = jnp.asarray(leaf)
        name = jnp.dtype(leaf.dtype).name
        start = offsets.get(name, 0)
        slots.append(_Slot(name, start, tuple(leaf.shape)))
        offsets[name] = start + leaf.size
        parts.setdefault(name, []).append(jnp.ravel(leaf))
    buffers = {name: jnp.concatenate(chunks) for name, chunks in parts.items()}
    return FlatParams(buffers, treedef, tuple(slots))


@errors.public("jopt.flat_train_step")
def flat_train_step(
    loss_fn: Callable[..., Any],
    optimizer: optax.GradientTransformation,
    *,
    has_aux: bool = False,
    donate: bool = True,
    fused: bool | None = None,
) -> Callable[..., tuple[Any, ...]]:
    """`jopt.train_step` on flat params: `(flat, opt_state, *args) -> (flat, opt_state, loss)`.

    `loss_fn(params, *args)` takes the params tree, as for `jopt.train_step`; the step takes and
    returns a `FlatParams` (`jopt.flatten_params(params)`), the optimizer's state made by
    `optimizer.init(flat)`. Donation, `has_aux`, the loss passed to the update and the fused
    kernels (one call per dtype's buffer here) are `jopt.train_step`'s. See the module
    docstring for which optimizers are the same on buffers: one that computes something over
    each leaf is refused.
    """
    fn = errors.current_function()
    if not callable(loss_fn):
        raise errors.ArgumentTypeError(
            fn, f"loss_fn must be callable, got {loss_fn!r}.", argument="loss_fn", value=loss_fn
        )
    what = per_leaf.of(optimizer)
    if what is not None:
        raise ValueError(
            f"{fn}: this optimizer computes {what}; on flat params it would compute it over a "
            "whole buffer of many leaves, another optimizer. Train the params tree with "
            "jopt.train_step instead."
        )

    def flat_loss(flat, *args, **kwargs):
        if not isinstance(flat, FlatParams):
            raise TypeError(
                f"{fn}: the step takes flat params, jopt.flatten_params(params), got a "
                f"{type(flat).__name__}."
            )
        return loss_fn(flat.unflatten(), *args, **kwargs)

    return train_step(flat_loss, optimizer, has_aux=has_aux, donate=donate, fused=fused)
