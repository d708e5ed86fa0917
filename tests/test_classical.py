"""The building blocks of the classical estimators: FeatureReshaper, LabelEncodedClassifier and
ClassicalClassifier (the scikit-learn contract itself is checked in test_estimators_common.py)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

import estimators
from estimators._classical import FeatureReshaper, LabelEncodedClassifier


@pytest.fixture
def X():
    """Two samples of 2 coefficients x 3 frames, float32."""
    return np.array([[[1, 2, 3], [0, 0, 6]], [[4, 4, 4], [1, -1, 0]]], dtype=np.float32)


def test_flatten_keeps_every_value_in_order(X):
    Xt = FeatureReshaper().fit_transform(X)
    np.testing.assert_array_equal(Xt, X.reshape(2, 6))
    assert Xt.dtype == np.float32


def test_stats_are_means_then_stds_over_the_last_axis(X):
    Xt = FeatureReshaper(mode="stats").fit_transform(X)
    np.testing.assert_allclose(Xt[:, :2], [[2, 2], [4, 0]])
    np.testing.assert_allclose(Xt[:, 2:], X.std(axis=-1))


def test_feature_names_out(X):
    assert list(FeatureReshaper().fit(X).get_feature_names_out()) == [
        "x0_0", "x0_1", "x0_2", "x1_0", "x1_1", "x1_2"]
    assert list(FeatureReshaper(mode="stats").fit(X).get_feature_names_out()) == [
        "x0_mean", "x1_mean", "x0_std", "x1_std"]
    frame = pd.DataFrame(X[:, 0], columns=["a", "b", "c"])
    assert list(FeatureReshaper().fit(frame).get_feature_names_out()) == ["a", "b", "c"]


def test_feature_names_pass_through_a_classical_pipeline():
    X = np.random.default_rng(0).standard_normal((30, 2, 5))
    y = np.repeat(["a", "b", "c"], 10)
    pipeline = estimators.build("svm").fit(X, y).pipeline_
    assert list(pipeline[:-1].get_feature_names_out()) == ["x0_mean", "x1_mean", "x0_std", "x1_std"]


def test_unknown_mode_is_rejected(X):
    with pytest.raises(ValueError, match="mode='mean' must be one of"):
        FeatureReshaper(mode="mean").fit(X)


def test_label_encoding_keeps_the_original_labels():
    rng = np.random.default_rng(0)
    y = np.repeat(["dog", "cat", "owl"], 10)
    X = rng.standard_normal((30, 3)) + (y == "cat")[:, None] * 3
    clf = LabelEncodedClassifier(XGBClassifier(n_estimators=5, n_jobs=1)).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "owl"])
    assert clf.predict(X[y == "cat"]).tolist().count("cat") >= 8
    assert clf.predict_proba(X).shape == (30, 3)


def test_label_encoding_hides_predict_proba_when_the_classifier_has_none():
    from sklearn.svm import LinearSVC

    assert hasattr(LabelEncodedClassifier(LogisticRegression()), "predict_proba")
    assert not hasattr(LabelEncodedClassifier(LinearSVC()), "predict_proba")
