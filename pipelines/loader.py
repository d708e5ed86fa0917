"""The first step of every experiment pipeline: turn clip ids (or raw audio) into a model's input.

``X`` of an experiment is an array of clip ids. :class:`FeatureLoader` reads their features from a
feature set in the store (each worker process opens the file itself, so no large array is pickled)
and brings them to the layout its estimator expects. Given float waveforms instead of ids, it
computes the same features from the audio, so a fitted pipeline also classifies new files.

:class:`ClipPipeline` is the pipeline around it. With stored augmented copies of the clips
(``FeatureLoader(augmented_set=...)``), its ``fit`` adds the copies of the training clips to the
training rows (``augment_copies`` of them per clip); ``predict``, ``score`` and ``transform`` never
read a copy. Because this happens inside ``fit``, a splitter only ever sees source clips, so the
copies of a test clip never reach training, and ``augment_copies`` is a parameter a grid can tune.
"""

import functools

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from imblearn.pipeline import Pipeline
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from featurestore import features
from featurestore.errors import MemoryBudgetError
from featurestore.store import FeatureSet
from featurestore.streaming import ENV_VAR as BUDGET_VAR, StoredRows, format_bytes, memory_budget

INPUT_LAYOUTS = {
    "flat": "per-sample arrays as stored; the estimator flattens or summarises them itself",
    "image": "(C, H, W): 2-D features get one channel axis",
    "sequence": "(T, F): time first; (F, T) and (C, F, T) features are transposed and stacked",
    "waveform": "(n_samples,): raw audio",
}


def adapt_input(X, layout):
    """Bring a stack of stored features to an estimator's input layout.

    Parameters
    ----------
    X : np.ndarray [shape=(n,) + feature_shape]
        Features as stored: (n, n_samples) waveforms, (n, F, T) frames, or (n, C, F, T) images.
    layout : {"flat", "image", "sequence", "waveform"}

    Returns
    -------
    np.ndarray, float32
        ``flat``: unchanged; ``image``: (n, C, H, W); ``sequence``: (n, T, F) (waveforms stay
        (n, n_samples): recurrent nets frame them); ``waveform``: (n, n_samples).
    """
    if layout not in INPUT_LAYOUTS:
        raise ValueError(f"input layout {layout!r} must be one of {', '.join(INPUT_LAYOUTS)}")
    per_sample = X.ndim - 1
    if layout == "flat":
        return X
    if layout == "image":
        if per_sample == 2:
            return X[:, None]
        if per_sample == 3:
            return X
    elif layout == "sequence":
        if per_sample == 1:
            return X
        if per_sample == 2:
            return np.ascontiguousarray(X.transpose(0, 2, 1))
        if per_sample == 3:
            n, c, f, t = X.shape
            return np.ascontiguousarray(X.transpose(0, 3, 1, 2).reshape(n, t, c * f))
    elif layout == "waveform" and per_sample == 1:
        return X
    raise ValueError(f"features of shape {X.shape[1:]} per clip cannot be given as {layout!r} input "
                     f"({INPUT_LAYOUTS[layout]})")


