"""Tests of jopt.lab: configs, run files and summaries, the runner, the `jopt` command, and
the workloads."""
