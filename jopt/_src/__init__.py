"""jopt's implementation. Import from `jopt`, `jopt.schedules`, `jopt.torch`, `jopt.keras` and
`jopt.hparams` instead: the modules under `_src` may change without notice."""
