"""Feature kinds: shapes, dtypes, batch == per clip, agreement with plain librosa, parameter errors."""

import inspect
import json

import librosa
import numpy as np
import pytest
import scipy.signal

from featurestore import features
from featurestore.errors import ParameterError
from featurestore.registry import UnknownNameError
from featurestore.features import _common, mel, mfcc, mrp, raw, stacked, stft

SR = 8000
# Every registered kind, so that a new kind cannot miss the contract tests.
KINDS = features.available()
# Each kind's own small parameters (its TEST_PARAMS): milliseconds on 1 s clips at 8 kHz.
TINY = {kind: features.get(kind).TEST_PARAMS for kind in KINDS}
# Kinds computable from their parameters alone; those that read a checkpoint (FILE_PARAMS) are
# computed in tests/test_embeddings.py, from checkpoints that the tests write.
SELF_CONTAINED = [kind for kind in KINDS if not features.file_params(kind)]


@pytest.fixture
def clips():
    """Three 1 s clips at 8 kHz, float32 (3, 8000): a loud tone, a very quiet chirp, a tone with silence.

    Their levels differ by about 100 dB, so any dB floor shared across the batch would show.
    """
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    loud = np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(SR)
    quiet = 1e-5 * (np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.1 * rng.standard_normal(SR))
    gated = 0.3 * np.sin(2 * np.pi * 1000 * t) * (t < 0.4) + 1e-3 * rng.standard_normal(SR)
    return np.stack([loud, quiet, gated]).astype(np.float32)


# --------------------------------------------------------------------------- every kind
def test_registry_lists_the_six_kinds():
    assert {"mel", "mfcc", "mrp", "raw", "stacked", "stft"} <= set(features.available())
    assert "_common" not in features.available()


def test_unknown_kind_is_one_error_with_a_close_match():
    with pytest.raises(UnknownNameError, match="unknown feature kind 'mell'. Did you mean 'mel'"):
        features.get("mell")
    with pytest.raises(UnknownNameError, match="parameter of feature kind 'mel' 'n_mel'. Did you mean 'n_mels'"):
        features.resolve_params("mel", {"n_mel": 3})


@pytest.mark.parametrize("kind", KINDS)
def test_module_contract(kind):
    module = features.get(kind)
    assert isinstance(module.DESCRIPTION, str) and module.DESCRIPTION
    assert isinstance(module.VERSION, int) and module.VERSION >= 1
    json.dumps(module.DEFAULTS)  # JSON-serialisable, as the store hashes them
    assert not any(isinstance(v, tuple) for v in module.DEFAULTS.values())
    signature = inspect.signature(module.compute)
    params = signature.parameters
    assert not any(p.kind == p.VAR_KEYWORD for p in params.values()), "no **kwargs"
    assert all(params[name].kind == params[name].KEYWORD_ONLY for name in ["sr", "memo", *module.DEFAULTS])
    assert params["memo"].default is None and "memo" not in module.DEFAULTS  # not a feature parameter
    assert set(module.TEST_PARAMS) <= set(module.DEFAULTS)
    defaults = {
        name: list(p.default) if isinstance(p.default, tuple) else p.default
        for name, p in params.items()
        if p.default is not inspect.Parameter.empty and name != "memo"
    }
    assert defaults == module.DEFAULTS


@pytest.mark.parametrize("kind", SELF_CONTAINED)
@pytest.mark.parametrize("tiny", [True, False], ids=["tiny", "defaults"])
def test_batch_equals_per_clip(kind, tiny, clips):
    params = features.resolve_params(kind, TINY[kind] if tiny else None)
    batch = features.compute(kind, clips, sr=SR, **params)
    assert batch.dtype == np.float32
    assert batch.shape[0] == len(clips)
    for i, clip in enumerate(clips):
        single = features.compute(kind, clip, sr=SR, **params)
        assert single.dtype == np.float32
        assert single.shape == batch.shape[1:]
        np.testing.assert_array_equal(batch[i], single)  # bit for bit (see test_reproducible.py)
    # Any leading shape: (1, 3, n) gives (1, 3, ...).
    nested = features.compute(kind, clips[np.newaxis], sr=SR, **params)
    np.testing.assert_array_equal(nested[0], batch)


