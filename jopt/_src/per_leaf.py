"""Which transformations compute something over each leaf of the params as a whole.

Most optimizers are elementwise (each entry's update reads that entry alone) or reduce over all
the params at once (global-norm clipping): on flat params, one buffer per dtype, they compute
what they compute on the tree. A transformation that reduces over each leaf (a trust ratio per
layer, per-leaf norms, factored or per-axis statistics of a matrix, the orthogonalization of a
matrix, a gradient centred per leaf) would reduce over a whole buffer instead: another
optimizer. Each such building block declares it when it is built (`declare`), `stateful.chain`
and jopt's wrappers pass the declaration on to what they build (`inherit`), and
`jopt.flat_train_step` refuses an optimizer that carries one. A transformation jopt did not
build (an `optax.chain` of one's own) carries none: it is taken as it is.
"""

from __future__ import annotations

import weakref

import optax

_DECLARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def declare(tx: optax.GradientTransformation, what: str) -> optax.GradientTransformation:
    """`tx`, recorded as computing `what` over each leaf (e.g. "a trust ratio per leaf").
    Returns `tx`."""
    _DECLARED[tx.update] = what
    return tx


def inherit(
    tx: optax.GradientTransformation, *parts: optax.GradientTransformation | None
) -> optax.GradientTransformation:
    """`tx`, declared as the first of `parts` that computes something over each leaf, if any
    (for a chain or a wrapper built from them). Returns `tx`."""
    for part in parts:
        what = of(part) if part is not None else None
        if what is not None:
            return declare(tx, what)
    return tx


def of(tx: optax.GradientTransformation) -> str | None:
    """What `tx` computes over each leaf (None: nothing, or `tx` did not say)."""
    try:
        return _DECLARED.get(tx.update)
    except TypeError:  # an update that cannot be weakly referenced declared nothing
        return None
