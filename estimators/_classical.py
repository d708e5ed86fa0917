"""Building blocks shared by the classical (non-torch) estimators: softmax, mlp, svm and xgboost.

Each classical estimator is a :class:`ClassicalClassifier` with flat parameters that fits::

    reshape (FeatureReshaper) -> [scale (StandardScaler)] -> clf (a classifier)

so that a sample of any shape from the feature store, ``(F,)``, ``(C, H, W)`` or
``(n_mfcc, n_frames)``, becomes one feature vector inside the estimator. This module needs numpy
and scikit-learn only.
"""

import warnings

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    TransformerMixin,
    clone,
)
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from featurestore.streaming import StoredRows

_MODES = ("flatten", "stats", "summary")
#: The statistics over time of each mode that summarises, in the order of the output columns.
_STATS = {"stats": ("mean", "std"), "summary": ("mean", "std", "min", "max")}


class FeatureReshaper(TransformerMixin, BaseEstimator):
    """Turn samples of any shape into flat feature vectors.

    Parameters
    ----------
    mode : {"flatten", "stats", "summary"}, default="flatten"
        ``"flatten"``: a sample of shape ``sample_shape`` becomes ``prod(sample_shape)`` features.
        ``"stats"``: a sample is summarised by the mean and the standard deviation over its last
        axis (time, for MFCC or mel frames): ``(n_mfcc, n_frames)`` becomes ``2 * n_mfcc``
        features (all means, then all standard deviations) whatever the number of frames.
        ``"summary"``: mean, standard deviation, minimum and maximum over the last axis,
        ``4 * n_mfcc`` features in that order.

        ``X`` may be :class:`~featurestore.streaming.StoredRows` (rows of the store larger than
        memory): ``"stats"`` and ``"summary"`` then read and summarise it batch by batch;
        ``"flatten"`` needs the whole matrix and raises
        :class:`~featurestore.errors.MemoryBudgetError` when it exceeds the memory budget.

    Attributes
    ----------
    n_features_in_ : int
        ``X.shape[1]`` seen in ``fit``, as in scikit-learn (the first axis of a sample).
    feature_names_in_ : ndarray of str [shape=(n_features_in_,)]
        Column names, only when ``fit`` was given a DataFrame.
    sample_shape_ : tuple of int
        ``X.shape[1:]`` seen in ``fit``; ``transform`` requires the same.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    >>> FeatureReshaper().fit_transform(X).shape
    (2, 12)
    >>> FeatureReshaper(mode="stats").fit_transform(X).shape
    (2, 6)
    >>> FeatureReshaper(mode="summary").fit_transform(X).shape
    (2, 12)
    """

    def __init__(self, *, mode="flatten"):
        self.mode = mode

    def fit(self, X, y=None):
        """Check ``mode``, record the sample shape of ``X`` [shape=(n_samples, *sample_shape)]."""
        if self.mode not in _MODES:
            raise ValueError(f"FeatureReshaper: mode={self.mode!r} must be one of {_MODES}")
        if self.mode == "flatten" and isinstance(X, StoredRows):
            X.check_budget("FeatureReshaper(mode='flatten')")
        X = self._validate(X, reset=True)
        self.sample_shape_ = X.shape[1:]
        return self

    def transform(self, X):
        """Flatten or summarise each sample.

        Parameters
        ----------
        X : array-like [shape=(n_samples, *sample_shape_)]

        Returns
        -------
        Xt : np.ndarray [shape=(n_samples, n_features_out)], float32 if X is, else float64
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        if X.shape[1:] != self.sample_shape_:
            raise ValueError(
                f"FeatureReshaper was fitted on samples of shape {self.sample_shape_}, "
                f"got samples of shape {X.shape[1:]}"
            )
        if self.mode == "flatten":
            return np.asarray(X).reshape(len(X), -1)
        if isinstance(X, StoredRows):  # read and summarised batch by batch: memory of one batch
            return np.concatenate([self._summarise(_finite(batch)) for batch in X.iter_batches()]
                                  or [self._summarise(np.zeros((0, *self.sample_shape_), np.float32))])
        return self._summarise(X)

    def _summarise(self, X):
        """The statistics of ``mode`` over the last axis of ``X``, per sample."""
        reducers = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}
        columns = [reducers[stat](X, axis=-1).reshape(len(X), -1) for stat in _STATS[self.mode]]
        return np.concatenate(columns, axis=1)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        ``"flatten"`` names the element at index ``(i, j, ...)`` of a sample ``"{name_i}_{j}_..."``,
        where ``name_i`` is the input name of column ``i`` (``x{i}`` unless fitted on a
        DataFrame). ``"stats"`` and ``"summary"`` append the statistic (``_mean``, ``_std``,
        ``_min``, ``_max``) to the names of the kept axes.
        """
        check_is_fitted(self)
        if input_features is None:
            input_features = getattr(self, "feature_names_in_", None)
        if input_features is None:
            input_features = [f"x{i}" for i in range(self.n_features_in_)]
        elif len(input_features) != self.n_features_in_:
            raise ValueError(
                f"FeatureReshaper: input_features has {len(input_features)} names, "
                f"expected n_features_in_={self.n_features_in_}"
            )
        shape = self.sample_shape_ if self.mode == "flatten" else self.sample_shape_[:-1]
        names = [
            "_".join([str(input_features[index[0]]), *map(str, index[1:])]) if index else "x"
            for index in np.ndindex(*shape)
        ]
        if self.mode in _STATS:
            names = [f"{n}_{stat}" for stat in _STATS[self.mode] for n in names]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _validate(self, X, *, reset):
        if isinstance(X, StoredRows) and self.mode in _STATS:
            return _stored(self, X, reset=reset)
        return validate_data(self, X, reset=reset, allow_nd=True, dtype=(np.float64, np.float32))


