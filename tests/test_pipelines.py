"""Pipelines on stored features: loading, the data set's folds, leakage guard, grid search, ensembles."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GridSearchCV

import featurestore.audio as audio_io
from featurestore import extract, load_dataset
from pipelines import (ClipSplitter, FeatureLoader, LeakageError, SegmentClassifier, adapt_input,
                       cross_validate, grid_search, make_ensemble, make_pipeline)
import estimators
from estimators import check_params
from pipelines.build import clips_in, pipeline_params

AUDIO = {"sr": 8000, "duration": 0.5}
MFCC = {"n_mfcc": 13, "n_fft": 256, "hop_length": 128, "n_mels": 20}
MEL = {"n_mels": 20, "n_fft": 256, "hop_length": 128, "delta": False}


@pytest.fixture
def us8k(urbansound_root, store):
    ds = load_dataset("urbansound8k", urbansound_root)
    sets = extract(ds, {"mfcc": MFCC, "mel": MEL}, store=store, audio=AUDIO, progress=False)
    return ds, sets


class FoldRecorder(ClassifierMixin, BaseEstimator):
    """Predicts the majority label; records the clip ids it was fitted on (via the loader's rows)."""

    seen = []

    def fit(self, X, y):
        FoldRecorder.seen.append(len(X))
        self.classes_ = np.unique(y)
        self.majority_ = pd.Series(y).mode()[0]
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


def test_loader_reads_ids_and_computes_from_audio(us8k):
    ds, sets = us8k
    loader = FeatureLoader(str(sets["mfcc"].path), input="sequence").fit()
    ids = ds.clips["clip_id"].to_numpy()[:3]
    X = loader.transform(ids)
    assert X.shape == (3, 32, 13)  # (T, F): transposed from the stored (F, T)
    waves = np.stack([audio_io.load_clip(p, **AUDIO) for p in ds.clips["path"][:3]])
    np.testing.assert_allclose(loader.transform(waves), X, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match=r"waveforms must have shape \(n, 4000\)"):
        loader.transform(np.zeros((2, 100)))


def test_adapt_input_layouts():
    mel = np.zeros((4, 2, 20, 32), np.float32)
    assert adapt_input(mel, "image").shape == (4, 2, 20, 32)
    assert adapt_input(mel, "sequence").shape == (4, 32, 40)
    assert adapt_input(np.zeros((4, 13, 32)), "image").shape == (4, 1, 13, 32)
    assert adapt_input(np.zeros((4, 100)), "waveform").shape == (4, 100)
    with pytest.raises(ValueError, match="cannot be given as 'waveform'"):
        adapt_input(mel, "waveform")


def test_splitter_leaves_one_fold_out(us8k):
    ds, _ = us8k
    X = ds.clips["clip_id"].to_numpy()
    splitter = ClipSplitter(ds.clips)
    splits = list(splitter.split(X))
    assert splitter.get_n_splits(X) == 3 and len(splits) == 3
    for fold, (train, test) in zip([1, 2, 3], splits):
        assert set(ds.clips["fold"].iloc[test]) == {fold} and fold not in set(ds.clips["fold"].iloc[train])
    assert [len(t) for _, t in ClipSplitter(ds.clips, folds=[2]).split(X)] == [12]
    with pytest.raises(ValueError, match=r"fold\(s\) \[7\] have no clips"):
        list(ClipSplitter(ds.clips, folds=[7]).split(X))


def test_leakage_guard(us8k):
    ds, _ = us8k
    clips = ds.clips.copy()
    clips.loc[0, "group"] = clips.loc[clips["fold"] == 2, "group"].iloc[0]  # one recording in two folds
    with pytest.raises(LeakageError, match="fold 1: 1 group"):
        list(ClipSplitter(clips).split(clips["clip_id"]))


def test_data_without_folds_uses_stratified_group_kfold(folder_root, store):
    ds = load_dataset("folder", folder_root, group_pattern=r"^(\d+)_")
    splitter = ClipSplitter(ds.clips, n_splits=2)
    groups = ds.clips["group"].to_numpy()
    for train, test in splitter.split(ds.clips["clip_id"]):
        assert not set(groups[train]) & set(groups[test])


def test_cross_validation_trains_on_other_folds_only(us8k):
    ds, sets = us8k
    FoldRecorder.seen = []
    result = cross_validate(make_pipeline(FoldRecorder(), sets["mfcc"]), ds.clips, progress=False)
    assert FoldRecorder.seen == [24, 24, 24]
    assert sorted(result.predictions["clip_id"]) == sorted(ds.clips["clip_id"])  # each clip once, out of fold
    assert list(result.folds["fold"]) == [1, 2, 3]
    assert result.folds["accuracy"].between(0, 1).all()


def test_grid_search_keeps_per_fold_scores_and_out_of_fold_predictions(us8k):
    ds, sets = us8k
    pipeline = make_pipeline("softmax", sets["mfcc"])
    grid = pipeline_params(pipeline, {"C": [0.01, 1.0]})
    assert grid == {"model__C": [0.01, 1.0]}
    cv_results, results, best, model = grid_search(pipeline, grid, ds.clips, progress=False)
    assert len(cv_results) == 2 and {"fold1_accuracy", "fold3_f1_macro", "std_balanced_accuracy"} <= set(cv_results)
    assert cv_results["mean_accuracy"].iloc[best] == cv_results["mean_accuracy"].max()
    assert cv_results["mean_accuracy"].max() > 0.9  # three tones are easy to tell apart
    assert model.predict(ds.clips["clip_id"].to_numpy()[:2]).shape == (2,)
    assert {"proba_low", "proba_mid", "proba_high"} <= set(results[best].predictions)


def test_unknown_parameter_fails_before_training(us8k):
    ds, sets = us8k
    FoldRecorder.seen = []
    with pytest.raises(ValueError, match="Did you mean 'model__C'"):
        check_params(make_pipeline("softmax", sets["mfcc"]), {"model__CC": [1]}, "softmax")
    with pytest.raises(ValueError, match="softmax has no parameter 'CC'. Did you mean 'C'"):
        pipeline_params(make_pipeline("softmax", sets["mfcc"]), {"CC": [1]}, "softmax")
    with pytest.raises(ValueError, match="no parameter 'clf__C'. Its parameters: C, C_grid, features, "
                       "max_iter, n_splits, random_state"):
        pipeline_params(make_pipeline("softmax", sets["mfcc"]), {"clf__C": [1]}, "softmax")
    with pytest.raises(ValueError, match="Invalid parameter"):
        grid_search(make_pipeline(FoldRecorder(), sets["mfcc"]), {"model__nope": [1]}, ds.clips, progress=False)
    assert FoldRecorder.seen == []


def test_sklearn_gridsearchcv_with_folds(us8k):
    ds, sets = us8k
    search = GridSearchCV(make_pipeline("softmax", sets["mfcc"]), {"model__C": [0.1, 1.0]},
                          cv=ClipSplitter(ds.clips), n_jobs=2)
    search.fit(ds.clips["clip_id"].to_numpy(), ds.clips["label"].to_numpy())
    assert pd.DataFrame(search.cv_results_).shape[0] == 2 and search.best_score_ > 0.9


def test_ensembles_mix_feature_kinds(us8k):
    ds, sets = us8k
    members = [("on_mfcc", make_pipeline("softmax", sets["mfcc"])), ("on_mel", make_pipeline("softmax", sets["mel"]))]
    X, y = ds.clips["clip_id"].to_numpy(), ds.clips["label"].to_numpy()
    for method in ("soft", "hard"):
        result = cross_validate(make_ensemble(members, method, ds.clips), ds.clips, progress=False)
        assert result.mean("accuracy") > 0.9
    stacking = make_ensemble(members, "stacking", ds.clips)
    train = ds.clips["fold"].to_numpy() != 3
    inner = list(stacking.cv.split(X[train]))  # inner folds come from the training folds only
    assert len(inner) == 2 and all(3 not in set(ds.clips["fold"][train].iloc[t]) for _, t in inner)
    stacking.fit(X[train], y[train])
    assert (stacking.predict(X[~train]) == y[~train]).mean() > 0.9


def test_segment_voting_in_a_pipeline(us8k):
    ds, sets = us8k
    pipeline = make_pipeline("softmax", sets["mel"], input="image", segment_window=8)
    assert isinstance(pipeline.named_steps["model"], SegmentClassifier)
    assert pipeline_params(pipeline, {"C": [1], "window": [4]}) == {
        "model__estimator__C": [1], "model__window": [4]}
    result = cross_validate(pipeline, ds.clips, progress=False)
    assert "window_accuracy" in result.folds and result.mean("accuracy") > 0.8


def test_run_settings_reach_only_the_estimators_that_declare_them():
    settings = {"random_state": 7, "device": "cuda", "max_epochs": 3, "n_threads": None}
    xgb = make_pipeline("xgboost", None, run_settings=settings)
    assert xgb.get_params()["model__random_state"] == 7
    assert "device" not in xgb.named_steps["model"].get_params(deep=False)  # not XGBoost's own device
    assert xgb.named_steps["model"]._make_pipeline()[-1].estimator.get_params()["device"] is None
    svm = make_pipeline("svm", None, run_settings=settings)
    # the svm declares random_state only (the seed of its inner splits): device and epochs stay out
    assert svm.named_steps["model"].get_params() == estimators.build("svm", random_state=7).get_params()
    lstm = make_pipeline("lstm", None, segment_window=4, run_settings=settings, max_epochs=5)
    params = lstm.get_params()
    assert params["model__estimator__random_state"] == 7 and params["model__estimator__device"] == "cuda"
    assert params["model__estimator__max_epochs"] == 5  # the caller's parameters win
    assert params["model__estimator__n_threads"] is None  # None: left at the estimator's default


def test_clips_in_drops_skipped_clips(us8k):
    ds, sets = us8k
    assert len(clips_in(ds, sets["mel"], sets["mfcc"])) == 36


def test_waveform_models_get_the_sample_rate_of_their_feature_set(urbansound_root, store):
    """An 8 kHz raw feature set sets ``sr`` of a waveform net (pitch shifting, the learnable mel),
    also under segment voting; models without ``sr`` are left alone."""
    ds = load_dataset("urbansound8k", urbansound_root)
    raw = extract(ds, ["raw"], store=store, audio=AUDIO, progress=False)["raw"]
    assert make_pipeline("deepfourier", raw).get_params()["model__sr"] == 8000
    segmented = make_pipeline("mstnet", raw, segment_window=2000)
    assert segmented.get_params()["model__estimator__sr"] == 8000
    assert "model__sr" not in make_pipeline("svm", raw).get_params()


def test_balanced_accuracy_of_a_fold_without_a_class_is_the_mean_recall_of_its_classes():
    from pipelines.evaluate import METRICS

    # a grouped test fold holds no "rain", which the model still predicts once
    y_true = ["dog", "dog", "siren", "siren"]
    y_pred = ["dog", "rain", "siren", "siren"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's "classes not in y_true" would fail here
        score = METRICS["balanced_accuracy"](y_true, y_pred)
    assert score == pytest.approx((0.5 + 1.0) / 2, abs=1e-12)