class FeatureLoader(TransformerMixin, BaseEstimator):
    """Load features of clip ids from a stored feature set, in an estimator's input layout.

    Parameters
    ----------
    feature_set : str
        Path of the feature set's ``.h5`` file in the store.
    input : {"flat", "image", "sequence", "waveform"}
        The layout the next step expects (see :func:`adapt_input`).
    augmented_set : str, optional
        Path of the stored augmented copies of ``feature_set``'s clips
        (:func:`featurestore.extract_augmented`). ``fit_transform`` reads rows of either set, which is
        how :class:`ClipPipeline` trains on copies; ``transform`` reads clips of ``feature_set`` only.
    streaming : {"auto", True, False}, default="auto"
        Whether clip ids give a :class:`~featurestore.streaming.StoredRows` (the rows, read on
        demand by the estimator: torch nets train batch by batch, ``features="stats"`` summaries
        are computed batch by batch) instead of an array. ``"auto"``: when the rows exceed the
        memory budget (:func:`~featurestore.streaming.memory_budget`, ``FEATURESTORE_MEMORY_BUDGET``).
        Rows that include augmented copies are always an array (past the budget,
        :class:`~featurestore.errors.MemoryBudgetError`).

    Attributes
    ----------
    kind_ : str
        Feature kind of the set.
    params_ : dict
        Its parameters.
    audio_ : dict
        Its audio settings (``sr``, ``duration``, ...), used to compute features of raw audio.
    feature_shape_ : tuple
        Shape of one clip's stored features.
    n_copies_ : int
        Augmented copies per clip in ``augmented_set`` (0 without one).

    Notes
    -----
    A fitted loader keeps the sets it opened, with their features once read, so that the
    ``transform`` calls after ``fit`` (scoring a fold, predicting) read the file once. They are
    dropped on pickling: a pipeline sent to a worker process stays small, and the worker reads
    the file itself on first use.
    """

    def __init__(self, feature_set=None, *, input="flat", augmented_set=None, streaming="auto"):
        self.feature_set = feature_set
        self.input = input
        self.augmented_set = augmented_set
        self.streaming = streaming

    def fit(self, X=None, y=None):
        """Read the feature set's description (not its data), and check the augmented set's."""
        if self.feature_set is None:
            raise ValueError("FeatureLoader needs feature_set, the path of a stored feature set")
        if not (isinstance(self.streaming, (bool, np.bool_)) or self.streaming == "auto"):
            raise ValueError(f"FeatureLoader: streaming={self.streaming!r} must be 'auto', True or False")
        # keep what ClipPipeline opened just before (the copies' rows); each set rereads a changed file
        kept = (self.feature_set, self.augmented_set)
        self._sets = {path: fs for path, fs in self.__dict__.get("_sets", {}).items() if path in kept}
        fs = self._open(self.feature_set)
        self.kind_, self.params_, self.audio_ = fs.kind, fs.params, fs.audio
        self.feature_shape_ = fs.feature_shape
        adapt_input(np.zeros((1, *fs.feature_shape), np.float32), self.input)  # fail early on layout
        self.n_copies_ = 0
        if self.augmented_set is not None:
            copies = self._open(self.augmented_set)
            if copies.augmentation is None or copies.attrs.get("source_key") != fs.attrs.get("key"):
                raise ValueError(f"augmented_set {copies.path} does not hold augmented copies of feature set "
                                 f"{fs.path} (another kind, parameters, audio settings or data set)")
            self.n_copies_ = int(copies.augmentation["copies"])
        return self

    def fit_transform(self, X, y=None):
        """Fit, then the features of ``X``, whose ids may also be rows of ``augmented_set``.

        Only fitting reads augmented copies (:class:`ClipPipeline` adds them to the training rows):
        unlike :meth:`transform`, which takes clips of ``feature_set`` alone.
        """
        return self.fit(X, y)._transform(X, copies_allowed=True)

    def transform(self, X):
        """Features of ``X``.

        Parameters
        ----------
        X : array-like of str [shape=(n,) or (n, 1)], or np.ndarray of float [shape=(n, n_samples)]
            Clip ids of the feature set's data set, or waveforms at ``audio_["sr"]`` of the clip
            length the set was computed for.

        Returns
        -------
        np.ndarray [shape=(n, *input_shape)], float32; or StoredRows
            Clip ids give a :class:`~featurestore.streaming.StoredRows` instead when they stream
            (see ``streaming``).
        """
        check_is_fitted(self, "kind_")
        return self._transform(X, copies_allowed=False)

    def _transform(self, X, *, copies_allowed):
        X = np.asarray(X)
        if X.dtype.kind in "fc":
            return adapt_input(self._from_audio(X), self.input)
        ids = X.reshape(-1).astype(str)
        main = self._open(self.feature_set)
        in_main = main.contains(ids) if self.augmented_set is not None else None
        if in_main is None or in_main.all():
            if self._streams(len(ids)):
                return StoredRows(main, main.index_of(ids), transform=functools.partial(adapt_input, layout=self.input))
            return adapt_input(main.read(ids), self.input)
        size = len(ids) * int(np.prod(main.feature_shape)) * 4
        if size > memory_budget():
            raise MemoryBudgetError(
                f"{len(ids)} rows with augmented copies of {main.path.name} take {format_bytes(size)} as float32: "
                f"rows with copies are read whole, and this is more than the memory budget of "
                f"{format_bytes(memory_budget())} ({BUDGET_VAR}); train on fewer copies (augment_copies) or raise it")
        copies = self._open(self.augmented_set)
        if not copies_allowed:
            is_copy = ~in_main & copies.contains(ids)
            if is_copy.any():
                raise ValueError(f"clip {ids[is_copy][0]!r} is an augmented copy: copies are training rows "
                                 "only, added by ClipPipeline.fit; predict, score and transform take source clips")
        values = np.empty((len(ids), *main.feature_shape), np.float32)
        values[in_main] = main.read(ids[in_main])
        values[~in_main] = copies.read(ids[~in_main])
        return adapt_input(values, self.input)

    def _streams(self, n_rows):
        """Whether ``n_rows`` rows of the main set are given as StoredRows (see ``streaming``)."""
        if self.streaming != "auto":
            return bool(self.streaming)
        return n_rows * int(np.prod(self.feature_shape_)) * 4 > memory_budget()

    def _open(self, path):
        """The :class:`FeatureSet` at ``path``, opened once per fitted loader (see Notes)."""
        sets = self.__dict__.setdefault("_sets", {})
        if path not in sets:
            sets[path] = FeatureSet(path)
        return sets[path]

    def __getstate__(self):
        # a copy: BaseEstimator's state may be this object's own __dict__
        state = dict(super().__getstate__())
        state.pop("_sets", None)  # the loaded features stay behind (see Notes)
        return state

    def _from_audio(self, X):
        expected = round(self.audio_["sr"] * self.audio_["duration"])
        if X.ndim != 2 or X.shape[1] != expected:
            raise ValueError(f"waveforms must have shape (n, {expected}) ({self.audio_['duration']} s at "
                             f"{self.audio_['sr']} Hz); got {X.shape}")
        return features.get(self.kind_).compute(X.astype(np.float32), sr=self.audio_["sr"], **self.params_)


