"""The Newton-Schulz orthogonalization of Muon (Jordan et al. 2024, "Muon: An optimizer for
hidden layers in neural networks"): O = NS_k(X), k steps of the quintic iteration

    X <- a X + (b A + c A A) X,   A = X X^H              one step, (a, b, c) = ns_coeffs

from X = M / (||M||_F + eps) (or another preconditioning, below). Each step maps a singular value
sigma of X to p(sigma) = a sigma + b sigma^3 + c sigma^5; five steps of Jordan's (a, b, c) =
(3.4445, -4.7750, 2.0315) take every singular value of X into about [0.7, 1.2], so that O is
nearly U V^T for M = U S V^T, the closest semi-orthogonal matrix. X is transposed first when it
has more rows than columns, so that A is the smaller Gram matrix. `ns_coeffs` may also give one
triple per step (the "dion" preset, Ahn et al. 2025).

Preconditionings, which bring X below norm 1 before the iteration: "frobenius" (divided by
||M||_F + eps), "spectral" (by its largest singular value + eps), "aol" (Boissin et al. 2025: X
rescaled by the rows of A, inside the first step) and "schatten" (Grishina et al. 2025: by
||A||_F^(1/2), inside the first step), as optax computes them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from optax.contrib import MuonDimensionNumbers

from jopt._src import validation
from jopt._src.transforms.muon_dimensions import reshape

STANDARD_NS_COEFFS = (3.4445, -4.7750, 2.0315)  # Jordan's quintic: largest slope at 0
# One triple per step (Ahn et al. 2025, "Dion: Distributed Orthonormalized Updates").
DION_NS_COEFFS = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
NS_COEFFS_PRESETS = {"standard": STANDARD_NS_COEFFS, "dion": DION_NS_COEFFS}
PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
# optax's AOL and Schatten-4 first steps floor their rescaling at this, whatever `eps` is.
_FIRST_STEP_EPS = 1e-8


def _quintic(x: jax.Array, coeffs: jax.Array) -> jax.Array:
    """One Newton-Schulz step, `a X + (b A + c A A) X` with A = X X^H."""
    gram = x @ x.T.conj()
    poly = coeffs[1] * gram + coeffs[2] * gram @ gram
    return coeffs[0] * x + poly @ x


def _rescaled_quintic(x: jax.Array, coeffs: jax.Array, kind: str) -> jax.Array:
    """The first step of the AOL (Boissin et al. 2025) or Schatten-4 (Grishina et al. 2025)
    preconditionings: X rescaled by the rows of A (AOL) or by ||A||_F, in the same step."""
    gram = x @ x.T.conj()
    if kind == "aol":
        scale = jnp.expand_dims(
            jax.lax.rsqrt(jnp.clip(jnp.abs(gram).sum(axis=-1), min=_FIRST_STEP_EPS)), -1
        )
        x, gram = x * scale, gram * scale * scale.transpose(-1, -2)
    else:
        norm = jnp.clip(jnp.linalg.norm(x @ x.T, ord="fro", axis=(-2, -1)), min=_FIRST_STEP_EPS)
        scale = jnp.expand_dims(jax.lax.rsqrt(norm), (0, -1))
        x, gram = x * scale, (x @ x.T) * scale**2
    poly = coeffs[1] * gram + coeffs[2] * gram @ gram
    return coeffs[0] * x + poly @ x


def _orthogonalize_matrix(
    x: jax.Array, coeffs: jax.Array, ns_steps: int, preconditioning: str, eps: float
) -> jax.Array:
    """NS_k of one matrix (transposed inside when it is tall)."""
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    if preconditioning == "frobenius":
        x = x / (jnp.linalg.norm(x, ord="fro") + eps)
    elif preconditioning == "spectral":
        x = x / (jnp.linalg.norm(x, ord=2) + eps)
    coeffs = coeffs.astype(x.dtype)

    def step(i, x, c):
        if preconditioning in ("aol", "schatten"):
            return jax.lax.cond(
                i == 0,
                lambda x: _rescaled_quintic(x, c, preconditioning),
                lambda x: _quintic(x, c),
                x,
            )
        return _quintic(x, c)

    if coeffs.ndim == 1:
        x = jax.lax.fori_loop(0, ns_steps, lambda i, x: step(i, x, coeffs), x, unroll=True)
    else:

        def body(carry, c):
            i, x = carry
            return (i + 1, step(i, x, c)), None

        (_, x), _ = jax.lax.scan(body, (jnp.asarray(0, jnp.int32), x), coeffs)
    return x.T if tall else x


def orthogonalize(
    x: jax.Array,
    coeffs: jax.Array,
    ns_steps: int,
    preconditioning: str,
    eps: float,
    dims: MuonDimensionNumbers,
) -> jax.Array:
    """NS_k of every (reduction, output) matrix of `x` (its batch axes vmapped over)."""
    to_matrices, back = reshape(x, dims)
    one = lambda m: _orthogonalize_matrix(m, coeffs, ns_steps, preconditioning, eps)  # noqa: E731
    return back(jax.vmap(one)(to_matrices(x)))


def coefficients(fn: str, ns_coeffs: Any, ns_steps: int) -> np.ndarray:
    """`ns_coeffs` (a preset's name, a triple or one triple per step) as a float64 array, checked
    as optax checks it at init."""
    if isinstance(ns_coeffs, str):
        validation.check_choice(fn, "ns_coeffs", ns_coeffs, tuple(NS_COEFFS_PRESETS))
        ns_coeffs = NS_COEFFS_PRESETS[ns_coeffs]
    try:
        coeffs = np.asarray(ns_coeffs, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise validation.wrong_type(
            fn, "ns_coeffs", ns_coeffs, "a triple (a, b, c), one triple per step, or a preset"
        ) from e
    shape_ok = coeffs.ndim in (1, 2) and coeffs.shape[-1] == 3 and coeffs.size > 0
    validation.require(
        fn,
        shape_ok and bool(np.all(np.isfinite(coeffs))),
        f"ns_coeffs must be finite numbers of shape (3,) or (n, 3), got {ns_coeffs!r}.",
        argument="ns_coeffs",
        value=ns_coeffs,
    )
    validation.require(
        fn,
        coeffs.ndim == 1 or coeffs.shape[0] <= ns_steps,
        f"ns_coeffs has {coeffs.shape[0]} triples (one per step), more than ns_steps={ns_steps}: "
        "optax refuses these (its message: 'Not enough coeffs').",
        argument="ns_coeffs",
        value=ns_coeffs,
    )
    return coeffs if coeffs.ndim == 1 else coeffs[-ns_steps:]


def state_coefficients(coeffs: np.ndarray) -> jax.Array:
    """The coefficients as optax's state keeps them: an array of the default float dtype."""
    return jnp.asarray(coeffs.tolist())