@pytest.mark.parametrize("kind", SELF_CONTAINED)
def test_shape_depends_only_on_length(kind, clips):
    params = features.resolve_params(kind, TINY[kind])
    a = features.compute(kind, clips[0], sr=SR, **params)
    b = features.compute(kind, np.zeros_like(clips[0]), sr=SR, **params)
    assert a.shape == b.shape
    assert np.isfinite(b).all()


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_parameter_is_rejected(kind):
    with pytest.raises(ParameterError, match="n_melz"):
        features.resolve_params(kind, {"n_melz": 3})


def test_unknown_kind_suggests_a_close_match():
    with pytest.raises(ParameterError, match="Did you mean 'mfcc'"):
        features.get("mfc")


@pytest.mark.parametrize(
    "kind, params, match",
    [
        ("raw", {"n_points": 0}, "n_points=0"),
        ("raw", {"n_points": 2.5}, "n_points=2.5"),
        ("stacked", {"n_points": -1}, "n_points=-1"),
        ("stft", {"n_fft": 0}, "n_fft=0"),
        ("stft", {"hop_length": 0}, "hop_length=0"),
        ("stft", {"size": [32]}, "size="),
        ("stft", {"size": 0}, "size=0"),
        ("mel", {"n_mels": 0}, "n_mels=0"),
        ("mel", {"fmin": -1.0}, "fmin=-1.0"),
        ("mel", {"fmax": 5000.0}, "fmax=5000.0"),
        ("mel", {"fmin": 3000.0, "fmax": 2000.0}, "fmin=3000.0"),
        ("mel", {"delta": "yes"}, "delta='yes'"),
        ("mfcc", {"n_mfcc": 0}, "n_mfcc=0"),
        ("mfcc", {"n_mfcc": 200}, "n_mfcc=200"),
        ("mfcc", {"deltas": 3}, "deltas=3"),
        ("mfcc", {"deltas": True}, "deltas=True"),
        ("mrp", {"size": 0}, "size=0"),
        ("mrp", {"resolutions": []}, "resolutions"),
        ("mrp", {"resolutions": [16], "size": 32}, "resolutions=\\[16\\]"),
    ],
)
def test_bad_parameter_names_itself(kind, params, match, clips):
    full = features.resolve_params(kind, params)
    with pytest.raises(ParameterError, match=match):
        features.compute(kind, clips[0], sr=SR, **full)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_is_rejected(kind):
    with pytest.raises(ParameterError, match="sr=0"):
        features.compute(kind, np.zeros(100, np.float32), sr=0)
    with pytest.raises(ParameterError, match="y of shape"):
        features.compute(kind, np.zeros((2, 0), np.float32), sr=SR)
    with pytest.raises(ParameterError, match="dtype int16"):
        features.compute(kind, np.zeros(100, np.int16), sr=SR)


# --------------------------------------------------------------------------- mel / mfcc / stft vs librosa
def _librosa_log_mel(y, **kw):
    S = librosa.feature.melspectrogram(y=y, sr=SR, **kw)
    return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80)


@pytest.mark.parametrize(
    "params",
    [{}, {"n_mels": 40, "n_fft": 512, "hop_length": 200, "fmin": 100.0, "fmax": 3500.0}],
    ids=["defaults", "custom"],
)
def test_mel_matches_plain_librosa(params, clips):
    out = mel.compute(clips, sr=SR, **params)
    p = {**mel.DEFAULTS, **params}
    kw = {k: p[k] for k in ["n_fft", "hop_length", "n_mels", "fmin", "fmax"]}
    frames = 1 + SR // p["hop_length"]
    assert out.shape == (3, 2, p["n_mels"], frames)
    for i, y in enumerate(clips):
        expected = _librosa_log_mel(y, **kw)
        np.testing.assert_allclose(out[i, 0], expected, atol=2e-3, rtol=1e-5)
        np.testing.assert_allclose(out[i, 1], librosa.feature.delta(expected), atol=2e-3, rtol=1e-5)
    # The quiet clip lies entirely below the loud clip's floor (its max - 80 dB), yet keeps its shape.
    assert out[1, 0].max() < out[0, 0].max() - 80
    assert out[1, 0].std() > 1.0


