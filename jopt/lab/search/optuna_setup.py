"""optuna's parts of a sweep: the sampler a search method names, the pruner, the storage (a
journal file in the study directory, or a database URL for workers on several machines), and the
name of each optimizer's study.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from jopt.lab import config as config_lib
from jopt.lab.search.section import SearchConfig
from jopt.lab.search.space import Dimension

JOURNAL = "study.journal"


class StorageError(Exception):
    """The study's storage cannot be opened (a database that cannot be reached)."""


def sampler(search: SearchConfig, dimensions: Sequence[Dimension]) -> optuna.samplers.BaseSampler:
    """optuna's sampler for the search method (each seeded with `search.seed`)."""
    seed = search.seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if search.method == "grid":
            return optuna.samplers.GridSampler({d.name: list(d.grid()) for d in dimensions}, seed)
        if search.method == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if search.method == "quasirandom":
            return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed)
        if search.method == "tpe":
            # With populations, trials asked together are spread by the constant liar.
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, constant_liar=search.population > 1
            )
        if search.method == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        if search.method == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed)
    raise ValueError(f"no optuna sampler for method {search.method!r}")


def pruner(search: SearchConfig, steps: int, eval_every: int) -> optuna.pruners.BasePruner:
    """optuna's pruner; intermediate values are reported at each eval step."""
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=max(2, search.population))
    if search.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=eval_every)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=eval_every, max_resource=steps)
    return optuna.pruners.NopPruner()


def open_storage(study_dir: Path, url: str | None) -> Any:
    """The journal file in `study_dir`, or the database at `url` (raising StorageError with
    one line when it cannot be reached)."""
    if url is None:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(study_dir / JOURNAL)))
    import sqlalchemy.exc

    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            return optuna.storages.RDBStorage(url)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as e:
            # Workers creating optuna's tables at once collide in PostgreSQL's catalog; the
            # next attempt finds the tables made.
            if attempt == _CREATE_ATTEMPTS:
                raise StorageError(f"cannot open the storage {masked(url)}: {_reason(e)}") from None
            time.sleep(0.05 * attempt)
        except Exception as e:  # sqlalchemy's and the drivers' errors have no common base
            raise StorageError(f"cannot open the storage {masked(url)}: {_reason(e)}") from None
    raise AssertionError("unreachable")


_CREATE_ATTEMPTS = 5


def _reason(error: Exception) -> str:
    """The first line of `error`, and the module a missing driver would have come from."""
    text = str(error).strip()
    reason = text.splitlines()[0] if text else type(error).__name__
    cause = error.__cause__
    if isinstance(cause, ImportError) and cause.name:
        reason += f" (no module {cause.name!r}: pip install 'psycopg[binary]' for postgresql://)"
    return reason


def masked(url: str) -> str:
    """`url` with its password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.partition(':')[0]}:***@{host}"


def study_name(experiment: config_lib.ExperimentConfig, label: str) -> str:
    return f"{experiment.name}/{label}"
