"""Every optimizer against its independent NumPy float64 reference, over 1000 steps.

float64: |x - x_ref| <= 1e-12 * max(1, |x_ref|) at every step and coordinate.
float32: |x - x_ref| <= 1e-5 * max(1, |x_ref|).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import pytest

from tests import helpers

STEPS = helpers.TRAJECTORY_STEPS
TOLERANCE = {jnp.float64: 1e-12, jnp.float32: 1e-5}


@functools.cache
def _reference(case_id: str) -> np.ndarray:
    case = helpers.CASES_BY_ID[case_id]
    problem = helpers.random_problem(case.seed)[0]
    loss = {"value_fn": problem.value} if case.reads_value else {}
    return np.stack(case.reference(problem.grad, problem.x0, STEPS, **loss, **case.ref_kwargs))


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", helpers.CASES, ids=repr)
def test_trajectory_matches_float64_reference(case, dtype):
    got, _ = helpers.case_trajectories(case.id, jnp.dtype(dtype).name)
    want = _reference(case.id)
    error = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    worst = np.unravel_index(np.argmax(error), error.shape)
    assert error.max() <= TOLERANCE[dtype], (
        f"{case.id} ({np.dtype(dtype).name}): relative error {error.max():.3g} at step "
        f"{worst[0]}, coordinate {worst[1]}"
    )
