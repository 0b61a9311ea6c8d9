"""NumPy float64 references of the catalogue's trust ratio family
(`jopt/_src/catalogue/trust_ratio.py`), written from the papers; same calling convention as
`tests/reference/optimizers.py`.

The trust ratio is per layer. The flat vector ``x`` is cut into consecutive layers of sizes
``layers``; by default those of `problems.random_problem`'s default shapes (3 and 8), the leaves
of the tree the shared suites run jopt on. A mask is a bool for every layer, or one per layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tests.reference import problems
from tests.reference.optimizers import GradFn, LearningRate, _grad, _lr, _start

Mask = bool | Sequence[bool]

LAYERS = problems.SIZES  # the leaves of the shared suites' problem


def _cuts(x: np.ndarray, layers: Sequence[int] | None) -> list[slice]:
    """The slices of `x` that are its layers."""
    sizes = LAYERS if layers is None else tuple(layers)
    if sum(sizes) != x.size:
        raise ValueError(f"layers {sizes} do not add up to the {x.size} coordinates of x")
    ends = np.cumsum(sizes)
    return [slice(int(end - size), int(end)) for size, end in zip(sizes, ends, strict=True)]


def _per_layer(mask: Mask, count: int) -> list[bool]:
    flags = [mask] * count if isinstance(mask, (bool, np.bool_)) else list(mask)
    if len(flags) != count:
        raise ValueError(f"a mask of {len(flags)} layers for {count} layers")
    return [bool(flag) for flag in flags]


def _ratio(numerator: float, denominator: float, eps: float = 0.0) -> float:
    """numerator / (denominator + eps), or 1 where either is 0 (no layer is left unmoved)."""
    if numerator == 0.0 or denominator == 0.0:
        return 1.0
    return numerator / (denominator + eps)


def run_lars(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    weight_decay: float = 0.0,
    trust_coefficient: float = 0.001,
    eps: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    split_norm: bool = False,
    weight_decay_mask: Mask = True,
    trust_ratio_mask: Mask = True,
    layers: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """LARS (You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks"),
    Algorithm 1 with the trust coefficient eta of the paper's local learning rate, per layer::

        lambda = eta ||w|| / (||g|| + beta ||w|| + eps)       split_norm (the paper's)
        lambda = eta ||w|| / (||g + beta w|| + eps)           otherwise (optax's)
        lambda = 1 where ||w|| or the norm in the denominator is 0
        v_t = momentum * v_{t-1} + lr * lambda * (g + beta w)
        w_t = w_{t-1} - v_t          (nesterov: w_{t-1} - (momentum v_t + lr lambda (g + beta w)))

    beta is `weight_decay` on the layers of `weight_decay_mask` and 0 elsewhere; lambda is 1 on
    the layers `trust_ratio_mask` leaves out.
    """
    x = _start(x0)
    cuts = _cuts(x, layers)
    decays = _per_layer(weight_decay_mask, len(cuts))
    scales = _per_layer(trust_ratio_mask, len(cuts))
    v = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        step = np.empty_like(x)
        for cut, decay, scale in zip(cuts, decays, scales, strict=True):
            beta = weight_decay if decay else 0.0
            u = g[cut] + beta * x[cut]
            local = 1.0
            if scale:
                w_norm = np.linalg.norm(x[cut])
                if split_norm:
                    denominator = np.linalg.norm(g[cut]) + beta * w_norm
                else:
                    denominator = np.linalg.norm(u)
                local = _ratio(trust_coefficient * w_norm, denominator, eps)
            step[cut] = lr * local * u
        v = momentum * v + step
        x = x - (momentum * v + step if nesterov else v)
        xs.append(x.copy())
    return xs


def run_lamb(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
    mask: Mask = True,
    phi_min: float | None = None,
    phi_max: float | None = None,
    layers: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT in 76
    minutes"), Algorithm 2, per layer::

        m_t = b1 m_{t-1} + (1 - b1) g        v_t = b2 v_{t-1} + (1 - b2) g^2
        m^ = m_t / (1 - b1^t)                v^ = v_t / (1 - b2^t)
        r = m^ / (sqrt(v^ + eps_root) + eps) + lambda w
        w_t = w_{t-1} - lr * phi(||w||) / ||r|| * r,   phi(z) = min(max(z, gamma_l), gamma_u)

    gamma_l = `phi_min`, gamma_u = `phi_max` (None: no bound; both None: phi(z) = z, as optax).
    The ratio is 1 where phi(||w||) or ||r|| is 0. lambda is `weight_decay` on the layers of
    `mask`, 0 elsewhere. (`eps_root`, inside the root, is optax's; the paper's is 0.)
    """
    x = _start(x0)
    cuts = _cuts(x, layers)
    decays = _per_layer(mask, len(cuts))
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g**2
        r = (m / (1.0 - b1**t)) / (np.sqrt(v / (1.0 - b2**t) + eps_root) + eps)
        new = x.copy()
        for cut, decay in zip(cuts, decays, strict=True):
            u = r[cut] + (weight_decay * x[cut] if decay else 0.0)
            phi = np.linalg.norm(x[cut])
            if phi_min is not None:
                phi = max(phi, phi_min)
            if phi_max is not None:
                phi = min(phi, phi_max)
            new[cut] = x[cut] - lr * _ratio(phi, np.linalg.norm(u)) * u
        x = new
        xs.append(x.copy())
    return xs


def run_fromage(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    min_norm: float = 1e-6,
    layers: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """Fromage (Bernstein et al. 2020, "On the distance between two neural networks and the
    stability of learning"), Algorithm 1, per layer::

        w_t = (w_{t-1} - lr * ||w|| / ||g|| * g) / sqrt(1 + lr^2)

    with both norms raised to `min_norm` (optax's; 0 is the paper's), and the ratio 1 where a
    norm is 0 (the paper's code).
    """
    x = _start(x0)
    cuts = _cuts(x, layers)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        new = x.copy()
        for cut in cuts:
            w_norm = max(np.linalg.norm(x[cut]), min_norm)
            g_norm = max(np.linalg.norm(g[cut]), min_norm)
            new[cut] = (x[cut] - lr * _ratio(w_norm, g_norm) * g[cut]) / np.sqrt(1.0 + lr**2)
        x = new
        xs.append(x.copy())
    return xs
