"""`jopt sweep --storage postgresql://...`: worker processes share one optuna study per
optimizer in a real PostgreSQL server, which the fixture starts on loopback in a temporary
directory (skipped where the PostgreSQL binaries are missing).

Three workers run one config at once. Together they lose no trial, run none twice, stop at the
shared budget (overshooting it by at most what the others asked while one counted) and each
writes the whole table; a database that cannot be reached exits 2 with one line.

The driver is psycopg 3 (the test extra's `psycopg[binary]`), which SQLAlchemy 2 takes for a
bare `postgresql://` URL.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import io
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import psycopg
import psycopg.sql
import pytest

from jopt.lab import cli
from jopt.lab.search import optuna_setup

USER, PASSWORD = "jopt", "s3cret-pw"  # the role the workers log in as (scram-sha-256)
SUPERUSER_PASSWORD = "super-pw"
WORKERS, BUDGET, POPULATION = 3, 12, 2
CONFIG = f"""\
name: shared
workload: {{name: linear_regression, batch_size: 32}}
optimizers:
  - {{name: sgd, label: sgd, learning_rate: 0.05}}
seeds: [0]
steps: 20
eval_every: 10
output_dir: runs
search:
  method: random
  trials: {BUDGET}
  population: {POPULATION}
  objective: {{metric: eval_loss}}
  space:
    learning_rate: {{low: 1.0e-3, high: 0.5, log: true}}
