"""Tests of the built-in demo data set (``featurestore.datasets.demo``), on a small version of it."""

import csv
import logging

import numpy as np
import pytest
import soundfile

from featurestore.datasets import demo
from featurestore.errors import ParameterError

CLIPS_PER_CLASS = 6  # the smallest sensible size: 5 sessions per class, 48 clips in all


def _read_manifest(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small demo data set: (directory, manifest rows)."""
    directory = tmp_path_factory.mktemp("demo")
    manifest = demo.generate(directory, seed=0, clips_per_class=CLIPS_PER_CLASS)
    return directory, _read_manifest(manifest)


@pytest.fixture(scope="module")
def small_again(tmp_path_factory):
    """The same data set generated again into another directory."""
    directory = tmp_path_factory.mktemp("demo_again")
    demo.generate(directory, seed=0, clips_per_class=CLIPS_PER_CLASS)
    return directory


@pytest.fixture(scope="module")
def font():
    return demo._SoundFont.load(demo.soundfont_path())


def test_manifest_columns_and_counts(small):
    directory, rows = small
    with open(directory / demo.MANIFEST_NAME, newline="", encoding="utf-8") as file:
        header = next(csv.reader(file))
    assert tuple(header) == demo.COLUMNS
    assert header[:4] == ["path", "label", "fold", "group"]
    assert len(rows) == CLIPS_PER_CLASS * len(demo.LABELS)
    assert sorted({r["label"] for r in rows}) == sorted(demo.LABELS)
    for label in demo.LABELS:
        assert sum(r["label"] == label for r in rows) == CLIPS_PER_CLASS
    assert len({r["path"] for r in rows}) == len(rows)
    for r in rows:
        assert r["path"].startswith(f"audio/{r['label']}/") and r["path"].endswith(".wav")
        assert 0 <= int(r["midi_pitch"]) <= 127 and 1 <= int(r["velocity"]) <= 127
        assert 0.3 <= float(r["duration_s"]) <= 2.0
        assert 10.0 <= float(r["snr_db"]) <= 40.0
        assert r["noise"] in demo.NOISE_KINDS


def test_files_decode_as_mono_16_bit_22050_hz_and_are_not_silent(small):
    directory, rows = small
    for r in rows:
        path = directory / r["path"]
        info = soundfile.info(path)
        assert (info.format, info.subtype, info.channels, info.samplerate) == ("WAV", "PCM_16", 1, 22050)
        y, _ = soundfile.read(path, dtype="float64")
        assert len(y) == round(float(r["duration_s"]) * demo.SAMPLE_RATE)
        assert np.all(np.isfinite(y))
        assert np.max(np.abs(y)) <= demo.PEAK_LIMIT + 1 / 32768
        assert np.sqrt(np.mean(y ** 2)) > 1e-3, r["path"]


def test_same_seed_gives_identical_files(small, small_again):
    directory, rows = small
    manifest = (directory / demo.MANIFEST_NAME).read_bytes()
    assert (small_again / demo.MANIFEST_NAME).read_bytes() == manifest
    for r in rows:
        assert (small_again / r["path"]).read_bytes() == (directory / r["path"]).read_bytes(), r["path"]


def test_another_seed_gives_other_clips_and_sf2utils_stays_quiet(small, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    rows = _read_manifest(demo.generate(tmp_path, seed=1, clips_per_class=CLIPS_PER_CLASS))
    assert not [record for record in caplog.records if "sf2utils" in record.pathname]
    directory, rows0 = small
    assert [r["path"] for r in rows] == [r["path"] for r in rows0]
    assert [r["midi_pitch"] for r in rows] != [r["midi_pitch"] for r in rows0]
    assert (tmp_path / rows[0]["path"]).read_bytes() != (directory / rows0[0]["path"]).read_bytes()


def test_every_fold_holds_every_class_and_no_group_spans_two_folds(small):
    _, rows = small
    folds = {int(r["fold"]) for r in rows}
    assert folds == set(range(1, demo.N_FOLDS + 1))
    for label in demo.LABELS:
        counts = [sum(r["label"] == label and int(r["fold"]) == f for r in rows) for f in sorted(folds)]
        assert min(counts) >= 1 and max(counts) - min(counts) <= 1, (label, counts)
    fold_of = {}
    for r in rows:
        assert fold_of.setdefault(r["group"], r["fold"]) == r["fold"], r["group"]
        assert r["group"].startswith(r["label"] + "-")


def _centroid_of_loudest_frames(y, sr):
    """Spectral centroid (Hz) of the frames within 10 dB of the loudest one."""
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, (0, 1024)), 1024)[::512] * np.hanning(1024)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = power.sum(axis=1)
    spectrum = power[energy >= energy.max() / 10].sum(axis=0)
    return float(np.sum(spectrum * np.fft.rfftfreq(1024, 1 / sr)) / np.sum(spectrum))


def test_classes_sound_different(small):
    directory, rows = small
    centroids = {label: [] for label in demo.LABELS}
    for r in rows:
        y, sr = soundfile.read(directory / r["path"], dtype="float64")
        centroids[r["label"]].append(_centroid_of_loudest_frames(y, sr))
    mean = {label: np.mean(values) for label, values in centroids.items()}
    assert mean["kick"] < mean["snare"] < mean["hihat"]
    assert mean["hihat"] > 2 * max(v for k, v in mean.items() if k != "hihat")


@pytest.mark.parametrize(("bank", "program", "key"), [
    (0, 0, 45), (0, 0, 60), (0, 0, 76),  # Piano 1
    (0, 2, 52),  # Piano 3
    (0, 24, 64),  # Nylon Guitar
    (0, 40, 69),  # Violin
    (0, 65, 61),  # Alto Sax
    (0, 73, 79),  # Flute
])
def test_rendered_note_sounds_at_the_requested_pitch(font, bank, program, key):
    import librosa

    sr = demo.SAMPLE_RATE
    tuning = 30.0  # cents
    y = font.render(bank, program, key, 100, sr, int(0.8 * sr), tuning)
    f0 = librosa.yin(y[: sr // 2].astype(np.float32), fmin=40, fmax=2500, sr=sr, frame_length=2048)
    expected = librosa.midi_to_hz(key + tuning / 100)
    error_cents = 1200 * np.log2(np.median(f0) / expected)
    assert abs(error_cents) < 25, error_cents


def test_a_failed_run_leaves_no_manifest(tmp_path, monkeypatch):
    (tmp_path / demo.MANIFEST_NAME).write_text("path,label,fold,group\n")  # from an earlier run
    calls = []

    def failing_write(path, y):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")

    monkeypatch.setattr(demo, "_write_wav", failing_write)
    with pytest.raises(OSError, match="disk full"):
        demo.generate(tmp_path, clips_per_class=5)
    assert not (tmp_path / demo.MANIFEST_NAME).exists()
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"clips_per_class": 4}, "clips_per_class=4"),
    ({"clips_per_class": 6.0}, "clips_per_class=6.0"),
    ({"seed": -1}, "seed=-1"),
    ({"seed": "0"}, "seed='0'"),
])
def test_invalid_parameters_raise(tmp_path, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        demo.generate(tmp_path, **kwargs)
    assert not (tmp_path / demo.MANIFEST_NAME).exists()
