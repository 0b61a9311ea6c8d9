"""Plain NumPy float64 reference implementations of optimizers.

Each ``run_<name>`` function runs a whole trajectory::

    run_<name>(grad_fn, x0, steps, learning_rate, **hparams) -> [x0, x1, ..., x_steps]

* ``grad_fn(x)`` returns the gradient at ``x`` (float64 array of the same shape as ``x``).
* ``learning_rate`` is a float or a callable ``lr(t)`` with ``t = 0`` for the first step,
  ``t = 1`` for the second, ... (only the learning rate can be scheduled).
* In the formulas below the step count ``t`` starts at 1 on the first update and ``g`` is
  the gradient at ``x_{t-1}``. All state starts at zero unless stated otherwise.

These implementations are written directly from the papers / definitions, deliberately
without any dependency on JAX, optax or jopt, so they can serve as an independent check.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

GradFn = Callable[[np.ndarray], np.ndarray]
LearningRate = float | Callable[[int], float]


def _lr(learning_rate: LearningRate, t: int) -> float:
    """Learning rate for the update with 1-based step count ``t`` (schedule gets ``t - 1``)."""
    if callable(learning_rate):
        return float(learning_rate(t - 1))
    return float(learning_rate)


def _start(x0) -> np.ndarray:
    return np.array(x0, dtype=np.float64, copy=True)


def _grad(grad_fn: GradFn, x: np.ndarray) -> np.ndarray:
    g = np.asarray(grad_fn(x.copy()), dtype=np.float64)
    if g.shape != x.shape:
        raise ValueError(f"grad_fn returned shape {g.shape}, expected {x.shape}")
    return g


def run_sgd(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    momentum: float = 0.0,
    nesterov: bool = False,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    form: str = "classic",
) -> list[np.ndarray]:
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Coupled L2 weight decay first: ``g <- g + weight_decay * x_{t-1}``.

    * ``momentum == 0`` (every form): ``x_t = x_{t-1} - lr * g``.
    * ``form="classic"`` (heavy ball as in torch / optax; Polyak 1964, Sutskever et al. 2013)::

          m_t = momentum * m_{t-1} + (1 - dampening) * g      (m_0 = 0, unlike torch's m_1 = g)
          d   = g + momentum * m_t   if nesterov else   m_t
          x_t = x_{t-1} - lr * d

    * ``form="ema"`` (exponential moving average of the gradients)::

          m_t = momentum * m_{t-1} + (1 - momentum) * g
          d   = (1 - momentum) * g + momentum * m_t   if nesterov else   m_t
          x_t = x_{t-1} - lr * d

    * ``form="lr_inside"`` (Keras; Sutskever et al. 2013 "On the importance of initialization
      and momentum in deep learning")::

          v_t = momentum * v_{t-1} - lr * g
          x_t = x_{t-1} + (momentum * v_t - lr * g)   if nesterov else   x_{t-1} + v_t
    """
    if form not in ("classic", "ema", "lr_inside"):
        raise ValueError(f"unknown form {form!r}")
    x = _start(x0)
    m = np.zeros_like(x)  # momentum buffer (m for classic/ema, v for lr_inside)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        g = g + weight_decay * x
        if momentum == 0.0:
            x = x - lr * g
        elif form == "classic":
            m = momentum * m + (1.0 - dampening) * g
            d = g + momentum * m if nesterov else m
            x = x - lr * d
        elif form == "ema":
            m = momentum * m + (1.0 - momentum) * g
            d = (1.0 - momentum) * g + momentum * m if nesterov else m
            x = x - lr * d
        else:  # lr_inside
            m = momentum * m - lr * g
            x = x + (momentum * m - lr * g) if nesterov else x + m
        xs.append(x.copy())
    return xs


