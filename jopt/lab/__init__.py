"""The jopt lab: YAML experiment configs that compare optimizers on workloads.

Needs the `[lab]` extra (flax, PyYAML, matplotlib, scikit-learn, tqdm); the core library never
imports this package. Entry point: the `jopt` command (`jopt.lab.cli`).
"""
