"""Learning-rate and hyperparameter schedules: `Schedule`s, pure functions `step -> value`.

Any jopt hyperparameter accepts one (learning rate, momentum, betas, weight decay...), and any
function `step -> value` (an optax schedule, a lambda). `jopt.torch` and `jopt.keras` hold the
frameworks' schedulers under their own names.
"""

from jopt._src.schedules.compose import (
    join_schedules,
    multiply_schedules,
    per_epoch,
    piecewise_constant,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    piecewise_linear,
)
from jopt._src.schedules.cyclic import (
    cosine_onecycle_schedule,
    cyclic_momentum,
    cyclic_schedule,
    one_cycle_momentum,
    one_cycle_schedule,
)
from jopt._src.schedules.decay import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    inverse_time_decay,
    linear_schedule,
    multistep_decay,
    polynomial_schedule,
    step_decay,
)
from jopt._src.schedules.restarts import cosine_decay_restarts
from jopt._src.schedules.schedule import Schedule
from jopt._src.schedules.warmup import (
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
    with_warmup,
)

__all__ = [
    "Schedule",
    "constant_schedule",
    "cosine_decay_restarts",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "cyclic_momentum",
    "cyclic_schedule",
    "exponential_decay",
    "inverse_time_decay",
    "join_schedules",
    "linear_schedule",
    "multiply_schedules",
    "multistep_decay",
    "one_cycle_momentum",
    "one_cycle_schedule",
    "per_epoch",
    "piecewise_constant",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "piecewise_linear",
    "polynomial_schedule",
    "step_decay",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "with_warmup",
]
