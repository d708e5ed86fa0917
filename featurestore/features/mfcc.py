"""Mel-frequency cepstral coefficients, optionally with their first and second deltas.

For each clip, exactly ``librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft,
hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax)``: the log-mel spectrogram of ``mel``
(``power_to_db`` with ``ref=1.0, amin=1e-10, top_db=80``, the floor taken per clip) followed by an
orthonormal DCT-II over the mel axis, keeping the first ``n_mfcc`` coefficients. With ``deltas=1``
the first-order delta (``librosa.feature.delta``, width 9) is appended along the coefficient axis,
with ``deltas=2`` also the second-order one; clips shorter than 9 frames use ``mode='nearest'``
for the deltas (see ``mel``). The DCT is computed in float64 from the float32 log-mel spectrogram
and rounded once; like ``mel``, the bits depend on neither the batch nor the CPU.

Output: float32 of shape ``(..., n_mfcc * (1 + deltas), T)`` with
``T = 1 + n_samples // hop_length`` (even ``n_fft``). For 4 s at 22,050 Hz and the defaults:
``(40, 173)``.
"""

import numpy as np
import scipy.fft

from featurestore.errors import ParameterError
from featurestore.features import _common
from featurestore.features import mel as _mel

DEFAULTS = {
    "n_mfcc": 40,
    "n_fft": 2048,
    "hop_length": 512,
    "n_mels": 128,
    "fmin": 0.0,
    "fmax": None,
    "deltas": 0,
}
DESCRIPTION = "MFCCs as librosa.feature.mfcc (per-clip 80 dB range), optionally with deltas"
VERSION = 2  # 2: bit-identical whatever the batch and the CPU (see _common)
#: Small parameters for the tests: milliseconds on 1 s clips at 8 kHz.
TEST_PARAMS = {"n_mfcc": 13, "n_fft": 256, "hop_length": 128, "n_mels": 26, "deltas": 2}


def cepstrum(M, n_mfcc):
    """The first ``n_mfcc`` coefficients of the orthonormal DCT-II over the mel axis of one clip.

    ``scipy.fft.dct(M, type=2, norm='ortho', axis=0)[:n_mfcc]`` (as ``librosa.feature.mfcc``),
    computed in float64 and rounded once to float32: pocketfft has no run-time kernel choice, so
    the bits depend on neither the batch nor the CPU.

    Parameters
    ----------
    M : np.ndarray [shape=(n_mels, T)], float32
        Log-mel spectrogram in dB.

    Returns
    -------
    C : np.ndarray [shape=(n_mfcc, T)], float32
    """
    C = scipy.fft.dct(M.astype(np.float64), type=2, norm="ortho", axis=0)
    return C[:n_mfcc].astype(np.float32)


def compute(
    y, *, sr, n_mfcc=40, n_fft=2048, hop_length=512, n_mels=128, fmin=0.0, fmax=None, deltas=0, memo=None
):
    """MFCCs (and optionally their deltas) of each clip.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)], floating
        One clip or a batch of equal-length clips.
    sr : number > 0
        Sampling rate of ``y``.
    n_mfcc : int > 0
        Number of coefficients, at most ``n_mels``.
    n_fft : int >= 2
        FFT length and window length.
    hop_length : int > 0
        Samples between frames.
    n_mels : int > 0
        Number of mel bands.
    fmin : float >= 0
        Lowest frequency (Hz) of the filterbank.
    fmax : float or None
        Highest frequency (Hz), at most ``sr / 2``; None means ``sr / 2``.
    deltas : {0, 1, 2}
        Highest order of deltas appended after the coefficients.
    memo : Memo or None
        Intermediate results shared with the other kinds computed from this ``y`` (extraction
        passes one per batch; see :class:`~featurestore.features.Memo`); None computes everything.

    Returns
    -------
    M : np.ndarray [shape=(..., n_mfcc * (1 + deltas), T)], float32
        Rows ``[0, n_mfcc)`` are the MFCCs, then the first deltas, then the second deltas.

    Raises
    ------
    ParameterError
        If a parameter is out of range, naming it and its value.
    """
    sr = _common.check_sr(sr)
    n_mfcc = _common.check_int("n_mfcc", n_mfcc)
    n_fft, hop_length = _common.check_fft(n_fft, hop_length)
    n_mels, fmin, fmax = _common.check_mel(sr, n_mels, fmin, fmax)
    if n_mfcc > n_mels:
        raise ParameterError(f"n_mfcc={n_mfcc!r} must be <= n_mels={n_mels!r}")
    if not _common.is_int(deltas) or deltas not in (0, 1, 2):
        raise ParameterError(f"deltas={deltas!r} must be 0, 1 or 2")
    deltas = int(deltas)
    y = _common.as_audio(y)
    M = _mel.log_mel(y, sr, n_fft, hop_length, n_mels, fmin, fmax, memo)  # (..., n_mels, T)
    lead, T = M.shape[:-2], M.shape[-1]
    out = np.empty(lead + ((1 + deltas) * n_mfcc, T), dtype=np.float32)
    for clip_out, clip_mel in zip(out.reshape(-1, (1 + deltas) * n_mfcc, T), M.reshape(-1, n_mels, T)):
        clip_out[:n_mfcc] = cepstrum(clip_mel, n_mfcc)
        for order in range(1, deltas + 1):
            clip_out[order * n_mfcc : (order + 1) * n_mfcc] = _mel.time_delta(clip_out[:n_mfcc], order=order)
    return out
