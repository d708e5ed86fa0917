"""Log-mel spectrogram with an optional delta channel (Piczak 2015's input).

For each clip::

    M = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length,
                                       n_mels=n_mels, fmin=fmin, fmax=fmax),
        ref=1.0, amin=1e-10, top_db=80)

i.e. librosa's conventions: periodic Hann window, ``center=True`` with zero padding, power 2,
Slaney mel scale and Slaney area normalisation (``htk=False, norm='slaney'``). The 80 dB floor is
taken per clip, so a batch gives the same values as its clips one at a time. With ``delta=True`` a
second channel holds ``librosa.feature.delta(M)`` (Savitzky-Golay first derivative over 9 frames,
``mode='interp'``); clips with fewer than 9 frames use ``mode='nearest'`` instead, which librosa
accepts for any length.

Output: float32 of shape ``(..., C, n_mels, T)`` with ``C = 2`` if ``delta`` else 1 and
``T = 1 + n_samples // hop_length`` (even ``n_fft``). For 4 s at 22,050 Hz and the defaults:
``(2, 60, 173)``.

References
----------
K. J. Piczak, "Environmental sound classification with convolutional neural networks", MLSP 2015
(60 mel bands, 1024-point frames with a hop of 512, log-mel plus delta channels).
"""

from functools import lru_cache

import librosa
import numpy as np

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
VERSION = 1

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
def banded_mel_basis(sr, n_fft, n_mels, fmin, fmax):
    """:func:`mel_basis` as a :class:`~featurestore.features._common.BandedMatrix` (fast projection)."""
    return _common.BandedMatrix(mel_basis(sr, n_fft, n_mels, fmin, fmax))


def log_mel(y, sr, n_fft, hop_length, n_mels, fmin, fmax):
    """Per-clip log-mel power of checked parameters, time-major.

    Returns
    -------
    M : np.ndarray [shape=(..., T, n_mels)], float32
    """
    def compute_log_mel():
        basis = banded_mel_basis(sr, n_fft, n_mels, fmin, fmax)
        return _common.power_to_db(_common.stft_power(y, n_fft, hop_length, basis=basis))

    # mel and mfcc of one batch with equal parameters share it (see _common.shared_intermediates)
    return _common.shared(("log_mel", sr, n_fft, hop_length, n_mels, fmin, fmax), y, compute_log_mel)


def time_delta(X, *, order=1):
    """``librosa.feature.delta(X, order=order)`` along the last axis, for any number of frames.

    Uses ``mode='interp'`` (librosa's default) when there are at least 9 frames, else
    ``mode='nearest'``. Each row is filtered independently, so batches agree with single clips.
    """
    mode = "interp" if X.shape[-1] >= DELTA_WIDTH else "nearest"
    return librosa.feature.delta(X, width=DELTA_WIDTH, order=order, axis=-1, mode=mode)


def compute(y, *, sr, n_mels=60, n_fft=1024, hop_length=512, fmin=0.0, fmax=None, delta=True):
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
    M = log_mel(y, sr, n_fft, hop_length, n_mels, fmin, fmax)  # (..., T, n_mels)
    lead, T = M.shape[:-2], M.shape[-2]
    out = np.empty(lead + (2 if with_delta else 1, n_mels, T), dtype=np.float32)
    out[..., 0, :, :] = np.swapaxes(M, -1, -2)
    if with_delta:
        out[..., 1, :, :] = time_delta(out[..., 0, :, :])
    return out
