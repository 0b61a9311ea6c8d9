"""Choosing hyperparameters: `jopt sweep` and `jopt lr-find`.

optuna does the sampling (grid, random, quasi-random, TPE, GP, CMA-ES), the pruning and the
storage (`optuna_setup`); jopt's part is the config's `search:` section (`section`) and its
search space (`space`), the trials of one optimizer run as one vmapped program with their values
set in the optimizer state (`population`), the study loop with its budget, resume and failures
(`study`), and what is written: tables, `best.yaml` and figures (`report`, `figures`).
Population-based training is `pbt` (its outputs `pbt_report`), the learning-rate range test
`lr_find`, and `sweep_cli` the `jopt sweep` command. docs/search.md is the user's guide.
"""
