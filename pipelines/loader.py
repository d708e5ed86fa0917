"""The first step of every experiment pipeline: turn clip ids (or raw audio) into a model's input.

``X`` of an experiment is an array of clip ids. :class:`FeatureLoader` reads their features from a
feature set in the store (each worker process opens the file itself, so no large array is pickled)
and brings them to the layout its estimator expects. Given float waveforms instead of ids, it
computes the same features from the audio, so a fitted pipeline also classifies new files.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from featurestore import features
from featurestore.store import FeatureSet

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
    X : np.ndarray [shape=(n, *feature_shape)]
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
    """

    def __init__(self, feature_set=None, *, input="flat"):
        self.feature_set = feature_set
        self.input = input

    def fit(self, X=None, y=None):
        """Read the feature set's description (not its data)."""
        if self.feature_set is None:
            raise ValueError("FeatureLoader needs feature_set, the path of a stored feature set")
        fs = FeatureSet(self.feature_set)
        self.kind_, self.params_, self.audio_ = fs.kind, fs.params, fs.audio
        self.feature_shape_ = fs.feature_shape
        adapt_input(np.zeros((1, *fs.feature_shape), np.float32), self.input)  # fail early on layout
        return self

    def transform(self, X):
        """Features of ``X``.

        Parameters
        ----------
        X : array-like of str [shape=(n,) or (n, 1)], or np.ndarray of float [shape=(n, n_samples)]
            Clip ids of the feature set's data set, or waveforms at ``audio_["sr"]`` of the clip
            length the set was computed for.

        Returns
        -------
        np.ndarray [shape=(n, *input_shape)], float32
        """
        check_is_fitted(self, "kind_")
        X = np.asarray(X)
        if X.dtype.kind in "fc":
            values = self._from_audio(X)
        else:
            values = FeatureSet(self.feature_set).read(X.reshape(-1).astype(str))
        return adapt_input(values, self.input)

    def _from_audio(self, X):
        expected = round(self.audio_["sr"] * self.audio_["duration"])
        if X.ndim != 2 or X.shape[1] != expected:
            raise ValueError(f"waveforms must have shape (n, {expected}) ({self.audio_['duration']} s at "
                             f"{self.audio_['sr']} Hz); got {X.shape}")
        return features.get(self.kind_).compute(X.astype(np.float32), sr=self.audio_["sr"], **self.params_)
