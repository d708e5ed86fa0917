"""Decoding real files of each format, resampling, fixed lengths, normalisation and bad files."""

import math
import re

import librosa
import numpy as np
import pytest
import soundfile as sf

from featurestore import audio
from featurestore.errors import AudioError, ParameterError

SR = 8000


@pytest.fixture
def signal():
    """0.25 s of stereo at 8 kHz, float32 (2000, 2): a different tone in each channel, peak 0.5."""
    rng = np.random.default_rng(0)
    t = np.arange(SR // 4) / SR
    left = 0.5 * np.sin(2 * np.pi * 440 * t + rng.uniform(0, 6))
    right = 0.25 * np.sin(2 * np.pi * 660 * t) + 0.01 * rng.standard_normal(len(t))
    return np.stack([left, right], axis=1).astype(np.float32)


# (format, subtype, extension, channels, absolute tolerance of the decoded samples)
FORMATS = [
    ("WAV", "PCM_16", "wav", 1, 2.0**-15),
    ("FLAC", "PCM_16", "flac", 1, 2.0**-15),
    ("WAV", "PCM_24", "wav", 2, 2.0**-23),
    ("WAV", "PCM_U8", "wav", 1, 2.0**-7),
    ("WAV", "FLOAT", "wav", 2, 0.0),
    ("AIFF", "PCM_16", "aiff", 2, 2.0**-15),
    ("OGG", "VORBIS", "ogg", 1, None),  # lossy: compared by error energy below
]


@pytest.mark.parametrize(
    "fmt, subtype, ext, channels, atol", FORMATS, ids=[f"{f[0]}-{f[1]}" for f in FORMATS]
)
def test_decode_formats(tmp_path, signal, fmt, subtype, ext, channels, atol):
    path = tmp_path / f"clip.{ext}"
    data = signal[:, :channels]
    sf.write(path, data, SR, format=fmt, subtype=subtype)
    y, sr = audio.decode(path)
    assert sr == SR
    assert y.dtype == np.float32 and y.shape == (len(signal),)
    expected = data.mean(axis=1)
    if atol is None:
        residual = np.sqrt(np.mean((y - expected) ** 2)) / np.sqrt(np.mean(expected**2))
        assert residual < 0.2
    else:
        np.testing.assert_allclose(y, expected, rtol=0, atol=atol * 1.01)
    # Exactly what librosa.load gives, natively and resampled to 22,050 Hz.
    np.testing.assert_array_equal(y, librosa.load(path, sr=None)[0])
    clip = audio.load_clip(path, sr=22050, duration=None)
    np.testing.assert_allclose(clip, librosa.load(path, sr=22050)[0], rtol=0, atol=1e-7)
    assert clip.dtype == np.float32 and len(clip) == math.ceil(len(signal) * 22050 / SR)


def test_stereo_is_the_mean_of_the_channels(tmp_path):
    left = np.full(100, 0.5, np.float32)
    right = np.full(100, -0.25, np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="PCM_16")
    y, _ = audio.decode(path)
    np.testing.assert_array_equal(y, np.full(100, 0.125, np.float32))
    # Three channels too.
    path3 = tmp_path / "three.flac"
    sf.write(path3, np.stack([left, right, np.zeros(100, np.float32)], axis=1), SR, subtype="PCM_24")
    np.testing.assert_allclose(audio.decode(path3)[0], 0.25 / 3, rtol=1e-6)


def test_resample(signal):
    y = np.ascontiguousarray(signal[:, 0])
    assert audio.resample(y, SR, SR) is y
    up = audio.resample(y, SR, 22050)
    assert up.dtype == np.float32 and len(up) == math.ceil(len(y) * 22050 / SR)
    np.testing.assert_array_equal(up, librosa.resample(y, orig_sr=SR, target_sr=22050))
    down = audio.resample(up, 22050, SR)
    assert len(down) == math.ceil(len(up) * SR / 22050) == len(y) + 1
    np.testing.assert_allclose(down[100:-101], y[100:-100], atol=1e-2)  # round trip of a 440 Hz tone
    with pytest.raises(ParameterError, match="target_sr=0"):
        audio.resample(y, SR, 0)


# --------------------------------------------------------------------------- fix_length
def test_fix_length_zero_loop_and_trim():
    y = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(audio.fix_length(y, 5), [1, 2, 3, 0, 0])
    np.testing.assert_array_equal(audio.fix_length(y, 7, pad_mode="loop"), [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(audio.fix_length(y, 2, pad_mode="loop"), [1, 2])
    np.testing.assert_array_equal(audio.fix_length(y, 2), [1, 2])
    assert audio.fix_length(y, 3) is y
    batch = np.array([[1, 2], [3, 4]], np.float32)
    looped = audio.fix_length(batch, 5, pad_mode="loop")
    np.testing.assert_array_equal(looped, [[1, 2, 1, 2, 1], [3, 4, 3, 4, 3]])
    assert audio.fix_length(y, 5).dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_samples": 0}, "n_samples=0"), ({"n_samples": 2.5}, "n_samples=2.5"),
     ({"n_samples": 4, "pad_mode": "reflect"}, "pad_mode='reflect'")],
)
def test_fix_length_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        audio.fix_length(np.ones(3, np.float32), **kwargs)


# --------------------------------------------------------------------------- load_clip
def test_load_clip_pads_trims_and_normalises(tmp_path, signal):
    path = tmp_path / "clip.wav"
    sf.write(path, signal, SR, subtype="FLOAT")
    mono = signal.mean(axis=1)

    padded = audio.load_clip(path, sr=SR, duration=0.5)
    assert padded.shape == (4000,) and padded.dtype == np.float32
    np.testing.assert_allclose(padded[:2000], mono, atol=1e-7)
    assert not padded[2000:].any()

    looped = audio.load_clip(path, sr=SR, duration=0.5, pad_mode="loop")
    np.testing.assert_allclose(looped[2000:], mono, atol=1e-7)

    trimmed = audio.load_clip(path, sr=SR, duration=0.1)
    np.testing.assert_allclose(trimmed, mono[:800], atol=1e-7)

    normalised = audio.load_clip(path, sr=SR, duration=None, normalize=True)
    assert np.abs(normalised).max() == pytest.approx(1.0, abs=1e-7)
    np.testing.assert_allclose(normalised, mono / np.abs(mono).max(), atol=1e-6)

    resampled = audio.load_clip(path)  # defaults: 22,050 Hz, 4 s
    assert resampled.shape == (88200,)


def test_load_clip_of_silence_stays_silent_when_normalised(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(1000, np.float32), SR, subtype="PCM_16")
    y = audio.load_clip(path, sr=SR, duration=0.2, normalize=True)
    assert y.shape == (1600,) and np.isfinite(y).all() and not y.any()


@pytest.mark.parametrize(
    "params, match",
    [({"sr": 0}, "sr=0"), ({"sr": 22050.5}, "sr=22050.5"), ({"duration": -1.0}, "duration=-1.0"),
     ({"duration": 1e-9}, "duration=1e-09"), ({"pad_mode": "edge"}, "pad_mode='edge'"),
     ({"normalize": "no"}, "normalize='no'"), ({"rate": 8000}, "unknown audio parameter 'rate'")],
)
def test_bad_audio_parameters(tmp_path, params, match):
    with pytest.raises(ParameterError, match=match):
        audio.check_audio_params(**params)
    if "rate" not in params:
        path = tmp_path / "x.wav"
        sf.write(path, np.zeros(100, np.float32), SR)
        with pytest.raises(ParameterError, match=match):
            audio.load_clip(path, **params)


def test_check_audio_params_returns_the_full_set():
    assert audio.check_audio_params() == audio.AUDIO_DEFAULTS
    assert audio.check_audio_params(sr=16000, duration=None)["sr"] == 16000
    assert audio.AUDIO_DEFAULTS == {"sr": 22050, "duration": 4.0, "pad_mode": "zero", "normalize": False}


# --------------------------------------------------------------------------- bad files
def _corrupt(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _empty(path):
    sf.write(path, np.zeros(0, np.float32), SR, subtype="PCM_16")


def _nan(path):
    y = np.zeros(100, np.float32)
    y[50] = np.nan
    sf.write(path, y, SR, subtype="FLOAT")


def _inf(path):
    y = np.zeros((100, 2), np.float32)
    y[10, 1] = np.inf
    sf.write(path, y, SR, subtype="DOUBLE")


def _text(path):
    path.write_text("label,file\ndog,1.wav\n")


@pytest.mark.parametrize(
    "name, make, problem",
    [("corrupt.wav", _corrupt, "unreadable or unsupported audio"),
     ("empty.wav", _empty, "empty audio \\(0 frames\\)"),
     ("nan.wav", _nan, "non-finite samples"),
     ("inf.wav", _inf, "non-finite samples"),
     ("notes.txt", _text, "unreadable or unsupported audio"),
     ("missing.wav", None, "file not found")],
)
def test_bad_files_raise_audio_error(tmp_path, name, make, problem):
    path = tmp_path / name
    if make is not None:
        make(path)
    for load in (audio.decode, audio.load_clip):
        with pytest.raises(AudioError, match=re.escape(str(path)) + ": " + problem) as info:
            load(path)
        assert info.value.path == str(path)


def test_audio_error_wraps_the_libsndfile_message(tmp_path):
    path = tmp_path / "corrupt.wav"
    _corrupt(path)
    with pytest.raises(AudioError, match="Format not recognised"):
        audio.decode(path)


# --------------------------------------------------------------------------- long files
def _old_load_clip(path, *, sr, duration, pad_mode="zero"):
    """What load_clip computed before it read only the start: the whole file, resampled, then cut."""
    y, native_sr = audio.decode(path)
    return audio.fix_length(audio.resample(y, native_sr, sr), int(round(sr * duration)), pad_mode=pad_mode)


@pytest.fixture
def long_wav(tmp_path):
    """20 s of stereo 16-bit noise at 8 kHz (160,000 frames): long next to the clips read from it."""
    rng = np.random.default_rng(5)
    path = tmp_path / "long.wav"
    sf.write(path, 0.3 * rng.standard_normal((20 * SR, 2)), SR, subtype="PCM_16")
    return path


@pytest.fixture
def frames_read(monkeypatch):
    """The ``frames`` argument of every ``soundfile.SoundFile.read`` call (-1 for 'all')."""
    calls = []
    real = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        calls.append(frames)
        return real(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    return calls


@pytest.mark.parametrize("sr", [SR, 22050, 5000, 44100])
@pytest.mark.parametrize("duration", [0.25, 1.7])
def test_long_file_gives_the_same_clip_reading_only_its_start(long_wav, frames_read, sr, duration):
    expected = _old_load_clip(long_wav, sr=sr, duration=duration)
    frames_read.clear()
    clip = audio.load_clip(long_wav, sr=sr, duration=duration)
    np.testing.assert_array_equal(clip, expected)
    assert clip.flags.c_contiguous and clip.flags.owndata  # no view of a larger buffer
    covered = math.ceil(duration * SR)  # frames the clip spans in the file
    assert -1 not in frames_read and frames_read[0] == covered
    # then only the resampler's delay, in blocks of FOLLOW_UP_FRAMES
    assert sum(frames_read) <= covered + (0 if sr == SR else 2 * audio.FOLLOW_UP_FRAMES)


@pytest.mark.parametrize("pad_mode", ["zero", "loop"])
@pytest.mark.parametrize(
    "n_frames, duration, streamed",
    [(1000, 1.0, False),  # shorter than the clip
     (4000, 0.5, False),  # exactly the clip
     (4396, 0.5, False),  # at most STREAM_ABOVE times the clip: decoded whole
     (4396, 0.1, True),  # streamed; the file ends during the second read: the resampler is flushed
     (150, 0.01, True)],  # streamed; the file ends inside the resampler's delay
)
def test_short_files_give_the_same_clip_as_before(tmp_path, frames_read, pad_mode, n_frames, duration, streamed):
    path = tmp_path / "short.flac"
    sf.write(path, np.random.default_rng(1).uniform(-0.5, 0.5, n_frames), SR, subtype="PCM_24")
    expected = _old_load_clip(path, sr=22050, duration=duration, pad_mode=pad_mode)
    frames_read.clear()
    np.testing.assert_array_equal(audio.load_clip(path, sr=22050, duration=duration, pad_mode=pad_mode), expected)
    assert (-1 not in frames_read) == streamed
    if streamed:
        assert frames_read[0] == math.ceil(duration * SR)
    same_rate = _old_load_clip(path, sr=SR, duration=duration, pad_mode=pad_mode)
    np.testing.assert_array_equal(audio.load_clip(path, sr=SR, duration=duration, pad_mode=pad_mode), same_rate)


def test_soxr_stream_gives_the_same_bits_however_the_input_is_cut():
    """The property decode_start relies on: soxr's stream output does not depend on the chunks."""
    import soxr

    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, 50_000).astype(np.float32)
    whole = soxr.resample(x, 44100, 22050, quality="HQ")
    cuts = np.sort(rng.choice(np.arange(1, len(x)), size=40, replace=False))
    stream = soxr.ResampleStream(44100, 22050, 1, dtype="float32", quality="HQ")
    pieces = np.split(x, cuts)
    out = [stream.resample_chunk(p, last=i == len(pieces) - 1) for i, p in enumerate(pieces)]
    np.testing.assert_array_equal(np.concatenate(out), whole)
    # ...whereas the one-shot resampler on a truncated input changes the clip's last samples.
    clip = 22050  # 1 s
    truncated = soxr.resample(x[:44100], 44100, 22050, quality="HQ")
    assert not np.array_equal(truncated[:clip], whole[:clip])


def test_a_bad_sample_after_the_clip_is_not_read(tmp_path):
    y = np.zeros(4 * SR, np.float32)
    y[3 * SR] = np.nan  # at 3 s
    path = tmp_path / "late_nan.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    assert not audio.load_clip(path, sr=22050, duration=1.0).any()
    for load in (lambda p: audio.load_clip(p, sr=22050, duration=3.5), audio.decode,
                 lambda p: audio.load_clip(p, sr=22050, duration=1.0, normalize=True)):
        with pytest.raises(AudioError, match="non-finite samples"):
            load(path)
