"""jopt.torch.Muon and jopt.keras.Muon against the real torch.optim.Muon and keras.optimizers.Muon.

Golden (no torch or Keras needed): `tests/golden/muon/{torch,keras}.{json,npz}`, made by
`python -m tests.golden.make_muon_fixtures` (200 steps, every 10th recorded): torch's in float64
on a wide and a tall matrix, Keras' in float64 and float32 on leaves named as a model's layers,
so that its path rules (embeddings and `exclude_layers` to AdamW) are exercised. Each twin, given
the case's arguments, reproduces every recorded iterate: |x - x_framework| <= 1e-10 *
max(1, |x_framework|) in float64, 1e-5 * max(1, |x_framework|) in float32.

Live (where torch or Keras is installed): the same on a problem drawn at test time, and torch's
bfloat16 Newton-Schulz iteration against jopt's emulation of it, bit for bit.

Refusals: torch's (a parameter that is not a matrix, an unknown adjust_lr_fn, ns_steps >= 100,
not three coefficients), and a Keras `exclude_layers` given as one string.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt._src.conventions.keras_muon import Muon as KerasMuon
from jopt._src.conventions.torch_muon import Muon as TorchMuon
from jopt._src.conventions.torch_muon import newton_schulz_bf16
from tests import conventions, helpers
from tests.golden import make_muon_fixtures as gen
from tests.golden.make_optimizer_fixtures import Case, problem

FIXTURES = Path(__file__).resolve().parents[1] / "golden" / "muon"
TWINS = {"torch": TorchMuon, "keras": KerasMuon}
HAS = {name: importlib.util.find_spec(name) is not None for name in ("torch", "keras")}


@functools.cache
def _golden(framework: str) -> tuple[dict, dict[str, np.ndarray]]:
    manifest = json.loads((FIXTURES / f"{framework}.json").read_text())
    with np.load(FIXTURES / f"{framework}.npz") as data:
        return manifest, dict(data)


def _tree(framework: str, vectors: list[np.ndarray], dtype):
    """The twin's params: a tuple of matrices (torch), or the dict of named layers (Keras)."""
    leaves = [jnp.asarray(v, dtype) for v in vectors]
    if framework == "torch":
        return tuple(leaves)
    tree: dict[str, dict[str, jax.Array]] = {}
    for (path, _), leaf in zip(gen.KERAS_LEAVES, leaves, strict=True):
        scope, name = path.split("/")
        tree.setdefault(scope, {})[name] = leaf
    return tree


def run_twin(framework: str, case: Case, dtype: str, prob: dict[str, np.ndarray], steps: int):
    """The jopt twin of `case` over `steps` steps: iterates every gen.EVERY, flat (k, n)."""
    shapes = gen.TORCH_SHAPES if framework == "torch" else gen.KERAS_SHAPES
    kwargs = dict(case.kwargs)
    if "ns_coefficients" in kwargs:
        kwargs["ns_coefficients"] = tuple(kwargs["ns_coefficients"])
    lr_name = "lr" if framework == "torch" else "learning_rate"
    with jax.enable_x64(dtype == "float64"):
        a, c, x0 = (
            _tree(framework, conventions.split(prob[k], shapes), dtype) for k in ("a", "c", "x0")
        )

        def grad(params):
            return jax.tree.map(lambda p, ai, ci: ai * (p - ci), params, a, c)

        tx = TWINS[framework](**{lr_name: case.lr}, **kwargs)
        trajectory, _ = helpers.run_jopt(tx, grad, x0, steps)
        flat = np.concatenate(
            [np.asarray(x, np.float64).reshape(steps + 1, -1) for x in jax.tree.leaves(trajectory)],
            axis=1,
        )
    return flat[:: gen.EVERY]


GOLDEN = [
    pytest.param(framework, Case(**raw), dtype, id=f"{framework}-{raw['id']}-{dtype}")
    for framework in ("torch", "keras")
    for raw in _golden(framework)[0]["cases"]
    for dtype in _golden(framework)[0]["dtypes"]
]


