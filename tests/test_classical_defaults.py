"""The classical defaults: selection of C by grouped inner cross-validation on the training clips,
calibration on small classes, and the summary features."""

import warnings

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from estimators._classical import FeatureReshaper, inner_splits
from estimators.softmax import SoftmaxClassifier
from estimators.svm import SVMClassifier
from pipelines.evaluate import _fit_params


def blobs(n_classes, per_class, *, clips_per_group=1, shift=3.0, seed=0):
    """Samples of 3 coefficients x 6 frames, class ``k`` shifted by ``shift * k`` on coefficient
    ``k % 3``; groups of ``clips_per_group`` consecutive clips of one class."""
    rng = np.random.default_rng(seed)
    y = np.repeat([f"c{k}" for k in range(n_classes)], per_class)
    X = rng.standard_normal((len(y), 3, 6))
    for k in range(n_classes):
        X[y == f"c{k}", k % 3] += shift * (1 + k // 3)
    groups = np.arange(len(y)) // clips_per_group
    return X, y, groups


@pytest.fixture
def spy_splits(monkeypatch):
    """Record every (y, groups, splits) that :func:`inner_splits` gives an estimator."""
    calls = []

    def spy(y, groups=None, **kwargs):
        splits, grouped = inner_splits(y, groups, **kwargs)
        calls.append((y, groups, splits))
        return splits, grouped

    for module in ("estimators.svm", "estimators.softmax"):
        monkeypatch.setattr(f"{module}.inner_splits", spy)
    return calls


@pytest.mark.parametrize("cls", [SVMClassifier, SoftmaxClassifier])
def test_selection_sees_only_the_training_clips_and_keeps_groups_apart(cls, spy_splits):
    X, y, groups = blobs(3, 12, clips_per_group=3)
    train = groups < 8  # the outer training part: groups 0..7; groups 8..11 are the test fold
    model = cls().fit(X[train], y[train], groups=groups[train])
    (seen_y, seen_groups, splits), = spy_splits
    assert len(seen_y) == train.sum()
    assert set(seen_groups) == set(range(8))
    for inner_train, inner_test in splits:
        assert not set(seen_groups[inner_train]) & set(seen_groups[inner_test])
    # the test parts partition the training clips (what calibration's out-of-fold values need)
    np.testing.assert_array_equal(np.sort(np.concatenate([t for _, t in splits])), np.arange(train.sum()))
    assert model.inner_grouped_
    n_scored = sum(key.startswith("split") and key.endswith("_test_score") for key in model.cv_results_)
    assert n_scored == len(splits)


def test_the_cv_pipeline_routes_groups_to_the_classical_estimators():
    groups = np.array(["a", "b"])
    for cls in (SVMClassifier, SoftmaxClassifier):
        assert _fit_params(Pipeline([("model", cls())]), groups) == {"model__groups": groups}


def test_selected_values_are_recorded():
    X, y, groups = blobs(3, 10)
    svm = SVMClassifier(C_grid=(1e-4, 10.0)).fit(X, y, groups=groups)
    assert svm.C_ == 10.0  # C=1e-4 cannot separate the classes: every clip gets one label
    assert svm.gamma_ == "scale"
    assert svm.cv_results_["param_svc__C"].tolist() == [1e-4, 10.0]
    softmax = SoftmaxClassifier(C_grid=(1e-6, 1.0)).fit(X, y, groups=groups)
    assert softmax.C_ == 1.0
    fixed = SoftmaxClassifier(C=0.5).fit(X, y)
    assert fixed.C_ == 0.5 and fixed.cv_results_ is None
    assert SVMClassifier(C=2.0, gamma=0.1).fit(X, y).gamma_ == 0.1


@pytest.mark.parametrize("cls", [SVMClassifier, SoftmaxClassifier])
def test_two_clips_per_class_fit_with_two_inner_splits(cls, spy_splits):
    X, y, groups = blobs(5, 2)
    model = cls().fit(X, y, groups=groups)
    assert len(spy_splits[0][2]) == 2
    assert model.predict_proba(X).shape == (10, 5)
    assert model.C_ in model.C_grid


def test_fold_of_esc50_size_fits_the_default_svm():
    # 400 clips, 50 classes of 8 clips from 4 source recordings each: the old default's 5-fold
    # calibration failed here
    X, y, groups = blobs(50, 8, clips_per_group=2, shift=1.0)
    svm = SVMClassifier().fit(X, y, groups=groups)
    assert svm.inner_grouped_
    np.testing.assert_allclose(svm.predict_proba(X).sum(axis=1), 1.0, rtol=1e-6)


def test_temperature_scaling_keeps_the_svc_prediction_with_few_clips_per_class():
    # 50 classes of 8 clips (an ESC-50 fold's size): one-vs-rest Platt scaling fits 2 parameters
    # per class on a few out-of-fold values and reorders the classes (on real spoken clips of that
    # size its argmax scored 0.748 where temperature scaling scored 0.965); one temperature for
    # all classes keeps the SVC's ranking
    X, y, groups = blobs(50, 8, clips_per_group=2, shift=1.0)
    X_test, y_test, _ = blobs(50, 8, clips_per_group=2, shift=1.0, seed=1)
    svm = SVMClassifier(C=10.0).fit(X, y, groups=groups)
    reshape = FeatureReshaper(mode="stats")
    svc = Pipeline([("scale", StandardScaler()), ("svc", SVC(C=10.0))]).fit(reshape.fit_transform(X), y)
    own = svc.predict(reshape.transform(X_test))
    assert (svm.predict(X_test) == own).mean() >= 0.95
    assert (svm.predict(X_test) == svm.classes_[svm.predict_proba(X_test).argmax(1)]).all()


def test_platt_scaling_is_still_available_and_a_bad_calibration_is_named():
    X, y, groups = blobs(3, 6, clips_per_group=2)
    svm = SVMClassifier(calibration="sigmoid").fit(X, y, groups=groups)
    assert svm.pipeline_[-1].method == "sigmoid"
    np.testing.assert_allclose(svm.predict_proba(X).sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="SVMClassifier: calibration='isotonic' must be one of temperature, sigmoid"):
        SVMClassifier(calibration="isotonic").fit(X, y, groups=groups)


def test_a_class_in_a_single_group_falls_back_to_ungrouped_inner_splits():
    X, y, groups = blobs(2, 6)
    groups[y == "c0"] = 100  # every clip of c0 comes from one recording
    with pytest.warns(UserWarning, match="stratified by class only"):
        svm = SVMClassifier().fit(X, y, groups=groups)
    assert not svm.inner_grouped_


def test_without_groups_the_inner_splits_are_stratified_and_silent():
    X, y, _ = blobs(2, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svm = SVMClassifier().fit(X, y)
    assert not svm.inner_grouped_


def test_one_clip_of_a_class_is_a_clear_error():
    X, y, _ = blobs(3, 2)
    X, y = X[1:], y[1:]
    with pytest.raises(ValueError, match="SVMClassifier: .* at least 2 training clips per class; "
                       "class 'c0' has 1"):
        SVMClassifier().fit(X, y)


def test_inner_splits_shrink_to_the_smallest_class():
    y = np.repeat(["a", "b"], [3, 20])
    splits, grouped = inner_splits(y, n_splits=5)
    assert len(splits) == 3 and not grouped


def test_summary_is_mean_std_min_max_over_time():
    X = np.array([[[1, 2, 3], [0, 0, 6]], [[4, 4, 4], [1, -1, 0]]], dtype=np.float32)
    reshaper = FeatureReshaper(mode="summary").fit(X)
    Xt = reshaper.transform(X)
    assert Xt.shape == (2, 4 * 2) and Xt.dtype == np.float32
    np.testing.assert_allclose(Xt, np.concatenate(
        [X.mean(-1), X.std(-1), [[1, 0], [4, -1]], [[3, 6], [4, 1]]], axis=1), rtol=1e-6)
    assert list(reshaper.get_feature_names_out()) == [
        "x0_mean", "x1_mean", "x0_std", "x1_std", "x0_min", "x1_min", "x0_max", "x1_max"]


def test_stats_of_mfcc_with_deltas_has_two_values_per_row():
    # the default feature, mfcc with deltas=2: (120, T) -> 240 features whatever T
    X = np.random.default_rng(0).standard_normal((3, 120, 17)).astype(np.float32)
    assert FeatureReshaper(mode="stats").fit_transform(X).shape == (3, 240)