def run_rmsprop(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float = 0.0,
    nesterov: bool = False,
    momentum_form: str = "lr_inside",
    bias_correction: bool = False,
) -> list[np.ndarray]:
    """RMSProp (Tieleman & Hinton 2012, lecture 6.5; centered variant: Graves 2013).

    ::

        nu_t  = decay * nu_{t-1} + (1 - decay) * g^2            (nu_0 = initial_scale)
        nu^   = nu_t / (1 - decay^t)   if bias_correction else   nu_t
        mg_t  = decay * mg_{t-1} + (1 - decay) * g              (centered only, mg_0 = 0)
        mg^   = mg_t / (1 - decay^t)   if bias_correction else   mg_t
        s     = nu^ - mg^^2   if centered else   nu^
        u     = g / sqrt(s + eps)   if eps_in_sqrt else   g / (sqrt(s) + eps)

    Momentum on ``u``:

    * ``momentum_form="lr_inside"`` (Keras / TF)::

          v_t = momentum * v_{t-1} - lr * u
          x_t = x_{t-1} + (momentum * v_t - lr * u)   if nesterov else   x_{t-1} + v_t

    * ``momentum_form="classic"`` (torch / optax)::

          m_t = momentum * m_{t-1} + u
          d   = u + momentum * m_t   if nesterov else   m_t
          x_t = x_{t-1} - lr * d

    With ``momentum == 0`` both reduce to ``x_t = x_{t-1} - lr * u``.
    """
    if momentum_form not in ("lr_inside", "classic"):
        raise ValueError(f"unknown momentum_form {momentum_form!r}")
    x = _start(x0)
    nu = np.full_like(x, initial_scale)
    mg = np.zeros_like(x)
    mom = np.zeros_like(x)  # v (lr_inside) or m (classic)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        nu = decay * nu + (1.0 - decay) * g**2
        nu_hat = nu / (1.0 - decay**t) if bias_correction else nu
        if centered:
            mg = decay * mg + (1.0 - decay) * g
            mg_hat = mg / (1.0 - decay**t) if bias_correction else mg
            s = nu_hat - mg_hat**2
        else:
            s = nu_hat
        u = g / np.sqrt(s + eps) if eps_in_sqrt else g / (np.sqrt(s) + eps)
        if momentum_form == "lr_inside":
            mom = momentum * mom - lr * u
            x = x + (momentum * mom - lr * u) if nesterov else x + mom
        else:  # classic
            mom = momentum * mom + u
            d = u + momentum * mom if nesterov else mom
            x = x - lr * d
        xs.append(x.copy())
    return xs


def run_adam(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    bias_correction: bool = True,
) -> list[np.ndarray]:
    """Adam (Kingma & Ba 2015), optionally NAdam and/or AdamW decoupled weight decay, or without
    the bias corrections (the dividing factors below are then 1).

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g
        v_t = b2 * v_{t-1} + (1 - b2) * g^2
        m^  = m_t / (1 - b1^t)
        v^  = v_t / (1 - b2^t)
        if nesterov (NAdam, Dozat 2016, simplified as in optax):
            m^ = b1 * m_t / (1 - b1^(t+1)) + (1 - b1) * g / (1 - b1^t)
        u   = m^ / (sqrt(v^ + eps_root) + eps)
        u   = u + weight_decay * x_{t-1}          (AdamW, Loshchilov & Hutter 2019)
        x_t = x_{t-1} - lr * u
    """
    x = _start(x0)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g**2
        c1, c1_ahead, c2 = (
            (1.0 - b1**t, 1.0 - b1 ** (t + 1), 1.0 - b2**t) if bias_correction else (1, 1, 1)
        )
        if nesterov:
            m_hat = b1 * m / c1_ahead + (1.0 - b1) * g / c1
        else:
            m_hat = m / c1
        v_hat = v / c2
        u = m_hat / (np.sqrt(v_hat + eps_root) + eps)
        u = u + weight_decay * x
        x = x - lr * u
        xs.append(x.copy())
    return xs


def run_nadam(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
) -> list[np.ndarray]:
    """NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam"), optax's simplified form.

    Alias of ``run_adam(..., nesterov=True)``::

        m^ = b1 * m_t / (1 - b1^(t+1)) + (1 - b1) * g / (1 - b1^t)
        u  = m^ / (sqrt(v_t / (1 - b2^t) + eps_root) + eps) + weight_decay * x_{t-1}
        x_t = x_{t-1} - lr * u
    """
    return run_adam(
        grad_fn,
        x0,
        steps,
        learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        nesterov=True,
        weight_decay=weight_decay,
    )