@pytest.mark.parametrize(("framework", "case", "dtype"), GOLDEN)
def test_twin_reproduces_the_frameworks_recorded_trajectory(framework, case, dtype):
    manifest, arrays = _golden(framework)
    prob = {k: arrays[f"problem{case.seed}/{k}"] for k in ("a", "c", "x0")}
    got = run_twin(framework, case, dtype, prob, manifest["steps"])
    want = arrays[f"{case.id}/{dtype}/iterates"].astype(np.float64)
    conventions.assert_trajectories_match(got, want, dtype, f"{framework} {case.id}")


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_fixtures_are_the_generators_current_cases_and_do_not_amplify_rounding(framework):
    manifest, _ = _golden(framework)
    cases = gen.TORCH_CASES if framework == "torch" else gen.KERAS_CASES
    remake = "remake them: python -m tests.golden.make_muon_fixtures"
    assert manifest["cases"] == json.loads(json.dumps([dataclasses.asdict(c) for c in cases]))
    assert (manifest["steps"], manifest["every"]) == (gen.STEPS, gen.EVERY), remake
    assert manifest["dtypes"] == list(gen.DTYPES[framework]), remake
    for case_id, amplification in manifest["amplification"].items():
        for dtype, value in amplification.items():
            assert value <= conventions.MAX_AMPLIFICATION[dtype], (case_id, dtype, value)


# -- live -------------------------------------------------------------------------------------

LIVE_SEED = 7  # a problem no fixture uses


@pytest.mark.skipif(not HAS["torch"], reason="needs torch")
def test_torch_muon_live_on_a_fresh_problem():
    case = Case("live", "Muon", 0.003, {"momentum": 0.9, "weight_decay": 0.05}, seed=LIVE_SEED)
    want = gen.run_torch(case, "float64", 100, gen.EVERY)["iterates"]
    got = run_twin("torch", case, "float64", problem(LIVE_SEED, gen.TORCH_SHAPES), 100)
    conventions.assert_trajectories_match(got, want, "float64", "torch live")


@pytest.mark.skipif(not HAS["torch"], reason="needs torch")
def test_the_bfloat16_iteration_is_torchs_bit_for_bit():
    import torch
    from torch.optim._muon import _zeropower_via_newtonschulz

    rng = np.random.default_rng(0)
    coefficients = (3.4445, -4.7750, 2.0315)
    iterate = jax.jit(lambda m: newton_schulz_bf16(m, coefficients, 5, jnp.float32(1e-7)))
    for shape in [(2, 5), (5, 2)]:  # wide, and tall (transposed inside)
        for _ in range(20):
            g = rng.normal(size=shape) * 10 ** rng.uniform(-3, 2)
            want = _zeropower_via_newtonschulz(torch.tensor(g), coefficients, 5, 1e-7)
            with jax.enable_x64(True):
                got = np.asarray(iterate(jnp.asarray(g)), np.float64)
            np.testing.assert_array_equal(got, want.double().numpy())


@pytest.mark.skipif(not HAS["keras"], reason="needs keras")
def test_keras_muon_live_on_a_fresh_problem():
    case = Case(
        "live",
        "Muon",
        2**-9,
        {"exclude_layers": ["dense"], "adam_weight_decay": 0.01, "momentum": 0.9},
        seed=LIVE_SEED,
    )
    want = gen.run_keras_subprocess([case], "float64", 100, gen.EVERY)["live"]["iterates"]
    got = run_twin("keras", case, "float64", problem(LIVE_SEED, gen.KERAS_SHAPES), 100)
    conventions.assert_trajectories_match(got, want, "float64", "keras live")


# -- refusals and path rules ------------------------------------------------------------------


