"""Adam's moment estimates, and the optimizers built on them: Adam, AdamW, NAdam, NAdamW.

Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization"):

    m = b1 * m + (1 - b1) * g            m_hat = m / (1 - b1**t)
    v = b2 * v + (1 - b2) * g**2         v_hat = v / (1 - b2**t)
    update = m_hat / (sqrt(v_hat + eps_root) + eps)

NAdam (Dozat 2016), as optax: m_hat = b1 * m / (1 - b1**(t+1)) + (1 - b1) * g / (1 - b1**t).
AdamW (Loshchilov & Hutter 2019) adds the decoupled decay `weight_decay * theta` to the update
before the learning rate scales it.

The same moments serve AMSGrad (`amsgrad.py`), Adamax (`adamax.py`), RAdam (`radam.py`) and the
scheduled NAdam of torch and Keras (`nadam.py`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import (
    base,
    errors,
    fused,
    fused_rules,
    state_formats,
    stateful,
    tree_math,
    validation,
)
from jopt._src.base import ScalarOrSchedule
from jopt._src.hparams import HParams
from jopt._src.spec import Choice, Flag, Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE, scale_by_learning_rate
from jopt._src.transforms.regularization import WEIGHT_DECAY, add_decayed_weights
from jopt._src.validation import DECAY, NON_NEGATIVE

B1 = Float("b1", DECAY, schedulable=True, complement=True)
B2 = Float("b2", DECAY, schedulable=True, complement=True)
EPS = Float("eps", NON_NEGATIVE)
EPS_ROOT = Float("eps_root", NON_NEGATIVE)
EPS_HAT = Flag("eps_hat")
NESTEROV = Flag("nesterov")
BIAS_CORRECTION = Flag("bias_correction")
STATE_FORMAT = Choice("state_format", state_formats.FORMATS)
SCALE_BY_ADAM = Spec(B1, B2, EPS, EPS_ROOT, NESTEROV, EPS_HAT, BIAS_CORRECTION, STATE_FORMAT)
ADAM = Spec(LEARNING_RATE, B1, B2, EPS, EPS_ROOT, NESTEROV, BIAS_CORRECTION, STATE_FORMAT)
ADAMW = Spec(
    LEARNING_RATE, B1, B2, EPS, EPS_ROOT, WEIGHT_DECAY, NESTEROV, BIAS_CORRECTION, STATE_FORMAT
)


class ScaleByAdamState(NamedTuple):
    count: jax.Array  # steps taken, int32, saturating
    mu: optax.Updates  # first moment m
    nu: optax.Updates  # second moment v (Adamax: the infinity norm u)
    hparams: HParams  # b1, b2, eps, eps_root


def _eps_hat_scale(hp, count):
    """`sqrt(1 - b2**t) / (1 - b1**t)`: both bias corrections moved onto the step size."""
    correction1 = tree_math.bias_correction(hp["b1"], count)
    return jnp.sqrt(tree_math.bias_correction(hp["b2"], count)) / correction1


def _first_moments(updates, state_mu, hp):
    return jax.tree.map(
        lambda g, m: tree_math.moment(g, m, hp["b1"], hp.complement("b1"), 1), updates, state_mu
    )


def _second_moments(updates, state_nu, hp):
    return jax.tree.map(
        lambda g, v: tree_math.moment(g, v, hp["b2"], hp.complement("b2"), 2), updates, state_nu
    )


def _debiased_first_moments(mu, updates, hp, count, nesterov, corrected=True):
    """m_hat = m / (1 - b1**t), or NAdam's b1 m / (1 - b1**(t+1)) + (1 - b1) g / (1 - b1**t);
    without `corrected`, m itself or b1 m + (1 - b1) g."""
    if not corrected:  # the look-ahead b1 m + (1 - b1) g is one more moment step
        return _first_moments(updates, mu, hp) if nesterov else mu
    correction = tree_math.bias_correction(hp["b1"], count)
    if not nesterov:
        return jax.tree.map(lambda m: tree_math.debias(m, correction), mu)
    ahead = tree_math.bias_correction(hp["b1"], base.increment(count))

    def leaf(m, g):
        g_hat, m_ahead = tree_math.debias(g, correction), tree_math.debias(m, ahead)
        return tree_math.moment(g_hat, m_ahead, hp["b1"], hp.complement("b1"))

    return jax.tree.map(leaf, mu, updates)


def _normalize(m_hat, v_hat, hp, like, scale=None):
    """`m_hat [* scale] / (sqrt(v_hat + eps_root) + eps)`, in the dtype of `like`'s leaves."""

    def leaf(m, v, g):
        dt = base.wider(m.dtype, v.dtype)
        root = jnp.sqrt(v.astype(dt) + hp["eps_root"].astype(dt))
        m = m.astype(dt) if scale is None else m.astype(dt) * scale.astype(dt)
        return (m / (root + hp["eps"].astype(dt))).astype(g.dtype)

    return jax.tree.map(leaf, m_hat, v_hat, like)


