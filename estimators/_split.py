"""The validation split of a torch net's fit: :func:`validation_split`.

:class:`~estimators._torch.TorchClassifier` holds out ``valid_fraction`` of the rows given to
``fit`` for validation, early stopping and the restoring of the best epoch; this module draws
those rows (stratified, and grouped when ``fit`` gets ``groups``).
"""

import math
import warnings

import numpy as np
from sklearn.model_selection import (
    GroupShuffleSplit,
    ShuffleSplit,
    StratifiedGroupKFold,
    StratifiedShuffleSplit,
)


def validation_split(y, groups=None, *, valid_fraction=0.2, random_state=None):
    """Indices of the training and validation rows of a fit's internal validation split.

    Stratified by ``y``. With ``groups``, no group has rows on both sides: the validation rows are
    one fold of :class:`~sklearn.model_selection.StratifiedGroupKFold` with
    ``round(1 / valid_fraction)`` folds. When the data are too few to stratify (a class with one
    row, or fewer validation rows than classes) the split is a plain random one, with a warning.

    Parameters
    ----------
    y : array-like [shape=(n_samples,)]
        Targets (labels or class indices).
    groups : array-like [shape=(n_samples,)] or None
        Group of each row (e.g. the recording or speaker a clip comes from).
    valid_fraction : float in (0, 1)
        Fraction of the rows (of the groups, with ``groups``) held out for validation.
    random_state : int, RandomState instance or None

    Returns
    -------
    train, valid : np.ndarray of int
        Disjoint row indices, both non-empty, together all of ``range(n_samples)``.

    Raises
    ------
    ValueError
        If there are too few rows (or groups) to hold out a non-empty validation set.
    """
    y = np.asarray(y)
    n_samples = len(y)
    rows = np.zeros((n_samples, 1))
    if groups is not None:
        groups = np.asarray(groups)
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise ValueError(
                f"valid_fraction={valid_fraction} needs at least 2 groups to hold out whole groups "
                f"for validation; got {n_groups}. Pass valid_fraction=None to train without one."
            )
        n_splits = max(2, round(1 / valid_fraction))
        # StratifiedGroupKFold refuses when every class has fewer rows than folds (tiny inner fits)
        if n_groups >= n_splits and np.unique(y, return_counts=True)[1].max() >= n_splits:
            with warnings.catch_warnings():  # "least populated class has only k members": expected
                warnings.simplefilter("ignore", UserWarning)
                cv = StratifiedGroupKFold(n_splits, shuffle=True, random_state=random_state)
                train, valid = next(cv.split(rows, y, groups))
            if len(train) and len(valid):
                return train, valid
        cv = GroupShuffleSplit(n_splits=1, test_size=valid_fraction, random_state=random_state)
        return next(cv.split(rows, y, groups))

    n_valid = math.ceil(valid_fraction * n_samples)
    if n_samples < 2 or n_valid >= n_samples:
        raise ValueError(
            f"valid_fraction={valid_fraction} leaves no training rows of {n_samples}; "
            "pass valid_fraction=None to train without a validation split."
        )
    _, counts = np.unique(y, return_counts=True)
    if counts.min() >= 2 and min(n_valid, n_samples - n_valid) >= len(counts):
        cv = StratifiedShuffleSplit(n_splits=1, test_size=n_valid, random_state=random_state)
    else:
        warnings.warn(
            f"too few rows ({n_samples}, smallest class {counts.min()}) for a stratified "
            f"validation split of valid_fraction={valid_fraction}; splitting at random",
            UserWarning,
        )
        cv = ShuffleSplit(n_splits=1, test_size=n_valid, random_state=random_state)
    return next(cv.split(rows, y))
