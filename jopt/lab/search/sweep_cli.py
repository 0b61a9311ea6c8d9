"""`jopt sweep`: search the hyperparameters of a config's `search:` section.

    jopt sweep CONFIG [KEY.SUB=VALUE ...] [--storage URL] [--output-dir DIR]
    jopt sweep --resume STUDY_DIR [--storage URL]

A new sweep writes `OUTPUT_DIR/NAME-sweep/` (numbered if taken): `sweep.yaml` (the config, what
`--resume` reads), `study.json` (the storage), the optuna journal `study.journal` (unless
`--storage` names a database), and once done or interrupted the tables, `best.yaml` and the
figures (`jopt.lab.search.report`, `jopt.lab.search.figures`).

Ctrl-C stops after the current chunk of steps: the trials in flight are queued again and
`jopt sweep --resume STUDY_DIR` continues (a second Ctrl-C stops at once; resume then reruns the
trials in flight). Exit status: 0 done, 2 bad config, arguments or storage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from pathlib import Path

from jopt.lab import config as config_lib
from jopt.lab import outputs, runner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="a YAML config with a search: section")
    parser.add_argument("overrides", nargs="*", help="KEY.SUB=VALUE overrides of the config")
    parser.add_argument("--resume", metavar="STUDY_DIR", help="continue an interrupted sweep")
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="a database optuna can use (postgresql://USER:PASSWORD@HOST/DB), shared by workers "
        "on several machines; default: a journal file in the study directory",
    )
    parser.add_argument("--output-dir", help="where study directories go (default: the config's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-plots", action="store_true", help="do not draw figures")


def _error(message: str) -> int:
    print(f"jopt: {message}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    from jopt.lab.search import optuna_setup, study

    if args.resume:
        if args.config or args.overrides or args.output_dir:
            return _error("--resume takes only the study directory (and --storage).")
        study_dir = Path(args.resume)
        if not (study_dir / "sweep.yaml").is_file():
            return _error(f"no sweep to resume at {study_dir} (no sweep.yaml).")
        experiment = config_lib.load(study_dir / "sweep.yaml")
        stored = outputs.read_json(study_dir / "study.json").get("storage")
        url = args.storage or stored
        if url is not None and "***" in url:
            return _error(
                f"this sweep's studies are in the database {url}: give --storage with its URL "
                "again (passwords are not written to disk)."
            )
    else:
        if not args.config:
            return _error("give a config file, or --resume STUDY_DIR.")
        experiment = config_lib.load(args.config, args.overrides)
        if experiment.search is None:
            return _error(
                f"{args.config} has no search: section to sweep (see docs/search.md); "
                "`jopt run` runs it as it is."
            )
        if args.output_dir:
            experiment = dataclasses.replace(experiment, output_dir=args.output_dir)
        url = args.storage
        study_dir = runner.new_run_dir(experiment, "-sweep")
    try:
        storage = optuna_setup.open_storage(study_dir, url) if url else None
    except optuna_setup.StorageError as e:
        return _error(str(e))
    if not args.resume:
        study_dir.mkdir(parents=True, exist_ok=False)
        outputs.write_yaml(study_dir / "sweep.yaml", config_lib.to_dict(experiment))
        outputs.write_json(
            study_dir / "study.json", {"storage": optuna_setup.masked(url) if url else None}
        )
    if storage is None and experiment.search.method != "pbt":  # PBT keeps no optuna study
        storage = optuna_setup.open_storage(study_dir, None)
    return _sweep(study.resolved(experiment), study_dir, storage, args)


def _sweep(experiment, study_dir: Path, storage, args: argparse.Namespace) -> int:
    from jopt.lab.search import figures, population, report, study

    requested = threading.Event()

    def request_stop(signum, frame):
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, request_stop) if in_main_thread else None
    resume = f"jopt sweep --resume {study_dir}"
    if args.storage:
        resume += " --storage URL"
    try:
        if experiment.search.method == "pbt":
            from jopt.lab.search import pbt

            text = pbt.run(
                experiment,
                study_dir,
                stop=requested.is_set,
                progress=not args.no_progress,
                resume=bool(args.resume),
            )
            print(text)
            print(f"Results in {study_dir}")
            return 0
        studies = study.sweep(
            experiment, study_dir, storage, stop=requested.is_set, progress=not args.no_progress
        )
    except population.Stopped:  # the trials in flight are queued again
        if experiment.search.method != "pbt":
            _write_partial(study_dir, experiment, storage)
        print(f"jopt: interrupted; resume with: {resume}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"jopt: stopped at once; resume with: {resume}", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
    text = report.write(study_dir, experiment, studies)
    if not args.no_plots:
        figures.plot_sweep(study_dir, experiment, studies)
    print(text)
    print(f"Best of each optimizer: {study_dir / 'best.yaml'} (jopt run it to reproduce)")
    print(f"Results in {study_dir}")
    return 0


def _write_partial(study_dir: Path, experiment, storage) -> None:
    """The tables and best.yaml of an interrupted sweep, from what its studies hold now."""
    import optuna

    from jopt.lab.search import optuna_setup, report

    studies = []
    for config in experiment.optimizers:
        try:
            name = optuna_setup.study_name(experiment, config.label)
            studies.append(optuna.load_study(study_name=name, storage=storage))
        except KeyError:  # a study not started yet: the tables wait for the resume
            return
    report.write(study_dir, experiment, studies)
