"""Mechanic (Cutkosky, Defazio & Mehta 2023, "Mechanic: A Learning Rate Tuner", Algorithm 1): a
wrapper that learns the scale of any optimizer's updates, a learning-rate multiplier s, by coin
betting on the direction of the base optimizer's summed updates.

With u_t the base optimizer's update, x_ref the params at the first update, n = num_betas,
beta_j = 1 - 0.1**j (j = 1..n; 0.9, 0.99, ...) and, per beta, s = s_init, m = v = r = 0 at
first; the memory-efficient form recovers Delta_t, the base's summed updates, from the params:

    S       = sum_j s_j
    Delta_t = (x_t - x_ref) / (S + eps)
    gt      = g + weight_decay * S * ||g|| / (||x_t|| + eps) * x_t
    h       = <gt, Delta_t>
    r       = max(0, beta r - clip(h, -m, m) s)      (the clip with the m before this step)
    m       = max(beta m, |h| + eps)
    v       = beta^2 v + h^2
    s       = (s_init / n * m + r) / (sqrt(v) + eps)
    x_{t+1} = x_ref + (sum_j s_j) (Delta_t + u_t)

`form="optax"` (default) is `optax.contrib.mechanize`, bitwise. optax clips h in the reward's
update, an addition the authors made after the paper (optax's comment says so); `form="paper"`
does not clip: r = max(0, beta r - h s). The eps placements are optax's in both forms.

`update` returns x_{t+1} - x_t and needs the params. `weight_decay` here is Mechanic's own, which
keeps s from growing without bound (not the base optimizer's). Its hyperparameters are in the
state as `mechanic_weight_decay`, `mechanic_eps` and `mechanic_s_init`, named apart from the base
optimizer's (an Adam's `eps`), whose hyperparameters stay readable and settable through
`jopt.get_hparams` and `jopt.set_hparams` on the whole state. s starts at the constructor's
s_init (set at `init`); the state's `mechanic_s_init` is the one in the wealth at every step.
Complex parameters are refused.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, per_leaf, stateful, validation
from jopt._src.hparams import HParams
from jopt._src.spec import Bound, Choice, Float, Int, Spec
from jopt._src.transforms import distance
from jopt._src.validation import NON_NEGATIVE, POSITIVE

# The declarations under the arguments' names (what construction checks) and the state's names.
ARGUMENTS = Spec(
    Float("weight_decay", NON_NEGATIVE),
    Float("eps", POSITIVE),
    Float("s_init", POSITIVE),
    Int("num_betas", minimum=1, in_state=False),
    Choice("form", ("optax", "paper")),
)
IN_STATE = {
    "weight_decay": "mechanic_weight_decay",
    "eps": "mechanic_eps",
    "s_init": "mechanic_s_init",
}


class MechanicState(NamedTuple):
    base_optimizer_state: Any  # the base optimizer's state
    count: jax.Array  # Mechanic's steps taken, int32, saturating
    r: jax.Array  # the reward per beta, (num_betas,)
    m: jax.Array  # the largest |h| per beta (decayed)
    v: jax.Array  # the second moment of h per beta
    s: jax.Array  # the scale per beta (s_init at init); the step uses sum(s)
    x0: optax.Params  # x_ref, the params at the first update
    hparams: HParams  # mechanic_weight_decay, mechanic_eps, mechanic_s_init


@functools.cache
def _share_of(num_betas: int):
    """s_init -> s_init / num_betas, the same function for the same num_betas (it is part of the
    state's static data): computed from the value given in float64, as optax computes it."""

    def share(s_init):
        return s_init / num_betas

    return share


def _spec(num_betas: int) -> Spec:
    return Spec(
        Float(IN_STATE["weight_decay"], NON_NEGATIVE),
        Float(IN_STATE["eps"], POSITIVE),
        Float(IN_STATE["s_init"], POSITIVE),
        derived={"s_init/num_betas": (IN_STATE["s_init"], _share_of(num_betas))},
    )


@errors.public("jopt.mechanize")
def mechanize(
    base_optimizer: optax.GradientTransformation,
    weight_decay: float = 1e-2,
    eps: float = 1e-8,
    s_init: float = 1e-6,
    num_betas: int = 6,
    *,
    form: str = "optax",
) -> optax.GradientTransformationExtraArgs:
    """Mechanic around `base_optimizer`: its updates scaled by a learned factor; a drop-in for
    `optax.contrib.mechanize`. See the module docstring.

    Give the base optimizer its usual learning rate (or schedule) with a peak of about 1: Mechanic
    learns the multiplier. Tested by the authors with SGD, momentum, Adam and Lion bases.

    Args:
      base_optimizer: the optimizer whose updates are scaled.
      weight_decay: Mechanic's decay of the scale, >= 0 (not the base's). Default 1e-2.
      eps: > 0, in every denominator and in m. Default 1e-8.
      s_init: the initial scale, > 0 (and the weight of m in the wealth). Default 1e-6.
      num_betas: how many decay rates beta_j = 1 - 0.1**j run side by side, an integer >= 1
        (it sets the shape of the state). Default 6.
      form: "optax" (default, h clipped in the reward) or "paper" (not clipped).
    """
    fn = errors.current_function()
    validation.check_transform(fn, "base_optimizer", base_optimizer)
    checked = ARGUMENTS.check(
        fn, weight_decay=weight_decay, eps=eps, s_init=s_init, num_betas=num_betas, form=form
    )
    count_betas, paper = checked["num_betas"], checked["form"] == "paper"
    bound = Bound(_spec(count_betas), fn, {IN_STATE[k]: checked[k] for k in IN_STATE})
    own_meta = bound.init().meta
    tx = optax.with_extra_args_support(base_optimizer)
    wd_name, eps_name = IN_STATE["weight_decay"], IN_STATE["eps"]

    def init_fn(params):
        base.check_inexact(fn, params, "parameter")
        distance.check_real(fn, params, "Mechanic's scale is learned from real inner products.")
        dtype = distance.scalar_dtype(params)
        zeros = jnp.zeros([count_betas], dtype)
        return MechanicState(
            base_optimizer_state=tx.init(params),
            count=base.zero_count(),
            r=zeros,
            m=zeros,
            v=zeros,
            s=jnp.full([count_betas], checked["s_init"], dtype),
            x0=distance.copy(params),
            hparams=bound.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        base.check_inexact(fn, updates, "gradient")
        if type(state) is not MechanicState or state.hparams.meta != own_meta:
            expected = f"a MechanicState ({stateful._hparams_of(own_meta)})"
            raise stateful.foreign_state(fn, state, expected)
        if params is None:
            raise ValueError(f"{fn}: needs the params: call update(updates, state, params).")
        base.check_tree(fn, updates, state.x0, "state's x0")
        base.check_tree(fn, updates, params, "params", dtypes=True)
        inner, inner_state = tx.update(updates, state.base_optimizer_state, params, **extra_args)
        hp = state.hparams
        dt = state.s.dtype
        first = state.count == 0
        eps = hp[eps_name].astype(dt)
        x = jax.tree.map(lambda p: p.astype(dt), params)
        x0 = jax.tree.map(lambda p, q: jnp.where(first, p, q.astype(dt)), x, state.x0)
        # state.s, not a `where` at the first update: the same values, but XLA then fuses the
        # reward's update differently and rounds it an ulp away from optax's.
        s_old = state.s

        s_sum = jnp.sum(s_old)
        grad_norm = jnp.sqrt(distance.squared_norm(updates, dt))
        param_norm = jnp.sqrt(distance.squared_norm(x, dt))
        decay = hp[wd_name].astype(dt)

        def decayed(g, p):
            return g.astype(dt) + decay * s_sum * grad_norm / (param_norm + eps) * p

        grads = jax.tree.map(decayed, updates, x)
        delta_prev = jax.tree.map(lambda p, p0: (p0 - p) / (s_sum + eps), x, x0)
        delta = jax.tree.map(lambda d, u: d - u.astype(dt), delta_prev, inner)
        h = distance.vdot(grads, delta_prev, dt)
        betas = jnp.array([1.0 - 0.1**j for j in range(1, count_betas + 1)], dtype=dt)
        bet = h if paper else jax.lax.clamp(-state.m, jnp.ones_like(state.m) * h, state.m)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = (betas**2) * state.v + h**2
        r = betas * state.r + bet * s_old
        wealth = hp.derived["s_init/num_betas"].astype(dt) * m + jnp.maximum(0.0, r)
        s = wealth / (jnp.sqrt(v) + eps)
        total = jnp.sum(s)
        out = jax.tree.map(
            lambda p0, d, p, g: ((p0 - total * d) - p).astype(g.dtype), x0, delta, x, updates
        )
        x0 = base.cast_like(x0, state.x0)
        return out, MechanicState(inner_state, base.increment(state.count), r, m, v, s, x0, hp)

    wrapped = optax.GradientTransformationExtraArgs(init_fn, update_fn)
    return per_leaf.inherit(wrapped, base_optimizer)