@errors.public("jopt.scale_by_adam")
def scale_by_adam(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
    eps_hat: bool = False,
    bias_correction: bool = True,
    state_format: str = "float",
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by Adam's bias-corrected moments; a drop-in for `optax.scale_by_adam`.

    Args:
      b1: decay rate of the first moment, in [0, 1). Paper default 0.9.
      b2: decay rate of the second moment, in [0, 1). Paper default 0.999.
      eps: added to the root of v_hat, >= 0. Paper default 1e-8.
      eps_root: added to v_hat inside the root, >= 0 (useful to differentiate through).
      mu_dtype: dtype of the first moment (default: the params' dtype).
      nesterov: NAdam's Nesterov-corrected first moment.
      nu_dtype: dtype of the second moment (default: the params' dtype).
      eps_hat: the paper's "epsilon hat" form used by Keras: eps is added to sqrt(v), not to
        sqrt(v_hat), and both bias corrections scale the step instead,
        `update = sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v + eps_root) + eps)`.
      bias_correction: False drops both corrections, `update = m / (sqrt(v + eps_root) + eps)`
        (NAdam's first moment becomes `b1 m + (1 - b1) g`), as tutorials write Adam. The first
        steps change: at t = 1 the step is (1 - b1) / sqrt(1 - b2) times Adam's (3.2 with the
        defaults), tending to Adam's as b1**t and b2**t vanish.
      state_format: how m and v are stored between steps (`jopt._src.state_formats`): "float"
        (default: mu_dtype, nu_dtype), "bfloat16" (stochastic rounding: 4 bytes per parameter)
        or "8bit" (block-wise dynamic quantization, Dettmers et al. 2022: 2.004 bytes per
        parameter; leaves under 4096 entries stay float). The step computes in float32.
    """
    fn = errors.current_function()
    bound = SCALE_BY_ADAM.bind(
        fn,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        nesterov=nesterov,
        eps_hat=eps_hat,
        bias_correction=bias_correction,
        state_format=state_format,
    )
    nesterov, eps_hat, corrected = bound["nesterov"], bound["eps_hat"], bound["bias_correction"]
    packed = bound["state_format"]
    validation.require(
        fn,
        not (nesterov and eps_hat),
        "eps_hat is not defined with nesterov.",
        argument="eps_hat",
        value=eps_hat,
    )
    validation.require(
        fn,
        corrected or not eps_hat,
        "eps_hat is a form of the bias correction: it is not defined with bias_correction=False.",
        argument="eps_hat",
        value=eps_hat,
    )
    mu_dtype = validation.check_dtype(fn, "mu_dtype", mu_dtype)
    nu_dtype = validation.check_dtype(fn, "nu_dtype", nu_dtype)
    validation.require(
        fn,
        packed == "float" or (mu_dtype is None and nu_dtype is None),
        f"mu_dtype and nu_dtype set the moments' float dtype: leave them None with "
        f"state_format={packed!r}.",
        argument="state_format",
        value=packed,
    )

    def buffers(params):
        if packed != "float":
            return {
                "mu": state_formats.initial(params, packed, signed=True),
                "nu": state_formats.initial(params, packed, signed=False),
            }
        return {"mu": base.zeros_like(params, mu_dtype), "nu": base.zeros_like(params, nu_dtype)}

    def step(updates, state, hp, count, params):
        if packed != "float":
            state_formats.check_like(fn, updates, state.mu)
            out, new = step_on_floats(
                updates,
                state._replace(
                    mu=state_formats.decode_tree(state.mu, updates, signed=True),
                    nu=state_formats.decode_tree(state.nu, updates, signed=False),
                ),
                hp,
                count,
            )
            return out, {
                "mu": state_formats.encode_tree(new["mu"], packed, True, count, 0),
                "nu": state_formats.encode_tree(new["nu"], packed, False, count, 1),
            }
        return step_on_floats(updates, state, hp, count)

    def step_on_floats(updates, state, hp, count):
        mu = _first_moments(updates, state.mu, hp)
        nu = _second_moments(updates, state.nu, hp)
        if eps_hat:
            out = _normalize(mu, nu, hp, updates, _eps_hat_scale(hp, count))
        elif not corrected:
            out = _normalize(
                _debiased_first_moments(mu, updates, hp, count, nesterov, False), nu, hp, updates
            )
        else:
            m_hat = _debiased_first_moments(mu, updates, hp, count, nesterov)
            correction2 = tree_math.bias_correction(hp["b2"], count)
            v_hat = jax.tree.map(lambda v: tree_math.debias(v, correction2), nu)
            out = _normalize(m_hat, v_hat, hp, updates)
        return out, {"mu": mu, "nu": nu}

    matches = "mu" if packed == "float" else ()
    return stateful_transform(bound, ScaleByAdamState, buffers, step, matches=matches)


def _chain(learning_rate, moments, weight_decay=None, mask=None):
    """Adam's moments (`scale_by_adam`'s arguments b1 ... state_format, in order), then the
    decoupled weight decay (AdamW, NAdamW; none for None), then the learning rate, with the
    fused step declared where the kernel computes it (bias-corrected float moments, no mask)."""
    b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype, bias_correction, packed = moments
    scale = scale_by_adam(
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype,
        nesterov=nesterov,
        nu_dtype=nu_dtype,
        bias_correction=bias_correction,
        state_format=packed,
    )
    decay = [] if weight_decay is None else [add_decayed_weights(weight_decay, mask)]
    tx = stateful.chain(scale, *decay, scale_by_learning_rate(learning_rate))
    fusible = bias_correction and packed == "float" and mask is None
    rule = fused_rules.adam(bool(decay), nesterov=nesterov) if fusible else None
    return fused.declare(tx, rule)


@errors.public("jopt.adam")
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
    bias_correction: bool = True,
    state_format: str = "float",
) -> optax.GradientTransformationExtraArgs:
    """Adam (Kingma & Ba 2015); a drop-in for `optax.adam`.

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g**2
        theta -= lr * m_hat / (sqrt(v_hat + eps_root) + eps),  x_hat = x / (1 - b**t)

    eps is outside the root as in the paper, optax and torch (Keras' Adam uses the "epsilon hat"
    form, see `jopt.keras`). `bias_correction=False` drops both corrections, as tutorials write
    Adam: `theta -= lr * m / (sqrt(v + eps_root) + eps)`. `state_format="8bit"` keeps m and v
    in 8 bits, block-wise (Dettmers et al. 2022), "bfloat16" with stochastic rounding (see
    `scale_by_adam`).
    """
    moments = (b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype, bias_correction, state_format)
    return _chain(learning_rate, moments)


@errors.public("jopt.adamw")
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
    bias_correction: bool = True,
    state_format: str = "float",
) -> optax.GradientTransformationExtraArgs:
    """AdamW, Adam with decoupled weight decay (Loshchilov & Hutter 2019); a drop-in for optax's.

        theta -= lr * (m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay * theta)

    The decay is multiplied by the learning rate, as in optax and torch (the paper's schedule
    multiplier eta_t). Warning: torch's AdamW default weight_decay is 1e-2, optax's is 1e-4.
    """
    moments = (b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype, bias_correction, state_format)
    return _chain(learning_rate, moments, weight_decay, mask)


@errors.public("jopt.nadam")
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
    bias_correction: bool = True,
    state_format: str = "float",
) -> optax.GradientTransformationExtraArgs:
    """NAdam (Dozat 2016), as optax: Adam with a Nesterov first moment and no momentum schedule.

        m_hat = b1 m / (1 - b1**(t+1)) + (1 - b1) g / (1 - b1**t)

    Warning: torch's NAdam and Keras' Nadam add a momentum schedule mu_t; see `jopt.torch` and
    `jopt.keras`.
    """
    moments = (b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype, bias_correction, state_format)
    return _chain(learning_rate, moments)


@errors.public("jopt.nadamw")
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
    bias_correction: bool = True,
    state_format: str = "float",
) -> optax.GradientTransformationExtraArgs:
    """NAdam with decoupled weight decay; a drop-in for `optax.nadamw`."""
    moments = (b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype, bias_correction, state_format)
    return _chain(learning_rate, moments, weight_decay, mask)
