import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import featurestore.audio as audio_io
from featurestore import AudioError, FeatureStore, StoreLockedError, extract, load_dataset
from featurestore.specs import FeatureRequest
from featurestore.store import FeatureSet

AUDIO = {"sr": 8000, "duration": 0.5}
KINDS = {"mel": {"n_mels": 20, "n_fft": 256, "hop_length": 128}, "mfcc": {"n_mfcc": 13, "n_fft": 256,
                                                                           "hop_length": 128, "n_mels": 20}}


def count_decodes(monkeypatch):
    calls = []
    real = audio_io.load_clip

    def counting(path, **kwargs):
        calls.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(audio_io, "load_clip", counting)
    return calls


def test_extract_once_then_served_from_store(urbansound_root, store, monkeypatch):
    ds = load_dataset("urbansound8k", urbansound_root)
    calls = count_decodes(monkeypatch)
    sets = extract(ds, KINDS, store=store, audio=AUDIO, progress=False)
    assert len(calls) == 36  # each clip decoded once for both kinds
    mel = sets["mel"]
    assert mel.feature_shape == (2, 20, 32) and len(mel) == 36
    assert mel.params["n_mels"] == 20 and mel.audio["sr"] == 8000
    assert mel.attrs["dataset"] == "urbansound8k" and mel.attrs["versions"]["librosa"]
    assert list(mel.clip_table()["clip_id"]) == list(ds.clips["clip_id"])
    again = extract(ds, KINDS, store=store, audio=AUDIO, progress=False)
    assert len(calls) == 36 and again["mel"].path == mel.path  # no audio decoded
    other = extract(ds, {"mel": {"n_mels": 24, "n_fft": 256, "hop_length": 128}}, store=store, audio=AUDIO,
                    progress=False)["mel"]
    assert other.path != mel.path and other.feature_shape == (2, 24, 32)
    assert {e["kind"] for e in store.entries()} == {"mel", "mfcc"} and len(store.entries()) == 3


def test_values_match_direct_computation_and_read_order(urbansound_root, store):
    from featurestore import features

    ds = load_dataset("urbansound8k", urbansound_root)
    fs = extract(ds, {"mfcc": KINDS["mfcc"]}, store=store, audio=AUDIO, progress=False, n_jobs=2,
                 batch_size=5)["mfcc"]
    ids = list(ds.clips["clip_id"])[::-1]
    X = fs.read(ids)
    y = audio_io.load_clip(ds.clips.set_index("clip_id").loc[ids[0], "path"], **AUDIO)
    direct = features.compute("mfcc", y, sr=8000, **KINDS["mfcc"])
    np.testing.assert_allclose(X[0], direct, rtol=1e-4, atol=1e-3)
    assert X.dtype == np.float32
    with pytest.raises(KeyError, match="not in feature set"):
        fs.read(["no-such-clip"])


def test_float16_storage_reads_float32(urbansound_root, store):
    ds = load_dataset("urbansound8k", urbansound_root)
    half = extract(ds, {"mel": KINDS["mel"]}, store=store, audio=AUDIO, dtype="float16", progress=False)["mel"]
    full = extract(ds, {"mel": KINDS["mel"]}, store=store, audio=AUDIO, progress=False)["mel"]
    assert half.path != full.path
    with h5py.File(half.path) as f:
        assert f["features"].dtype == np.float16
    np.testing.assert_allclose(half.read(), full.read(), atol=0.1)
    assert half.read().dtype == np.float32


def test_bad_file_stops_then_resumes_then_skips(urbansound_root, store, monkeypatch):
    victim = sorted((urbansound_root / "audio" / "fold2").glob("*.wav"))[0]
    good = victim.read_bytes()
    victim.write_bytes(b"this is not audio" * 10)
    ds = load_dataset("urbansound8k", urbansound_root)
    with pytest.raises(AudioError, match=rf"{victim.name}.*--skip-bad"):
        extract(ds, KINDS, store=store, audio=AUDIO, batch_size=4, progress=False)
    assert store.get(ds, _request(ds, "mel")) is None  # never complete
    partial = [e for e in store.entries() if e["status"] == "partial"]
    assert partial and all(e["n_clips"] > 0 for e in partial)  # computed batches were kept

    skipped = extract(ds, KINDS, store=store, audio=AUDIO, batch_size=4, skip_bad=True, progress=False)
    assert len(skipped["mel"]) == 35 and skipped["mel"].skipped[0]["path"] == str(victim)
    assert victim.stem not in skipped["mel"].clip_ids

    victim.write_bytes(good)  # a repaired file changes the data set's identity: a new feature set
    ds2 = load_dataset("urbansound8k", urbansound_root)
    calls = count_decodes(monkeypatch)
    assert len(extract(ds2, KINDS, store=store, audio=AUDIO, progress=False)["mel"]) == 36
    assert len(calls) == 36