def test_mel_without_delta_and_short_clip(clips):
    assert mel.compute(clips, sr=SR, delta=False).shape == (3, 1, 60, 16)
    short = clips[:, :800]  # 0.1 s: 2 frames, fewer than delta's width of 9
    out = mel.compute(short, sr=SR)
    assert out.shape == (3, 2, 60, 2)
    assert np.isfinite(out).all()
    expected = librosa.feature.delta(out[:, 0], width=9, mode="nearest")
    np.testing.assert_allclose(out[:, 1], expected, atol=1e-4)


@pytest.mark.parametrize("deltas", [0, 1, 2])
def test_mfcc_matches_plain_librosa(deltas, clips):
    out = mfcc.compute(clips, sr=SR, deltas=deltas)
    assert out.shape == (3, 40 * (1 + deltas), 1 + SR // 512)
    for i, y in enumerate(clips):
        expected = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=40, n_fft=2048, hop_length=512, n_mels=128)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(out[i, :40], expected, atol=1e-5 * scale)
        for order in range(1, deltas + 1):
            np.testing.assert_allclose(
                out[i, 40 * order : 40 * (order + 1)],
                librosa.feature.delta(expected, order=order),
                atol=1e-5 * scale,
            )


def test_mfcc_custom_parameters(clips):
    params = {"n_mfcc": 13, "n_fft": 512, "hop_length": 256, "n_mels": 40, "fmin": 50.0, "fmax": 3000.0}
    out = mfcc.compute(clips[0], sr=SR, **params)
    expected = librosa.feature.mfcc(y=clips[0], sr=SR, **params)
    np.testing.assert_allclose(out, expected, atol=1e-5 * np.abs(expected).max())


def test_stft_matches_plain_librosa(clips):
    out = stft.compute(clips, sr=SR, n_fft=256, hop_length=100)
    assert out.shape == (3, 1, 129, 1 + SR // 100)
    for i, y in enumerate(clips):
        S = np.abs(librosa.stft(y, n_fft=256, hop_length=100)) ** 2
        expected = librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80)
        np.testing.assert_allclose(out[i, 0], expected, atol=1e-2, rtol=1e-5)  # float32 FFT: low bins differ by < 0.01 dB


def test_stft_resize(clips):
    full = stft.compute(clips, sr=SR, n_fft=256, hop_length=128)  # (3, 1, 129, 63)
    small = stft.compute(clips, sr=SR, n_fft=256, hop_length=128, size=32)
    assert small.shape == (3, 1, 32, 32)
    assert stft.compute(clips, sr=SR, size=(8, 20)).shape == (3, 1, 8, 20)
    # Area averaging keeps the mean level and stays inside the range of the full image.
    np.testing.assert_allclose(small.mean(axis=(-2, -1)), full.mean(axis=(-2, -1)), rtol=0.02)
    assert (small.max(axis=(-2, -1)) <= full.max(axis=(-2, -1)) + 1e-4).all()
    assert (small.min(axis=(-2, -1)) >= full.min(axis=(-2, -1)) - 1e-4).all()


