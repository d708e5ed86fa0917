"""Tests of pipelines.segments: window cutting and clip-level voting."""

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from pipelines.segments import (SegmentClassifier, hop_length, n_windows, segment, window_accuracy,
                                window_starts)


# --------------------------------------------------------------------------- fixtures and helpers
def flatten(X):
    """(n, ...) -> (n, prod(...)); module level so that pipelines using it pickle."""
    return X.reshape(len(X), -1)


def spectrum(X):
    """Magnitude spectrum of waveform windows: (n, window) -> (n, window // 2 + 1)."""
    return np.abs(np.fft.rfft(X, axis=-1))


def flat_logreg():
    return make_pipeline(FunctionTransformer(flatten), LogisticRegression(max_iter=200))


def spectrum_logreg():
    return make_pipeline(FunctionTransformer(spectrum), LogisticRegression())


@pytest.fixture
def tones():
    """12 clips of 64 samples at 8 kHz: a 1 kHz tone ("low") or a 3 kHz tone ("high"), noisy."""
    rng = np.random.default_rng(0)
    t = np.arange(64) / 8000
    freqs = np.repeat([1000.0, 3000.0], 6)
    X = np.sin(2 * np.pi * freqs[:, None] * t + rng.uniform(0, 2 * np.pi, (12, 1)))
    X += 0.3 * rng.normal(size=X.shape)
    y = np.where(freqs == 1000.0, "low", "high")
    return X.astype(np.float32), y


@pytest.fixture
def mels():
    """9 log-mel-like clips (n, C=1, n_mels=4, T=30), 3 classes with different band energies."""
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 3)
    X = rng.normal(size=(9, 1, 4, 30)).astype(np.float32)
    X[np.arange(9), 0, y, :] += 3.0
    return X, y


class GroupRecorder(ClassifierMixin, BaseEstimator):
    """Predicts the majority class; remembers the rows and groups its ``fit`` received."""

    def fit(self, X, y, groups=None):
        self.n_rows_ = len(X)
        self.groups_ = groups
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


class FixedProba(ClassifierMixin, BaseEstimator):
    """Window probabilities read from the first element of each window (a class index 0..2).

    Window ``[c, ...]`` gets probability 0.5 for class c and 0.25 for the others, and predicts c.
    """

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        proba = np.full((len(X), 3), 0.25)
        proba[np.arange(len(X)), X[:, 0].astype(int)] = 0.5
        return proba

    def predict(self, X):
        return X[:, 0].astype(int)


# --------------------------------------------------------------------------- windowing
@pytest.mark.parametrize("n_steps, window, overlap, expected", [
    (87, 41, 0.5, [0, 20, 40, 46]),   # 3 full windows + one ending at the last frame
    (81, 41, 0.5, [0, 20, 40]),       # windows tile the clip exactly: no extra window
    (41, 41, 0.5, [0]),
    (10, 41, 0.5, [0]),               # shorter than a window: padded to one window
    (10, 4, 0.0, [0, 4, 6]),
    (10, 10, 0.9, [0]),
    (100, 10, 0.9, list(range(91))),  # hop 1, not 0, despite 10 * (1 - 0.9) < 1 in floats
    (64, 16, 0.75, list(range(0, 49, 4))),
])
def test_window_starts(n_steps, window, overlap, expected):
    assert window_starts(n_steps, window, overlap).tolist() == expected
    assert n_windows(n_steps, window, overlap) == len(expected)


def test_hop_length():
    assert hop_length(41, 0.5) == 20
    assert hop_length(100, 0.9) == 10
    assert hop_length(3, 0.9) == 1


def test_segment_spectrogram_windows_are_slices():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3, 2, 5, 87)).astype(np.float32)
    windows, clip_index = segment(X, window=41, overlap=0.5)
    assert windows.shape == (12, 2, 5, 41) and windows.dtype == np.float32
    assert clip_index.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    for i, (clip, start) in enumerate(zip(clip_index, [0, 20, 40, 46] * 3)):
        np.testing.assert_array_equal(windows[i], X[clip, :, :, start:start + 41])


def test_segment_sequence_on_first_axis():
    X = np.arange(2 * 12 * 3).reshape(2, 12, 3)   # (n, T, F)
    windows, clip_index = segment(X, window=4, overlap=0.5, time_axis=0)
    assert windows.shape == (10, 4, 3)
    for i, (clip, start) in enumerate(zip(clip_index, [0, 2, 4, 6, 8] * 2)):
        np.testing.assert_array_equal(windows[i], X[clip, start:start + 4])


def test_segment_waveform_and_padding():
    X = np.arange(1, 11, dtype=np.float64).reshape(2, 5)
    windows, clip_index = segment(X, window=8)
    np.testing.assert_array_equal(windows, [[1, 2, 3, 4, 5, 0, 0, 0], [6, 7, 8, 9, 10, 0, 0, 0]])
    assert clip_index.tolist() == [0, 1]


