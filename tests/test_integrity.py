"""The store's integrity: damaged sets are found and replaced, no debris, clean Ctrl-C, retried skips."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import featurestore.audio as audio_io
from cli import main
from featurestore import AudioError, CorruptFeatureSetError, FeatureStore, ParameterError, extract, load_dataset
from featurestore.extraction import why_unusable
from featurestore.store import FeatureSet

REPO = Path(__file__).resolve().parents[1]
AUDIO = {"sr": 8000, "duration": 0.5}
MEL = {"n_mels": 20, "n_fft": 256, "hop_length": 128}
SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--set", "mel.n_mels=20", "--set", "mel.n_fft=256",
         "--set", "mel.hop_length=128", "--no-progress"]


@pytest.fixture
def mel_set(urbansound_root, store):
    """The data set and its stored mel set (36 clips)."""
    ds = load_dataset("urbansound8k", urbansound_root)
    return ds, extract(ds, {"mel": MEL}, store=store, audio=AUDIO, progress=False)["mel"]


def count_decodes(monkeypatch):
    calls = []
    real = audio_io.load_clip
    monkeypatch.setattr(audio_io, "load_clip", lambda path, **kw: (calls.append(path), real(path, **kw))[1])
    return calls


def overwrite(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def features_region(path):
    """(byte offset, size) of the ``features`` array in the file."""
    with h5py.File(path) as f:
        return f["features"].id.get_offset(), f["features"].id.get_storage_size()


# --------------------------------------------------------------------------- damaged sets
def test_truncated_set_is_an_error_naming_it_then_replaced(mel_set, store):
    ds, fs = mel_set
    before = fs.read()
    os.truncate(fs.path, fs.path.stat().st_size // 2)
    with pytest.raises(CorruptFeatureSetError, match=rf"{fs.path.name} is damaged: .*truncated file"):
        FeatureSet(fs.path)
    (entry,) = store.entries()
    assert entry["status"] == "damaged" and "truncated" in entry["problem"] and entry["kind"] == "mel"
    assert store.verify()[0]["problem"] == entry["problem"]
    with pytest.warns(UserWarning, match=rf"{fs.path.name} is damaged .*extracting it again"):
        again = extract(ds, {"mel": MEL}, store=store, audio=AUDIO, progress=False)["mel"]
    assert again.path == fs.path and store.verify() == [{"path": str(fs.path), "problem": None}]
    np.testing.assert_array_equal(again.read(), before)  # same clips, same batches: bit for bit


def test_zeroed_rows_are_detected_and_replaced(mel_set, store):
    ds, fs = mel_set
    offset, size = features_region(fs.path)
    with open(fs.path, "rb") as f:
        f.seek(offset + size // 2)
        assert any(f.read(4096))  # real data is overwritten, not zeros by zeros
    overwrite(fs.path, offset + size // 2, bytes(4096))
    damaged = FeatureSet(fs.path)  # attributes are intact: opening works, reading does not
    with pytest.raises(CorruptFeatureSetError, match="'features' array does not match its checksum"):
        damaged.read()
    with pytest.raises(CorruptFeatureSetError, match=fs.path.name):
        damaged.verify()
    assert store.entries()[0]["status"] == "complete"  # listing reads no data; verify does
    assert "does not match" in store.verify()[0]["problem"]
    with pytest.warns(UserWarning, match="is damaged"):
        extract(ds, {"mel": MEL}, store=store, audio=AUDIO, progress=False)
    assert store.verify()[0]["problem"] is None


@pytest.mark.parametrize("target", [b'"hop_length"', b'"columns"'], ids=["attribute", "clip-table"])
def test_damaged_metadata_is_an_error(mel_set, target):
    _, fs = mel_set
    offset = fs.path.read_bytes().find(target)  # in the params attribute, in the clip table's JSON
    assert offset > 0
    overwrite(fs.path, offset, bytes(len(target)))
    with pytest.raises(CorruptFeatureSetError, match=fs.path.name):
        FeatureSet(fs.path).verify()


def test_a_set_without_checksums_is_damaged(mel_set):
    _, fs = mel_set
    with h5py.File(fs.path, "r+") as f:
        del f.attrs["checksums"]
    with pytest.raises(CorruptFeatureSetError, match="records no checksums"):
        FeatureSet(fs.path)


def test_cli_cache_list_and_verify(mel_set, store, capsys):
    _, fs = mel_set
    assert main(["cache", "verify", "--cache", str(store.root)]) == 0
    assert f"ok       {fs.path}" in capsys.readouterr().out
    offset, size = features_region(fs.path)
    overwrite(fs.path, offset + size // 3, bytes(1000))
    assert main(["cache", "verify", "--cache", str(store.root)]) == 1
    out, err = capsys.readouterr()
    assert f"damaged  {fs.path}" in out and "1 damaged" in err
    os.truncate(fs.path, 1000)
    assert main(["cache", "list", "--cache", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("damaged ") and "truncated file" in out


# --------------------------------------------------------------------------- no debris
def test_bad_settings_leave_nothing_in_the_store(urbansound_root, store, capsys):
    ds = load_dataset("urbansound8k", urbansound_root)
    with pytest.raises(ParameterError, match="n_mels=0"):
        extract(ds, {"mel": {"n_mels": 0}}, store=store, audio=AUDIO, progress=False)
    with pytest.raises(ParameterError, match="n_jobs=0"):
        extract(ds, {"mel": MEL}, store=store, audio=AUDIO, n_jobs=0, progress=False)
    with pytest.raises(ParameterError, match="batch_size=0"):
        extract(ds, {"mel": MEL}, store=store, audio=AUDIO, batch_size=0, progress=False)
    root = ["--dataset", "urbansound8k", "--root", str(urbansound_root), "--cache", str(store.root)]
    assert main(["extract", *root, "--features", "mel", "--set", "mel.fmax=-3", *SMALL]) == 2
    assert main(["extract", *root, "--features", "mel", "--n-jobs", "0", *SMALL]) == 2
    assert "fmax" in capsys.readouterr().err
    assert not store.root.exists() or not any(store.root.rglob("*"))


def test_a_run_that_stores_nothing_leaves_no_partial(urbansound_root, store):
    ds = load_dataset("urbansound8k", urbansound_root)
    victim = Path(ds.clips["path"].iloc[0])
    victim.write_bytes(b"not audio" * 10)
    with pytest.raises(AudioError, match=victim.name):  # in the first batch, alone: nothing is stored
        extract(ds, {"mel": MEL}, store=store, audio=AUDIO, batch_size=1, progress=False)
    assert store.entries() == [] and not list(store.root.rglob("*.partial"))


def test_killed_finalize_debris_is_removed_by_the_next_run(urbansound_root, store):
    ds = load_dataset("urbansound8k", urbansound_root)
    final = store.path_for(ds, _request(ds))
    final.parent.mkdir(parents=True)
    debris = final.with_name(f".{final.stem}-0123abcd.h5.tmp")  # the name finalize gives its temporary file
    other = final.with_name(f".{final.stem}-aug01234567-0123abcd.h5.tmp")  # another set's: not ours to remove
    debris.write_bytes(b"half an HDF5 file")
    other.write_bytes(b"half an HDF5 file")
    assert store.entries() == []  # never listed
    extract(ds, {"mel": MEL}, store=store, audio=AUDIO, progress=False)
    assert not debris.exists() and other.exists()


# --------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_stops_a_threaded_extraction_cleanly_then_resumes(urbansound_root, store, monkeypatch):
    log = store.root.parent / "batches.log"
    script = textwrap.dedent(f"""
        import sys, time
        import featurestore.extraction as ex
        from cli import main
        real = ex.compute_batch
        def slow(*args, **kwargs):  # a batch records its start and end
            with open({str(log)!r}, "a") as f:
                f.write("start\\n")
            time.sleep(0.3)
            try:
                return real(*args, **kwargs)
            finally:
                with open({str(log)!r}, "a") as f:
                    f.write("end\\n")
        ex.compute_batch = slow
        sys.exit(main(["extract", "--dataset", "urbansound8k", "--root", {str(urbansound_root)!r}, "--cache",
                       {str(store.root)!r}, "--features", "mel", "--n-jobs", "2", "--batch-size", "2",
                       *{SMALL!r}]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and sum(e["n_clips"] for e in store.entries()) < 6:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "terminate called" not in err and "Traceback" not in err
    starts, ends = log.read_text().count("start"), log.read_text().count("end")
    assert starts == ends  # no batch was still running when the process exited
    (partial,) = store.entries()
    kept = partial["n_clips"]
    assert partial["status"] == "partial" and 6 <= kept < 36

    ds = load_dataset("urbansound8k", urbansound_root)
    calls = count_decodes(monkeypatch)
    fs = extract(ds, {"mel": MEL}, store=store, audio=AUDIO, batch_size=2, progress=False)["mel"]
    assert len(fs) == 36 and len(calls) == 36 - kept  # the kept batches were not decoded again


# --------------------------------------------------------------------------- skipped clips
def test_unreadable_clip_is_retried_by_the_next_run(urbansound_root, store, monkeypatch):
    ds = load_dataset("urbansound8k", urbansound_root)
    identity = ds.identity  # of the files as they are now
    victim = Path(ds.clips["path"].iloc[5])
    away = victim.with_name("away.tmp")
    victim.rename(away)  # unreadable for a while (a sync, a mount); rename keeps size and mtime
    fs = extract(ds, {"mel": MEL}, store=store, audio=AUDIO, skip_bad=True, progress=False)["mel"]
    (skip,) = fs.skipped
    assert len(fs) == 35 and skip["reason_kind"] == "transient" and "No such file or directory" in skip["reason"]
    assert fs.retryable == [skip]

    calls = count_decodes(monkeypatch)
    mtime = fs.path.stat().st_mtime_ns
    still = extract(ds, {"mel": MEL}, store=store, audio=AUDIO, skip_bad=True, progress=False)["mel"]
    assert calls == [str(victim)] and len(still) == 35  # retried, failed again:
    assert still.path.stat().st_mtime_ns == mtime  # the set is kept as it was, not rewritten

    away.rename(victim)
    ds = load_dataset("urbansound8k", urbansound_root)
    assert ds.identity == identity  # the same data set: the same feature set is extended
    calls.clear()
    fixed = extract(ds, {"mel": MEL}, store=store, audio=AUDIO, skip_bad=True, progress=False)["mel"]
    assert fixed.path == fs.path and calls == [str(victim)]  # only the retried clip was decoded
    assert len(fixed) == 36 and fixed.skipped == [] and victim.stem in fixed.clip_ids
    fresh = extract(ds, {"mel": MEL}, store=FeatureStore(store.root.parent / "fresh"), audio=AUDIO,
                    progress=False)["mel"]
    np.testing.assert_array_equal(fixed.clip_ids, fresh.clip_ids)
    np.testing.assert_allclose(fixed.read(), fresh.read(), rtol=1e-5, atol=1e-5)  # other batching
    calls.clear()
    extract(ds, {"mel": MEL}, store=store, audio=AUDIO, skip_bad=True, progress=False)
    assert calls == []


def test_unusable_audio_is_skipped_for_good(urbansound_root, store, monkeypatch):
    victim = sorted((urbansound_root / "audio" / "fold3").glob("*.wav"))[0]
    victim.write_bytes(b"not audio" * 10)
    ds = load_dataset("urbansound8k", urbansound_root)
    fs = extract(ds, {"mel": MEL}, store=store, audio=AUDIO, skip_bad=True, progress=False)["mel"]
    assert fs.skipped[0]["reason_kind"] == "permanent" and fs.retryable == []
    calls = count_decodes(monkeypatch)
    assert len(extract(ds, {"mel": MEL}, store=store, audio=AUDIO, skip_bad=True, progress=False)["mel"]) == 35
    assert calls == []


def test_why_unusable_gives_the_operating_systems_reason(tmp_path):
    folder = tmp_path / "a.wav"
    folder.mkdir()
    reason, kind = why_unusable(AudioError(folder, "unreadable or unsupported audio (System error.)"))
    assert kind == "transient" and "Is a directory" in reason
    garbage = tmp_path / "b.wav"
    garbage.write_bytes(b"not audio")
    assert why_unusable(AudioError(garbage, "unreadable")) == ("unreadable", "permanent")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_error_names_its_reason(urbansound_root, store):
    ds = load_dataset("urbansound8k", urbansound_root)
    victim = Path(ds.clips["path"].iloc[0])
    victim.chmod(0)
    try:
        fs = extract(ds, {"mel": MEL}, store=store, audio=AUDIO, skip_bad=True, progress=False)["mel"]
    finally:
        victim.chmod(0o644)
    assert "Permission denied" in fs.skipped[0]["reason"] and fs.skipped[0]["reason_kind"] == "transient"


def _request(ds):
    from featurestore.specs import FeatureRequest

    return FeatureRequest.for_dataset(ds, "mel", MEL, audio=AUDIO)


def test_damaged_batch_of_a_partial_set_is_computed_again(urbansound_root, store):
    ds = load_dataset("urbansound8k", urbansound_root)
    ids = list(ds.clips["clip_id"])
    values = np.ones((2, 2, 20, 32), np.float32)
    with store.writer(ds, _request(ds)) as writer:
        writer.write_batch(ids[:2], values)
        writer.write_batch(ids[2:4], values)
        assert writer.done() == set(ids[:4])
    first, second = sorted(writer.partial.glob("part-*.npy"))
    overwrite(first, first.stat().st_size - 100, bytes(100))  # the end of its values
    with pytest.warns(UserWarning, match=rf"{first.name}: the batch does not match its checksum"):
        with store.writer(ds, _request(ds)) as writer:
            assert writer.done() == set(ids[2:4])
    assert not first.exists()
    second.with_suffix(".json").write_text('{"clip_ids": ["')  # a marker cut short
    assert store.entries()[0]["n_clips"] == 0  # listed, not a crash
    with pytest.warns(UserWarning, match=rf"{second.name}: unreadable batch"):
        with store.writer(ds, _request(ds)) as writer:
            assert writer.done() == set()