def test_resize_image_block_means_and_interpolation():
    X = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_allclose(_common.resize_image(X, (2, 2)), [[2.5, 4.5], [10.5, 12.5]])
    # 3 -> 2 cells: each output cell covers 1.5 input cells.
    x = np.array([[0.0, 3.0, 6.0]], dtype=np.float32)
    np.testing.assert_allclose(_common.resize_image(x, (1, 2)), [[1.0, 5.0]], rtol=1e-6)
    # Growing 2 -> 4: half-pixel linear interpolation, clamped at the edges.
    x = np.array([[0.0, 4.0]], dtype=np.float32)
    np.testing.assert_allclose(_common.resize_image(x, (1, 4)), [[0.0, 1.0, 3.0, 4.0]])


# --------------------------------------------------------------------------- raw / stacked
def test_raw_copies_and_resamples_without_aliasing():
    k = np.arange(64)
    y = np.sin(2 * np.pi * 3 * k / 64).astype(np.float32)
    out = raw.compute(y, sr=SR)
    np.testing.assert_array_equal(out, y)
    assert out is not y and not np.shares_memory(out, y)
    # 3 cycles survive 64 -> 32 points; 25 cycles (above the new Nyquist of 16) are removed.
    noisy = y + np.sin(2 * np.pi * 25 * k / 64).astype(np.float32)
    expected = np.sin(2 * np.pi * 3 * np.arange(32) / 32)
    np.testing.assert_allclose(raw.compute(noisy, sr=SR, n_points=32), expected, atol=1e-5)
    assert raw.compute(np.zeros((2, 2000), np.float32), sr=SR, n_points=1024).shape == (2, 1024)


