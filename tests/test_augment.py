"""Waveform augmentation: the augmentations themselves, augmented copies in the store, training on
them inside the pipeline (never in a test fold nor in the scores), and the command line."""

import dataclasses
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import GridSearchCV

import featurestore.audio as audio_io
from cli import main
from estimators import check_params
from featurestore import ParameterError, WaveformAugmentation, extract, extract_augmented, load_dataset
from featurestore.augment import add_noise, apply_gain, augment_settings, copy_rng, pitch_shift, shift, time_stretch
from pipelines import ClipPipeline, ClipSplitter, FeatureLoader, cross_validate, make_ensemble, make_pipeline
from pipelines.build import pipeline_params

SR = 16000
AUDIO = {"sr": 8000, "duration": 0.5}
MFCC = {"n_mfcc": 13, "n_fft": 256, "hop_length": 128, "n_mels": 20}
MEL = {"n_mels": 20, "n_fft": 256, "hop_length": 128, "delta": False}
AUGMENTATION = WaveformAugmentation(pitch_shift=2, noise_snr=30)
SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]


def sine(freq, seconds=1.0, sr=SR):
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def peak_hz(y, sr=SR):
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spectrum)]


def active_span(y, sr=SR, frame=160):
    """(start, end) in seconds of the frames holding more than half the loudest frame's RMS."""
    rms = np.sqrt(np.mean(y[:len(y) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() / 2)
    return loud[0] * frame / sr, (loud[-1] + 1) * frame / sr


def burst():
    """1 s of silence with a 440 Hz tone from 0.4 to 0.6 s."""
    y = np.zeros(SR, np.float32)
    y[int(0.4 * SR):int(0.6 * SR)] = sine(440, 0.2)
    return y


# --------------------------------------------------------------------------- the augmentations
@pytest.mark.parametrize("rate", [2.0, 0.8])
def test_time_stretch_moves_onsets_and_scales_durations(rate):
    y = burst()
    out = time_stretch(y, rate)
    start, end = active_span(out)
    assert len(out) == len(y) and out.dtype == np.float32
    assert start == pytest.approx(0.4 / rate, abs=0.03)
    assert end - start == pytest.approx(0.2 / rate, abs=0.04)
    assert peak_hz(out) == pytest.approx(440, rel=0.02)  # the pitch stays


@pytest.mark.parametrize("n_steps", [3, -5, 0.5])
def test_pitch_shift_moves_a_tone_by_the_semitone_ratio(n_steps):
    out = pitch_shift(sine(440), SR, n_steps)
    assert len(out) == SR and out.dtype == np.float32
    assert peak_hz(out) == pytest.approx(440 * 2 ** (n_steps / 12), rel=0.005)


@pytest.mark.parametrize("snr", [0.0, 10.0, 30.0])
def test_noise_at_the_requested_snr(snr):
    y = sine(440)
    out = add_noise(y, snr, np.random.default_rng(0))
    noise = out.astype(np.float64) - y
    measured = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert measured == pytest.approx(snr, abs=0.5) and len(out) == len(y)
    silent = np.zeros(100, np.float32)
    assert np.array_equal(add_noise(silent, snr, np.random.default_rng(0)), silent)


def test_gain_in_decibels_and_shift():
    y = sine(440, 0.1)
    np.testing.assert_allclose(apply_gain(y, 6.0), y * 10 ** (6 / 20), rtol=1e-6)
    np.testing.assert_allclose(apply_gain(y, -20.0), y / 10, rtol=1e-6)
    assert np.array_equal(shift(np.arange(5), 2), [3, 4, 0, 1, 2])
    y = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    out = WaveformAugmentation(time_shift=0.25).apply(y, SR, np.random.default_rng(3))
    lags = [k for k in range(-250, 251) if np.array_equal(np.roll(y, k), out)]
    assert len(lags) == 1 and lags[0] != 0  # a circular shift by at most a quarter of the clip


def test_random_gain_stays_within_its_bound():
    y = sine(440, 0.1)
    for seed in range(20):
        out = WaveformAugmentation(gain_db=3).apply(y, SR, seed)
        assert abs(20 * np.log10(np.abs(out).max() / np.abs(y).max())) <= 3 + 1e-4


@pytest.mark.parametrize("augmentation", [
    WaveformAugmentation(time_stretch=0.25), WaveformAugmentation(pitch_shift=3.5),
    WaveformAugmentation(noise_snr=20), WaveformAugmentation(gain_db=6), WaveformAugmentation(time_shift=0.5),
    WaveformAugmentation(time_stretch=0.2, pitch_shift=2, noise_snr=20, gain_db=6, time_shift=0.1),
])
def test_seeded_and_length_preserving(augmentation):
    y = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    first = augmentation.apply(y, 8000, np.random.default_rng(7))
    assert first.shape == y.shape and first.dtype == np.float32 and not np.allclose(first, y)
    assert np.array_equal(first, augmentation.apply(y, 8000, np.random.default_rng(7)))
    assert not np.allclose(first, augmentation.apply(y, 8000, np.random.default_rng(8)))
    Y = np.stack([y, y[::-1]])
    batch = augmentation.apply_batch(Y, 8000, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    assert np.array_equal(batch, np.stack([augmentation.apply(row, 8000, rng) for row in Y]))


def test_identity_and_params():
    y = sine(440, 0.1)
    assert WaveformAugmentation().is_identity and not WaveformAugmentation(noise_snr=0).is_identity
    assert np.array_equal(WaveformAugmentation().apply(y, SR, 0), y)
    assert WaveformAugmentation(pitch_shift=2).params() == WaveformAugmentation(pitch_shift=2.0).params()
    assert json.dumps(WaveformAugmentation(noise_snr=20).params())
    with pytest.raises(ValueError, match="one clip"):
        WaveformAugmentation(gain_db=1).apply(np.zeros((2, 10)), SR, 0)


@pytest.mark.parametrize("params, name", [
    ({"time_stretch": -0.1}, "time_stretch"), ({"pitch_shift": float("nan")}, "pitch_shift"),
    ({"noise_snr": "loud"}, "noise_snr"), ({"noise_snr": float("inf")}, "noise_snr"), ({"gain_db": True}, "gain_db"),
    ({"time_shift": 1.5}, "time_shift"), ({"time_shift": -1}, "time_shift"),
])
def test_bad_bounds_raise_naming_the_parameter(params, name):
    with pytest.raises(ParameterError, match=rf"^{name}="):
        WaveformAugmentation(**params)


def test_copy_rng_depends_on_seed_clip_and_copy_only():
    def draw(*args):
        return copy_rng(*args).random(4)

    assert np.array_equal(draw(0, "a", 1), draw(0, "a", 1))
    assert len({tuple(draw(*a)) for a in [(0, "a", 1), (1, "a", 1), (0, "b", 1), (0, "a", 2)]}) == 4


@pytest.mark.parametrize("values, message", [
    ({"pitch_shfit": 2}, "unknown augment parameter 'pitch_shfit'. Did you mean 'pitch_shift'"),
    ({"pitch_shift": -2}, r"^augment\.pitch_shift=-2 must be"),
    ({"copies": 2}, r"augment\.copies=2 needs an augmentation"),
    ({"copies": "two", "gain_db": 1}, r"augment\.copies='two'"),
    ({"seed": -1, "gain_db": 1}, r"augment\.seed=-1"),
])
def test_augment_settings_errors(values, message):
    with pytest.raises(ParameterError, match=message):
        augment_settings(values)


def test_augment_settings():
    assert augment_settings({}) is None and augment_settings({"copies": 0, "gain_db": 2}) is None
    spec = augment_settings({"pitch_shift": 2, "copies": 3}, seed=5)
    assert spec == {"augmentation": WaveformAugmentation(pitch_shift=2), "copies": 3, "seed": 5}


# --------------------------------------------------------------------------- copies in the store
@pytest.fixture
def us8k(urbansound_root, store):
    ds = load_dataset("urbansound8k", urbansound_root)
    sets = extract(ds, {"mfcc": MFCC, "mel": MEL}, store=store, audio=AUDIO, progress=False)
    copies = extract_augmented(ds, {"mfcc": MFCC, "mel": MEL}, AUGMENTATION, copies=2, seed=0, store=store,
                               audio=AUDIO, progress=False)
    return ds, sets, copies


def test_copies_are_rows_tied_to_their_source(us8k):
    ds, sets, copies = us8k
    fs = copies["mfcc"]
    ids = ds.clips["clip_id"].tolist()
    assert len(fs) == 72 and fs.feature_shape == sets["mfcc"].feature_shape
    assert fs.augmentation == {**AUGMENTATION.params(), "copies": 2, "seed": 0}
    assert sets["mfcc"].augmentation is None and fs.path != sets["mfcc"].path
    assert set(zip(fs.sources, fs.copy_index)) == {(c, k) for c in ids for k in (1, 2)}
    assert list(sets["mfcc"].sources) == list(sets["mfcc"].clip_ids) and not sets["mfcc"].copy_index.any()
    rows, owner = fs.augmented_rows([ids[3], ids[0]], copies=1)
    assert list(rows) == [f"{ids[3]}#aug1", f"{ids[0]}#aug1"] and list(owner) == [0, 1]
    rows, owner = fs.augmented_rows([ids[3], ids[0]])
    assert list(fs.sources[fs.index_of(rows)]) == [ids[3], ids[3], ids[0], ids[0]] and list(owner) == [0, 0, 1, 1]
    table = fs.clip_table()
    assert {"source_id", "copy", "label", "fold", "group"} <= set(table)
    assert (table.set_index("source_id")["fold"] == ds.clips.set_index("clip_id")["fold"]
            .reindex(table["source_id"])).all()


def test_copies_differ_from_their_source_and_from_each_other(us8k):
    ds, sets, copies = us8k
    for clip in ds.clips["clip_id"][:5]:
        source = sets["mfcc"].read([clip])[0]
        one, two = copies["mfcc"].read([f"{clip}#aug1", f"{clip}#aug2"])
        assert not np.allclose(one, source, atol=0.1) and not np.allclose(two, source, atol=0.1)
        assert not np.allclose(one, two, atol=0.1)


def test_copies_are_computed_once_and_the_main_set_never_changes(us8k, store, monkeypatch):
    ds, sets, copies = us8k
    main_mtime, copies_mtime = sets["mel"].path.stat().st_mtime_ns, copies["mel"].path.stat().st_mtime_ns
    calls = []
    real = audio_io.load_clip
    monkeypatch.setattr(audio_io, "load_clip", lambda path, **kw: (calls.append(path), real(path, **kw))[1])
    again = extract_augmented(ds, {"mel": MEL}, AUGMENTATION, copies=2, seed=0, store=store, audio=AUDIO,
                              progress=False)["mel"]
    assert calls == [] and again.path == copies["mel"].path
    assert again.path.stat().st_mtime_ns == copies_mtime
    other = extract_augmented(ds, {"mel": MEL}, AUGMENTATION, copies=2, seed=1, store=store, audio=AUDIO,
                              progress=False)["mel"]
    assert len(calls) == 36 and other.path != again.path  # another seed: another set, each clip decoded once
    first = [f"{ds.clips['clip_id'][0]}#aug1"]
    assert not np.allclose(other.read(first), again.read(first))
    assert extract(ds, {"mel": MEL}, store=store, audio=AUDIO, progress=False)["mel"].path == sets["mel"].path
    assert sets["mel"].path.stat().st_mtime_ns == main_mtime and len(calls) == 36


def test_copies_do_not_depend_on_batches_workers_or_other_clips(us8k, tmp_path):
    from featurestore import FeatureStore

    ds, _, copies = us8k
    other = extract_augmented(ds, {"mfcc": MFCC}, AUGMENTATION, copies=2, seed=0, store=FeatureStore(tmp_path / "b"),
                              audio=AUDIO, batch_size=5, n_jobs=2, progress=False)["mfcc"]
    ids = list(copies["mfcc"].clip_ids)
    np.testing.assert_allclose(other.read(ids), copies["mfcc"].read(ids), rtol=1e-5, atol=1e-4)
    fewer = dataclasses.replace(ds, clips=ds.clips.iloc[::3].reset_index(drop=True))
    subset = extract_augmented(fewer, {"mfcc": MFCC}, AUGMENTATION, copies=2, seed=0,
                               store=FeatureStore(tmp_path / "c"), audio=AUDIO, progress=False)["mfcc"]
    assert len(subset) == 24
    np.testing.assert_allclose(subset.read(subset.clip_ids), copies["mfcc"].read(subset.clip_ids), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    ({"augmentation": WaveformAugmentation()}, "every bound off"),
    ({"copies": 0}, "copies=0"), ({"copies": 1.5}, "copies=1.5"), ({"seed": -1}, "seed=-1"),
    ({"augmentation": {"pitch_shift": 2}}, "must be a WaveformAugmentation"),
])
def test_extract_augmented_bad_arguments(urbansound_root, store, kwargs, message):
    ds = load_dataset("urbansound8k", urbansound_root)
    args = {"augmentation": AUGMENTATION, "copies": 1, "seed": 0, **kwargs}
    with pytest.raises(ParameterError, match=message):
        extract_augmented(ds, {"mel": MEL}, args.pop("augmentation"), store=store, audio=AUDIO, progress=False, **args)


def test_cache_list_shows_augmented_sets(us8k, store, capsys):
    assert main(["cache", "list", "--cache", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert out.count("mel+aug") == 1 and out.count("mfcc+aug") == 1 and out.count("complete") == 4
    assert out.count("augmented copies: 2 per clip, seed 0") == 2


# --------------------------------------------------------------------------- training on the copies
class RowRecorder(ClassifierMixin, BaseEstimator):
    """Predicts the majority label; records the feature rows, labels and groups of every fit and predict."""

    fits, predicts = [], []

    def fit(self, X, y, groups=None):
        RowRecorder.fits.append((np.asarray(X).copy(), np.asarray(y).copy(), None if groups is None else
                                 np.asarray(groups).copy()))
        self.classes_ = np.unique(y)
        self.majority_ = pd.Series(y).mode()[0]
        return self

    def predict_proba(self, X):
        RowRecorder.predicts.append(np.asarray(X).copy())
        proba = np.zeros((len(X), len(self.classes_)))
        proba[:, list(self.classes_).index(self.majority_)] = 1
        return proba

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


@pytest.fixture
def recorder():
    RowRecorder.fits, RowRecorder.predicts = [], []
    return RowRecorder


def row_ids(sets, copies):
    """Rows' bytes -> clip id, over a main set and its copies (features of distinct rows differ)."""
    lookup = {}
    for fs in (sets, copies):
        for clip, row in zip(fs.clip_ids, fs.read()):
            lookup[row.tobytes()] = clip
    assert len(lookup) == len(sets) + len(copies)
    return lambda X: [lookup[row.tobytes()] for row in X]


def sources_of(ids, copies):
    """Source clip of each id, as the augmented set records it (a source clip is its own)."""
    recorded = dict(zip(copies.clip_ids, copies.sources))
    return [recorded.get(c, c) for c in ids]


def test_each_fold_trains_on_its_clips_and_their_copies_only(us8k, recorder):
    ds, sets, copies = us8k
    ids_of = row_ids(sets["mfcc"], copies["mfcc"])
    pipeline = make_pipeline(RowRecorder(), sets["mfcc"], augmented_set=copies["mfcc"])
    result = cross_validate(pipeline, ds.clips, progress=False)
    table = ds.clips.set_index("clip_id")
    assert len(recorder.fits) == 3 and len(recorder.predicts) == 6  # per fold: predict, then predict_proba
    for fold, (X, y, groups), seen in zip([1, 2, 3], recorder.fits, zip(*[iter(recorder.predicts)] * 2)):
        train = set(table.index[table["fold"] != fold])
        fitted = ids_of(X)
        assert sorted(fitted) == sorted([*train, *(f"{c}#aug{k}" for c in train for k in (1, 2))])
        sources = sources_of(fitted, copies["mfcc"])
        assert list(y) == list(table.loc[sources, "label"]) and list(groups) == list(table.loc[sources, "group"])
        for predicted in seen:  # predicted: the test fold's source clips only
            assert sorted(ids_of(predicted)) == sorted(table.index[table["fold"] == fold])
    assert sorted(result.predictions["clip_id"]) == sorted(ds.clips["clip_id"])
    assert not result.predictions["clip_id"].str.contains("#").any()
    assert list(result.folds["n_train"]) == [24] * 3 and list(result.folds["n_test"]) == [12] * 3
    assert list(result.folds["n_train_copies"]) == [48] * 3


def test_augment_copies_chooses_how_many(us8k, recorder):
    ds, sets, copies = us8k
    ids_of = row_ids(sets["mfcc"], copies["mfcc"])
    pipeline = make_pipeline(RowRecorder(), sets["mfcc"], augmented_set=copies["mfcc"], augment_copies=1)
    X, y = ds.clips["clip_id"].to_numpy()[:6], ds.clips["label"].to_numpy()[:6]
    pipeline.fit(X, y)
    assert sorted(ids_of(recorder.fits[-1][0])) == sorted([*X, *(f"{c}#aug1" for c in X)])
    assert pipeline.n_augmented_ == 6
    pipeline.set_params(augment_copies=0).fit(X, y)
    assert sorted(ids_of(recorder.fits[-1][0])) == sorted(X) and pipeline.n_augmented_ == 0


def test_no_copies_is_the_same_as_no_augmented_set(us8k):
    ds, sets, copies = us8k
    plain = cross_validate(make_pipeline("softmax", sets["mfcc"]), ds.clips, progress=False)
    off = cross_validate(make_pipeline("softmax", sets["mfcc"], augmented_set=copies["mfcc"], augment_copies=0),
                         ds.clips, progress=False)
    pd.testing.assert_frame_equal(plain.predictions, off.predictions)
    on = cross_validate(make_pipeline("softmax", sets["mfcc"], augmented_set=copies["mfcc"]), ds.clips, progress=False)
    assert on.mean("accuracy") > 0.8 and not on.predictions.equals(off.predictions)


def test_gridsearchcv_over_augment_copies(us8k):
    ds, sets, copies = us8k
    pipeline = make_pipeline("softmax", sets["mfcc"], augmented_set=copies["mfcc"])
    grid = pipeline_params(pipeline, {"augment_copies": [0, 2], "C": [1.0]})
    assert grid == {"augment_copies": [0, 2], "model__C": [1.0]}
    check_params(pipeline, grid)
    search = GridSearchCV(pipeline, grid, cv=ClipSplitter(ds.clips), n_jobs=2)
    search.fit(ds.clips["clip_id"].to_numpy(), ds.clips["label"].to_numpy())
    results = pd.DataFrame(search.cv_results_)
    assert list(results["param_augment_copies"]) == [0, 2] and search.best_score_ > 0.8
    assert search.best_estimator_.predict(ds.clips["clip_id"].to_numpy()[:3]).shape == (3,)


def test_clone_and_pickle(us8k):
    ds, sets, copies = us8k
    pipeline = make_pipeline("softmax", sets["mfcc"], augmented_set=copies["mfcc"], augment_copies=1)
    twin = clone(pipeline)
    assert isinstance(twin, ClipPipeline) and twin.augment_copies == 1
    assert twin.get_params()["features__augmented_set"] == str(copies["mfcc"].path)
    X, y = ds.clips["clip_id"].to_numpy(), ds.clips["label"].to_numpy()
    fitted = twin.fit(X, y)
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert loaded.n_augmented_ == 36 and isinstance(fitted[:-1], ClipPipeline)


def test_segment_voting_gets_each_copy_with_its_source_group(us8k, recorder):
    from pipelines import SegmentClassifier

    ds, sets, copies = us8k
    pipeline = make_pipeline(RowRecorder(), sets["mel"], input="image", segment_window=8, vote="majority",
                             augmented_set=copies["mel"])
    assert isinstance(pipeline.named_steps["model"], SegmentClassifier)
    assert pipeline_params(pipeline, {"augment_copies": [0], "window": [4]}) == {
        "augment_copies": [0], "model__window": [4]}
    result = cross_validate(pipeline, ds.clips, progress=False)
    table = ds.clips.set_index("clip_id")
    for fold, (X, _, groups) in zip([1, 2, 3], recorder.fits):
        train_groups = set(table.loc[table["fold"] != fold, "group"])
        n_windows = len(X) // (24 * 3)
        assert len(X) == 24 * 3 * n_windows and set(groups) == train_groups
    assert len(result.predictions) == 36


@pytest.mark.parametrize("method", ["soft", "stacking"])
def test_ensembles_never_train_on_the_test_fold(us8k, recorder, method):
    ds, sets, copies = us8k
    ids_of = row_ids(sets["mfcc"], copies["mfcc"])
    members = [("spy", make_pipeline(RowRecorder(), sets["mfcc"], augmented_set=copies["mfcc"])),
               ("on_mel", make_pipeline("softmax", sets["mel"], augmented_set=copies["mel"]))]
    result = cross_validate(make_ensemble(members, method, ds.clips), ds.clips, progress=False)
    assert sorted(result.predictions["clip_id"]) == sorted(ds.clips["clip_id"])  # out of fold, source clips only
    folds = ds.clips.set_index("clip_id")["fold"]
    per_fold = len(recorder.fits) // 3
    assert per_fold == (1 if method == "soft" else 3)  # stacking: 2 inner fits + the final one per fold
    for fold, start in zip([1, 2, 3], range(0, len(recorder.fits), per_fold)):
        for X, _, _ in recorder.fits[start:start + per_fold]:
            fitted = ids_of(X)
            assert any("#aug" in c for c in fitted)
            assert not set(sources_of(fitted, copies["mfcc"])) & set(folds.index[folds == fold])


def test_copies_never_pass_for_source_clips(us8k):
    ds, sets, copies = us8k
    X, y = ds.clips["clip_id"].to_numpy(), ds.clips["label"].to_numpy()
    pipeline = make_pipeline("softmax", sets["mfcc"], augmented_set=copies["mfcc"]).fit(X, y)
    with pytest.raises(ValueError, match="is an augmented copy"):
        pipeline.predict([f"{X[0]}#aug1"])
    with pytest.raises(ValueError, match="never go through a splitter"):
        list(ClipSplitter(ds.clips).split([*X, f"{X[0]}#aug1"]))
    with pytest.raises(ValueError, match="X holds augmented copies"):
        clone(pipeline).fit([*X, f"{X[0]}#aug1"], [*y, y[0]])
    with pytest.raises(ValueError, match="augment_copies=3 is more than the 2 copies"):
        clone(pipeline).set_params(augment_copies=3).fit(X, y)
    with pytest.raises(ValueError, match="augment_copies=1 needs stored augmented copies"):
        make_pipeline("softmax", sets["mfcc"], augment_copies=1).fit(X, y)
    with pytest.raises(ValueError, match="does not hold augmented copies of feature set"):
        FeatureLoader(str(sets["mfcc"].path), augmented_set=str(copies["mel"].path)).fit()
    with pytest.raises(ValueError, match="augment_copies=-1"):
        clone(pipeline).set_params(augment_copies=-1).fit(X, y)


# --------------------------------------------------------------------------- command line
def test_cli_grid_over_stored_copies(capsys, urbansound_root, tmp_path):
    out_dir = tmp_path / "run"
    code = main(["grid", "--estimator", "svm", "--dataset", "urbansound8k", "--root", str(urbansound_root),
                 "--cache", str(tmp_path / "cache"), "--output", str(out_dir), *SMALL,
                 "--set", "augment.copies=2", "--set", "augment.pitch_shift=2",
                 "--param-grid", '{"augment_copies": [0, 2]}',
                 "--search", "flat"])  # nested: inner training folds of 4 clips a class, too few to calibrate
    out = capsys.readouterr().out
    assert code == 0, out
    cv_results = pd.read_csv(out_dir / "cv_results.csv")
    assert len(cv_results) == 2
    assert [json.loads(p)["augment_copies"] for p in cv_results["params"]] == [0, 2]
    run = json.loads((out_dir / "run.json").read_text())
    assert run["augmentation"]["copies"] == 2 and run["augmentation"]["pitch_shift"] == 2.0
    assert run["n_clips"] == 36
    predictions = pd.read_csv(out_dir / "predictions.csv")
    assert len(predictions) == 36 and not predictions["clip_id"].str.contains("#").any()
    assert "stored augmented copies per clip" in (out_dir / "summary.md").read_text()
    folds = pd.read_csv(out_dir / "folds.csv")
    assert list(folds["n_train"]) == [24] * 3
    assert len(list((tmp_path / "cache").rglob("mfcc-*-aug*.h5"))) == 1


def test_cli_grid_over_training_batch_augmentation(capsys, urbansound_root, tmp_path):
    """SpecAugment and mixup are estimator parameters: a JSON grid switches them on and off."""
    out_dir = tmp_path / "run"
    code = main(["grid", "--estimator", "cnn", "--dataset", "urbansound8k", "--root", str(urbansound_root),
                 "--cache", str(tmp_path / "cache"), "--output", str(out_dir), *SMALL, "--max-epochs", "1",
                 "--set", "mel.n_mels=20", "--set", "mel.n_fft=256", "--set", "mel.hop_length=128",
                 "--param-grid", '{"batch_augment__time_mask": [0, 4], "batch_augment__mixup_alpha": [0, 0.2]}',
                 "--search", "flat"])  # nested: inner training folds of 4 clips a class, too few to validate
    out = capsys.readouterr().out
    assert code == 0, out
    params = [json.loads(p) for p in pd.read_csv(out_dir / "cv_results.csv")["params"]]
    assert sorted((p["model__batch_augment__time_mask"], p["model__batch_augment__mixup_alpha"]) for p in params) == [
        (0, 0), (0, 0.2), (4, 0), (4, 0.2)]


def test_cli_cv_and_extract_with_copies(capsys, urbansound_root, tmp_path):
    cache = tmp_path / "cache"
    common = ["--dataset", "urbansound8k", "--root", str(urbansound_root), "--cache", str(cache), *SMALL,
              "--set", "augment.gain_db=6", "--set", "augment.time_shift=0.2"]
    assert main(["extract", "--features", "mfcc", *common]) == 0
    assert "mfcc (augmented x1): 36 clips" in capsys.readouterr().out
    assert main(["cv", "--estimator", "softmax", "--feature", "mfcc", "--params", "augment_copies=1",
                 "--output", str(tmp_path / "cv"), *common]) == 0
    run = json.loads((tmp_path / "cv" / "run.json").read_text())
    assert run["augmentation"]["gain_db"] == 6.0 and run["augmentation"]["copies"] == 1
    assert list(pd.read_csv(tmp_path / "cv" / "folds.csv")["n_train_copies"]) == [24] * 3


@pytest.mark.parametrize("argv, message", [
    (["--set", "augment.pitch_shfit=2"], r"unknown augment parameter 'pitch_shfit'\. Did you mean 'pitch_shift'"),
    (["--set", "augment.pitch_shift=-2"], r"augment\.pitch_shift=-2 must be"),
    (["--set", "augment.copies=2"], r"augment\.copies=2 needs an augmentation"),
    (["--set", "augment.copies=two", "--set", "augment.gain_db=1"], r"augment\.copies='two'"),
    (["--set", "augment.gain_db=1", "--param-grid", "augment_copies=0,3"], r"augment_copies=3 is more than"),
    (["--param-grid", "augment_copies=0,1"], r"augment_copies=1 is more than .* none are set"),
    (["--param-grid", "augment_copis=0,1"], r"Did you mean 'augment_copies'"),
])
def test_bad_augment_settings_exit_2_with_one_line(capsys, urbansound_root, tmp_path, argv, message):
    import re

    cache = tmp_path / "cache"
    code = main(["grid", "--estimator", "svm", "--dataset", "urbansound8k", "--root", str(urbansound_root),
                 "--cache", str(cache), *SMALL, *argv])
    err = capsys.readouterr().err
    assert code == 2 and re.search(message, err) and len(err.strip().splitlines()) == 1, err
    assert not any(cache.rglob("*.h5"))  # nothing extracted, nothing trained
