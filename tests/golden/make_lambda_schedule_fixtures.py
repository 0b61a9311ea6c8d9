"""Writes tests/golden/lambda_schedules.json: torch's LambdaLR and MultiplicativeLR learning rates.

Run from the repository root (needs torch; the tests that read the file do not):

    .venv/bin/python -m tests.golden.make_lambda_schedule_fixtures

Each case records the class, the base learning rate, the name of its `lr_lambda` (a function of
tests/golden/lr_lambdas.py) and the learning rate after 0..N `scheduler.step()` calls, read as
make_schedule_fixtures reads its schedules (an SGD on one float64 parameter).
"""

from __future__ import annotations

import json
import pathlib

from tests.golden.lr_lambdas import LAMBDAS
from tests.golden.make_schedule_fixtures import torch_schedule

PATH = pathlib.Path(__file__).with_name("lambda_schedules.json")

# (class, base lr, lr_lambda name, last step)
CASES = [
    ("LambdaLR", 0.1, "inverse_time", 60),
    ("LambdaLR", 0.05, "power", 60),
    ("LambdaLR", 0.1, "warmup_then_halving", 60),
    ("MultiplicativeLR", 0.1, "constant", 60),
    ("MultiplicativeLR", 0.2, "shrinking_factor", 60),
    ("MultiplicativeLR", 0.1, "grow_then_halve_every_10", 60),
]


def torch_values(cls: str, lr: float, name: str, last_step: int) -> list[float]:
    """torch's lr after 0..last_step steps of `cls(optimizer, LAMBDAS[name])`."""
    return torch_schedule(cls, lr, {"lr_lambda": LAMBDAS[name]}, last_step)["values"]


def main() -> None:
    import torch

    cases = [
        {"class": cls, "lr": lr, "lr_lambda": name, "values": torch_values(cls, lr, name, last)}
        for cls, lr, name, last in CASES
    ]
    fixtures = {
        "made_by": "tests/golden/make_lambda_schedule_fixtures.py",
        "versions": {"torch": torch.__version__},
        "cases": cases,
    }
    body = ",\n".join("  " + json.dumps(case) for case in cases)
    head = f'{{"made_by": {json.dumps(fixtures["made_by"])}, '
    head += f'"versions": {json.dumps(fixtures["versions"])},\n"cases": [\n'
    text = head + body + "\n]}\n"
    assert json.loads(text) == fixtures
    PATH.write_text(text)
    print(f"wrote {PATH} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