def _stored(estimator, X, *, reset):
    """:class:`StoredRows` ``X`` (left unread) after the checks ``validate_data`` makes of an array's
    shape; its values are checked batch by batch as they are summarised (:func:`_finite`)."""
    if X.ndim < 2:
        raise ValueError(f"{type(estimator).__name__} expects X with at least 2 dimensions, got shape {X.shape}")
    if reset:
        estimator.n_features_in_ = X.shape[1]
    elif X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
                         f"{estimator.n_features_in_} features as input")
    return X


def _finite(batch):
    """``batch``, once found free of NaN and infinity (as scikit-learn's input checks require)."""
    finite = np.isfinite(batch.reshape(len(batch), -1)).all(axis=1)
    if not finite.all():
        raise ValueError(f"Input X contains NaN or infinity: {np.count_nonzero(~finite)} samples of a batch of "
                         f"{len(batch)} read from the store have some")
    return batch


class LabelEncodedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Fit a classifier on labels encoded as ``0 .. n_classes - 1`` and decode its predictions.

    For classifiers that accept only such labels, such as :class:`xgboost.XGBClassifier`: with
    this wrapper any labels work (strings included) and ``classes_`` holds the original labels.
    ``X`` must be 2-D; NaN is passed on when the wrapped classifier accepts it (XGBoost does, as
    missing values).

    Parameters
    ----------
    estimator : classifier
        Cloned in ``fit``; tune its parameters as ``estimator__<name>``.

    Attributes
    ----------
    classes_ : np.ndarray [shape=(n_classes,)]
        The original labels, sorted; ``predict_proba``'s columns follow this order.
    estimator_ : classifier
        The fitted clone of ``estimator``.
    n_features_in_ : int
        Number of columns of ``X`` in ``fit``.
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y, **fit_params):
        """Fit a clone of ``estimator`` on ``X`` and the encoded ``y``.

        ``fit_params`` (e.g. ``sample_weight``) are passed to the clone's ``fit``.
        """
        X, y = self._validate(X, y, reset=True)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"{_name(self.estimator)} needs at least 2 classes in y to train; "
                f"got only one class: {encoder.classes_.tolist()[0]!r}"
            )
        self.classes_ = encoder.classes_
        self.estimator_ = clone(self.estimator).fit(X, encoder.transform(y), **fit_params)
        return self

    def predict(self, X):
        """Original labels [shape=(n_samples,)] of the wrapped classifier's predictions."""
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return self.classes_[np.asarray(self.estimator_.predict(X), dtype=np.intp)]

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X):
        """Class probabilities [shape=(n_samples, n_classes)], columns ordered as ``classes_``."""
        check_is_fitted(self)
        return self.estimator_.predict_proba(self._validate(X, reset=False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = get_tags(self.estimator).input_tags.allow_nan
        return tags

    def _validate(self, X, y="no_validation", *, reset):
        finite = "allow-nan" if get_tags(self.estimator).input_tags.allow_nan else True
        return validate_data(self, X, y, reset=reset, ensure_all_finite=finite)


class ClassicalClassifier(ClassifierMixin, BaseEstimator):
    """Base of the classical registry estimators: flat parameters, an internal pipeline.

    A subclass lists its parameters in ``__init__`` (stored as given, as in scikit-learn) and
    builds from them, in :meth:`_make_pipeline`, the pipeline it fits::

        FeatureReshaper(mode=features) -> [StandardScaler] -> classifier

    so that a sample of any shape from the feature store, ``(F,)``, ``(C, H, W)`` or
    ``(n_mfcc, n_frames)``, becomes one feature vector inside the estimator, and a grid tunes
    ``C``, not ``clf__estimator__C``. ``fit`` rejects what no classifier can learn from, before
    anything is fitted, with a message that names the class: ``X`` with fewer than 2 dimensions,
    NaN or infinity in ``X``, and ``y`` with a single class.

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted pipeline (steps ``reshape``, [``scale``,] ``clf``).
    classes_ : np.ndarray [shape=(n_classes,)]
    n_features_in_ : int
        ``X.shape[1]`` at fit (the first axis of a sample).
    feature_names_in_ : ndarray of str
        Column names, only when ``fit`` was given a DataFrame.
    """

    #: Run settings an experiment may set (see :func:`estimators.run_params`): none by default.
    run_params = ()

    def _make_pipeline(self):
        """A new unfitted pipeline of this estimator's parameters (subclasses write it)."""
        raise NotImplementedError

    def fit(self, X, y, groups=None):
        """Check ``X`` [shape=(n_samples, *sample_shape)] and ``y``, then fit the pipeline.

        Parameters
        ----------
        X : array-like [shape=(n_samples, *sample_shape)]
        y : array-like [shape=(n_samples,)]
        groups : array-like [shape=(n_samples,)], optional
            Recording or speaker of each training clip. Estimators that select a parameter by
            inner cross-validation keep each group on one side of every inner split (see
            :func:`inner_splits`); the others ignore it.

        Returns
        -------
        self
        """
        y = _check_training_data(X, y, name=type(self).__name__)
        if self.features not in _MODES:
            raise ValueError(f"{type(self).__name__}: features={self.features!r} must be one of {_MODES}")
        X = self._validate(X, reset=True)
        if groups is not None:
            groups = column_or_1d(groups)
            check_consistent_length(X, groups)
        self.pipeline_ = self._fit(X, y, groups)
        self.classes_ = self.pipeline_.classes_
        return self

    def _fit(self, X, y, groups):
        """The fitted pipeline for checked ``X``, ``y`` (subclasses that select parameters
        override this; the default fits :meth:`_make_pipeline` and ignores ``groups``)."""
        return self._make_pipeline().fit(X, y)

    def predict(self, X):
        """Labels [shape=(n_samples,)] predicted for ``X`` [shape=(n_samples, *sample_shape)]."""
        check_is_fitted(self)
        return self.pipeline_.predict(self._validate(X, reset=False))

    def predict_proba(self, X):
        """Class probabilities [shape=(n_samples, n_classes)], columns ordered as ``classes_``."""
        check_is_fitted(self)
        return self.pipeline_.predict_proba(self._validate(X, reset=False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.classifier_tags.multi_label = False  # fit takes one label per sample
        return tags

    def _validate(self, X, *, reset):
        if isinstance(X, StoredRows):  # summarised batch by batch, or refused past the budget
            if self.features not in _STATS:
                X.check_budget(f"{type(self).__name__}(features={self.features!r})")
            else:
                return _stored(self, X, reset=reset)
        # float32 stays float32 (the store's dtype): the same numbers reach the pipeline
        return validate_data(self, X, reset=reset, allow_nd=True, dtype=(np.float64, np.float32))


def inner_splits(y, groups=None, *, n_splits=3, random_state=0, name="estimator"):
    """Inner cross-validation splits of the training clips, for selecting and calibrating.

    Stratified group k-fold when ``groups`` is given, so that no recording or speaker is on both
    sides of an inner split; stratified k-fold otherwise. Small data changes the plan rather than
    failing: the number of splits drops to the smallest class's number of clips (at least 2),
    and then, with groups, to the largest number for which every inner training part still
    holds every class. When no grouped plan exists (a class recorded in a single group), the
    splits are stratified by class only, with a warning, since such a class cannot be held out
    by group and still be learnt.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    groups : np.ndarray [shape=(n_samples,)] or None
    n_splits : int >= 2
        Splits wanted; fewer are made when a class is smaller.
    random_state : int
        Seed of the folds' shuffling.
    name : str
        The estimator, for messages.

    Returns
    -------
    splits : list of (np.ndarray, np.ndarray)
        ``(train, test)`` row indices; the test parts partition ``range(n_samples)``.
    grouped : bool
        Whether the splits keep groups apart.
    """
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        raise ValueError(
            f"{name}: selecting or calibrating by inner cross-validation needs at least 2 training "
            f"clips per class; class {np.asarray(classes, dtype=object)[counts.argmin()]!r} has {counts.min()}"
        )
    most = min(n_splits, int(counts.min()))
    rows = np.zeros((len(y), 1))
    if groups is not None:
        for k in range(min(most, len(np.unique(groups))), 1, -1):
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=random_state)
            splits = list(splitter.split(rows, y, groups))
            if all(len(np.unique(y[train])) == len(classes) and len(test) for train, test in splits):
                return splits, True
        warnings.warn(
            f"{name}: no grouped inner split keeps every class in training (a class is recorded "
            "in too few groups); the inner folds are stratified by class only, so clips of one "
            "group can be on both sides",
            UserWarning,
            stacklevel=3,
        )
    splitter = StratifiedKFold(n_splits=most, shuffle=True, random_state=random_state)
    return list(splitter.split(rows, y)), False


def select_params(estimator, param_grid, X, y, splits):
    """The parameters of ``param_grid`` with the best mean inner accuracy on ``splits``.

    Parameters
    ----------
    estimator : estimator
        Cloned for each candidate and split.
    param_grid : dict of str to list
        Candidates; a single candidate is returned without fitting anything.
    X : np.ndarray [shape=(n_samples, n_features)]
    y : np.ndarray [shape=(n_samples,)]
    splits : list of (np.ndarray, np.ndarray)
        From :func:`inner_splits`.

    Returns
    -------
    best_params : dict
    cv_results : dict or None
        ``GridSearchCV.cv_results_`` (None when there was a single candidate).
    """
    if all(len(values) == 1 for values in param_grid.values()):
        return {key: values[0] for key, values in param_grid.items()}, None
    # ties go to the first candidate in the grid's order, so list the most regularised first
    search = GridSearchCV(estimator, param_grid, cv=splits, scoring="accuracy", refit=False,
                          error_score="raise").fit(X, y)
    return search.best_params_, search.cv_results_


def _check_training_data(X, y, *, name):
    """``y`` as a 1-D array, once ``X`` and ``y`` are found fit to train classifier ``name``.

    Rows read on demand (:class:`StoredRows`) are checked by shape here and by value as they are
    read (see :func:`_finite`).
    """
    if isinstance(X, StoredRows):
        return _check_stored_training_data(X, y, name=name)
    X = check_array(X, allow_nd=True, ensure_2d=False, ensure_all_finite=False, input_name="X")
    if X.ndim < 2:
        raise ValueError(
            f"{name} expects X of shape (n_samples, *sample_shape) with at least 2 dimensions, "
            f"got shape {X.shape}. Reshape your data with X.reshape(-1, 1) if it has a single "
            "feature."
        )
    finite = np.isfinite(X).reshape(len(X), -1).all(axis=1)
    if not finite.all():
        raise ValueError(
            f"{name} cannot be fitted on X containing NaN or infinity: "
            f"{np.count_nonzero(~finite)} of {len(X)} samples have non-finite values"
        )
    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None")
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    check_classification_targets(y)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"{name} needs at least 2 classes in y to train; "
            f"got only one class: {classes.tolist()[0]!r}"
        )
    return y


def _check_stored_training_data(X, y, *, name):
    if X.ndim < 2:
        raise ValueError(f"{name} expects X of shape (n_samples, *sample_shape) with at least 2 dimensions, "
                         f"got shape {X.shape}")
    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None")
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    check_classification_targets(y)
    if len(np.unique(y)) < 2:
        raise ValueError(f"{name} needs at least 2 classes in y to train; got only one class: {y[0]!r}")
    return y


def _name(estimator):
    """The class name of ``estimator``, or of the estimator that a meta-estimator wraps (``SVC``
    for ``CalibratedClassifierCV(SVC())``), for error messages."""
    inner = getattr(estimator, "estimator", None)
    return type(inner if isinstance(inner, BaseEstimator) else estimator).__name__
