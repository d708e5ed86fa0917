"""Where feature sets' data is kept: in the FeatureSet object, a store's LRU, a fitted FeatureLoader;
never in a process-wide cache."""

import os
import pickle

import numpy as np
import pytest

from featurestore import FeatureRequest, FeatureStore, ParameterError, extract, load_dataset
from featurestore.store import FeatureSet
from pipelines.loader import FeatureLoader

AUDIO = {"sr": 8000, "duration": 0.5}
MEL = {"n_mels": 20, "n_fft": 256, "hop_length": 128}


@pytest.fixture
def two_sets(urbansound_root, store):
    """The urbansound fixture's mel and mfcc sets (36 clips each) in ``store``; returns their paths."""
    ds = load_dataset("urbansound8k", urbansound_root)
    sets = extract(ds, {"mel": MEL, "mfcc": {"n_mfcc": 13, "n_fft": 256, "hop_length": 128, "n_mels": 20}},
                   store=store, audio=AUDIO, progress=False)
    return ds, sets["mel"].path, sets["mfcc"].path


def count_feature_reads(monkeypatch):
    """Paths of every read of a set's ``features`` array, from now on."""
    reads = []
    real = FeatureSet._checked

    def counting(self, f, name):
        if name == "features":
            reads.append(self.path)
        return real(self, f, name)

    monkeypatch.setattr(FeatureSet, "_checked", counting)
    return reads


def test_sets_share_nothing_between_objects(two_sets, monkeypatch):
    _, mel, _ = two_sets
    reads = count_feature_reads(monkeypatch)
    first = FeatureSet(mel)
    first.read()
    first.read()
    assert reads == [mel] and first.loaded_bytes == 36 * 2 * 20 * 32 * 4
    second = FeatureSet(mel)
    assert second.loaded_bytes == 0  # no class-level cache: a new object reads the file
    np.testing.assert_array_equal(second.read(), first.read())
    assert reads == [mel, mel]


def test_a_set_rereads_its_file_once_it_changes(two_sets):
    _, mel, _ = two_sets
    fs = FeatureSet(mel)
    before = fs.read()
    stat = os.stat(mel)
    os.utime(mel, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # as a replaced file would
    fs._loaded = (fs._loaded[0], fs._loaded[1], fs._loaded[2], np.zeros_like(fs._loaded[3]))
    np.testing.assert_array_equal(fs.read(), before)  # the stale copy in memory is not served


def test_store_keeps_opened_sets_within_its_byte_budget(two_sets, tmp_path):
    ds, mel, mfcc = two_sets
    store = FeatureStore(tmp_path / "cache")  # the fixture's store root
    fs = store.open(mel)
    fs.read()
    again = store.get(ds, FeatureRequest(fs.kind, fs.params, fs.audio))
    assert again is fs and again.loaded_bytes > 0  # served from the LRU, data and all
    small = FeatureStore(tmp_path / "cache", cache_bytes=fs.loaded_bytes)  # room for one set
    a = small.open(mel)
    a.read()
    b = small.open(mfcc)
    b.read()
    assert small.open(mfcc) is b  # the mfcc set and the mel set together exceed the budget:
    assert small.open(mel) is not a  # the least recently used one was dropped


def test_store_cache_budget_is_checked():
    with pytest.raises(ParameterError, match="cache_bytes=-1 must be an integer >= 0"):
        FeatureStore(cache_bytes=-1)


def test_pickled_store_and_set_leave_their_data_behind(two_sets, tmp_path):
    _, mel, _ = two_sets
    store = FeatureStore(tmp_path / "cache")
    fs = store.open(mel)
    fs.read()
    assert len(pickle.dumps(fs)) < 10_000 < fs.loaded_bytes
    assert len(pickle.loads(pickle.dumps(store))._open_sets) == 0
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fs)).read(), fs.read())


def test_fitted_loader_reads_its_set_once_and_pickles_small(two_sets, monkeypatch):
    ds, mel, _ = two_sets
    ids = ds.clips["clip_id"].to_numpy()
    reads = count_feature_reads(monkeypatch)
    loader = FeatureLoader(str(mel), input="image").fit(ids)
    X = loader.transform(ids[:10])
    loader.transform(ids[10:])
    assert reads == [mel] and X.shape == (10, 2, 20, 32)
    sent = pickle.dumps(loader)
    assert len(sent) < 10_000  # no features travel to a worker
    received = pickle.loads(sent)
    np.testing.assert_array_equal(received.transform(ids[:10]), X)
    assert reads == [mel, mel]  # the worker read the file itself, once
    loader.fit(ids)
    loader.transform(ids)
    assert reads == [mel, mel]  # refitting on the same, unchanged file keeps what was read
