"""NumPy float64 references of the catalogue's orthogonal family
(`jopt/_src/catalogue/orthogonal.py`), written from the papers; same calling convention as
`tests/reference/optimizers.py`."""

from __future__ import annotations

import numpy as np

from tests.reference import problems
from tests.reference.optimizers import GradFn, LearningRate, _grad, _lr, _start

# Jordan's quintic (Jordan et al. 2024): the coefficients that maximize the slope at zero.
JORDAN_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(m: np.ndarray, coefficients, steps: int, eps: float, spectral: bool = False):
    """The orthogonalization of Jordan et al. 2024 ("Muon: An optimizer for hidden layers in
    neural networks"): X_0 = M / (||M|| + eps) (Frobenius, or with `spectral` the largest
    singular value), then `steps` times X <- a X + b (X X^T) X + c (X X^T)^2 X, on the wide
    orientation of M (a tall M is transposed, iterated, and transposed back). `coefficients` is
    one (a, b, c) for every step, or one per step."""
    tall = m.shape[0] > m.shape[1]
    x = m.T if tall else m
    norm = np.linalg.norm(x, 2) if spectral else np.sqrt(np.sum(x * x))
    x = x / (norm + eps)
    table = np.asarray(coefficients, dtype=np.float64)
    table = np.broadcast_to(table, (steps, 3)) if table.ndim == 1 else table
    for a, b, c in table:
        gram = x @ x.T
        x = a * x + b * (gram @ x) + c * (gram @ (gram @ x))
    return x.T if tall else x


def run_muon(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    ns_coeffs=JORDAN_COEFFICIENTS,
    ns_steps: int = 5,
    beta: float = 0.95,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: float = 0.9,
    adam_b2: float = 0.999,
    adam_eps_root: float = 0.0,
    adam_weight_decay: float = 0.0,
    adam_learning_rate: LearningRate | None = None,
    consistent_rms: float | None = None,
    bias_correction: bool = True,
    shapes=problems.SHAPES,
) -> list[np.ndarray]:
    """Muon (Jordan et al. 2024) on the leaves of `shapes` with two axes, AdamW on the others.

    A matrix G of shape (n_in, n_out) (x @ W: the first axis is reduced)::

        m_t = beta * m_{t-1} + (1 - beta) * G
        M   = beta * m_t + (1 - beta) * G     if nesterov,  else  m_t          (Jordan)
        with bias_correction (optax's form): m_t -> m_t / (1 - beta^(t+1)) and
            G -> G / (1 - beta^t) in the Nesterov mix, m_t -> m_t / (1 - beta^t) without it
        O   = newton_schulz(M)                 (ns_steps steps, eps in X_0)
        O   = <M, O> O                         if adaptive (Bernstein & Newhouse 2024)
        s   = sqrt(max(1, n_out / n_in))       (Jordan)
            = consistent_rms * sqrt(max(n_in, n_out))   (Liu et al. 2025)
        W_t = W_{t-1} - lr * (s * O + weight_decay * W_{t-1})

    Any other leaf, NAdamW (Dozat 2016; Loshchilov & Hutter 2019) if nesterov, else AdamW::

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        m^ = b1 m / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t)   (nesterov)   or  m / (1 - b1^t)
        x_t = x_{t-1} - lr_adam * (m^ / (sqrt(v / (1 - b2^t) + adam_eps_root) + eps)
                                   + adam_weight_decay * x_{t-1})

    with lr_adam = adam_learning_rate, or lr if None.
    """
    if preconditioning not in ("frobenius", "spectral"):
        raise ValueError(f"no reference for preconditioning={preconditioning!r}")
    if isinstance(ns_coeffs, str):
        raise ValueError("give the coefficients themselves")
    table = np.asarray(ns_coeffs, dtype=np.float64)
    ns = ns_steps if table.ndim == 1 else table.shape[0]
    sizes = [int(np.prod(s)) for s in shapes]
    bounds = np.cumsum([0, *sizes])
    x = _start(x0)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        lr_adam = lr if adam_learning_rate is None else _lr(adam_learning_rate, t)
        g = _grad(grad_fn, x)
        new = x.copy()
        for shape, lo, hi in zip(shapes, bounds[:-1], bounds[1:], strict=True):
            gi, xi = g[lo:hi], x[lo:hi]
            if len(shape) == 2:
                m[lo:hi] = beta * m[lo:hi] + (1 - beta) * gi
                mi = m[lo:hi]
                if bias_correction:
                    ahead, now = 1 - beta ** (t + 1), 1 - beta**t
                    mix = beta * mi / ahead + (1 - beta) * gi / now if nesterov else mi / now
                else:
                    mix = beta * mi + (1 - beta) * gi if nesterov else mi
                mix = mix.reshape(shape)
                o = newton_schulz(mix, table, ns, eps, spectral=preconditioning == "spectral")
                if adaptive:
                    o = np.sum(mix * o) * o
                n_in, n_out = shape
                if consistent_rms is None:
                    s = np.sqrt(max(1.0, n_out / n_in))
                else:
                    s = consistent_rms * np.sqrt(max(n_in, n_out))
                new[lo:hi] = xi - lr * (s * o.reshape(-1) + weight_decay * xi)
            else:
                m[lo:hi] = adam_b1 * m[lo:hi] + (1 - adam_b1) * gi
                v[lo:hi] = adam_b2 * v[lo:hi] + (1 - adam_b2) * gi**2
                c1, c2 = 1 - adam_b1**t, 1 - adam_b2**t
                if nesterov:
                    m_hat = adam_b1 * m[lo:hi] / (1 - adam_b1 ** (t + 1)) + (1 - adam_b1) * gi / c1
                else:
                    m_hat = m[lo:hi] / c1
                u = m_hat / (np.sqrt(v[lo:hi] / c2 + adam_eps_root) + eps)
                new[lo:hi] = xi - lr_adam * (u + adam_weight_decay * xi)
        x = new
        xs.append(x.copy())
    return xs