def run_adamw(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 1e-4,
    nesterov: bool = False,
) -> list[np.ndarray]:
    """AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization").

    Alias of ``run_adam`` with decoupled weight decay (default 1e-4)::

        u   = m^ / (sqrt(v^ + eps_root) + eps) + weight_decay * x_{t-1}
        x_t = x_{t-1} - lr * u
    """
    return run_adam(
        grad_fn,
        x0,
        steps,
        learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        nesterov=nesterov,
        weight_decay=weight_decay,
    )


def run_nadamw(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 1e-4,
    nesterov: bool = True,
) -> list[np.ndarray]:
    """NAdamW: NAdam (optax's simplified form) with AdamW's decoupled weight decay.

    Alias of ``run_adam(..., nesterov=True)`` with decoupled weight decay (default 1e-4)::

        m^ = b1 * m_t / (1 - b1^(t+1)) + (1 - b1) * g / (1 - b1^t)
        u  = m^ / (sqrt(v_t / (1 - b2^t) + eps_root) + eps) + weight_decay * x_{t-1}
        x_t = x_{t-1} - lr * u
    """
    return run_adam(
        grad_fn,
        x0,
        steps,
        learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        nesterov=nesterov,
        weight_decay=weight_decay,
    )


def run_amsgrad(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    max_of: str = "raw",
) -> list[np.ndarray]:
    """AMSGrad (Reddi, Kale & Kumar 2018, "On the Convergence of Adam and Beyond").

    ``m_t``, ``v_t`` as in Adam; ``vmax_0 = 0``.

    * ``max_of="raw"`` (torch / Keras)::

          vmax_t = max(vmax_{t-1}, v_t)
          u      = (m_t / (1 - b1^t)) / (sqrt(vmax_t / (1 - b2^t) + eps_root) + eps)

    * ``max_of="corrected"`` (optax)::

          vmax_t = max(vmax_{t-1}, v_t / (1 - b2^t))
          u      = (m_t / (1 - b1^t)) / (sqrt(vmax_t + eps_root) + eps)

    Then ``x_t = x_{t-1} - lr * u``.
    """
    if max_of not in ("raw", "corrected"):
        raise ValueError(f"unknown max_of {max_of!r}")
    x = _start(x0)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    vmax = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g**2
        m_hat = m / (1.0 - b1**t)
        if max_of == "raw":
            vmax = np.maximum(vmax, v)
            u = m_hat / (np.sqrt(vmax / (1.0 - b2**t) + eps_root) + eps)
        else:  # corrected
            vmax = np.maximum(vmax, v / (1.0 - b2**t))
            u = m_hat / (np.sqrt(vmax + eps_root) + eps)
        x = x - lr * u
        xs.append(x.copy())
    return xs


