"""Adam and its relatives, as the optimizers users call: Adam, AdamW, NAdam, NAdamW, AMSGrad,
Adamax, RAdam, and Lion (a sign step on interpolated moments).

Each is a validated chain of building blocks and a drop-in for optax's function of the same name
(same argument names and order, added options keyword-only); results are bitwise identical to
optax where the conventions agree. Every hyperparameter lives in the state (see `jopt.hparams`).
"""

from __future__ import annotations

from typing import Any

import optax

from jopt._src import validation
from jopt._src.transforms.adam import scale_by_adam, scale_by_adamax, scale_by_amsgrad
from jopt._src.transforms.learning_rate import scale_by_learning_rate
from jopt._src.transforms.lion import scale_by_lion
from jopt._src.transforms.radam import scale_by_radam
from jopt._src.transforms.regularization import add_decayed_weights

ScalarOrSchedule = float | validation.Schedule
GradientTransformation = optax.GradientTransformationExtraArgs


def adam(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Adam (Kingma & Ba 2015); a drop-in for `optax.adam`.

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g**2
        theta -= lr * m_hat / (sqrt(v_hat + eps_root) + eps),  x_hat = x / (1 - b**t)

    eps is outside the root as in the paper, optax and torch (Keras' Adam uses the "epsilon hat"
    form, see `jopt.keras`).
    """
    owner = "jopt.adam"
    return optax.chain(
        scale_by_adam(
            b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype, owner=owner
        ),
        scale_by_learning_rate(learning_rate, owner=owner),
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """AdamW, Adam with decoupled weight decay (Loshchilov & Hutter 2019); a drop-in for optax's.

        theta -= lr * (m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay * theta)

    The decay is multiplied by the learning rate, as in optax and torch (the paper's schedule
    multiplier eta_t). Warning: torch's AdamW default weight_decay is 1e-2, optax's is 1e-4.
    """
    owner = "jopt.adamw"
    return optax.chain(
        scale_by_adam(
            b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype, owner=owner
        ),
        add_decayed_weights(weight_decay, mask, owner=owner),
        scale_by_learning_rate(learning_rate, owner=owner),
    )


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """NAdam (Dozat 2016), as optax: Adam with a Nesterov first moment and no momentum schedule.

        m_hat = b1 m / (1 - b1**(t+1)) + (1 - b1) g / (1 - b1**t)

    Warning: torch's NAdam and Keras' Nadam add a momentum schedule mu_t; see `jopt.torch` and
    `jopt.keras`.
    """
    owner = "jopt.nadam"
    return optax.chain(
        scale_by_adam(
            b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype, owner=owner
        ),
        scale_by_learning_rate(learning_rate, owner=owner),
    )


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """NAdam with decoupled weight decay; a drop-in for `optax.nadamw`."""
    owner = "jopt.nadamw"
    return optax.chain(
        scale_by_adam(
            b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype, owner=owner
        ),
        add_decayed_weights(weight_decay, mask, owner=owner),
        scale_by_learning_rate(learning_rate, owner=owner),
    )


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    max_of: str = "raw",
) -> GradientTransformation:
    """AMSGrad (Reddi et al. 2018): Adam with the running maximum of the second moment.

        v_max = max(v_max, v);   theta -= lr * m_hat / (sqrt(v_max / (1 - b2**t) + eps_root) + eps)

    Warning: the default `max_of="raw"` follows torch and Keras and differs from optax's
    `amsgrad`, which keeps the maximum of the bias-corrected v_hat (`max_of="corrected"`).
    """
    owner = "jopt.amsgrad"
    return optax.chain(
        scale_by_amsgrad(
            b1,
            b2,
            eps,
            eps_root,
            mu_dtype,
            bias_correction_mu,
            bias_correction_nu,
            max_of=max_of,
            owner=owner,
        ),
        scale_by_learning_rate(learning_rate, owner=owner),
    )


def adamax(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
) -> GradientTransformation:
    """Adamax (Kingma & Ba 2015, sec. 7.1); a drop-in for `optax.adamax`.

        u = max(b2 u, |g| + eps);   theta -= lr * m_hat / u

    Keras puts eps outside the max: `max(b2 u, |g|)`, then divides by `u + eps`.
    """
    owner = "jopt.adamax"
    return optax.chain(
        scale_by_adamax(b1, b2, eps, owner=owner),
        scale_by_learning_rate(learning_rate, owner=owner),
    )


def radam(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    """Rectified Adam (Liu et al. 2020); a drop-in for `optax.radam` (threshold 5 as torch)."""
    owner = "jopt.radam"
    return optax.chain(
        scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov, owner=owner),
        scale_by_learning_rate(learning_rate, owner=owner),
    )


def lion(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.99,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: Any = None,
) -> GradientTransformation:
    """Lion (Chen et al. 2023) with decoupled weight decay; a drop-in for `optax.lion`.

    theta -= lr * (sign(b1 m + (1 - b1) g) + weight_decay * theta);  m = b2 m + (1 - b2) g
    """
    owner = "jopt.lion"
    return optax.chain(
        scale_by_lion(b1, b2, mu_dtype, owner=owner),
        add_decayed_weights(weight_decay, mask, owner=owner),
        scale_by_learning_rate(learning_rate, owner=owner),
    )
