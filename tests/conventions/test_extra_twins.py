"""Behaviours of jopt.torch's ASGD, Rprop and Adafactor and jopt.keras' Ftrl, Lamb, Adafactor and
ScheduleFreeAdamW that the golden and live trajectories do not isolate (their numbers are
checked there, against the real torch and Keras).

- torch's Rprop reads lr once, at its first step: a schedule's later values change nothing, and
  an lr above step_sizes[1] is clamped to it;
- torch's ASGD computes a step's size at the end of the step before: its schedule is read one
  step late (jopt.asgd reads it at the step itself);
- Keras' Adafactor factors the last two axes of every leaf of two axes or more, and ignores
  `relative_step`; the schedule-free average x of Keras' ScheduleFreeAdamW is read with
  jopt.schedule_free_eval_params, its weight decay wrapped around it.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import pytest

import jopt
from jopt._src import base
from jopt._src.transforms.asgd import asgd
from jopt._src.transforms.schedule_free import ScheduleFreeState
from tests import helpers

STEPS = 30


def _trajectory(tx, dtype=jnp.float32):
    _, grad, start = helpers.random_problem(0)
    return helpers.run_jopt(tx, grad, start(dtype), STEPS)


def test_torch_rprop_reads_lr_once_and_clamps_it_to_the_largest_step_size():
    schedule = jopt.torch.ExponentialLR(0.02, gamma=0.5)
    chex.assert_trees_all_equal(
        _trajectory(jopt.torch.Rprop(schedule))[0], _trajectory(jopt.torch.Rprop(0.02))[0]
    )
    sizes = (1e-6, 0.05)
    chex.assert_trees_all_equal(
        _trajectory(jopt.torch.Rprop(3.0, step_sizes=sizes))[0],
        _trajectory(jopt.torch.Rprop(0.05, step_sizes=sizes))[0],
    )


def test_torch_asgd_reads_its_schedule_one_step_late():
    def schedule(count):
        return 0.05 * 0.9 ** count.astype(jnp.float32)

    def late(count):
        return schedule(jnp.maximum(count - 1, 0))

    twin = jopt.torch.ASGD(schedule, lambd=0.05, t0=5.0)
    chex.assert_trees_all_equal(_trajectory(twin)[0], _trajectory(asgd(late, l2=0.05, t0=5.0))[0])


def test_keras_adafactor_factors_the_last_two_axes_and_ignores_relative_step():
    params = {"k": jnp.ones((4, 3, 2)), "m": jnp.ones((2, 5)), "b": jnp.ones(3), "s": jnp.ones(())}
    state = jopt.keras.Adafactor().init(params)
    moments = state[0].direction_state
    shapes = jax.tree.map(jnp.shape, (moments.row, moments.col, moments.v))
    assert shapes == (
        {"k": (4, 3), "m": (2,), "b": (1,), "s": (1,)},
        {"k": (4, 2), "m": (5,), "b": (1,), "s": (1,)},
        {"k": (1,), "m": (1,), "b": (3,), "s": ()},
    )
    chex.assert_trees_all_equal(
        _trajectory(jopt.keras.Adafactor(0.05, relative_step=False))[0],
        _trajectory(jopt.keras.Adafactor(0.05))[0],
    )


@pytest.mark.parametrize("weight_decay", [None, 0.05])
def test_keras_schedule_free_average_is_read_by_schedule_free_eval_params(weight_decay):
    with jax.enable_x64(True):
        tx = jopt.keras.ScheduleFreeAdamW(0.01, beta_1=0.8, weight_decay=weight_decay)
        trajectory, state = _trajectory(tx, jnp.float64)
        y = jax.tree.map(lambda x: x[-1], trajectory)
        z = base.single_state("test", state, ScheduleFreeState, "schedule-free state").z
        want = jax.tree.map(lambda yi, zi: (yi - (1 - 0.8) * zi) / 0.8, y, z)
        chex.assert_trees_all_close(jopt.schedule_free_eval_params(state, y), want, rtol=1e-14)


def test_torch_adafactor_refuses_complex_parameters():
    message = r"jopt\.torch\.Adafactor: the parameter at \['w'\] is complex"
    with pytest.raises(TypeError, match=message):
        jopt.torch.Adafactor().init({"w": jnp.ones((2, 2), jnp.complex64)})
