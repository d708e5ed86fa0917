"""Which runs refit, the default ensemble, its members' scores beside its own, and stacking's inner folds."""

import json
from fractions import Fraction

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline

import estimators
from featurestore import load_dataset
from featurestore.errors import ParameterError
from pipelines.build import (DEEP_DEFAULT, DEFAULT_ENSEMBLE, FoldGroupSplits, calibrated, feature_params_for,
                             make_ensemble, model_of, nets_to_calibrate)
from pipelines.compare import ENSEMBLE_ROW, member_scores
from pipelines.evaluate import cross_validate
from pipelines.experiment import Experiment

SMALL_AUDIO = {"audio": {"sr": 8000, "duration": 0.5}}

#: What every Spy saw: (name, "fit" or "predict", clip ids), in call order.
SEEN = []


class Spy(ClassifierMixin, BaseEstimator):
    """Takes clip ids, records every call; predicts the true label of the clips in ``right`` (from
    ``truth``) and the next class for every other clip, with one-hot probabilities."""

    def __init__(self, *, name="spy", truth=None, right=()):
        self.name = name
        self.truth = truth
        self.right = right

    def fit(self, X, y):
        SEEN.append((self.name, "fit", [str(x) for x in X]))
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        SEEN.append((self.name, "predict", [str(x) for x in X]))
        out, labels = [], sorted(set(self.truth.values()))
        for clip in map(str, X):
            k = labels.index(self.truth[clip])  # the class's index: ensembles fit members on encoded labels
            out.append(self.classes_[k if clip in self.right else (k + 1) % len(self.classes_)])
        return np.array(out)

    def predict_proba(self, X):
        prediction = self.predict(X)
        return (prediction[:, None] == self.classes_[None, :]).astype(float)


@pytest.fixture
def clips(urbansound_root):
    return load_dataset("urbansound8k", urbansound_root).clips


@pytest.fixture
def experiment(urbansound_root, store, tmp_path):
    def make(name="run", **kwargs):
        dataset = load_dataset("urbansound8k", urbansound_root)
        return Experiment(dataset, store, settings=SMALL_AUDIO, output=str(tmp_path / name), **kwargs)

    return make


# ------------------------------------------------------------------ refit only where the model is the product
def test_cv_trains_each_fold_once_and_saves_no_model_unless_asked(experiment):
    folder = experiment("plain").cv("softmax")
    run = json.loads((folder / "run.json").read_text())
    assert not (folder / "model.joblib").exists() and run["model_saved"] is False
    assert "No model was saved" in (folder / "summary.md").read_text()
    folder = experiment("refit").cv("softmax", refit=True)
    assert (folder / "model.joblib").is_file() and json.loads((folder / "run.json").read_text())["model_saved"]
    assert "saved as [model.joblib]" in (folder / "summary.md").read_text()


def test_grid_refits_its_winner(experiment):
    folder = experiment().grid("softmax", param_grid={"C": [0.1, 1.0]}, selection="flat")
    assert (folder / "model.joblib").is_file() and json.loads((folder / "run.json").read_text())["model_saved"]


# ------------------------------------------------------------------ the default ensemble
def test_the_default_ensemble_is_svm_the_deep_default_cnn6_tdnn_and_gru(experiment):
    assert DEFAULT_ENSEMBLE == ("svm", DEEP_DEFAULT, "cnn6", "tdnn", "gru")
    ensemble = experiment(max_epochs=1, folds=[1])
    folder = ensemble.ensemble()
    run = json.loads((folder / "run.json").read_text())
    assert run["name"] == f"soft-svm+{DEEP_DEFAULT}+cnn6+tdnn+gru"
    expected = ["svm", DEEP_DEFAULT, "cnn6", "tdnn", "gru", ENSEMBLE_ROW]
    assert list(run["members"]) == expected
    assert run["model_saved"] is False and not (folder / "model.joblib").exists()
    members = pd.read_csv(folder / "members.csv")
    assert list(members["model"]) == expected and set(members["fold"]) == {1}
    assert members.loc[len(DEFAULT_ENSEMBLE), "accuracy"] == run["mean_accuracy"]  # the ensemble's row is its headline score
    assert "Members" in (folder / "summary.md").read_text()


