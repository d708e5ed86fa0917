"""Log-mel spectrogram with an optional delta channel (Piczak 2015's input).

For each clip::

    M = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length,
                                       n_mels=n_mels, fmin=fmin, fmax=fmax),
        ref=1.0, amin=1e-10, top_db=80)

i.e. librosa's conventions: periodic Hann window, ``center=True`` with zero padding, power 2,
Slaney mel scale and Slaney area normalisation (``htk=False, norm='slaney'``). The 80 dB floor is
taken per clip. With ``delta=True`` a
second channel holds ``librosa.feature.delta(M)`` (Savitzky-Golay first derivative over 9 frames,
``mode='interp'``); clips with fewer than 9 frames use ``mode='nearest'`` instead, which librosa
accepts for any length.

Reproducibility: each clip is computed on its own, so a batch gives its clips' values bit for bit,
and the bits do not depend on the CPU's BLAS or SIMD kernels (see
:mod:`featurestore.features._common` for the exact guarantee). The mel projection is a sparse
product summed in float32 in a fixed order, ``10 * log10`` is taken in float64 and rounded once,
and the delta weights are exact; values agree with librosa's to float32 rounding (a few 1e-5 dB).

Output: float32 of shape ``(..., C, n_mels, T)`` with ``C = 2`` if ``delta`` else 1 and
``T = 1 + n_samples // hop_length`` (even ``n_fft``). For 4 s at 22,050 Hz and the defaults:
``(2, 60, 173)``.

References
----------
K. J. Piczak, "Environmental sound classification with convolutional neural networks", MLSP 2015
(60 mel bands, 1024-point frames with a hop of 512, log-mel plus delta channels).
"""

import math
from fractions import Fraction
from functools import lru_cache

import librosa
import numpy as np
import scipy.ndimage

from featurestore.features import _common

DEFAULTS = {
    "n_mels": 60,
    "n_fft": 1024,
    "hop_length": 512,
    "fmin": 0.0,
    "fmax": None,
    "delta": True,
}
DESCRIPTION = "Log-mel spectrogram in dB (80 dB range per clip), with a delta channel by default"
VERSION = 2  # 2: bit-identical whatever the batch and the CPU (see _common)
#: Small parameters for the tests: milliseconds on 1 s clips at 8 kHz.
TEST_PARAMS = {"n_mels": 20, "n_fft": 256, "hop_length": 128}

DELTA_WIDTH = 9  # librosa.feature.delta's default


@lru_cache(maxsize=32)
def mel_basis(sr, n_fft, n_mels, fmin, fmax):
    """``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)``, cached.

    Returns
    -------
    basis : np.ndarray [shape=(n_mels, 1 + n_fft // 2)], float32, read-only
    """
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    basis.flags.writeable = False
    return basis


@lru_cache(maxsize=32)
def mel_operator(sr, n_fft, n_mels, fmin, fmax):
    """:func:`mel_basis` as a sparse operator (fixed summation order, 2 % of the dense work), cached."""
    return _common.sparse_operator(mel_basis(sr, n_fft, n_mels, fmin, fmax))


def log_mel(y, sr, n_fft, hop_length, n_mels, fmin, fmax, memo=None):
    """Per-clip log-mel power of checked parameters, shared through ``memo`` by mel and mfcc.

    Returns
    -------
    M : np.ndarray [shape=(..., n_mels, T)], float32, read-only when it comes from ``memo``
    """
    op = mel_operator(sr, n_fft, n_mels, fmin, fmax)

    def one_clip(clip):
        power = _common.stft_power(clip, n_fft, hop_length)  # (1 + n_fft // 2, T)
        return _common.power_to_db(op @ power)  # (n_mels, T)

    def compute_log_mel():
        T = _common.n_frames(y.shape[-1], n_fft, hop_length)
        return _common.map_clips(y, one_clip, (n_mels, T))

    return _common.memoised(memo, ("log_mel", sr, n_fft, hop_length, n_mels, fmin, fmax), y, compute_log_mel)


