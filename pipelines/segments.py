"""Clip-level classification by voting over fixed-length windows (PiczakNet's protocol).

Piczak (2015) cuts every log-mel clip into windows of 41 frames with 50 % overlap, trains on the
windows and labels a clip by the majority vote, or the mean probability, of its windows.
:class:`SegmentClassifier` does this around any scikit-learn classifier, so that a grid can choose
the window and the vote like any other parameter.

Windowing rule (shared by :func:`window_starts`, :func:`n_windows` and :func:`segment`)
-----------------------------------------------------------------------------------------
With ``T`` steps along the time axis, ``hop = max(1, floor(window * (1 - overlap)))``
(41 frames at 50 % overlap: hop 20):

- full windows start at ``0, hop, 2 * hop, ...`` while they fit inside the clip;
- if they leave a tail uncovered, one more window **ending at the clip's last step** is added
  (start ``T - window``), so every step is seen and no window is padded; this last window
  overlaps its neighbour by more than ``overlap``;
- a clip shorter than one window is zero-padded at its end to one window. Zero is silence for a
  waveform but not for a log-mel spectrogram in dB (whose silence is very negative): pad
  log-mel features at extraction time if that matters.

So ``n_windows = 1 + ceil((T - window) / hop)`` for ``T >= window``, else 1. For ``T = 87``,
``window = 41``, ``overlap = 0.5``: starts 0, 20, 40 and 46, that is 4 windows.

>>> from sklearn.linear_model import LogisticRegression
>>> clf = SegmentClassifier(LogisticRegression(), window=41, overlap=0.5)  # X: (n, n_mels, T)
>>> # GridSearchCV(clf, {"window": [21, 41], "vote": ["mean", "majority"]}, cv=GroupKFold(5))
"""

import inspect
import math
import numbers

import numpy as np
import scipy.sparse
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.metrics import accuracy_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from featurestore import features


__all__ = ["SegmentClassifier", "VOTES", "hop_length", "n_windows", "segment", "window_accuracy",
           "window_starts"]

#: Valid values of ``SegmentClassifier(vote=...)``.
VOTES = ("mean", "majority")


# --------------------------------------------------------------------------- windowing


def _check_window(window, overlap):
    if not features.is_int(window) or window < 1:
        raise ValueError(f"window={window!r} must be a positive integer (steps along time_axis)")
    if (not isinstance(overlap, numbers.Real) or isinstance(overlap, (bool, np.bool_))
            or not 0 <= overlap < 1):
        raise ValueError(f"overlap={overlap!r} must be a number in [0, 1)")


def _check_time_axis(time_axis, sample_ndim):
    if not features.is_int(time_axis) or not -sample_ndim <= time_axis < sample_ndim:
        raise ValueError(f"time_axis={time_axis!r} must be an integer axis of one sample, in "
                         f"[{-sample_ndim}, {sample_ndim}) for samples with {sample_ndim} dimension(s)")
    return time_axis % sample_ndim


def _as_dense(X):
    if scipy.sparse.issparse(X):
        raise TypeError("X is a sparse matrix; sparse input is not supported: windows are cut "
                        "from a dense array (n_clips, *sample_shape)")
    return np.asarray(X)


def hop_length(window, overlap):
    """Steps between the starts of two consecutive windows: ``max(1, floor(window * (1 - overlap)))``.

    >>> hop_length(41, 0.5)
    20
    """
    _check_window(window, overlap)
    # round() first, so that 100 * (1 - 0.9) = 9.999999999999998 gives 10, not 9
    return max(1, math.floor(round(window * (1 - overlap), 9)))


def window_starts(n_steps, window, overlap=0.5):
    """First step of every window of a clip of ``n_steps`` steps (see the module's rule).

    Returns
    -------
    starts : np.ndarray [shape=(n_windows,)], int64

    >>> window_starts(87, 41, 0.5)
    array([ 0, 20, 40, 46])
    """
    hop = hop_length(window, overlap)
    if not features.is_int(n_steps) or n_steps < 0:
        raise ValueError(f"n_steps={n_steps!r} must be a non-negative integer")
    if n_steps <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_steps - window + 1, hop, dtype=np.int64)
    if starts[-1] + window < n_steps:
        starts = np.append(starts, n_steps - window)
    return starts