def test_the_default_ensembles_svm_lstm_and_gru_read_one_feature_set():
    # 40 MFCCs with deltas and second deltas: summarised over time for the svm, frame by frame
    # for the recurrent nets; the ensemble extracts the set once
    assert feature_params_for("lstm") == feature_params_for("gru") == feature_params_for("svm") \
        == ("mfcc", {"deltas": 2})


def test_the_ensembles_nets_fit_their_temperature_on_their_own_validation_split(urbansound_root, store, tmp_path,
                                                                                one_torch_thread):
    # 1.5-s clips: the waveform net's front end needs 20 frames of 512 samples
    settings = {"audio": {"sr": 8000, "duration": 1.5}}
    folder = Experiment(load_dataset("urbansound8k", urbansound_root), store, settings=settings, max_epochs=2,
                        folds=[1], output=str(tmp_path / "run")).ensemble(["cnn", "lstm", "deepfourier"], refit=True)
    assert 'calibrate = "validation"' in (folder / "config.toml").read_text()
    members = joblib.load(folder / "model.joblib")["model"].named_estimators_
    net = model_of(members["deepfourier"].pipeline_)  # a waveform net: holds a validation split out by default
    assert net.calibrate is True and net.temperature_ > 0
    assert net.history[-1, "temperature"] == net.temperature_  # fitted once, at the end of the net's own fit
    # the cnn and the lstm hold none out (they train on every clip): they vote their softmax as it is
    for name in ("cnn", "lstm"):
        other = model_of(members[name].pipeline_)
        assert other.calibrate is False and not hasattr(other, "temperature_") and "valid_acc" not in other.history[-1]


def test_an_ensemble_refits_when_asked(experiment):
    folder = experiment().ensemble(["softmax", "svm"], refit=True)
    assert (folder / "model.joblib").is_file() and json.loads((folder / "run.json").read_text())["model_saved"]


@pytest.mark.parametrize("names, calibrate, message", [
    (["svm"], "temperature", "at least two"),
    (["svm", "svm"], "temperature", "each estimator once"),
    (None, "platt", "calibrate='platt'"),
])
def test_bad_ensembles_fail_before_any_work(experiment, names, calibrate, message):
    with pytest.raises(ParameterError, match=message):
        experiment().ensemble(names, calibrate=calibrate)


def test_members_are_scored_by_what_the_fitted_members_predict(clips):
    SEEN.clear()
    truth = dict(zip(clips["clip_id"], clips["label"]))
    ids = list(clips["clip_id"])
    right_a, right_b = set(ids[::2]), set(ids[::3])  # every other clip, every third clip
    members = [("a", Spy(name="a", truth=truth, right=right_a)), ("b", Spy(name="b", truth=truth, right=right_b))]
    result = cross_validate(make_ensemble(members, "soft", clips), clips, progress=False)
    scores = member_scores(result.predictions, ["a", "b"]).set_index(["model", "fold"])
    for fold in (1, 2, 3):
        test = clips.loc[clips["fold"] == fold, "clip_id"]
        for name, right in (("a", right_a), ("b", right_b)):
            expected = Fraction(len(set(test) & right), len(test))
            assert Fraction(scores.loc[(name, fold), "accuracy"]).limit_denominator(1000) == expected
        ensemble = result.folds.set_index("fold").loc[fold, "accuracy"]
        assert scores.loc[(ENSEMBLE_ROW, fold), "accuracy"] == ensemble
    # each member was fitted once per fold (no second training to score it) and predicted its test fold
    fits = [(name, X) for name, what, X in SEEN if what == "fit"]
    assert [name for name, _ in fits] == ["a", "b"] * 3