def _final_has(*methods):
    """For ``available_if``: the final step is "passthrough" or has one of ``methods``."""
    def check(self):
        final = self.steps[-1][1]
        return final == "passthrough" or any(hasattr(final, m) for m in methods)
    return check


class ClipPipeline(Pipeline):
    """A pipeline from clip ids that trains on stored augmented copies too.

    It is imbalanced-learn's :class:`~imblearn.pipeline.Pipeline` (a scikit-learn ``Pipeline`` whose
    samplers, such as the ``sampler`` step of :func:`~pipelines.build.make_pipeline`, act in ``fit``
    only).

    ``fit`` adds to the training clips ``X`` their augmented copies 1 .. ``augment_copies``, read from
    the ``augmented_set`` of the first step (a :class:`FeatureLoader`), with their source clip's label,
    and with their source's value of every other per-sample fit parameter (an array of ``len(X)``,
    e.g. ``model__groups``: a net's internal validation split keeps copies with their source).
    ``predict``, ``predict_proba``, ``score`` and ``transform`` are :class:`~sklearn.pipeline.Pipeline`'s
    and never add or accept a copy. Without an augmented set it is a plain pipeline.

    Parameters
    ----------
    steps : list of (str, estimator)
        The first is a :class:`FeatureLoader` when copies are used.
    augment_copies : int >= 0 or None, default=None
        Copies per training clip; 0 trains on the clips alone, None on every stored copy.
    transform_input, memory, verbose
        As for :class:`~sklearn.pipeline.Pipeline`.

    Attributes
    ----------
    n_augmented_ : int
        Copies added to the training rows by the last ``fit``.

    Examples
    --------
    >>> search = GridSearchCV(make_pipeline("svm", mfcc, augmented_set=copies),   # doctest: +SKIP
    ...                       {"augment_copies": [0, 2]}, cv=ClipSplitter(dataset.clips))
    """

    def __init__(self, steps, *, augment_copies=None, transform_input=None, memory=None, verbose=False):
        super().__init__(steps, transform_input=transform_input, memory=memory, verbose=verbose)
        self.augment_copies = augment_copies

    def fit(self, X, y=None, **params):
        """Fit the steps on the clips ``X`` and the stored copies of them (see the class docstring).

        Parameters
        ----------
        X : array-like of str [shape=(n,)]
            Clip ids (source clips, never copies).
        y : array-like [shape=(n,)]
        **params
            Fit parameters ``<step>__<name>``; per-sample arrays are repeated for the copies.

        Returns
        -------
        self
        """
        X, y, params = self._with_copies(X, y, params)
        return super().fit(X, y, **params)

    @available_if(_final_has("fit_transform", "transform"))
    def fit_transform(self, X, y=None, **params):
        """Fit with the copies (see :meth:`fit`), then transform the clips ``X`` alone."""
        X_fit, y_fit, fit_params = self._with_copies(X, y, params)
        if len(X_fit) == len(X):
            return super().fit_transform(X, y, **params)
        return super().fit(X_fit, y_fit, **fit_params).transform(X)

    @available_if(_final_has("fit_predict"))
    def fit_predict(self, X, y=None, **params):
        """Fit with the copies (see :meth:`fit`), then predict the clips ``X`` alone."""
        X_fit, y_fit, fit_params = self._with_copies(X, y, params)
        if len(X_fit) == len(X):
            return super().fit_predict(X, y, **params)
        return super().fit(X_fit, y_fit, **fit_params).predict(X)

    def _with_copies(self, X, y, params):
        """``X``, ``y`` and the fit parameters with the augmented copies' rows appended."""
        copies = self.augment_copies
        if copies is not None and (not features.is_int(copies) or copies < 0):
            raise ValueError(f"augment_copies={copies!r} must be an integer >= 0 or None (all stored copies)")
        loader = self.steps[0][1]
        augmented = getattr(loader, "augmented_set", None) if isinstance(loader, FeatureLoader) else None
        self.n_augmented_ = 0
        if copies == 0 or (copies is None and augmented is None):
            return X, y, params
        if augmented is None:
            raise ValueError(f"augment_copies={copies} needs stored augmented copies: the pipeline's first step "
                             "must be a FeatureLoader with an augmented_set (see --set augment.copies)")
        fs = loader._open(augmented)
        stored = int(fs.augmentation["copies"]) if fs.augmentation else 0
        if copies is not None and copies > stored:
            raise ValueError(f"augment_copies={copies} is more than the {stored} copies per clip of the augmented "
                             f"set {fs.path.name}")
        ids = np.asarray(X)
        if ids.dtype.kind in "fc":
            raise ValueError("augment_copies needs clip ids as X, not waveforms: copies are stored per clip id")
        ids = ids.reshape(-1).astype(str)
        is_copy = fs.contains(ids)
        if is_copy.any():
            raise ValueError(f"X holds augmented copies (e.g. {ids[is_copy][0]!r}): fit takes source clips "
                             "and adds their copies itself")
        rows, owner = fs.augmented_rows(ids, copies)
        self.n_augmented_ = len(rows)
        n = len(ids)
        X = np.concatenate([ids, rows.astype(str)])
        if y is not None:
            y = np.asarray(y)
            y = np.concatenate([y, y[owner]])
        params = {key: _repeat_rows(value, owner, n) for key, value in params.items()}
        return X, y, params


def _repeat_rows(value, owner, n):
    """A per-sample fit parameter (array-like of length ``n``) with its rows ``owner`` appended."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__") or len(value) != n:
        return value
    value = np.asarray(value)
    return np.concatenate([value, value[owner]])