def test_resume_after_error_decodes_only_remaining(urbansound_root, store, monkeypatch):
    ds = load_dataset("urbansound8k", urbansound_root)
    real = audio_io.load_clip
    victim = ds.clips["path"].iloc[20]

    def flaky(path, **kwargs):
        if path == victim:
            raise AudioError(path, "simulated read failure")
        return real(path, **kwargs)

    monkeypatch.setattr(audio_io, "load_clip", flaky)
    with pytest.raises(AudioError, match="simulated"):
        extract(ds, KINDS, store=store, audio=AUDIO, batch_size=8, progress=False)
    calls = count_decodes(monkeypatch)
    monkeypatch.setattr(audio_io, "load_clip", lambda p, **k: (calls.append(p), real(p, **k))[1])
    sets = extract(ds, KINDS, store=store, audio=AUDIO, batch_size=8, progress=False)
    # batches 1-2 and the 7 good clips of the failing batch 3 were stored: only the rest is decoded
    assert len(sets["mel"]) == 36 and len(calls) == 36 - 23


def test_killed_extraction_resumes_and_matches(urbansound_root, tmp_path):
    script = textwrap.dedent(f"""
        import time, featurestore.extraction as ex
        from featurestore import FeatureStore, extract, load_dataset
        real = ex.compute_batch
        def slow(*a, **k):
            time.sleep(0.3)
            return real(*a, **k)
        ex.compute_batch = slow
        ds = load_dataset("urbansound8k", {str(urbansound_root)!r})
        extract(ds, {KINDS!r}, store=FeatureStore({str(tmp_path / 'cache')!r}), audio={AUDIO!r},
                batch_size=2, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    store = FeatureStore(tmp_path / "cache")
    deadline = time.time() + 60
    while time.time() < deadline and sum(e["n_clips"] for e in store.entries() if e["status"] == "partial") < 6:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ds = load_dataset("urbansound8k", urbansound_root)
    assert store.get(ds, _request(ds, "mel")) is None
    done_before = sum(e["n_clips"] for e in store.entries() if e["kind"] == "mel")
    assert 0 < done_before < 36
    resumed = extract(ds, KINDS, store=store, audio=AUDIO, progress=False)
    fresh = extract(ds, KINDS, store=FeatureStore(tmp_path / "fresh"), audio=AUDIO, progress=False)
    for kind in KINDS:
        np.testing.assert_array_equal(resumed[kind].clip_ids, fresh[kind].clip_ids)
        np.testing.assert_array_equal(resumed[kind].read(), fresh[kind].read())


def test_one_writer_at_a_time(urbansound_root, store):
    ds = load_dataset("urbansound8k", urbansound_root)
    request = _request(ds, "mel")
    with store.writer(ds, request):
        with pytest.raises(StoreLockedError, match="another process is writing"):
            with store.writer(ds, request):
                pass
        with pytest.raises(StoreLockedError):
            extract(ds, {"mel": KINDS["mel"]}, store=store, audio=AUDIO, progress=False)


def test_remove(urbansound_root, store):
    ds = load_dataset("urbansound8k", urbansound_root)
    fs = extract(ds, {"mel": KINDS["mel"]}, store=store, audio=AUDIO, progress=False)["mel"]
    store.remove(fs.path)
    assert not fs.path.exists() and store.entries() == []
    with pytest.raises(Exception, match="not a feature set"):
        store.remove(urbansound_root / "metadata" / "UrbanSound8K.csv")


def test_parallel_readers_open_the_file_themselves(urbansound_root, store):
    from joblib import Parallel, delayed

    ds = load_dataset("urbansound8k", urbansound_root)
    fs = extract(ds, {"mel": KINDS["mel"]}, store=store, audio=AUDIO, progress=False)["mel"]
    ids = list(ds.clips["clip_id"])
    parts = Parallel(n_jobs=2)(delayed(_read)(str(fs.path), ids[i::2]) for i in range(2))
    np.testing.assert_array_equal(parts[0], fs.read(ids[0::2]))


def _read(path, ids):
    return FeatureSet(path).read(ids)


def _request(ds, kind):
    return FeatureRequest.for_dataset(ds, kind, KINDS[kind], audio=AUDIO)
