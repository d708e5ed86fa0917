"""Class imbalance: resampling of training rows for classical models, balanced batches for nets.

:class:`ClassResampler` is a step of an experiment pipeline (a :class:`~pipelines.loader.ClipPipeline`,
which is imbalanced-learn's :class:`~imblearn.pipeline.Pipeline`): its ``fit_resample`` runs when the
pipeline is fitted, on the training folds' rows only, and never when it predicts or scores, so no
test clip is resampled or leaks into training. Its ``kind`` is what a grid tunes, as ``sampler``:
``None`` (no resampling), ``"over"`` (random over-sampling), ``"under"`` (random under-sampling) or
``"smote"`` (SMOTE); each is imbalanced-learn's sampler of that name. Resampled rows carry no recording
or speaker group, so a pipeline that resamples gives its model no ``groups`` (the inner selection of
a model such as softmax's ``C`` is then stratified, not grouped; the outer folds are the data set's as
ever). Nets are refused a sampler: their validation rows come from the training rows, and copies of a
row would land on both sides.

Nets see every training row once per epoch in shuffled batches; with ``balanced_batches=True``
(:class:`~estimators._torch.TorchClassifier`) the rows of each epoch are drawn instead by
:func:`balanced_sampler`, torch's :class:`~torch.utils.data.WeightedRandomSampler` with each row
weighted by the inverse of its class's count, so that every class is drawn about equally often.
"""

import numpy as np
from sklearn.base import BaseEstimator

#: ``ClassResampler.kind`` -> (imbalanced-learn module, class).
SAMPLERS = {
    "over": ("imblearn.over_sampling", "RandomOverSampler"),
    "under": ("imblearn.under_sampling", "RandomUnderSampler"),
    "smote": ("imblearn.over_sampling", "SMOTE"),
}


class ClassResampler(BaseEstimator):
    """Resample the training rows of a pipeline with an imbalanced-learn sampler chosen by name.

    Parameters
    ----------
    kind : {None, "over", "under", "smote"}, default=None
        None leaves the rows as they are; otherwise imbalanced-learn's ``RandomOverSampler``,
        ``RandomUnderSampler`` or ``SMOTE`` (every class brought to the majority's count, or
        the minority's for ``"under"``).
    random_state : int or None, default=None
        The sampler's seed (a run setting: the run's seed).

    Attributes
    ----------
    sampler_ : imblearn sampler or None
        The sampler of the last ``fit_resample``.

    Examples
    --------
    >>> X = np.arange(12, dtype=float).reshape(6, 2)
    >>> _, y = ClassResampler(kind="over", random_state=0).fit_resample(X, ["a"] * 4 + ["b"] * 2)
    >>> sorted(y.tolist())
    ['a', 'a', 'a', 'a', 'b', 'b', 'b', 'b']
    """

    #: The run settings an experiment sets (see :func:`estimators.run_params`).
    run_params = ("random_state",)

    def __init__(self, kind=None, *, random_state=None):
        self.kind = kind
        self.random_state = random_state

    def fit_resample(self, X, y):
        """Resampled ``X`` and ``y``.

        Parameters
        ----------
        X : np.ndarray [shape=(n, ...)]
            Rows of any per-row shape; samplers see them flattened (SMOTE interpolates between
            rows of one class), and get them back in their shape.
        y : array-like [shape=(n,)]

        Returns
        -------
        X : np.ndarray [shape=(m, ...)], X's dtype
        y : np.ndarray [shape=(m,)]
        """
        self.sampler_ = None
        if self.kind is None:
            return X, y
        if self.kind not in SAMPLERS:
            raise ValueError(f"sampler={self.kind!r} must be None or one of {', '.join(map(repr, SAMPLERS))}")
        import importlib

        module, name = SAMPLERS[self.kind]
        self.sampler_ = getattr(importlib.import_module(module), name)(random_state=self.random_state)
        X, y = np.asarray(X), np.asarray(y)
        if self.kind == "smote":  # SMOTE interpolates towards k_neighbors=5 rows of the same class
            labels, counts = np.unique(y, return_counts=True)
            if counts.min() <= self.sampler_.k_neighbors:
                raise ValueError(f"sampler='smote' needs more than {self.sampler_.k_neighbors} training rows of each "
                                 f"class; class {str(labels[counts.argmin()])!r} has {counts.min()} (use 'over')")
        flat, y = self.sampler_.fit_resample(X.reshape(len(X), -1), y)
        return flat.reshape(-1, *X.shape[1:]).astype(X.dtype, copy=False), y

    def fit(self, X, y):
        """Fit the sampler on ``X``, ``y`` (imbalanced-learn's sampler API); returns ``self``."""
        self.fit_resample(X, y)
        return self


def balanced_sampler(targets):
    """A sampler of row indices drawing every class about equally often, one epoch's worth.

    Parameters
    ----------
    targets : array-like of int [shape=(n,)]
        Class index of each row of the training dataset.

    Returns
    -------
    torch.utils.data.WeightedRandomSampler
        ``n`` draws with replacement, each row weighted by 1 / (its class's count); its random numbers
        come from torch's generator, which a net's ``random_state`` seeds.
    """
    from torch.utils.data import WeightedRandomSampler

    targets = np.asarray(targets).reshape(-1)
    _, index, counts = np.unique(targets, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[index]
    return WeightedRandomSampler(weights.tolist(), num_samples=len(targets), replacement=True)


def dataset_targets(dataset):
    """The targets of a skorch ``Dataset``, or of a ``torch.utils.data.Subset`` of one (nested too)."""
    indices = None
    while hasattr(dataset, "indices") and hasattr(dataset, "dataset"):  # a Subset
        indices = np.asarray(dataset.indices) if indices is None else np.asarray(dataset.indices)[indices]
        dataset = dataset.dataset
    y = np.asarray(dataset.y)
    return y if indices is None else y[indices]
