"""The jopt lab: YAML experiment configs that compare optimizers on workloads.

Needs the `[lab]` extra (flax, PyYAML, matplotlib, scikit-learn, tqdm; optuna and cmaes for
hyperparameter search); the core library never imports this package. Entry point: the `jopt`
command (`jopt.lab.cli`), which names what is missing when the extra is not installed.
"""

from __future__ import annotations

import importlib.util

# The [lab] extra: module -> the distribution that provides it.
LAB_DEPENDENCIES = {
    "flax": "flax",
    "matplotlib": "matplotlib",
    "optuna": "optuna",
    "cmaes": "cmaes",
    "sklearn": "scikit-learn",
    "tqdm": "tqdm",
    "yaml": "pyyaml",
}


def missing_dependencies() -> list[str]:
    """The distributions of the [lab] extra that are not installed here. Looked up, not
    imported: importing them all (SciPy's statistics come with cmaes) would take longer than
    most commands run."""
    return [
        distribution
        for module, distribution in LAB_DEPENDENCIES.items()
        if importlib.util.find_spec(module) is None
    ]