# --------------------------------------------------------------------------- estimator
def test_fit_attributes_and_inner_training_set(tones):
    X, y = tones
    clf = SegmentClassifier(LogisticRegression(), window=16, overlap=0.5).fit(X, y)
    assert clf.n_windows_ == 7 and clf.hop_ == 8 and clf.sample_shape_ == (64,)
    assert clf.classes_.tolist() == ["high", "low"]
    assert clf.estimator_.classes_.tolist() == [0, 1]        # fitted on integer codes
    assert clf.estimator_.coef_.shape == (1, 16)             # ... of 16-sample windows


def test_tones_are_classified(tones):
    X, y = tones
    clf = SegmentClassifier(spectrum_logreg(), window=16, overlap=0.5).fit(X[::2], y[::2])
    assert clf.score(X[1::2], y[1::2]) == 1.0
    assert clf.score_windows(X[1::2], y[1::2]) > 0.9


def test_predict_proba_is_mean_of_window_probabilities(tones):
    X, y = tones
    clf = SegmentClassifier(LogisticRegression(), window=16, overlap=0.5).fit(X, y)
    # by hand: the same windows, the same model, the mean over each clip's 7 windows
    windows = np.stack([x[s:s + 16] for x in X for s in range(0, 49, 8)])
    inner = LogisticRegression().fit(windows, np.repeat((y == "low").astype(int), 7))
    expected = inner.predict_proba(windows).reshape(12, 7, 2).mean(axis=1)
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0, rtol=1e-6)
    assert clf.predict(X).tolist() == clf.classes_[expected.argmax(axis=1)].tolist()


def test_majority_vote_and_tie_break():
    # each window is one step; its value is the class index FixedProba predicts for it
    X = np.array([[0, 0, 1, 2],    # majority 0
                  [2, 1, 1, 0],    # majority 1
                  [1, 2, 2, 2],    # majority 2 although mean probability also favours 2
                  [0, 1, 1, 0]])   # 0/1 tie: mean probabilities equal, classes_ order -> 0
    y = np.array([0, 1, 2, 0])
    clf = SegmentClassifier(FixedProba(), window=1, overlap=0.0, vote="majority").fit(X, y)
    assert clf.predict(X).tolist() == [0, 1, 2, 0]
    assert clf.n_windows_ == 4
    # a tie broken by mean probability: make class 1 likelier in the tied clip
    clf.estimator_.predict_proba = lambda W: np.where(W[:, :1] == 1, [[.1, .8, .1]], [[.5, .3, .2]])
    assert clf.predict(X[3:]).tolist() == [1]


def test_majority_differs_from_mean():
    class Confident(FixedProba):
        def predict_proba(self, X):  # class 0 windows are very sure, others barely
            proba = np.full((len(X), 3), 0.3)
            proba[X[:, 0] == 0] = [0.98, 0.01, 0.01]
            proba[X[:, 0] == 1] = [0.3, 0.4, 0.3]
            return proba

    X = np.array([[0, 1, 1]])
    y_fit = np.array([0, 1, 2])
    X_fit = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2]])
    mean = SegmentClassifier(Confident(), window=1, overlap=0.0, vote="mean").fit(X_fit, y_fit)
    majority = clone(mean).set_params(vote="majority").fit(X_fit, y_fit)
    assert mean.predict(X).tolist() == [0] and majority.predict(X).tolist() == [1]


def test_predict_windows_and_window_score(tones):
    X, y = tones
    clf = SegmentClassifier(LogisticRegression(), window=16, overlap=0.5).fit(X, y)
    y_windows, clip_index = clf.predict_windows(X)
    assert y_windows.shape == (84,) and set(y_windows) <= {"high", "low"}
    assert clip_index.tolist() == np.repeat(np.arange(12), 7).tolist()
    assert clf.score_windows(X, y) == pytest.approx(np.mean(y_windows == y[clip_index]))
    assert window_accuracy(clf, X, y) == clf.score_windows(X, y)


def test_predict_accepts_longer_clips(tones):
    X, y = tones
    clf = SegmentClassifier(LogisticRegression(), window=16).fit(X, y)
    longer = np.concatenate([X, X], axis=1)
    assert clf.predict(longer).shape == (12,)
    assert clf.predict_windows(longer)[0].shape == (12 * n_windows(128, 16, 0.5),)


def test_spectrogram_windows_with_a_pipeline(mels):
    X, y = mels
    clf = SegmentClassifier(flat_logreg(), window=10, overlap=0.5, vote="majority").fit(X, y)
    assert clf.n_windows_ == 5 and clf.score(X, y) == 1.0


@pytest.mark.parametrize("groups", [None, np.array([7, 7, 7, 8, 8, 8, 9, 9, 9])])
def test_groups_keep_windows_of_a_clip_together(mels, groups):
    X, y = mels
    clf = SegmentClassifier(GroupRecorder(), window=10, vote="majority").fit(X, y, groups=groups)
    inner_groups = clf.estimator_.groups_
    assert clf.estimator_.n_rows_ == len(inner_groups) == 9 * 5
    per_clip = inner_groups.reshape(9, 5)
    assert (per_clip == per_clip[:, :1]).all()                # one group per clip
    expected = np.arange(9) if groups is None else groups
    np.testing.assert_array_equal(per_clip[:, 0], expected)


