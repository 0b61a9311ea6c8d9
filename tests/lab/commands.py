"""The `jopt` command called in-process, as the lab's tests call it."""

from __future__ import annotations

from jopt.lab import cli


def run_jopt(capsys, *argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `jopt ARGV...` (paths and numbers turned into words)."""
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