# -- JAX's default random numbers, in NumPy --------------------------------------------------
# Threefry-2x32 (Salmon et al. 2011, "Parallel Random Numbers: As Easy as 1, 2, 3", 20 rounds)
# and JAX's use of it (jax.random with jax_threefry_partitionable, JAX's default): a key is two
# uint32; split(key, n)[i] and the random bits of element i are threefry(key, (0, i)), the bits
# `hi ^ lo` (32-bit) or `hi << 32 | lo` (64-bit); a normal is sqrt(2) erfinv(u), u uniform in
# (-1, 1) built from the bits' top mantissa bits.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotate_left(x: np.ndarray, d: int) -> np.ndarray:
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry(key: tuple[int, int], counters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32 of (0, counter) for each counter, under `key`: (high words, low words)."""
    k = (np.uint32(key[0]), np.uint32(key[1]))
    schedule = (k[0], k[1], k[0] ^ k[1] ^ np.uint32(0x1BD11BDA))
    x0 = np.zeros(counters.shape, np.uint32) + schedule[0]
    x1 = counters.astype(np.uint32) + schedule[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, r) ^ x0
        x0 = x0 + schedule[(i + 1) % 3]
        x1 = x1 + schedule[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def split_key(key: tuple[int, int], n: int) -> list[tuple[int, int]]:
    hi, lo = threefry(key, np.arange(n, dtype=np.uint32))
    return [(int(a), int(b)) for a, b in zip(hi, lo, strict=True)]


def normal(key: tuple[int, int], size: int, bits: int = 64) -> np.ndarray:
    """`jax.random.normal(key, (size,), float64 or float32)`, as float64 values (the float32
    case through an exact erfinv, where XLA's float32 one is within a few float32 ulps)."""
    from scipy.special import erfinv

    hi, lo = threefry(key, np.arange(size, dtype=np.uint32))
    if bits == 64:
        word = (hi.astype(np.uint64) << np.uint64(32)) | lo.astype(np.uint64)
        mantissa = (word >> np.uint64(12)) | np.float64(1.0).view(np.uint64)
        low = np.nextafter(-1.0, 0.0)
        u = np.maximum(low, (mantissa.view(np.float64) - 1.0) * (1.0 - low) + low)
    else:
        mantissa = ((hi ^ lo) >> np.uint32(9)) | np.float32(1.0).view(np.uint32)
        low = np.nextafter(np.float32(-1.0), np.float32(0.0))
        f = mantissa.view(np.float32) - np.float32(1.0)
        u = np.maximum(low, f * (np.float32(1.0) - low) + low).astype(np.float64)
    return np.sqrt(2.0) * erfinv(u)


def run_noisy_sgd(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    eta: float = 0.01,
    gamma: float = 0.55,
    key: int = 0,
    noise_bits: int = 64,
    shapes=problems.SHAPES,
) -> list[np.ndarray]:
    """SGD with annealed gradient noise (Neelakantan et al. 2015, "Adding Gradient Noise
    Improves Learning for Very Deep Networks")::

        sigma_t^2 = eta / (1 + t')^gamma          (t' = t - 1 = 0 at the first step)
        x_t = x_{t-1} - lr * (g + sigma_t * z_t)

    with z_t the noise JAX draws from the integer seed `key` for the leaves of `shapes`: the key
    k is split into (k, s) at every step, s into one key per leaf, and each leaf's z is
    `normal(its key, its size, noise_bits)` (64: float64 parameters; 32: float32).
    """
    x = _start(x0)
    k = (key >> 32, key & 0xFFFFFFFF)
    sizes = [int(np.prod(s)) for s in shapes]
    xs = [x.copy()]
    for t in range(1, steps + 1):
        k, sample = split_key(k, 2)
        leaves = zip(split_key(sample, len(sizes)), sizes, strict=True)
        z = np.concatenate([normal(leaf, n, noise_bits) for leaf, n in leaves])
        sigma = np.sqrt(eta / (1 + (t - 1)) ** gamma)
        x = x - _lr(learning_rate, t) * (_grad(grad_fn, x) + sigma * z)
        xs.append(x.copy())
    return xs