def test_stacked_folds_rows_of_consecutive_samples():
    y = np.arange(1, 11, dtype=np.float32)  # 10 samples -> 4 x 4
    out = stacked.compute(y, sr=SR)
    assert out.shape == (1, 4, 4)
    np.testing.assert_array_equal(out[0, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(out[0, 2], [9, 10, 0, 0])
    np.testing.assert_array_equal(out[0, 3], [0, 0, 0, 0])
    assert stacked.compute(np.ones(9, np.float32), sr=SR).shape == (1, 3, 3)
    assert stacked.compute(np.ones(1, np.float32), sr=SR).shape == (1, 1, 1)
    assert stacked.compute(np.ones((2, 88200), np.float32), sr=22050).shape == (2, 1, 297, 297)
    assert stacked.compute(np.ones(5000, np.float32), sr=SR, n_points=1024).shape == (1, 32, 32)


# --------------------------------------------------------------------------- mrp
def test_mrp_hand_checked_values():
    # x = [0, 1, 3, 6]: R = [[0,1,3,6],[1,0,2,5],[3,2,0,3],[6,5,3,0]], then 2 x 2 block means.
    out = mrp.compute(np.array([0, 1, 3, 6], np.float32), sr=SR, size=2, resolutions=[4])
    np.testing.assert_allclose(out, [[[0.5, 4.0], [4.0, 1.5]]])


def test_mrp_resampled_resolution_and_area_pooling():
    # cos over 8 points, resampled to 4 points, is exactly [1, 0, -1, 0].
    x = np.cos(2 * np.pi * np.arange(8) / 8).astype(np.float32)
    out = mrp.compute(x, sr=SR, size=2, resolutions=[8, 4])
    assert out.shape == (2, 2, 2)
    np.testing.assert_allclose(out[1], [[0.5, 1.0], [1.0, 0.5]], atol=1e-6)
    # Channel 0: a naive loop over 4 x 4 blocks of the 8 x 8 plot.
    R = np.abs(x[:, None] - x[None, :])
    naive = [[R[4 * i : 4 * i + 4, 4 * j : 4 * j + 4].mean() for j in range(2)] for i in range(2)]
    np.testing.assert_allclose(out[0], naive, atol=1e-6)
    # 4 points into 3 cells: weights [.75, .25, 0, 0], [0, .5, .5, 0], [0, 0, .25, .75].
    out3 = mrp.compute(x, sr=SR, size=3, resolutions=[4])
    expected = [[0.375, 1.25, 1.0], [1.25, 0.5, 0.5], [1.0, 0.5, 0.375]]
    np.testing.assert_allclose(out3[0], expected, atol=1e-6)


def test_mrp_defaults_and_chunking(clips, monkeypatch):
    out = mrp.compute(clips, sr=SR)
    assert out.shape == (3, 3, 32, 32)
    np.testing.assert_allclose(out, np.swapaxes(out, -1, -2), atol=1e-6)  # R is symmetric
    assert (out >= 0).all()
    # Tiny chunks (several per plot, one clip at a time) give the same result.
    monkeypatch.setattr(_common, "CHUNK_ELEMENTS", 3000)
    np.testing.assert_allclose(mrp.compute(clips, sr=SR), out, rtol=1e-5, atol=1e-7)


def test_mel_and_mfcc_share_the_log_mel_through_a_memo(monkeypatch):
    rng = np.random.default_rng(3)
    y = rng.standard_normal((2, 4000)).astype(np.float32)
    params = {"n_fft": 512, "hop_length": 256, "n_mels": 32}
    alone = (mel.compute(y, sr=8000, delta=False, **params), mfcc.compute(y, sr=8000, n_mfcc=13, **params))
    calls = []
    real = _common.stft_power
    monkeypatch.setattr(_common, "stft_power", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    memo = features.Memo()
    shared = (mel.compute(y, sr=8000, delta=False, memo=memo, **params),
              mfcc.compute(y, sr=8000, n_mfcc=13, memo=memo, **params))
    other = mel.compute(y, sr=8000, delta=False, n_fft=256, hop_length=256, n_mels=32, memo=memo)  # not shared
    assert len(calls) == 2 * len(y)  # one STFT per clip for mel and mfcc together, one for `other`
    np.testing.assert_array_equal(shared[0], alone[0])
    np.testing.assert_array_equal(shared[1], alone[1])
    assert other.shape[-2] == 32
    # Without a memo nothing is kept: computing again runs the STFTs again.
    calls.clear()
    mel.compute(y, sr=8000, delta=False, **params)
    mfcc.compute(y, sr=8000, n_mfcc=13, **params)
    assert len(calls) == 2 * len(y)  # mel and mfcc each compute the STFT of every clip


def test_a_memo_refuses_other_audio():
    rng = np.random.default_rng(4)
    y = rng.standard_normal((2, 4000)).astype(np.float32)
    memo = features.Memo()
    first = mel.compute(y, sr=8000, memo=memo)
    # Equal contents in another array (e.g. converted from float64) are the same audio.
    np.testing.assert_array_equal(mfcc.compute(y.astype(np.float64), sr=8000, n_mels=60, n_fft=1024, memo=memo),
                                  mfcc.compute(y, sr=8000, n_mels=60, n_fft=1024))
    with pytest.raises(ParameterError, match="memo holds results of another audio array"):
        mel.compute(y[::-1].copy(), sr=8000, memo=memo)
    assert np.array_equal(mel.compute(y, sr=8000, memo=memo), first)


def test_sparse_mel_product_equals_dense_product():
    basis = mel.mel_basis(22050, 2048, 128, 0.0, None)
    op = mel.mel_operator(22050, 2048, 128, 0.0, None)
    X = np.random.default_rng(0).random((basis.shape[1], 50), dtype=np.float32)
    out = op @ X
    assert out.dtype == np.float32 and op.nnz < 0.05 * basis.size  # banded: few stored weights
    np.testing.assert_allclose(out, basis.astype(np.float64) @ X, rtol=1e-5)


@pytest.mark.parametrize("order", [1, 2])
def test_delta_weights_are_savitzky_golay(order):
    expected = scipy.signal.savgol_coeffs(9, order, deriv=order, use="dot")
    np.testing.assert_allclose(mel.delta_weights(order), expected, rtol=1e-12, atol=1e-15)
    # The exact values: k / 60 for the first derivative, (3k^2 - 20) / 462 for the second.
    k = np.arange(-4, 5)
    np.testing.assert_array_equal(mel.delta_weights(order), k / 60 if order == 1 else (3 * k**2 - 20) / 462)
