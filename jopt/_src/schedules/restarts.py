"""Cosine annealing with warm restarts (SGDR; Loshchilov & Hutter 2017), in closed form.

Cycle i lasts `first_decay_steps * t_mul**i` steps and starts at `init_value * m_mul**i`:

    value = init_value * (alpha + (1 - alpha) * m_mul**i * (1 + cos(pi * f)) / 2)

with f the fraction of cycle i elapsed. This is Keras' CosineDecayRestarts exactly (alpha floors
at `alpha * init_value`, not decayed by m_mul) and torch's CosineAnnealingWarmRestarts(T_0,
T_mult, eta_min) with `m_mul=1`, `alpha=eta_min / lr`. Unlike optax's `sgdr_schedule`, it needs
no list of cycles and runs for any number of steps.
"""

from __future__ import annotations

import jax.numpy as jnp

from jopt._src import errors, validation
from jopt._src.schedules.schedule import (
    Schedule,
    as_float,
    cosine_anneal,
    divmod_steps,
    make_schedule,
)


@errors.public("jopt.cosine_decay_restarts")
def cosine_decay_restarts(
    init_value: float,
    first_decay_steps: int,
    t_mul: float = 2.0,
    m_mul: float = 1.0,
    alpha: float = 0.0,
) -> Schedule:
    """Cosine annealing restarted every cycle, cycles growing by t_mul and peaks by m_mul.

    Args:
      init_value: the value at step 0.
      first_decay_steps: the length of the first cycle (torch's T_0), an integer >= 1.
      t_mul: the factor by which each cycle is longer than the previous one (torch's T_mult),
        >= 1 (cycles that shrink would end in cycles shorter than a step).
      m_mul: the factor by which each cycle's peak is lower than the previous one, in [0, 1]
        (0: one cosine, then the floor; above 1 the peaks grow without bound).
      alpha: the floor, as a fraction of init_value, in [0, 1] (below 0 the value crosses
        zero, above 1 each cycle rises instead of decaying).

    Keras' CosineDecayRestarts accepts any m_mul and alpha, and torch's
    CosineAnnealingWarmRestarts any eta_min (alpha = eta_min / lr > 1 when eta_min > lr);
    jopt does not.
    """
    fn = errors.current_function()
    init_value = validation.check_number(fn, "init_value", init_value, validation.ANY_FINITE)
    first = validation.check_int(fn, "first_decay_steps", first_decay_steps, 1)
    t_mul = validation.check_number(fn, "t_mul", t_mul, validation.Range(1.0))
    m_mul = validation.check_number(fn, "m_mul", m_mul, validation.UNIT)
    alpha = validation.check_number(fn, "alpha", alpha, validation.UNIT)

    def schedule(step):
        t = as_float(step)
        if t_mul == 1.0:
            cycle, since = divmod_steps(step, first)
            fraction = since / first
        else:
            # Cycle c starts at step first * (t_mul**c - 1) / (t_mul - 1). The logarithm finds
            # c to within one; the check that fixes it multiplies instead of dividing, exact for
            # integer or dyadic t_mul (2, 3, 1.5...), so a restart lands on its step under jit.
            d = t_mul - 1
            cycle = jnp.floor(jnp.log1p(t * d / first) / jnp.log(t_mul))
            scaled = t * d  # compared with first * (t_mul**c - 1) = d * (start of cycle c)
            cycle = jnp.where(first * (t_mul**cycle - 1) > scaled, cycle - 1, cycle)
            cycle = jnp.where(first * (t_mul ** (cycle + 1) - 1) <= scaled, cycle + 1, cycle)
            fraction = (scaled - first * (t_mul**cycle - 1)) / (d * first * t_mul**cycle)
            fraction = jnp.clip(fraction, 0, 1)  # beyond 2**24 in float32, t is not exact
        peak = m_mul**cycle
        return init_value * (alpha + (1 - alpha) * peak * cosine_anneal(1.0, 0.0, fraction))

    return make_schedule(schedule)
