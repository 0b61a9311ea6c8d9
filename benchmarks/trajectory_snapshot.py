"""Trajectories of every optimizer, twin and schedule, to compare two versions of jopt bit for bit.

    python benchmarks/trajectory_snapshot.py write OUT.npz       # in each checkout
    python benchmarks/trajectory_snapshot.py compare A.npz B.npz

`write` runs, through the public API, every example of the registry (`jopt._src.registry`)
alone and under four schedules, every jopt.torch and jopt.keras case of the golden fixtures, and
a few wrappers and chains, 300 jitted steps each in float32 and in float64, and records the
iterates, the final hyperparameters and the schedules' values; and, for every example, the
compiled program of one jitted step on a tree of 100 leaves (XLA's instructions, without the
debug metadata that names source lines). `compare` says which arrays differ (dtype or any bit)
and which programs: the same program runs at the same speed, so a refactoring that leaves the
programs equal cannot have slowed a step. A refactoring that should not move the numbers (or a
fast path that must equal its plain twin) shows it here: zero differing arrays.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from any directory
import jopt  # noqa: E402

STEPS = 300
SCHEDULES = {
    "cos": lambda: jopt.cosine_decay_schedule(0.1, 200, 0.1),
    "warm": lambda: jopt.warmup_cosine_decay_schedule(0.0, 0.1, 20, 200),
    "exp": lambda: jopt.exponential_decay(0.1, 10, 0.9),
    "onecycle": lambda: jopt.one_cycle_schedule(300, 0.1),
}


def _examples() -> list[tuple[str, str, dict]]:
    """(id, optimizer name, arguments) of every registry example."""
    try:
        from jopt._src import registry
    except ImportError:  # a version before the registry: the test cases it replaced
        from tests import helpers

        return [(case.id, case.make.__name__, dict(case.kwargs)) for case in helpers.CASES]

    return [
        (case_id, name, dict(example.kwargs))
        for name, entry in registry.OPTIMIZERS.items()
        for case_id, example in entry.examples.items()
    ]


def _problem(dtype: str):
    rng = np.random.default_rng(0)
    shapes = ((3,), (2, 4))
    a = [jnp.asarray(rng.uniform(0.5, 2, s), dtype) for s in shapes]
    c = [rng.normal(size=s) for s in shapes]
    x0 = tuple(jnp.asarray(ci + rng.uniform(0.5, 1.5, ci.shape), dtype) for ci in c)
    c = [jnp.asarray(ci, dtype) for ci in c]

    def grad(params):
        return tuple(
            ai * (p - ci) + 0.1 * jnp.tanh(p) for p, ai, ci in zip(params, a, c, strict=True)
        )

    return x0, grad


def _run(tx, dtype: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    x0, grad = _problem(dtype)

    def body(carry, _):
        params, state = carry
        updates, state = tx.update(grad(params), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), jnp.concatenate([p.reshape(-1) for p in params])

    @jax.jit
    def run(params):
        (_, state), trajectory = jax.lax.scan(body, (params, tx.init(params)), None, length=STEPS)
        return trajectory, state

    trajectory, state = run(x0)
    try:
        held = jopt.get_hparams(state)
    except ValueError:  # a name held twice (a wrapper's eps and its optimizer's)
        held = {}
    return np.asarray(trajectory), {k: np.asarray(v) for k, v in held.items()}


def _program(tx) -> str:
    """The instructions of one compiled, donating step on a 100-leaf float32 tree."""
    rng = np.random.default_rng(0)
    params = [jnp.asarray(rng.standard_normal(s, dtype=np.float32)) for s in [(8, 64), (64,)] * 50]

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), params)
    instructions = []
    for line in compiled.compile().as_text().splitlines():
        if " = " in line and not re.match(r"^\s*\d+ [\"{]", line):
            line = re.sub(r", (metadata=\{[^}]*\}|stack_frame_id=\S+|origin=\S+)", "", line)
            instructions.append(line.strip())
    return "\n".join(instructions)


def write(out: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    for dtype in ("float32", "float64"):
        with jax.enable_x64(dtype == "float64"):
            for case_id, name, kwargs in _examples():
                make = getattr(jopt, name)
                arrays[f"{dtype}/{case_id}"], held = _run(make(**kwargs), dtype)
                arrays.update({f"{dtype}/{case_id}/hp/{k}": v for k, v in held.items()})
                for label, schedule in SCHEDULES.items():
                    tx = make(**{**kwargs, "learning_rate": schedule()})
                    arrays[f"{dtype}/{case_id}/{label}"], _ = _run(tx, dtype)
                if dtype == "float32":
                    arrays[f"program/{case_id}"] = np.asarray(_program(make(**kwargs)))
            for framework in ("torch", "keras"):
                manifest = ROOT / "tests" / "golden" / "optimizers" / f"{framework}.json"
                module = getattr(jopt, framework)
                for case in json.loads(manifest.read_text())["cases"]:
                    kwargs = dict(case["kwargs"])
                    if "betas" in kwargs:
                        kwargs["betas"] = tuple(kwargs["betas"])
                    lr = case["lr"]
                    if case["schedule"]:
                        spec = dict(case["schedule"])
                        lr = getattr(module, spec.pop("name"))(case["lr"], **spec)
                    lr_name = "lr" if framework == "torch" else "learning_rate"
                    tx = getattr(module, case["optimizer"])(**{lr_name: lr}, **kwargs)
                    arrays[f"{dtype}/{framework}/{case['id']}"], _ = _run(tx, dtype)
            others = {
                "torch_sgd_onecycle": jopt.torch.SGD(
                    lr=jopt.torch.OneCycleLR(0.1, total_steps=STEPS), momentum=0.9, nesterov=True
                ),
                "torch_adam_cyclic": jopt.torch.Adam(
                    lr=jopt.torch.CyclicLR(0.001, 0.01, step_size_up=40)
                ),
                "plateau": jopt.reduce_on_plateau(jopt.adam(0.01), patience=2),
                "clip_chain": optax.chain(jopt.clip_by_global_norm(0.5), jopt.adam(0.01)),
                "skip": jopt.skip_nonfinite(jopt.sgd(0.05, momentum=0.9)),
            }
            for label, tx in others.items():
                arrays[f"{dtype}/{label}"], _ = _run(tx, dtype)
            for label, schedule in SCHEDULES.items():
                values = jax.vmap(schedule())(jnp.arange(400))
                arrays[f"{dtype}/schedule/{label}"] = np.asarray(values)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(out)
    print(f"wrote {len(arrays)} arrays to {out}")


def _same(x: np.ndarray, y: np.ndarray) -> bool:
    """Same dtype, shape and values, bit for bit."""
    if x.dtype != y.dtype or x.shape != y.shape:
        return False
    if x.dtype.kind in "US":  # a program's text
        return bool(np.all(x == y))
    return x.tobytes() == y.tobytes()


def compare(first: Path, second: Path) -> int:
    a, b = np.load(first), np.load(second)
    only = sorted(set(a.files) ^ set(b.files))
    common = sorted(set(a.files) & set(b.files))
    differ = [k for k in common if not _same(a[k], b[k])]
    print(f"{len(common)} arrays in both; {len(differ)} differ; {len(only)} in one only")
    for key in differ[:20]:
        print(f"  differs: {key}")
    for key in only[:20]:
        print(f"  in one only: {key}")
    return 1 if differ else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("write").add_argument("out", type=Path)
    comparison = commands.add_parser("compare")
    comparison.add_argument("first", type=Path)
    comparison.add_argument("second", type=Path)
    args = parser.parse_args()
    if args.command == "write":
        write(args.out)
    else:
        sys.exit(compare(args.first, args.second))


if __name__ == "__main__":
    main()
