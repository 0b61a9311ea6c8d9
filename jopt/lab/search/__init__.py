"""Choosing hyperparameters: `jopt sweep` and `jopt lr-find`.

optuna does the sampling (grid, random, quasi-random, TPE, GP, CMA-ES), the pruning and the
storage; jopt's part is the search space read from a config's `search:` section (`space`), the
trials of one optimizer run as one vmapped program with their values set in the optimizer state
(`population`), the study loop with its budget, resume and failures (`study`), and what is
written: tables, `best.yaml` and figures (`report`, `figures`). `lr_find` is the learning-rate
range test. docs/search.md is the user's guide.
"""
