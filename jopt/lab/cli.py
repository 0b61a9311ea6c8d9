"""The `jopt` command.

    jopt run CONFIG [KEY.SUB=VALUE ...]     run an experiment config (overrides optional)
    jopt run --resume RUN_DIR               continue an interrupted run exactly
    jopt plot RUN_DIR                       redraw a run's figures from its files
    jopt sweep CONFIG [KEY.SUB=VALUE ...]   search the hyperparameters of its `search:` section
    jopt sweep --resume STUDY_DIR           continue an interrupted search
    jopt lr-find CONFIG [KEY.SUB=VALUE ...] the learning-rate range test

Exit status: 0 done, 2 bad config or arguments, 74 a file could not be written (disk full, read-only
or not a directory; resumable), 130 interrupted by Ctrl-C (resumable), 143 stopped by SIGTERM
(resumable).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from jopt import lab

EXIT_IO = 74  # sysexits' EX_IOERR: a file could not be written (the run resumes once it can)
_TAKE_OVERRIDES = ("run", "sweep", "lr-find")  # commands whose KEY=VALUE words override a config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jopt", description="Compare optimizers on workloads.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run or resume an experiment config")
    run.add_argument("config", nargs="?", help="a YAML config (see configs/)")
    run.add_argument("overrides", nargs="*", help="KEY.SUB=VALUE overrides of the config")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    run.add_argument("--output-dir", help="where run directories go (default: the config's)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--no-plots", action="store_true", help="do not draw figures")
    plot = commands.add_parser("plot", help="redraw a run's figures")
    plot.add_argument("run_dir")
    from jopt.lab.search import lr_find_cli, sweep_cli

    sweep_cli.add_arguments(
        commands.add_parser("sweep", help="search hyperparameters (the config's search section)")
    )
    lr_find_cli.add_arguments(
        commands.add_parser("lr-find", help="the learning-rate range test of a config")
    )
    return parser


def _io_failure(error: OSError, run_dir: Path) -> str:
    """One line for a file the run could not write, and how to go on."""
    where = f" {error.filename}" if error.filename else f" in {run_dir}"
    line = f"cannot write{where}: {error.strerror or error}."
    if (Path(run_dir) / "config.yaml").is_file():
        line += f" Free space or fix the path, then resume with: jopt run --resume {run_dir}"
    else:
        line += " Nothing was run; fix the output directory (--output-dir) and run again."
    return line


def _run(args: argparse.Namespace) -> int:
    from jopt.lab import checkpoints, run_lock, runner
    from jopt.lab import config as config_lib

    if args.resume:
        if args.config or args.overrides or args.output_dir:
            print("jopt: --resume takes only the run directory.", file=sys.stderr)
            return 2
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            print(f"jopt: no run to resume at {run_dir} (no config.yaml).", file=sys.stderr)
            return 2
        experiment = config_lib.load(run_dir / "config.yaml")
        resume = True
    else:
        if not args.config:
            print("jopt: give a config file, or --resume RUN_DIR.", file=sys.stderr)
            return 2
        experiment = config_lib.load(args.config, args.overrides)
        if args.output_dir:  # a path, taken as it is (not parsed as YAML like an override)
            experiment = dataclasses.replace(experiment, output_dir=args.output_dir)
        run_dir, resume = runner.new_run_dir(experiment), False
    try:
        run_dir = runner.run(experiment, run_dir, resume=resume, progress=not args.no_progress)
    except (run_lock.RunLocked, checkpoints.CorruptCheckpoint) as e:
        print(f"jopt: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the disk: full, read-only, a path that is not a directory...
        print(f"jopt: {_io_failure(e, run_dir)}", file=sys.stderr)
        return EXIT_IO
    except runner.Interrupted as e:
        print(f"jopt: {e}", file=sys.stderr)
        return 128 + e.signal
    except KeyboardInterrupt:  # a second Ctrl-C: stopped mid-chunk
        print(
            f"jopt: stopped at once; `jopt run --resume {run_dir}` continues from the last "
            "checkpoint.",
            file=sys.stderr,
        )
        return 130
    if not args.no_plots:
        from jopt.lab import plots  # matplotlib: imported only to draw

        plots.plot_run(run_dir)
    print((run_dir / "summary.md").read_text())
    print(f"Results in {run_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    missing = lab.missing_dependencies()
    if missing:
        print(
            f"jopt: the lab needs the [lab] extra, which is not installed here (missing: "
            f"{', '.join(missing)}); install it with: pip install 'jopt[lab]' (from a "
            "checkout: pip install -e '.[lab]').",
            file=sys.stderr,
        )
        return 2
    from jopt.lab import config as config_lib
    from jopt.lab import outputs

    parser = _parser()
    # Overrides may come before or after the options: argparse only takes one run of
    # positionals, so the KEY=VALUE words it leaves over are overrides too.
    args, extra = parser.parse_known_args(argv)
    unknown = [word for word in extra if word.startswith("-") or "=" not in word]
    if unknown or (extra and args.command not in _TAKE_OVERRIDES):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "sweep":
            from jopt.lab.search import sweep_cli

            return sweep_cli.main(args)
        if args.command == "lr-find":
            from jopt.lab.search import lr_find_cli

            return lr_find_cli.main(args)
        from jopt.lab import plots

        written = plots.plot_run(Path(args.run_dir))
        if not written:
            print(f"jopt: {args.run_dir} has no trial metrics to plot yet.", file=sys.stderr)
            return 2
        print("\n".join(str(p) for p in written))
        return 0
    except config_lib.ConfigError as e:
        print(f"jopt: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, outputs.CorruptMetrics) as e:
        print(f"jopt: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
