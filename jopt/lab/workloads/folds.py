"""k-fold cross-validation for the data workloads (their `cv_folds` and `cv_fold` options): the
checks of the two options and the deal of train ∪ valid into folds. The test split is never
touched.
"""

from __future__ import annotations

import numpy as np

from jopt._src import validation

CV_SEED = 0  # NumPy seed of the fixed permutation that deals examples into cross-validation folds


def check_folds(owner: str, cv_folds: int | None, cv_fold: int) -> tuple[int | None, int]:
    """cv_folds is null or an integer >= 2; cv_fold is in [0, cv_folds), and 0 without folds.

    Returns both as Python ints (or None).
    """
    if cv_folds is not None:
        cv_folds = validation.check_int(owner, "cv_folds", cv_folds, minimum=2)
    cv_fold = validation.check_int(owner, "cv_fold", cv_fold, minimum=0)
    if cv_folds is None:
        validation.require(
            owner,
            cv_fold == 0,
            f"cv_fold selects one of cv_folds folds, but cv_folds is null, got cv_fold={cv_fold} "
            "(set cv_folds >= 2 for cross-validation, or leave cv_fold at 0).",
            argument="cv_fold",
            value=cv_fold,
        )
    else:
        validation.require(
            owner,
            cv_fold < cv_folds,
            f"cv_fold must be in [0, {cv_folds - 1}] with cv_folds={cv_folds}, got {cv_fold}.",
            argument="cv_fold",
            value=cv_fold,
        )
    return cv_folds, cv_fold


def fold_sizes(n: int, cv_folds: int, cv_fold: int) -> tuple[int, int]:
    """(train, valid) sizes of fold `cv_fold` of `n` examples: `np.array_split`'s sizes, so the
    first `n % cv_folds` folds hold one example more than the others."""
    valid = n // cv_folds + (cv_fold < n % cv_folds)
    return n - valid, valid


def fold_indices(n: int, cv_folds: int, cv_fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) indices into `n` examples for fold `cv_fold` of `cv_folds`.

    A permutation from NumPy seed `CV_SEED` (the same for every fold, trial seed and dataset of
    `n` examples) is cut by `np.array_split` into `cv_folds` folds; fold `cv_fold` is the
    validation split, the others, in fold order, the training split. Over all `cv_fold` the
    validation splits partition range(n).
    """
    order = np.random.default_rng(CV_SEED).permutation(n)
    folds = np.array_split(order, cv_folds)
    train = np.concatenate(folds[:cv_fold] + folds[cv_fold + 1 :])
    return train, folds[cv_fold]


def fold_split(
    train: tuple[np.ndarray, ...], valid: tuple[np.ndarray, ...], cv_folds: int, cv_fold: int
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Re-splits train ∪ valid into (fold training split, fold validation split).

    `train` and `valid` are tuples of arrays (inputs, targets...) with examples on the first axis;
    the pool is train's examples followed by valid's, dealt by `fold_indices`.
    """
    pool = tuple(np.concatenate([a, b]) for a, b in zip(train, valid, strict=True))
    train_index, valid_index = fold_indices(len(pool[0]), cv_folds, cv_fold)
    return tuple(a[train_index] for a in pool), tuple(a[valid_index] for a in pool)
