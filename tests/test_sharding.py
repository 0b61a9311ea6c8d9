"""Optimizer state follows the params' sharding, on 8 simulated CPU devices
(`tests/multi_device_checks.py`, run in a process of its own: XLA fixes the device count when it
starts):

- `tx.init(params)` puts each param-shaped buffer on its param's devices with its sharding, and
  so does `jax.jit(tx.init, out_shardings=jopt.state_shardings(tx, params))`;
- 20 jitted steps on sharded params are one device's bitwise (within an ulp per step for the two
  optimizers that sum over a leaf), and the state stays sharded;
- `jopt.train_step` data-parallel (the batch over 4 devices) with the weights' columns over 2
  gives one device's params to float32 rounding;
- 8-bit Adam's codes are sharded as their params (eagerly, under jit and after 20 steps), and
  its sharded trajectory is one device's bitwise;
- the fused kernels update each device's shards: `jopt.train_step(fused=True)` on sharded params
  is one device's fused step bitwise, keeps the state sharded and gathers nothing, also under
  `jax.vmap`.
"""

from __future__ import annotations

import pytest

from tests.simulated_devices import run_checks


@pytest.fixture(scope="module")
def checks():
    return run_checks("tests.multi_device_checks")


def test_the_checks_ran_on_eight_devices(checks):
    assert checks["devices"] == 8


@pytest.mark.parametrize(
    "check", ["eager_init", "jit_init", "trajectory", "data_parallel", "eight_bit", "fused"]
)
def test_sharding_check(checks, check):
    assert checks[check] == []
