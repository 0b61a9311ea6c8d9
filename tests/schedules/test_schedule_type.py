"""Schedules are `jopt.Schedule`s: named after the call that built them, carrying what a torch
scheduler carries (its base learning rate, the momentum cycle of OneCycleLR and CyclicLR), kept
by every combinator that can keep it and refused, with an error naming the argument, by those
that cannot (never dropped in silence).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jopt

CYCLE = jopt.torch.OneCycleLR(0.1, total_steps=100)  # cycles the momentum (torch's default)
FLAT_CYCLE = jopt.torch.OneCycleLR(0.1, total_steps=100, cycle_momentum=False)
WARMUP = jopt.torch.LinearLR(0.1, start_factor=0.1, total_iters=5)


def test_every_schedule_is_a_schedule_named_after_its_call():
    cosine = jopt.cosine_decay_schedule(0.1, 100, alpha=0.1)
    assert isinstance(cosine, jopt.Schedule)
    assert repr(cosine) == "jopt.cosine_decay_schedule(0.1, 100, alpha=0.1)"
    # Built on other schedules, a schedule is named after the call the user made.
    warm = jopt.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100)
    assert repr(warm) == "jopt.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100)"
    assert repr(jopt.torch.StepLR(0.1, 3)) == "jopt.torch.StepLR(0.1, 3)"
    for schedule in (cosine, warm, CYCLE, jopt.keras.CosineDecay(0.1, 10)):
        assert isinstance(schedule, jopt.Schedule)
        assert schedule(jnp.arange(4)).shape == (4,)


def test_torch_schedulers_carry_their_base_learning_rate_and_momentum_cycle():
    assert CYCLE.base_lr == 0.1 / 25 and isinstance(CYCLE.momentum, jopt.Schedule)
    assert FLAT_CYCLE.momentum is None and WARMUP.base_lr == 0.1
    np.testing.assert_allclose(CYCLE.momentum(jnp.array([0, 99])), [0.95, 0.95], rtol=1e-6)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: jopt.torch.SequentialLR([WARMUP, CYCLE], [5]), "schedulers[1]"),
        (lambda: jopt.torch.ChainedScheduler([CYCLE, WARMUP]), "schedulers[0]"),
        (lambda: jopt.join_schedules([WARMUP, CYCLE], [5]), "schedules[1]"),
        (lambda: jopt.multiply_schedules(WARMUP, CYCLE), "schedules[1]"),
        (lambda: jopt.with_warmup(CYCLE, 10), "schedule"),
    ],
    ids=["SequentialLR", "ChainedScheduler", "join_schedules", "multiply_schedules", "with_warmup"],
)
def test_a_combinator_that_cannot_keep_a_momentum_cycle_refuses_it(build, argument):
    with pytest.raises(jopt.ArgumentError, match="cycles the momentum") as raised:
        build()
    assert raised.value.argument == argument
    assert "cycle_momentum=False" in str(raised.value)


def test_combinators_keep_what_they_can():
    joined = jopt.torch.SequentialLR([WARMUP, FLAT_CYCLE], [5])
    assert joined.base_lr == 0.1 and joined.momentum is None
    assert jopt.multiply_schedules(WARMUP, jopt.torch.StepLR(0.1, 3)).base_lr == 0.1
    assert jopt.multiply_schedules(WARMUP, jopt.torch.StepLR(0.2, 3)).base_lr is None
    assert jopt.with_warmup(CYCLE, 0) is CYCLE  # no warmup: the schedule itself
    stepped = jopt.per_epoch(CYCLE, 4)
    assert stepped.base_lr == CYCLE.base_lr and stepped.momentum is not None


def test_a_torch_optimizer_given_a_joined_schedule_without_a_cycle_keeps_its_momentum():
    params = jnp.ones(2)
    tx = jopt.torch.SGD(lr=jopt.torch.SequentialLR([WARMUP, FLAT_CYCLE], [5]), momentum=0.9)
    state = tx.init(params)
    for _ in range(8):
        _, state = tx.update(jnp.ones(2), state, params)
        assert jopt.get_hparams(state)["momentum"] == jnp.float32(0.9)


def test_a_plain_function_works_wherever_a_schedule_does():
    assert isinstance(jopt.with_warmup(lambda step: 0.1 + 0 * step, 0), jopt.Schedule)
    joined = jopt.join_schedules([lambda s: 0.1 + 0 * s, jopt.constant_schedule(0.2)], [3])
    np.testing.assert_allclose(joined(jnp.arange(5)), [0.1, 0.1, 0.1, 0.2, 0.2])
    assert joined.base_lr is None and joined.momentum is None