"""
STUDY = "shared/sgd"  # optuna's study name: config name / optimizer label
STATUSES = {  # a finished trial's state: the `status` attributes that explain it
    optuna.trial.TrialState.COMPLETE: {"done"},
    optuna.trial.TrialState.PRUNED: {"pruned"},
    optuna.trial.TrialState.FAIL: {"diverged", "nan", "failed"},
}


# -- a PostgreSQL server of our own --------------------------------------------------------------


def _postgres_bin() -> Path | None:
    """The directory with initdb, pg_ctl and postgres (Debian keeps them out of PATH)."""
    candidates = [Path("/usr/lib/postgresql/15/bin")]
    if found := shutil.which("pg_ctl"):
        candidates.append(Path(os.path.realpath(found)).parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _as_server_user(argv: list[str]) -> list[str]:
    """`argv` run as the `postgres` user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *argv]
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(argv)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check(argv: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        server_log = log.read_text() if log is not None and log.exists() else ""
        pytest.fail(f"{what} failed ({done.returncode}): {done.stdout}{done.stderr}{server_log}")


@dataclasses.dataclass(frozen=True)
class Server:
    port: int

    def database(self, name: str) -> str:
        """A new database owned by the workers' role; returns its URL."""
        connection = psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            password=SUPERUSER_PASSWORD,
            dbname="postgres",
            autocommit=True,  # CREATE DATABASE refuses a transaction
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}" OWNER {USER}')
        finally:
            connection.close()
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Server]:
    """A PostgreSQL server on 127.0.0.1 (a free port), data in a temporary directory, fsync off;
    stopped and removed afterwards, whatever happened."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's initdb, pg_ctl and postgres are not installed")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no postgres user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="jopt-pg-"))  # not tmp_path: root-only (0700) parents
    data = root / "data"
    try:
        (root / "pwfile").write_text(SUPERUSER_PASSWORD + "\n")
        if os.geteuid() == 0:
            for path in (root, root / "pwfile"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        _check(
            _as_server_user(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres"]
                + ["--auth=scram-sha-256", f"--pwfile={root / 'pwfile'}", "-E", "UTF8"]
                + ["--locale=C", "--no-sync"]
            ),
            "initdb",
        )
        port = _free_port()
        options = f"-F -h 127.0.0.1 -p {port} -k {shlex.quote(str(root))}"
        _check(
            _as_server_user(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log")]
                + ["-w", "-t", "60", "-o", options, "start"]
            ),
            "pg_ctl start",
            root / "log",
        )
        connection = psycopg.connect(
            host="127.0.0.1",
            port=port,
            user="postgres",
            password=SUPERUSER_PASSWORD,
            dbname="postgres",
            autocommit=True,
        )
        try:
            with connection.cursor() as cursor:
                role = "CREATE ROLE {} LOGIN PASSWORD {}"  # DDL takes no bound parameters
                cursor.execute(
                    psycopg.sql.SQL(role).format(
                        psycopg.sql.Identifier(USER), psycopg.sql.Literal(PASSWORD)
                    )
                )
        finally:
            connection.close()
        yield Server(port)
    finally:
        _stop(bin_dir, data)
        shutil.rmtree(root, ignore_errors=True)


def _stop(bin_dir: Path, data: Path) -> None:
    if not (data / "postmaster.pid").exists():
        return
    stop = [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
    done = subprocess.run(_as_server_user(stop), capture_output=True, timeout=60)
    if done.returncode != 0 and (data / "postmaster.pid").exists():
        os.kill(int((data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)


# -- three workers, one study --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SharedSweep:
    url: str
    codes: list[int]
    errors: list[str]  # each worker's stderr
    study_dirs: list[Path]

    def study(self) -> optuna.Study:
        return optuna.load_study(study_name=STUDY, storage=self.url)

    def finished(self) -> list[Path]:
        """The study directories of the workers that exited 0."""
        done = [d for d, code in zip(self.study_dirs, self.codes, strict=True) if code == 0]
        if not done:
            pytest.fail(f"no worker finished: {self.errors}")
        return done


def _run_workers(url: str, root: Path) -> SharedSweep:
    """WORKERS `jopt sweep` processes started at once, each with its own output directory."""
    config = root / "shared.yaml"
    config.write_text(CONFIG)
    processes, logs = [], []
    try:
        for i in range(WORKERS):
            out, err = root / f"worker{i}.out", root / f"worker{i}.err"
            logs.append(err)
            with out.open("w") as stdout, err.open("w") as stderr:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "jopt.lab.cli", "sweep", str(config)]
                        + ["--storage", url, "--output-dir", str(root / f"worker{i}")]
                        + ["--no-progress", "--no-plots"],
                        stdout=stdout,
                        stderr=stderr,
                        cwd=root,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"},
                    )
                )
        deadline = time.monotonic() + 300
        codes = [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in processes]
    except subprocess.TimeoutExpired:
        pytest.fail(f"the workers did not finish within 300 s: {[p.poll() for p in processes]}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return SharedSweep(
        url,
        codes,
        [log.read_text() for log in logs],
        [root / f"worker{i}" / "shared-sweep" for i in range(WORKERS)],
    )


def _worker_id(study_dir: Path) -> str:
    """The `worker` user attribute a worker gives its trials (study.sweep's Context)."""
    return f"{socket.gethostname()}:{os.path.realpath(study_dir)}"


def _table(study_dir: Path) -> dict[int, str]:
    """trials.csv as {trial number: status}."""
    with (study_dir / "trials.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["optimizer"] for r in rows] == ["sgd"] * len(rows)
    return {int(r["trial"]): r["status"] for r in rows}


# What must hold after the workers ran, one property each. The ones after the first read what the
# workers that finished did; the last rewrites the tables.


def every_worker_started_on_the_fresh_database_finishes(sweep: SharedSweep) -> None:
    for code, err, study_dir in zip(sweep.codes, sweep.errors, sweep.study_dirs, strict=True):
        assert code == 0 and "Traceback" not in err, err
        assert (study_dir / "best.yaml").is_file()


def no_trial_is_lost_and_the_budget_is_shared(sweep: SharedSweep) -> None:
    sweep.finished()
    trials = sweep.study().get_trials(deepcopy=False)
    # Distinct numbers, none missing: no trial stored twice (so none twice by one worker).
    assert [t.number for t in trials] == list(range(len(trials)))
    lost = [(t.number, t.state.name) for t in trials if t.state not in STATUSES]
    assert not lost, f"trials left RUNNING or WAITING: {lost}"
    for t in trials:
        assert t.user_attrs.get("status") in STATUSES[t.state], t
    # A worker stops once the trials finished or running anywhere reach the budget (`counted`),
    # and asks at most `population` at a time: each of the others may have counted just before
    # its last ask, so together they overshoot by at most (workers - 1) x population.
    assert BUDGET <= len(trials) <= BUDGET + (WORKERS - 1) * POPULATION


def the_trials_are_spread_over_the_workers(sweep: SharedSweep) -> None:
    workers = {_worker_id(d) for d in sweep.finished()}
    trials = sweep.study().get_trials(deepcopy=False)
    per_worker = collections.Counter(t.user_attrs["worker"] for t in trials)
    assert set(per_worker) <= workers
    assert len(per_worker) >= 2, per_worker


def the_workers_draw_different_values(sweep: SharedSweep) -> None:
    # A log-uniform learning rate drawn twice is the same trial run twice: the workers'
    # samplers must not all replay one seeded stream.
    sweep.finished()
    trials = sweep.study().get_trials(deepcopy=False)
    values = collections.Counter(t.params["learning_rate"] for t in trials)
    repeated = {v: n for v, n in values.items() if n > 1}
    assert not repeated, f"values tried more than once (value: times): {repeated}"


def no_file_holds_the_password_and_resume_asks_for_the_url(sweep: SharedSweep) -> None:
    study_dirs = sweep.finished()
    for study_dir in study_dirs:
        for path in study_dir.rglob("*"):
            assert not path.is_file() or PASSWORD.encode() not in path.read_bytes(), path
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli.main(["sweep", "--resume", str(study_dirs[0]), "--no-progress"])
    assert code == 2, err.getvalue()
    assert "give --storage with its URL again (passwords are not written to disk)" in err.getvalue()


def each_worker_writes_the_whole_table_and_resume_refreshes_it(sweep: SharedSweep) -> None:
    study_dirs = sweep.finished()
    final = {t.number: t.user_attrs["status"] for t in sweep.study().trials}
    for study_dir in study_dirs:
        # Read when that worker finished: the others' trials may still show `running`, and a
        # worker that counted just before it may ask trials after it (the overshoot above).
        table = _table(study_dir)
        assert sorted(table) == list(range(len(table))), (study_dir, table)
        assert BUDGET <= len(table) <= len(final), (study_dir, table, final)
        assert all(table[n] in (final[n], "running") for n in table), (table, final)
    # The worker that read the study last did so after every worker's loop had ended.
    assert any(_table(d) == final for d in study_dirs)

    # Resuming a worker's directory trains nothing (the budget is spent) and rewrites its tables.
    for study_dir in study_dirs:
        argv = ["sweep", "--resume", str(study_dir), "--storage", sweep.url, "--no-plots"]
        assert cli.main([*argv, "--no-progress"]) == 0
        assert _table(study_dir) == final
    assert len(sweep.study().trials) == len(final)


@pytest.mark.slow  # three processes each import JAX and compile: 25-55 s on two shared cores
def test_three_workers_share_one_study(postgres, tmp_path, capsys):
    # One test (not one per property over a module fixture), so that pytest-xdist cannot split
    # it and run the workers twice; every property is checked and each failure reported.
    sweep = _run_workers(postgres.database("shared"), tmp_path)  # fresh: optuna creates tables
    failed = []
    for check in (
        every_worker_started_on_the_fresh_database_finishes,
        no_trial_is_lost_and_the_budget_is_shared,
        the_trials_are_spread_over_the_workers,
        the_workers_draw_different_values,
        no_file_holds_the_password_and_resume_asks_for_the_url,
        each_worker_writes_the_whole_table_and_resume_refreshes_it,
    ):
        try:
            check(sweep)
        except AssertionError as e:
            failed.append(f"{check.__name__}: {e}")
    capsys.readouterr()  # the resumed sweeps' tables
    if failed:
        pytest.fail("\n\n".join(failed))


def test_workers_that_open_a_fresh_database_at_once_all_get_it(postgres, tmp_path):
    # Concurrent CREATE TABLE IF NOT EXISTS collide in PostgreSQL's catalog (a UniqueViolation
    # on pg_type_typname_nsp_index), so opening the storage must survive losing that race.
    url = postgres.database("fresh")
    start = threading.Barrier(WORKERS)
    errors: list[str] = []

    def open_storage() -> None:
        start.wait()
        try:
            optuna_setup.open_storage(tmp_path, url)
        except Exception as e:  # StorageError, or anything else that escapes it
            errors.append(str(e) or repr(e))

    threads = [threading.Thread(target=open_storage) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_an_unreachable_database_exits_2_with_one_line_and_creates_nothing(capsys, tmp_path):
    config = tmp_path / "shared.yaml"
    config.write_text(CONFIG)
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        url = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/jopt"
        code = cli.main(
            ["sweep", str(config), "--storage", url, "--output-dir", str(tmp_path / "o")]
        )
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    masked = f"postgresql://{USER}:***@127.0.0.1:{port}/jopt"
    assert captured.err.startswith(f"jopt: cannot open the storage {masked}: "), captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert PASSWORD not in captured.err
    assert not (tmp_path / "o").exists()