def test_torch_muon_refuses_parameters_that_are_not_matrices_at_init():
    tx = TorchMuon(lr=0.01)
    with pytest.raises(ValueError) as raised:
        tx.init({"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)})
    assert str(raised.value).startswith(
        "jopt.torch.Muon: Muon only supports 2D parameters whereas we found a parameter with "
        "size: (3,) (at ['b'])."
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"adjust_lr_fn": "rms"},
            "adjust_lr_fn must be one of 'original', 'match_rms_adamw', got 'rms'.",
        ),
        (
            {"ns_steps": 100},
            "ns_steps must be less than 100, got 100 (torch: 'Number of steps must be less "
            "than 100 for computational efficiency').",
        ),
        (
            {"ns_coefficients": (1.0, 2.0)},
            "ns_coefficients must be a tuple of exactly 3 values, got (1.0, 2.0).",
        ),
        ({"weight_decay": -0.1}, "weight_decay must be >= 0, got -0.1."),
    ],
    ids=["adjust_lr_fn", "ns_steps", "coefficients", "weight_decay"],
)
def test_torch_muon_refuses_what_torch_refuses_at_construction(kwargs, message):
    with pytest.raises(jopt.ArgumentError) as raised:
        TorchMuon(lr=0.01, **kwargs)
    assert str(raised.value) == "jopt.torch.Muon: " + message


def test_keras_muon_refuses_exclude_layers_given_as_one_string():
    with pytest.raises(jopt.ArgumentTypeError, match="jopt.keras.Muon: exclude_layers must be"):
        KerasMuon(exclude_layers="head")


def test_keras_muon_gives_embeddings_excluded_layers_and_non_matrices_to_adamw():
    params = {
        "dense": {"bias": jnp.zeros(4), "kernel": jnp.zeros((2, 4))},
        "token_Embedding": {"table": jnp.zeros((3, 2))},
        "head": {"kernel": jnp.zeros((4, 3))},
    }
    state = KerasMuon(exclude_layers=["^head/"]).init(params)
    velocities = state[0].velocities
    assert isinstance(velocities["dense"]["kernel"], jax.Array) is False  # Muon's: no velocity
    assert velocities["dense"]["bias"].shape == (4,)
    assert velocities["token_Embedding"]["table"].shape == (3, 2)
    assert velocities["head"]["kernel"].shape == (4, 3)
    kept = KerasMuon(exclude_embeddings=False).init(params)[0].velocities
    assert not isinstance(kept["token_Embedding"]["table"], jax.Array)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": -1.0}, "learning_rate must be >= 0, got -1.0."),
        ({"momentum": 1.0}, "momentum must be in [0, 1), got 1.0."),
        ({"adam_beta_1": 1.0}, "adam_beta_1 must be in [0, 1), got 1.0."),
        ({"adam_beta_2": -0.1}, "adam_beta_2 must be in [0, 1), got -0.1."),
        ({"epsilon": -1e-7}, "epsilon must be >= 0, got -1e-07."),
        ({"weight_decay": -0.1}, "weight_decay must be >= 0, got -0.1."),
        ({"adam_weight_decay": -0.1}, "adam_weight_decay must be >= 0, got -0.1."),
        ({"adam_lr_ratio": -1.0}, "adam_lr_ratio must be >= 0, got -1.0."),
        ({"rms_rate": -0.2}, "rms_rate must be >= 0, got -0.2."),
        ({"ns_steps": -1}, "ns_steps must be an integer >= 0, got -1."),
        ({"muon_a": float("nan")}, "muon_a must be a finite number, got nan."),
        (
            {"clipnorm": 1.0, "clipvalue": 0.5},
            "only one of clipnorm, clipvalue and global_clipnorm may be set, got clipnorm=1.0, "
            "clipvalue=0.5.",
        ),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_keras_muon_refuses_bad_numbers_under_keras_names(kwargs, message):
    with pytest.raises(jopt.ArgumentError) as raised:
        KerasMuon(**kwargs)
    assert str(raised.value) == "jopt.keras.Muon: " + message