@lru_cache(maxsize=8)
def delta_weights(order, width=DELTA_WIDTH):
    """Savitzky-Golay weights of the ``order``-th derivative of a degree-``order`` polynomial fit.

    ``D[t] = sum_k w[k] * X[t + k - width // 2]`` is ``librosa.feature.delta``'s (that is
    ``scipy.signal.savgol_coeffs(width, order, deriv=order, use="dot")``) away from the edges.
    Computed exactly with fractions and rounded once: scipy solves a least-squares problem with
    LAPACK, whose last bits follow the CPU's BLAS kernel. With ``order`` equal to the degree, the
    derivative is ``order!`` times the fit's leading coefficient, which is the projection on the
    monic discrete orthogonal (Gram) polynomial of degree ``order``.

    Returns
    -------
    w : np.ndarray [shape=(width,)], float64, read-only
    """
    half = width // 2
    ks = range(-half, half + 1)
    basis = []  # monic orthogonal polynomials on ks, as their values
    for degree in range(order + 1):
        p = [Fraction(k) ** degree for k in ks]
        for q in basis:
            p = [pi - qi * _dot(p, q) / _dot(q, q) for pi, qi in zip(p, q)]
        basis.append(p)
    p = basis[-1]
    w = np.array([float(math.factorial(order) * pi / _dot(p, p)) for pi in p])
    w.flags.writeable = False
    return w


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def time_delta(X, *, order=1):
    """``librosa.feature.delta(X, order=order)`` along the last axis of one clip's ``X``, any length.

    With at least 9 frames, librosa's default ``mode='interp'``: there the edge frames take the
    derivative of a polynomial fitted to the first (last) 9 frames, which for a derivative of the
    fit's own degree is constant, i.e. the value at the first (last) full window. Shorter inputs
    use ``mode='nearest'`` (edge frames repeated). Sums in float64 in a fixed order
    (:func:`scipy.ndimage.correlate1d`), rounded to float32.

    Parameters
    ----------
    X : np.ndarray [shape=(n_rows, T)], float32

    Returns
    -------
    D : np.ndarray [shape=(n_rows, T)], float32
    """
    weights = delta_weights(order)
    half = DELTA_WIDTH // 2
    if X.shape[-1] < DELTA_WIDTH:
        return scipy.ndimage.correlate1d(X, weights, axis=-1, mode="nearest")
    D = scipy.ndimage.correlate1d(X, weights, axis=-1, mode="constant")
    D[..., :half] = D[..., half : half + 1]
    D[..., -half:] = D[..., -half - 1 : -half]
    return D


def compute(y, *, sr, n_mels=60, n_fft=1024, hop_length=512, fmin=0.0, fmax=None, delta=True, memo=None):
    """Log-mel spectrogram (and its delta) of each clip.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)], floating
        One clip or a batch of equal-length clips.
    sr : number > 0
        Sampling rate of ``y``.
    n_mels : int > 0
        Number of mel bands.
    n_fft : int >= 2
        FFT length and window length.
    hop_length : int > 0
        Samples between frames.
    fmin : float >= 0
        Lowest frequency (Hz) of the filterbank.
    fmax : float or None
        Highest frequency (Hz), at most ``sr / 2``; None means ``sr / 2``.
    delta : bool
        Append the delta of the log-mel spectrogram as a second channel.
    memo : Memo or None
        Intermediate results shared with the other kinds computed from this ``y`` (extraction
        passes one per batch; see :class:`~featurestore.features.Memo`); None computes everything.

    Returns
    -------
    S : np.ndarray [shape=(..., C, n_mels, T)], float32
        ``C = 2`` if ``delta`` else 1; channel 0 is the log-mel spectrogram in dB.

    Raises
    ------
    ParameterError
        If a parameter is out of range, naming it and its value.
    """
    sr = _common.check_sr(sr)
    n_fft, hop_length = _common.check_fft(n_fft, hop_length)
    n_mels, fmin, fmax = _common.check_mel(sr, n_mels, fmin, fmax)
    with_delta = _common.check_bool("delta", delta)
    y = _common.as_audio(y)
    M = log_mel(y, sr, n_fft, hop_length, n_mels, fmin, fmax, memo)  # (..., n_mels, T)
    lead, T = M.shape[:-2], M.shape[-1]
    out = np.empty(lead + (2 if with_delta else 1, n_mels, T), dtype=np.float32)
    out[..., 0, :, :] = M
    if with_delta:
        flat = out.reshape(-1, 2, n_mels, T)
        for clip in flat:  # one clip at a time: the edge fits of mode='interp' solve per call
            clip[1] = time_delta(clip[0])
    return out
