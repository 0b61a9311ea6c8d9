"""The `jopt lr-find` command: its arguments, checked before any compute, and the run over the
config's optimizers (see `jopt.lab.search.lr_find` for the method).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from jopt.lab import config as config_lib
from jopt.lab import outputs, programs, runner
from jopt.lab.search.lr_find import OptionError, Options, run_one, select
from jopt.lab.search.lr_find_report import table, write


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `jopt lr-find`."""
    defaults = Options()
    parser.add_argument("config", help="a YAML config (its steps, epochs and target are unused)")
    parser.add_argument("overrides", nargs="*", help="KEY.SUB=VALUE overrides of the config")
    parser.add_argument(
        "--optimizer",
        action="append",
        metavar="LABEL",
        help="test only the optimizer with this label (repeatable; default: all)",
    )
    parser.add_argument("--min-lr", type=float, default=defaults.min_lr, help="first rate")
    parser.add_argument("--max-lr", type=float, default=defaults.max_lr, help="last rate")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="steps of the ramp")
    parser.add_argument(
        "--smoothing",
        type=float,
        default=defaults.smoothing,
        help="EMA factor of the loss, in [0, 1)",
    )
    parser.add_argument(
        "--diverge-factor",
        type=float,
        default=defaults.diverge_factor,
        help="stop once the smoothed loss exceeds this times its best",
    )
    parser.add_argument("--output-dir", help="where the results go (default: the config's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-plots", action="store_true", help="do not draw the figure")


def main(args: argparse.Namespace) -> int:
    """Runs `jopt lr-find`; returns the exit status (2: bad options, 130: interrupted)."""
    try:
        options = Options(args.min_lr, args.max_lr, args.steps, args.smoothing, args.diverge_factor)
        config = config_lib.load(args.config, args.overrides)
        if args.output_dir:  # a path, taken as it is
            config = dataclasses.replace(config, output_dir=args.output_dir)
        chosen = select(config, args.optimizer, options)
    except OptionError as e:
        print(f"jopt: lr-find: {e}", file=sys.stderr)
        return 2
    compiled = programs.compiled_experiment(config)
    out_dir = runner.new_run_dir(dataclasses.replace(config, name=f"{config.name}-lr-find"))
    out_dir.mkdir(parents=True)
    outputs.write_yaml(out_dir / "config.yaml", config_lib.to_dict(config))
    print(
        f"lr-find {config.name}: workload {config.workload.name}, seeds {list(config.seeds)}, "
        f"{options.steps} steps from {options.min_lr:g} to {options.max_lr:g}"
    )
    curves = []
    try:
        for optimizer, replaced in chosen:
            if replaced:
                print(f"{optimizer.label}: the ramp replaces the config's learning-rate schedule")
            progress = not args.no_progress
            curves.append(
                run_one(
                    compiled,
                    optimizer,
                    config.seeds,
                    options,
                    schedule_replaced=replaced,
                    progress=progress,
                )
            )
    except KeyboardInterrupt:
        write(out_dir, config, curves, options, plots=not args.no_plots)
        done = ", ".join(c.label for c in curves) or "none"
        print(
            f"jopt: lr-find interrupted; the finished curves ({done}) are in {out_dir}",
            file=sys.stderr,
        )
        return 130
    write(out_dir, config, curves, options, plots=not args.no_plots)
    print(table(curves, options))
    print(f"Results in {out_dir}")
    return 0