def test_groups_not_passed_to_fit_without_groups_parameter(mels):
    X, y = mels  # LogisticRegression.fit has no groups parameter: it must not receive them
    SegmentClassifier(flat_logreg(), window=10).fit(X, y, groups=np.arange(9))


def test_windows_never_straddle_cv_splits(mels):
    X, y = mels
    X = X + np.arange(9, dtype=np.float32)[:, None, None, None] * 100   # clip id in every value
    seen = []

    class Spy(GroupRecorder):
        def fit(self, X, y, groups=None):
            seen.append(np.unique(np.round(X[:, 0, 0, 0] / 100)))
            return super().fit(X, y, groups)

    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    cross_validate(SegmentClassifier(Spy(), window=10, vote="majority"), X, y, cv=cv)
    for (train, test), clips in zip(cv.split(X, y), seen):
        assert set(clips.astype(int)) == set(train)             # whole training clips only
        assert not set(clips.astype(int)) & set(test)


def test_string_labels_and_grid_search_over_window(tones):
    X, y = tones
    search = GridSearchCV(
        SegmentClassifier(LogisticRegression(), overlap=0.5),
        {"window": [8, 64], "estimator__C": [0.1, 1.0]},
        cv=GroupKFold(3), scoring={"accuracy": "accuracy", "window_accuracy": window_accuracy},
        refit="accuracy",
    ).fit(X, y, groups=np.arange(12) % 6)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_window_accuracy"]).all()
    assert search.best_estimator_.predict(X).dtype.kind == "U"
    assert set(search.predict(X)) <= {"high", "low"}


def test_clone_and_pickle(tones):
    X, y = tones
    clf = SegmentClassifier(LogisticRegression(C=0.5), window=16, overlap=0.25, vote="majority")
    cloned = clone(clf)
    assert cloned.get_params()["estimator__C"] == 0.5 and cloned.window == 16
    assert not hasattr(cloned, "estimator_")
    clf.fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X))


def test_predict_before_fit_raises(tones):
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        SegmentClassifier(LogisticRegression()).predict(tones[0])


@pytest.mark.parametrize("params, match", [
    ({"window": 0}, "window=0"),
    ({"window": 4.0}, "window=4.0"),
    ({"window": True}, "window=True"),
    ({"overlap": 1.0}, "overlap=1.0"),
    ({"overlap": -0.1}, "overlap=-0.1"),
    ({"time_axis": 1}, "time_axis=1"),
    ({"vote": "median"}, "vote='median'"),
])
def test_bad_parameters_raise(tones, params, match):
    X, y = tones
    with pytest.raises(ValueError, match=match):
        SegmentClassifier(LogisticRegression(), **params).fit(X, y)


def test_bad_input_raises(tones, mels):
    X, y = tones
    with pytest.raises(ValueError, match="ndim=1"):
        SegmentClassifier(LogisticRegression()).fit(X[0], y[:1])
    with pytest.raises(ValueError, match="empty"):
        SegmentClassifier(LogisticRegression()).fit(X[:, :0], y)
    with pytest.raises(ValueError, match="vote='mean' needs predict_proba"):
        SegmentClassifier(GroupRecorder()).fit(X, y)
    clf = SegmentClassifier(LogisticRegression(), window=16).fit(X, y)
    with pytest.raises(ValueError, match="ndim=3"):
        clf.predict(X[:, None, :])
    mel_clf = SegmentClassifier(flat_logreg(), window=10).fit(*mels)
    with pytest.raises(ValueError, match=r"only the time_axis length may differ"):
        mel_clf.predict(mels[0][:, :, :3])


def test_tiny_skorch_net_with_string_labels(mels):
    torch = pytest.importorskip("torch")
    from skorch import NeuralNetClassifier

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4 * 10, 3)

        def forward(self, x):
            return self.linear(x.flatten(1))

    X, y = mels
    labels = np.array(["dog", "rain", "siren"])[y]
    torch.manual_seed(0)
    net = NeuralNetClassifier(Tiny, criterion=torch.nn.CrossEntropyLoss, max_epochs=2, lr=0.1,
                              train_split=None, verbose=0)
    clf = SegmentClassifier(net, window=10).fit(X, labels)
    assert set(clf.predict(X)) <= set(labels)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0, rtol=1e-5)


# --------------------------------------------------------------------------- scikit-learn's checks
#: Checks SegmentClassifier fails by design; everything else in check_estimator must pass.
EXPECTED_FAILED_CHECKS = {
    "check_n_features_in": "clips may be multi-dimensional; there is no fixed n_features_in_",
    "check_n_features_in_after_fitting": "idem",
    "check_classifiers_train": "a 1-D clip of another length at predict is valid: more windows",
    "check_estimators_empty_data_messages": "raises ValueError with its own message, not sklearn's",
}


# vote="majority" covers both paths: predict votes, predict_proba averages.
@parametrize_with_checks(
    [SegmentClassifier(LogisticRegression(), window=2, vote="majority")],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
