"""Nested grid search: parameters selected inside each outer training set, scored on its test fold."""

import hashlib
import json
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from cli import main
from featurestore import extract, load_dataset
from featurestore.errors import ParameterError
from pipelines import ClipSplitter, make_pipeline
from pipelines.build import pipeline_params
from pipelines.evaluate import grid_search, nested_grid_search

SEEDS = list(range(20))


def clip_table(n_folds=4, per_fold=12, folds=True):
    """A fake clip table: two labels, recordings of two clips each, ``per_fold`` clips per fold."""
    rows = []
    for fold in range(1, n_folds + 1):
        for i in range(per_fold):
            rows.append({"clip_id": f"f{fold}c{i:02d}", "label": "ab"[(i // 2) % 2],
                         "fold": fold if folds else None, "group": f"f{fold}r{i // 2}"})
    return pd.DataFrame(rows)


def noise_label(seed, clip_id, classes):
    """The label :class:`NoiseSpy` predicts: a fixed pseudo-random function of the seed and the clip id."""
    digest = hashlib.blake2b(f"{seed}:{clip_id}".encode(), digest_size=8).digest()  # not crc32: it is linear
    return classes[int.from_bytes(digest, "big") % len(classes)]


class NoiseSpy(ClassifierMixin, BaseEstimator):
    """Takes clip ids; predicts :func:`noise_label` whatever it was trained on, so that its score on a set
    of clips is known in advance; appends the ids of every fit and prediction to ``log`` (JSON lines, so
    that parallel workers can write it)."""

    def __init__(self, *, seed=0, tag="", log=None):
        self.seed = seed
        self.tag = tag
        self.log = log

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.fit_ids_ = [str(x) for x in X]
        return self

    def predict(self, X):
        check_is_fitted(self)
        if self.log:
            with open(self.log, "a") as f:
                f.write(json.dumps({"seed": self.seed, "train": self.fit_ids_, "test": [str(x) for x in X]}) + "\n")
        return np.array([noise_label(self.seed, x, self.classes_) for x in X])


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def accuracy(seed, clips):
    """Exact accuracy of NoiseSpy(seed) on the clips of a table."""
    classes = np.unique(clips["label"])
    hits = sum(noise_label(seed, c, classes) == y for c, y in zip(clips["clip_id"], clips["label"]))
    return Fraction(int(hits), len(clips))


def test_inner_fits_never_see_an_outer_test_clip(tmp_path):
    """Every fit is either an outer one (all clips) or an inner one that uses exactly the other folds than
    one outer test fold; each of those is used by one inner split per remaining fold and candidate."""
    clips = clip_table()
    log = tmp_path / "fits.jsonl"
    seeds = [0, 1, 2]
    nested = nested_grid_search(NoiseSpy(log=str(log)), {"seed": seeds}, clips, n_jobs=2, refit=False,
                                progress=False)
    fold_of = dict(zip(clips["clip_id"], clips["fold"]))
    group_of = dict(zip(clips["clip_id"], clips["group"]))
    outer, inner_by_outer = 0, {1: 0, 2: 0, 3: 0, 4: 0}
    for record in read_log(log):
        train, test = set(record["train"]), set(record["test"])
        assert not train & test and not {group_of[c] for c in train} & {group_of[c] for c in test}
        folds = {fold_of[c] for c in train | test}
        if folds == {1, 2, 3, 4}:
            outer += 1
            assert len({fold_of[c] for c in test}) == 1
        else:
            [missing] = {1, 2, 3, 4} - folds  # the outer test fold: none of its clips on either side
            assert train | test == set(clips.loc[clips["fold"] != missing, "clip_id"])
            inner_by_outer[missing] += 1
    assert outer == len(seeds) * 4
    assert inner_by_outer == {k: len(seeds) * 3 for k in (1, 2, 3, 4)}
    assert len(nested.inner) == len(seeds) * 4 * 3
    assert not (nested.inner["fold"] == nested.inner["outer_fold"]).any()


def test_inner_fits_without_folds_stay_in_the_outer_training_groups(tmp_path):
    """Without folds, outer and inner splits are stratified group k-fold; inner ones split the outer
    training clips only and keep recordings together."""
    clips = clip_table(folds=False)
    log = tmp_path / "fits.jsonl"
    splitter = ClipSplitter(clips, n_splits=3, random_state=0)
    nested = nested_grid_search(NoiseSpy(log=str(log)), {"seed": [0, 1]}, clips, splitter=splitter,
                                inner_splits=2, refit=False, progress=False)
    ids = clips["clip_id"].to_numpy()
    outer_train = [frozenset(ids[train]) for train, _ in splitter.split(ids)]
    group_of = dict(zip(clips["clip_id"], clips["group"]))
    counts = dict.fromkeys(outer_train, 0)
    n_outer = 0
    for record in read_log(log):
        train, test = set(record["train"]), set(record["test"])
        assert not {group_of[c] for c in train} & {group_of[c] for c in test}
        if train | test == set(ids):
            n_outer += 1
        else:
            counts[frozenset(train | test)] += 1  # KeyError: an inner fit outside every outer training set
    assert n_outer == 2 * 3 and list(counts.values()) == [2 * 2] * 3
    assert list(nested.result.folds["fold"]) == [1, 2, 3]


def test_nested_score_is_the_outer_score_of_each_fold_selection():
    """Computed independently with exact fractions: per outer fold, the seed with the best mean accuracy
    over the other folds (first on ties), scored on the fold; flat = best mean over all folds."""
    clips = clip_table()
    nested = nested_grid_search(NoiseSpy(), {"seed": SEEDS}, clips, refit=False, progress=False)
    by_fold = {k: clips[clips["fold"] == k] for k in (1, 2, 3, 4)}
    score = {(s, k): accuracy(s, by_fold[k]) for s in SEEDS for k in by_fold}
    selected, outer, inner = [], [], []
    for k in by_fold:
        means = [sum(score[s, j] for j in by_fold if j != k) / 3 for s in SEEDS]
        best = means.index(max(means))
        selected.append({"seed": SEEDS[best]})
        inner.append(means[best])
        outer.append(score[SEEDS[best], k])
    folds = nested.result.folds
    assert list(folds["params"]) == selected
    np.testing.assert_allclose(folds["inner_accuracy"], [float(m) for m in inner], atol=1e-12)
    np.testing.assert_allclose(folds["accuracy"], [float(s) for s in outer], atol=1e-12)
    assert nested.result.mean("accuracy") == pytest.approx(float(sum(outer) / 4), abs=1e-12)
    flat = max(sum(score[s, k] for k in by_fold) / 4 for s in SEEDS)
    assert nested.cv_results["mean_accuracy"].max() == pytest.approx(float(flat), abs=1e-12)
    assert [row["params"] for row in nested.selected_params()] == selected
    # outer predictions: each clip once, made by the candidate selected for its fold
    predictions = nested.result.predictions.set_index("clip_id").loc[clips["clip_id"]]
    classes = np.array(["a", "b"])
    expected = [noise_label(selected[fold - 1]["seed"], c, classes) for c, fold in zip(clips["clip_id"], clips["fold"])]
    assert list(predictions["prediction"]) == expected


class LuckyOnOneFold(ClassifierMixin, BaseEstimator):
    """Takes clip ids of :func:`clip_table`. Knows the labels of fold ``lucky_fold`` (as if it had seen
    them) and says "a" elsewhere, right on half of every other fold; ``lucky_fold=None``: right on the
    first 7 clips of every fold (7/12), wrong on the others."""

    def __init__(self, *, lucky_fold=None):
        self.lucky_fold = lucky_fold

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        check_is_fitted(self)
        out = []
        for clip_id in X:
            fold, i = int(clip_id[1]), int(clip_id[-2:])
            truth = "ab"[(i // 2) % 2]
            if self.lucky_fold is None:
                out.append(truth if i < 7 else "ba"[(i // 2) % 2])
            else:
                out.append(truth if fold == self.lucky_fold else "a")
        return np.array(out)


def test_flat_search_is_optimistic_when_selection_overfits():
    """Lucky candidates score 1 on their fold and 0.5 elsewhere (mean 0.625), the steady one 7/12 on every
    fold. The flat search picks a lucky one and reports 0.625; inside each outer training set the best
    looking candidate is lucky on an inner fold, so it scores 0.5 on the outer one: the nested score."""
    grid = {"lucky_fold": [None, 1, 2, 3, 4]}
    nested = nested_grid_search(LuckyOnOneFold(), grid, clip_table(), refit=False, progress=False)
    assert nested.cv_results["mean_accuracy"].max() == pytest.approx(0.625, abs=1e-12)
    assert nested.flat[nested.best_index].params == {"lucky_fold": 1}
    assert [p["lucky_fold"] for p in nested.result.folds["params"]] == [2, 1, 1, 1]
    np.testing.assert_allclose(nested.result.folds["inner_accuracy"], 2 / 3, atol=1e-12)
    assert nested.result.mean("accuracy") == pytest.approx(0.5, abs=1e-12)


def test_ties_go_to_the_first_candidate_in_grid_order():
    nested = nested_grid_search(NoiseSpy(seed=3), {"tag": ["b", "a", "c"]}, clip_table(), refit=False,
                                progress=False)
    assert [p["tag"] for p in nested.result.folds["params"]] == ["b"] * 4
    assert nested.best_index == 0 and list(nested.result.folds["candidate"]) == [0] * 4


def test_inner_splits_cap_and_errors(tmp_path):
    clips = clip_table()
    nested = nested_grid_search(NoiseSpy(), {"seed": [0, 1]}, clips, inner_splits=1, refit=False, progress=False)
    # one inner fold per outer fold: the first remaining one, trained on the two others
    assert list(nested.inner["fold"]) == [2, 2, 1, 1, 1, 1, 1, 1]
    assert list(nested.inner["n_train"]) == [24] * 8
    log = tmp_path / "fits.jsonl"
    with pytest.raises(ValueError, match=r"only fold\(s\) \[2\]: a nested search needs at least 3 folds"):
        nested_grid_search(NoiseSpy(log=str(log)), {"seed": [0, 1]}, clip_table(n_folds=2), progress=False)
    assert not log.exists()  # nothing trained
    with pytest.raises(ParameterError, match="inner_splits=0 must be a positive integer"):
        nested_grid_search(NoiseSpy(), {"seed": [0]}, clips, inner_splits=0, progress=False)
    with pytest.raises(ParameterError, match="inner_splits=1: a data set without folds needs at least 2"):
        nested_grid_search(NoiseSpy(), {"seed": [0]}, clip_table(folds=False), inner_splits=1, progress=False)


def test_final_model_is_the_flat_best_refitted_on_all_clips():
    clips = clip_table()
    nested = nested_grid_search(NoiseSpy(), {"seed": SEEDS}, clips, progress=False)
    cv_results, _, best, model = grid_search(NoiseSpy(), {"seed": SEEDS}, clips, progress=False)
    assert nested.best_index == best and model.seed == nested.best_model.seed == SEEDS[best]
    assert nested.result.params == {"seed": SEEDS[best]}
    assert nested.best_model.fit_ids_ == list(clips["clip_id"])
    pd.testing.assert_frame_equal(nested.cv_results.drop(columns="fit_time"), cv_results.drop(columns="fit_time"))


# --------------------------------------------------------------------------- real pipelines and the CLI
AUDIO = {"sr": 8000, "duration": 0.5}
MFCC = {"n_mfcc": 13, "n_fft": 256, "hop_length": 128, "n_mels": 20}


def test_nested_search_of_a_stored_feature_pipeline(urbansound_root, store):
    ds = load_dataset("urbansound8k", urbansound_root)
    fs = extract(ds, {"mfcc": MFCC}, store=store, audio=AUDIO, progress=False)["mfcc"]
    pipeline = make_pipeline("softmax", fs)
    nested = nested_grid_search(pipeline, pipeline_params(pipeline, {"C": [0.001, 1.0]}), ds.clips,
                                progress=False)
    folds = nested.result.folds
    assert list(folds["fold"]) == [1, 2, 3] and list(folds["n_train"]) == [24] * 3
    assert len(nested.inner) == 2 * 3 * 2 and set(nested.inner["n_train"]) == {12}
    for row in folds.to_dict("records"):  # the outer row is the flat fit of the selected candidate
        flat = nested.flat[row["candidate"]].folds.set_index("fold").loc[row["fold"]]
        assert row["accuracy"] == flat["accuracy"] and row["params"] == nested.flat[row["candidate"]].params
    assert sorted(nested.result.predictions["clip_id"]) == sorted(ds.clips["clip_id"])
    assert {"proba_low", "proba_mid", "proba_high"} <= set(nested.result.predictions)
    assert nested.result.mean("accuracy") > 0.9  # three tones are easy to tell apart


SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]


def test_cli_grid_is_nested_by_default_and_flat_is_labelled_optimistic(capsys, urbansound_root, tmp_path):
    common = ["grid", "--estimator", "softmax", "--param-grid", "C=0.001,1", "--dataset", "urbansound8k",
              "--root", str(urbansound_root), "--cache", str(tmp_path / "cache"), *SMALL]
    assert main([*common, "--output", str(tmp_path / "nested")]) == 0
    out = capsys.readouterr().out
    assert "nested (selected on inner folds" in out and "flat (optimistic" in out
    run = json.loads((tmp_path / "nested" / "run.json").read_text())
    assert run["nested"] is True and [s["fold"] for s in run["selected_params"]] == [1, 2, 3]
    assert all(s["params"]["model__C"] in (0.001, 1.0) for s in run["selected_params"])
    assert run["mean_accuracy"] == pytest.approx(np.mean([s["accuracy"] for s in run["selected_params"]]), abs=1e-12)
    summary = (tmp_path / "nested" / "summary.md").read_text()
    assert "Grid search, nested" in summary and "flat (optimistic" in summary and "inner accuracy" in summary
    folds = pd.read_csv(tmp_path / "nested" / "folds.csv")
    assert [json.loads(p) for p in folds["params"]] == [s["params"] for s in run["selected_params"]]

    assert main([*common, "--search", "flat", "--output", str(tmp_path / "flat")]) == 0
    out = capsys.readouterr().out
    assert "flat accuracy" in out and "(optimistic)" in out and "nested (" not in out
    run = json.loads((tmp_path / "flat" / "run.json").read_text())
    assert run["nested"] is False and "selected_params" not in run
    assert "Grid search, flat (optimistic" in (tmp_path / "flat" / "summary.md").read_text()
    assert main(["report", str(tmp_path / "nested"), str(tmp_path / "flat"), "--output", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "softmax (flat grid, optimistic)" in out and out.count("optimistic") == 1


def test_cli_inner_splits_with_flat_search_exits_2(capsys, urbansound_root, tmp_path):
    code = main(["grid", "--estimator", "softmax", "--search", "flat", "--inner-splits", "2", "--dataset",
                 "urbansound8k", "--root", str(urbansound_root), "--cache", str(tmp_path / "cache"), *SMALL])
    err = capsys.readouterr().err
    assert code == 2 and "inner_splits=2 applies to a nested search only" in err
    assert not any((tmp_path / "cache").rglob("*.h5"))  # failed before any extraction