def test_soft_voting_calibrates_only_the_members_it_is_told_and_keeps_their_predictions(clips):
    truth = dict(zip(clips["clip_id"], clips["label"]))
    members = [("a", Spy(name="a", truth=truth, right=set(clips["clip_id"]))), ("b", Spy(name="b", truth=truth))]
    vote = make_ensemble(members, "soft", clips, calibrate=["b"], calibration="temperature")
    assert [type(est).__name__ for _, est in vote.estimators] == ["Spy", "CalibratedClassifierCV"]
    assert make_ensemble(members, "hard", clips, calibrate=["b"]).estimators == members  # labels only
    with pytest.raises(ValueError, match=r"\['c'\]"):
        make_ensemble(members, "soft", clips, calibrate=["c"])
    assert make_ensemble(members, "soft", clips, calibrate=["b"], calibration="none").estimators == members
    with pytest.raises(ValueError, match="calibration='platt' must be one of validation, temperature, none"):
        make_ensemble(members, "soft", clips, calibrate=["b"], calibration="platt")


def test_soft_voting_calibrates_a_net_on_its_own_validation_split_by_default(clips):
    net = estimators.build("lstm", max_epochs=1, valid_fraction=0.2)
    members = [("net", Pipeline([("model", net)])), ("spy", Spy())]
    vote = make_ensemble(members, "soft", clips, calibrate=["net"])
    member = vote.estimators[0][1].pipeline  # in a GroupedMember: the net takes its clips' groups
    assert member.named_steps["model"].calibrate is True
    assert net.calibrate is False  # the member is a clone: the caller's pipeline is left as it was
    assert make_ensemble(members, "soft", clips).estimators[0][1].pipeline.named_steps["model"].calibrate is False
    with pytest.raises(ValueError, match="member 'spy' \\(Spy\\) has no validation split to calibrate on"):
        make_ensemble(members, "soft", clips, calibrate=["spy"])
    members[0][1].set_params(model__valid_fraction=None)
    with pytest.raises(ValueError, match="member 'net' holds out no validation split \\(valid_fraction=None\\)"):
        make_ensemble(members, "soft", clips, calibrate=["net"])


def test_only_nets_with_a_validation_split_calibrate_on_one():
    members = [("svm", Pipeline([("model", estimators.build("svm"))])),
               ("cnn", Pipeline([("model", estimators.build("cnn"))])),  # the recipe: every clip trains
               ("lstm", Pipeline([("model", estimators.build("lstm"))])),  # every clip trains too
               ("transformer", Pipeline([("model", estimators.build("transformer"))])),  # every clip trains too
               ("mstnet", Pipeline([("model", estimators.build("mstnet"))])),  # a waveform net: holds 0.2 out
               ("held", Pipeline([("model", estimators.build("cnn", valid_fraction=0.2))]))]
    assert nets_to_calibrate(members, "validation") == ["mstnet", "held"]
    assert nets_to_calibrate(members, "temperature") == ["cnn", "lstm", "transformer", "mstnet", "held"]  # any net
    assert nets_to_calibrate(members, "none") == []


def test_calibration_splits_keep_folds_together_and_never_reach_the_test_fold(clips):
    train = clips[clips["fold"] != 3]
    X = train["clip_id"].to_numpy()
    splits = list(FoldGroupSplits(clips, n_splits=2).split(X))
    assert len(splits) == 2
    assert sorted(np.concatenate([test for _, test in splits])) == list(range(len(X)))  # a partition
    for fit, test in splits:
        assert set(train["fold"].iloc[fit]).isdisjoint(train["fold"].iloc[test])
    with pytest.raises(ValueError, match="2 folds among the training clips"):
        list(FoldGroupSplits(clips, n_splits=2).split(clips.loc[clips["fold"] == 1, "clip_id"]))
    assert calibrated(Spy(), clips).method == "temperature"


class GroupSpy(ClassifierMixin, BaseEstimator):
    """Records the clip ids and the groups of every fit; predicts the first class."""

    def fit(self, X, y, groups=None):
        SEEN.append(("groups", [str(x) for x in X], groups))
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])

    def predict_proba(self, X):
        return np.eye(len(self.classes_))[np.zeros(len(X), dtype=int)]