def run_adamax(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> list[np.ndarray]:
    """AdaMax (Kingma & Ba 2015, section 7.1), with ``eps`` placed as in optax / torch.

    ::

        m_t  = b1 * m_{t-1} + (1 - b1) * g
        ui_t = max(b2 * ui_{t-1}, |g| + eps)          (ui_0 = 0)
        x_t  = x_{t-1} - lr * (m_t / (1 - b1^t)) / ui_t
    """
    x = _start(x0)
    m = np.zeros_like(x)
    u_inf = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        m = b1 * m + (1.0 - b1) * g
        u_inf = np.maximum(b2 * u_inf, np.abs(g) + eps)
        x = x - lr * (m / (1.0 - b1**t)) / u_inf
        xs.append(x.copy())
    return xs


def run_radam(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
) -> list[np.ndarray]:
    """RAdam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond").

    ``m_t``, ``v_t`` as in Adam::

        m^      = m_t / (1 - b1^t)
        rho_inf = 2 / (1 - b2) - 1
        rho_t   = rho_inf - 2 * t * b2^t / (1 - b2^t)
        if rho_t >= threshold:
            r = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
            u = r * m^ / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)
        else:
            u = m^
        x_t = x_{t-1} - lr * u
    """
    x = _start(x0)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g**2
        m_hat = m / (1.0 - b1**t)
        rho_t = rho_inf - 2.0 * t * b2**t / (1.0 - b2**t)
        if rho_t >= threshold:
            r = np.sqrt(
                (rho_t - 4.0)
                * (rho_t - 2.0)
                * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
            )
            v_hat = v / (1.0 - b2**t)
            u = r * m_hat / (np.sqrt(v_hat + eps_root) + eps)
        else:
            u = m_hat
        x = x - lr * u
        xs.append(x.copy())
    return xs


def run_adagrad(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    initial_accumulator_value: float = 0.1,
    eps: float = 1e-7,
    eps_in_sqrt: bool = True,
) -> list[np.ndarray]:
    """AdaGrad (Duchi, Hazan & Singer 2011), diagonal version.

    ::

        acc_t = acc_{t-1} + g^2                     (acc_0 = initial_accumulator_value)
        u     = g / sqrt(acc_t + eps)   if eps_in_sqrt else   g / (sqrt(acc_t) + eps)
        x_t   = x_{t-1} - lr * u

    With ``eps_in_sqrt`` and ``acc_t + eps == 0`` (hence ``g == 0``) the update is defined as 0.
    """
    x = _start(x0)
    acc = np.full_like(x, initial_accumulator_value)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        acc = acc + g**2
        if eps_in_sqrt:
            denom = acc + eps
            safe = np.where(denom == 0.0, 1.0, denom)
            u = np.where(denom == 0.0, 0.0, g / np.sqrt(safe))
        else:
            u = g / (np.sqrt(acc) + eps)
        x = x - lr * u
        xs.append(x.copy())
    return xs


def run_adadelta(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
) -> list[np.ndarray]:
    """AdaDelta (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method"), Algorithm 1.

    ::

        g       <- g + weight_decay * x_{t-1}        (coupled L2)
        Eg_t    = rho * Eg_{t-1} + (1 - rho) * g^2
        dx      = sqrt(Edx_{t-1} + eps) / sqrt(Eg_t + eps) * g
        Edx_t   = rho * Edx_{t-1} + (1 - rho) * dx^2
        x_t     = x_{t-1} - lr * dx
    """
    x = _start(x0)
    e_g = np.zeros_like(x)
    e_dx = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        g = g + weight_decay * x
        e_g = rho * e_g + (1.0 - rho) * g**2
        dx = np.sqrt(e_dx + eps) / np.sqrt(e_g + eps) * g
        e_dx = rho * e_dx + (1.0 - rho) * dx**2
        x = x - lr * dx
        xs.append(x.copy())
    return xs


def run_adabelief(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    nesterov: bool = False,
) -> list[np.ndarray]:
    """AdaBelief (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
    Observed Gradients"), Algorithm 2, with NAdam's first moment if `nesterov` (as optax).

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g
        s_t = b2 * s_{t-1} + (1 - b2) * (g - m_t)^2 + eps_root
        m^  = m_t / (1 - b1^t)        (nesterov: b1 m_t / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t))
        s^  = s_t / (1 - b2^t)
        x_t = x_{t-1} - lr * m^ / (sqrt(s^) + eps)
    """
    x = _start(x0)
    m = np.zeros_like(x)
    s = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        m = b1 * m + (1.0 - b1) * g
        s = b2 * s + (1.0 - b2) * (g - m) ** 2 + eps_root
        if nesterov:
            m_hat = b1 * m / (1.0 - b1 ** (t + 1)) + (1.0 - b1) * g / (1.0 - b1**t)
        else:
            m_hat = m / (1.0 - b1**t)
        s_hat = s / (1.0 - b2**t)
        x = x - lr * m_hat / (np.sqrt(s_hat) + eps)
        xs.append(x.copy())
    return xs


def run_lion(
    grad_fn: GradFn,
    x0: np.ndarray,
    steps: int,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.99,
    weight_decay: float = 0.0,
) -> list[np.ndarray]:
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

    ::

        c   = b1 * m_{t-1} + (1 - b1) * g
        u   = sign(c) + weight_decay * x_{t-1}
        m_t = b2 * m_{t-1} + (1 - b2) * g
        x_t = x_{t-1} - lr * u
    """
    x = _start(x0)
    m = np.zeros_like(x)
    xs = [x.copy()]
    for t in range(1, steps + 1):
        lr = _lr(learning_rate, t)
        g = _grad(grad_fn, x)
        c = b1 * m + (1.0 - b1) * g
        u = np.sign(c) + weight_decay * x
        m = b2 * m + (1.0 - b2) * g
        x = x - lr * u
        xs.append(x.copy())
    return xs