def n_windows(n_steps, window, overlap=0.5):
    """Number of windows cut from a clip of ``n_steps`` steps.

    >>> n_windows(87, 41, 0.5), n_windows(81, 41, 0.5), n_windows(10, 41, 0.5)
    (4, 3, 1)
    """
    return len(window_starts(n_steps, window, overlap))


def segment(X, *, window=41, overlap=0.5, time_axis=-1):
    """Cut every clip of ``X`` into overlapping windows along ``time_axis``.

    Vectorised: one :func:`~numpy.lib.stride_tricks.sliding_window_view` over the whole batch,
    from which only the chosen windows are copied.

    Parameters
    ----------
    X : np.ndarray [shape=(n_clips,) + sample_shape]
        Clips of equal length, e.g. ``(n, n_samples)`` waveforms, ``(n, n_mels, T)`` or
        ``(n, C, n_mels, T)`` spectrograms, ``(n, T, F)`` sequences. Any dtype.
    window : int > 0
        Steps per window along ``time_axis``.
    overlap : float in [0, 1)
        Fraction of a window shared by consecutive windows.
    time_axis : int
        Time axis of one sample (not counting the clip axis): -1 is the last, 0 the first.

    Returns
    -------
    windows : np.ndarray [shape=(n_clips * n_windows, *window_shape)], X.dtype
        ``window_shape`` is ``sample_shape`` with ``window`` steps on the time axis.
        The windows of clip 0 come first, in time order, then those of clip 1, and so on.
    clip_index : np.ndarray [shape=(n_clips * n_windows,)], int64
        Row of ``X`` each window comes from.
    """
    X = _as_dense(X)
    if X.ndim < 2:
        raise ValueError(f"X has ndim={X.ndim}; expected (n_clips, *sample_shape) with at least "
                         "one axis per sample. Reshape your data, e.g. to (n_clips, n_samples) for waveforms")
    _check_window(window, overlap)
    axis = 1 + _check_time_axis(time_axis, X.ndim - 1)
    n_steps = X.shape[axis]
    if len(X) == 0 or n_steps == 0:
        raise ValueError(f"X of shape {X.shape} is empty: it needs at least one clip and one step "
                         f"along time_axis={time_axis}")
    if n_steps < window:
        pad = [(0, 0)] * X.ndim
        pad[axis] = (0, window - n_steps)
        X = np.pad(X, pad)
    starts = window_starts(X.shape[axis], window, overlap)
    views = sliding_window_view(X, window, axis=axis)   # time axis -> all starts; window last
    W = np.take(views, starts, axis=axis)                # copies the chosen windows only
    W = np.moveaxis(W, axis, 1)                          # (n_clips, n_windows, ..., window)
    W = np.moveaxis(W, -1, axis + 1)                     # window back where the time axis was
    windows = W.reshape(-1, *W.shape[2:])
    clip_index = np.repeat(np.arange(len(X), dtype=np.int64), len(starts))
    return windows, clip_index


# --------------------------------------------------------------------------- estimator
def _estimator_has(attr):
    """For ``available_if``: the fitted inner estimator if any, else the unfitted one, has ``attr``."""
    def check(self):
        return hasattr(getattr(self, "estimator_", self.estimator), attr)
    return check


def _fit_accepts_groups(estimator):
    """True if ``estimator.fit`` has an explicit ``groups`` parameter.

    ``**kwargs`` does not count: skorch's ``NeuralNet.fit(X, y, **fit_params)`` would forward
    ``groups`` to ``module.forward``.
    """
    try:
        parameters = inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError):
        return False
    param = parameters.get("groups")
    return param is not None and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)


class SegmentClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Train any classifier on windows of clips; classify a clip by voting over its windows.

    ``fit`` cuts every clip into windows (see the module docstring for the rule), repeats each
    clip's label over its windows and fits a clone of ``estimator`` on them. ``predict`` cuts the
    same way and combines the window outputs per clip. ``score`` is clip-level accuracy;
    :meth:`score_windows` (or :func:`window_accuracy` as a scorer) gives window-level accuracy.

    Because cutting happens inside ``fit`` and ``predict``, a cross-validation splitter only ever
    sees whole clips: the windows of a clip can never be split between a training and a test
    fold. Inside ``fit``, if ``estimator.fit`` has an explicit ``groups`` parameter (e.g. for its
    own validation split), it receives one group per window: the clip's group from ``groups`` if
    given, else the clip's row, so that any internal split also keeps a clip's windows together.

    Parameters
    ----------
    estimator : classifier
        Fitted on windows of shape ``(n_windows, *window_shape)``, with integer targets
        ``0 .. n_classes - 1`` (positions in ``classes_``), so that nets needing int64 targets
        also work with string labels. ``vote="mean"`` needs its ``predict_proba``.
    window : int > 0, default=41
        Steps per window along ``time_axis``: frames of a spectrogram, samples of a waveform.
    overlap : float in [0, 1), default=0.5
        Fraction of a window shared by consecutive windows; hop = floor(window * (1 - overlap)).
    time_axis : int, default=-1
        Time axis of one sample (the clip axis is not counted): -1 for ``(C, n_mels, T)`` or
        ``(n_samples,)``, 0 for ``(T, F)`` sequences.
    vote : {"mean", "majority"}, default="mean"
        "mean": the class of highest mean window probability. "majority": the most frequent
        window prediction, ties broken by mean probability (by ``classes_`` order if the
        estimator has no ``predict_proba``).

    Attributes
    ----------
    estimator_ : classifier
        The clone of ``estimator`` fitted on the training windows.
    classes_ : np.ndarray [shape=(n_classes,)]
        Clip labels seen in ``fit``, sorted.
    hop_ : int
        Steps between consecutive window starts.
    n_windows_ : int
        Windows per training clip (every clip of an array has the same length); ``estimator_``
        was fitted on ``n_clips * n_windows_`` windows.
    sample_shape_ : tuple of int
        Shape of one training clip; ``predict`` accepts other lengths along ``time_axis`` only.

    Notes
    -----
    Under ``GridSearchCV(..., cv=GroupKFold()).fit(X, y, groups=g)`` the groups reach the
    splitter only, and ``fit`` falls back to clip rows, which already keeps windows together.
    With metadata routing enabled, ``set_fit_request(groups=True)`` also routes ``g`` here.
    """

    def __init__(self, estimator, *, window=41, overlap=0.5, time_axis=-1, vote="mean"):
        self.estimator = estimator
        self.window = window
        self.overlap = overlap
        self.time_axis = time_axis
        self.vote = vote

    # ----------------------------------------------------------------------- fit
    def fit(self, X, y, groups=None):
        """Fit a clone of ``estimator`` on the windows of the clips ``X``.

        Parameters
        ----------
        X : np.ndarray [shape=(n_clips,) + sample_shape]
            Clips of equal length.
        y : array-like [shape=(n_clips,)]
            Clip labels (strings or integers).
        groups : array-like [shape=(n_clips,)], optional
            Clip groups (e.g. recordings or folds), forwarded per window to ``estimator.fit``
            if it has a ``groups`` parameter; otherwise unused.

        Returns
        -------
        self
        """
        if self.vote not in VOTES:
            raise ValueError(f"vote={self.vote!r} must be one of {VOTES}")
        if self.vote == "mean" and not hasattr(self.estimator, "predict_proba"):
            raise ValueError(f"vote='mean' needs predict_proba, which {type(self.estimator).__name__} "
                             "does not provide (as configured): use vote='majority'")
        X = _as_dense(X)
        windows, clip_index = segment(X, window=self.window, overlap=self.overlap,
                                      time_axis=self.time_axis)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        check_consistent_length(X, y, groups)
        classes, codes = np.unique(y, return_inverse=True)

        fit_params = {}
        if _fit_accepts_groups(self.estimator):
            clip_groups = np.arange(len(X)) if groups is None else np.asarray(groups)
            fit_params["groups"] = clip_groups[clip_index]
        self.estimator_ = clone(self.estimator).fit(windows, codes[clip_index], **fit_params)
        self.classes_ = classes
        self.hop_ = hop_length(self.window, self.overlap)
        self.n_windows_ = len(windows) // len(X)
        self.sample_shape_ = X.shape[1:]
        return self

    # ----------------------------------------------------------------------- predict
    def _windows(self, X):
        """Validated windows of ``X`` and the number of clips."""
        check_is_fitted(self)
        X = _as_dense(X)
        expected = self.sample_shape_
        axis = self.time_axis % len(expected)
        if X.ndim != len(expected) + 1:
            raise ValueError(f"X has ndim={X.ndim}, but {type(self).__name__} was fitted on clips "
                             f"of shape {expected}. Reshape your data to (n_clips, *clip_shape)")
        if X.shape[1:][:axis] + X.shape[1:][axis + 1:] != expected[:axis] + expected[axis + 1:]:
            raise ValueError(f"X has clips of shape {X.shape[1:]}, but {type(self).__name__} was "
                             f"fitted on clips of shape {expected}; only the time_axis length may differ")
        windows, clip_index = segment(X, window=self.window, overlap=self.overlap,
                                      time_axis=self.time_axis)
        return windows, clip_index, len(X)

    def _window_codes(self, windows):
        return np.asarray(self.estimator_.predict(windows)).astype(np.intp, copy=False)

    def _mean_proba(self, windows, n_clips):
        proba = np.asarray(self.estimator_.predict_proba(windows))
        return proba.reshape(n_clips, -1, proba.shape[-1]).mean(axis=1)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Mean of the window probabilities of each clip.

        Returns
        -------
        proba : np.ndarray [shape=(n_clips, n_classes)]
            Columns in the order of ``classes_``.
        """
        windows, _, n_clips = self._windows(X)
        return self._mean_proba(windows, n_clips)

    def predict(self, X):
        """Clip labels, by ``vote`` over the windows of each clip.

        Returns
        -------
        y_pred : np.ndarray [shape=(n_clips,)], dtype of ``classes_``
        """
        windows, clip_index, n_clips = self._windows(X)
        if self.vote == "mean":
            return self.classes_[self._mean_proba(windows, n_clips).argmax(axis=1)]
        n_classes = len(self.classes_)
        codes = self._window_codes(windows)
        votes = np.bincount(clip_index * n_classes + codes,
                            minlength=n_clips * n_classes).reshape(n_clips, n_classes)
        tied = votes == votes.max(axis=1, keepdims=True)
        tiebreak = np.zeros(votes.shape)
        has_tie = tied.sum(axis=1) > 1
        if has_tie.any() and hasattr(self.estimator_, "predict_proba"):
            # probabilities only for the tied clips' windows: a second pass can be costly for nets
            tie_windows = windows[has_tie[clip_index]]
            tiebreak[has_tie] = self._mean_proba(tie_windows, int(has_tie.sum()))
        return self.classes_[np.where(tied, tiebreak, -np.inf).argmax(axis=1)]

    def predict_windows(self, X):
        """Label of every window and the clip it comes from.

        Returns
        -------
        y_pred : np.ndarray [shape=(n_clips * n_windows,)], dtype of ``classes_``
        clip_index : np.ndarray [shape=(n_clips * n_windows,)], int64
            Row of ``X`` of each window; windows of a clip are contiguous and in time order.
        """
        windows, clip_index, _ = self._windows(X)
        return self.classes_[self._window_codes(windows)], clip_index

    def score_windows(self, X, y):
        """Window-level accuracy: every window of a clip is compared with the clip's label."""
        y = column_or_1d(y)
        check_consistent_length(X, y)
        y_pred, clip_index = self.predict_windows(X)
        return accuracy_score(y[clip_index], y_pred)


def window_accuracy(estimator, X, y):
    """Scorer for window-level accuracy of a fitted :class:`SegmentClassifier`.

    Use it next to clip-level accuracy in a search:
    ``GridSearchCV(clf, grid, scoring={"accuracy": "accuracy", "window_accuracy": window_accuracy},
    refit="accuracy")``.
    """
    return estimator.score_windows(X, y)