@pytest.mark.parametrize("method, calibrate", [("soft", ()), ("soft", ["a"]), ("hard", ()), ("stacking", ())])
def test_every_member_fit_gets_the_groups_of_its_own_training_clips(clips, method, calibrate):
    SEEN.clear()
    members = [("a", Pipeline([("model", GroupSpy())])), ("b", Spy(truth=dict(zip(clips["clip_id"], clips["label"]))))]
    cross_validate(make_ensemble(members, method, clips, calibrate=calibrate, calibration="temperature"), clips,
                   progress=False)
    group_of = dict(zip(clips["clip_id"], clips["group"]))
    fits = [(X, groups) for name, X, groups in SEEN if name == "groups"]
    assert len(fits) == 3 * {"soft": 1 + 2 * len(calibrate), "hard": 1, "stacking": 3}[method]
    for X, groups in fits:
        assert list(groups) == [group_of[c] for c in X]


def test_stacking_never_sees_a_test_clip_in_its_inner_fits(clips):
    SEEN.clear()
    truth = dict(zip(clips["clip_id"], clips["label"]))
    members = [(n, Spy(name=n, truth=truth, right=set(clips["clip_id"][::2]))) for n in ("a", "b")]
    result = cross_validate(make_ensemble(members, "stacking", clips), clips, progress=False)
    fold_of = dict(zip(clips["clip_id"], clips["fold"]))
    fits = [(name, X) for name, what, X in SEEN if what == "fit"]
    per_fold = len(fits) // 3
    assert per_fold == 2 * 3  # per member: 2 inner fits (the other two folds, one out each) and the final one
    for k, fold in enumerate((1, 2, 3)):
        for name, X in fits[k * per_fold:(k + 1) * per_fold]:
            assert fold not in {fold_of[c] for c in X}, (fold, name)
    # the inner predictions (the final estimator's training data) hold training clips only, each once
    predicted = [X for _, what, X in SEEN if what == "predict"]
    assert all(len(set(X)) == len(X) for X in predicted)
    assert sorted(result.predictions["clip_id"]) == sorted(clips["clip_id"])


def test_a_nets_refit_tells_each_epoch_and_leaves_no_callback_behind(experiment, one_torch_thread):
    from test_experiment import Recorder

    recorder = Recorder()
    tiny = {"channels": (2, 4, 4), "n_hidden": 8}
    folder = experiment(reporter=recorder, max_epochs=2, folds=[1]).cv("cnn", params=tiny, refit=True)
    epochs = [args for name, args in recorder.events if name == "refit_epoch"]
    assert [(label, epoch, max_epochs) for label, epoch, max_epochs, *_ in epochs] == [("cnn", 1, 2), ("cnn", 2, 2)]
    assert all(seconds >= 0 and train_loss > 0 for _, _, _, seconds, train_loss, _ in epochs)
    names = [name for name, _ in recorder.events]
    assert names.index("refit_started") < names.index("refit_epoch") < names.index("refit_done")
    import joblib

    net = joblib.load(folder / "model.joblib")["model"].named_steps["model"]
    assert "refit_progress" not in [name for name, _ in net.callbacks or []]


def test_report_lists_an_ensembles_members_beside_it(tmp_path):
    from pipelines.compare import read_runs
    from pipelines.reports import comparison_table

    folder = tmp_path / "ensemble"
    folder.mkdir()
    members = {"svm": {"mean_accuracy": 0.7, "std_accuracy": 0.1}, "cnn": {"mean_accuracy": 0.6, "std_accuracy": 0.2},
               ENSEMBLE_ROW: {"mean_accuracy": 0.8, "std_accuracy": 0.1}}
    (folder / "run.json").write_text(json.dumps({"name": "soft-svm+cnn", "estimator": "soft-svm+cnn", "dataset": "demo",
                                                 "feature": "mfcc+mel", "mean_accuracy": 0.8, "std_accuracy": 0.1,
                                                 "members": members}))
    table = comparison_table(read_runs([folder]))
    assert list(table["model"]) == ["soft-svm+cnn", "svm (in soft-svm+cnn)", "cnn (in soft-svm+cnn)"]
    assert list(table["accuracy"]) == [0.8, 0.7, 0.6] and list(table["feature"]) == ["mfcc+mel", "mfcc", "mel"]
