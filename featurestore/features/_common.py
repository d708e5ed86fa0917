"""Helpers shared by the feature kinds: parameter checks, per-clip dB scaling, resampling, resizing.

Private (the leading underscore keeps it out of the registry); nothing here does I/O.
"""

import contextvars
import math
import numbers
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.signal

from featurestore.errors import ParameterError

#: librosa.power_to_db's defaults, used by every log-power feature (ref=1.0 contributes 0 dB).
AMIN = 1e-10
TOP_DB = 80.0

#: Elements of the temporary arrays a feature works on per chunk (1 MB of float32: cache-sized;
#: larger chunks were several times slower for the recurrence plots).
CHUNK_ELEMENTS = 1 << 18


# --------------------------------------------------------------------------- shared intermediates
_SHARED = contextvars.ContextVar("featurestore_shared_intermediates", default=None)


@contextmanager
def shared_intermediates():
    """Within this block, kinds computed from the same audio array share intermediate results.

    Extraction computes several kinds of one batch inside it, so that ``mel`` and ``mfcc`` with the
    same STFT and filterbank parameters compute the log-mel spectrogram once. Outside it nothing is
    cached and every ``compute`` stays a pure function.
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def shared(key, y, compute):
    """``compute()``, memoised on ``(key, y)`` inside :func:`shared_intermediates` (read-only result)."""
    memo = _SHARED.get()
    if memo is None:
        return compute()
    full_key = (key, id(y), y.shape, y.dtype.str)
    if full_key not in memo:
        result = compute()
        result.flags.writeable = False
        memo[full_key] = (y, result)  # holding y keeps its id from being reused
    return memo[full_key][1]


# --------------------------------------------------------------------------- parameter checks
def is_int(value):
    """True for an integer (Python or numpy), False for bools and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value):
    """True for a real number (Python or numpy), False for bools and everything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(name, value, *, minimum=1, allow_none=False):
    """Return ``value`` as an int, or raise ParameterError naming ``name`` and ``value``."""
    if value is None and allow_none:
        return None
    if not is_int(value) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if allow_none:
            what += " or None"
        raise ParameterError(f"{name}={value!r} must be {what}")
    return int(value)


def check_float(name, value, *, minimum=None, allow_none=False):
    """Return ``value`` as a finite float >= ``minimum``, or raise ParameterError."""
    if value is None and allow_none:
        return None
    if not is_real(value) or not math.isfinite(value) or (minimum is not None and value < minimum):
        what = "a finite number" if minimum is None else f"a finite number >= {minimum}"
        if allow_none:
            what += " or None"
        raise ParameterError(f"{name}={value!r} must be {what}")
    return float(value)


def check_bool(name, value):
    """Return ``value`` as a bool, or raise ParameterError (0/1 and strings are not accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name}={value!r} must be True or False")
    return bool(value)


def check_sr(sr):
    """Return the sampling rate as a float > 0, or raise ParameterError."""
    if not is_real(sr) or not math.isfinite(sr) or sr <= 0:
        raise ParameterError(f"sr={sr!r} must be a positive number")
    return sr


def check_size(name, value, *, allow_none=True):
    """An image size: None, a positive int (square) or a pair ``[height, width]``.

    Returns ``None`` or a tuple ``(height, width)`` of ints.
    """
    if value is None and allow_none:
        return None
    pair = [value, value] if is_int(value) else value
    if (
        not isinstance(pair, (list, tuple))
        or len(pair) != 2
        or not all(is_int(v) and v >= 1 for v in pair)
    ):
        raise ParameterError(
            f"{name}={value!r} must be a positive integer or a pair [height, width] of them"
            + (" or None" if allow_none else "")
        )
    return int(pair[0]), int(pair[1])


def check_fft(n_fft, hop_length):
    """Check the STFT parameters shared by stft, mel and mfcc."""
    n_fft = check_int("n_fft", n_fft, minimum=2)
    hop_length = check_int("hop_length", hop_length)
    return n_fft, hop_length


def check_mel(sr, n_mels, fmin, fmax):
    """Check the mel filterbank parameters; returns ``(n_mels, fmin, fmax)`` with fmax resolved."""
    n_mels = check_int("n_mels", n_mels)
    fmin = check_float("fmin", fmin, minimum=0.0)
    nyquist = sr / 2.0
    fmax = check_float("fmax", fmax, minimum=0.0, allow_none=True)
    if fmax is None:
        fmax = nyquist
    elif fmax > nyquist:
        raise ParameterError(f"fmax={fmax!r} must be <= sr/2={nyquist!r}")
    if fmin >= fmax:
        raise ParameterError(f"fmin={fmin!r} must be < fmax={fmax!r}")
    return n_mels, fmin, fmax


def as_audio(y):
    """``y`` as float32 of shape ``(..., n_samples)``, ``n_samples >= 1`` (no copy if possible)."""
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[-1] == 0:
        raise ParameterError(f"y of shape {y.shape} must have shape (..., n_samples) with n_samples >= 1")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"y of dtype {y.dtype} must be floating-point audio")
    return y.astype(np.float32, copy=False)


# --------------------------------------------------------------------------- signal helpers
def power_to_db(S):
    """``librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80)`` applied to each clip separately.

    Parameters
    ----------
    S : np.ndarray [shape=(..., n_bins, n_frames)], float32
        Power spectrogram(s); overwritten (the caller owns it).

    Returns
    -------
    S_db : np.ndarray [shape=(..., n_bins, n_frames)], float32
        In place: the floor ``max - top_db`` is taken over the last two axes only, so a batch gives
        the same values as its clips one at a time.
    """
    np.maximum(S, np.float32(AMIN), out=S)
    np.log10(S, out=S)
    S *= np.float32(10.0)
    floor = S.max(axis=(-2, -1), keepdims=True)
    floor -= np.float32(TOP_DB)
    np.maximum(S, floor, out=S)
    return S


def resample_points(y, n_points):
    """Band-limited (FFT) resampling of the last axis of ``y`` to exactly ``n_points`` samples.

    Same result as ``scipy.signal.resample(y, n_points, axis=-1)`` (the clip is treated as one
    period of a periodic signal). No-op (returns ``y``) when the length already matches. Each clip
    is resampled on its own, so batches agree with single clips.
    """
    return resample_many(y, [n_points])[0]


def resample_many(y, counts):
    """:func:`resample_points` of ``y`` to each of ``counts``, sharing one forward FFT.

    Returns
    -------
    resampled : list of np.ndarray [shape=(..., count)], float32
    """
    n = y.shape[-1]
    X = None
    resampled = []
    for num in counts:
        if num == n:
            resampled.append(y)
            continue
        if X is None:
            X = scipy.fft.rfft(y, axis=-1)
        m = min(num, n)
        Xr = X[..., : m // 2 + 1] * np.float32(num / n)  # a copy, scaled like scipy's 1/s_fac
        if m % 2 == 0:  # the unpaired bin at m // 2, handled as scipy.signal.resample does
            Xr[..., m // 2] *= 2.0 if num < n else 0.5
        resampled.append(scipy.fft.irfft(Xr, n=num, axis=-1).astype(np.float32, copy=False))
    return resampled


@lru_cache(maxsize=64)
def resize_matrix(n_in, n_out):
    """Matrix ``W`` [shape=(n_out, n_in)] resizing one axis: ``x_resized = W @ x``.

    Shrinking (``n_out <= n_in``) averages over the area each output cell covers (fractional at the
    borders, like OpenCV's INTER_AREA), so it is anti-aliased and each row sums to 1. Growing uses
    linear interpolation between cell centres (half-pixel convention, edges clamped). Cached and
    read-only.
    """
    W = np.zeros((n_out, n_in), dtype=np.float64)
    if n_out <= n_in:
        scale = n_in / n_out
        for i in range(n_out):
            lo, hi = i * scale, (i + 1) * scale
            j0, j1 = int(math.floor(lo)), min(int(math.ceil(hi)), n_in)
            for j in range(j0, j1):
                W[i, j] = min(hi, j + 1) - max(lo, j)
        W /= W.sum(axis=1, keepdims=True)
    else:
        centres = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        centres = np.clip(centres, 0, n_in - 1)
        left = np.floor(centres).astype(int)
        right = np.minimum(left + 1, n_in - 1)
        frac = centres - left
        rows = np.arange(n_out)
        np.add.at(W, (rows, left), 1.0 - frac)
        np.add.at(W, (rows, right), frac)
    W = W.astype(np.float32)
    W.flags.writeable = False
    return W


def resize_image(X, size):
    """Resize the last two axes of ``X`` to ``size=(height, width)`` with :func:`resize_matrix`.

    Returns ``X`` itself when it already has that size.
    """
    height, width = size
    if X.shape[-2:] == (height, width):
        return X
    Wh = resize_matrix(X.shape[-2], height)
    Ww = resize_matrix(X.shape[-1], width)
    return np.matmul(np.matmul(Wh, X), Ww.T)


# --------------------------------------------------------------------------- banded projection
class BandedMatrix:
    """A matrix whose rows have narrow, increasing supports (a mel filterbank), for fast ``X @ M.T``.

    The rows are cut into blocks of ``rows_per_block``; each block is multiplied over the columns
    its rows use only. A 128-band mel filterbank of a 2048-point FFT keeps 13 % of the dense work.

    Parameters
    ----------
    matrix : np.ndarray [shape=(n_out, n_in)]
    rows_per_block : int
    """

    def __init__(self, matrix, rows_per_block=16):
        self.shape = matrix.shape
        self.blocks = []
        for r0 in range(0, matrix.shape[0], rows_per_block):
            r1 = min(matrix.shape[0], r0 + rows_per_block)
            used = np.flatnonzero(np.any(matrix[r0:r1] != 0, axis=0))
            c0, c1 = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 0)
            self.blocks.append((r0, r1, c0, c1, np.ascontiguousarray(matrix[r0:r1, c0:c1].T, dtype=np.float32)))

    def project(self, X, out):
        """``out[:] = X @ matrix.T`` for ``X`` of shape (n, n_in) and ``out`` of shape (n, n_out)."""
        for r0, r1, c0, c1, block in self.blocks:
            if c1 > c0:
                out[:, r0:r1] = X[:, c0:c1] @ block
            else:
                out[:, r0:r1] = 0
        return out


# --------------------------------------------------------------------------- STFT
@lru_cache(maxsize=16)
def _hann(n_fft):
    window = scipy.signal.get_window("hann", n_fft, fftbins=True).astype(np.float32)  # librosa.stft's
    window.flags.writeable = False
    return window


def n_frames(n_samples, n_fft, hop_length):
    """Number of frames of ``librosa.stft(center=True)`` for a signal of ``n_samples`` samples."""
    return 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop_length


def stft_power(y, n_fft, hop_length, basis=None):
    """Power spectrogram ``|librosa.stft(y, n_fft=n_fft, hop_length=hop_length)|**2``, time-major.

    Same conventions as librosa (periodic Hann window of ``n_fft``, ``center=True`` with zero
    padding), FFT in float32, but frames are laid out time-major and processed in bounded chunks.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)], float32
    n_fft, hop_length : int > 0
    basis : np.ndarray [shape=(n_out, 1 + n_fft // 2)] or BandedMatrix, float32, optional
        If given, each power spectrum is projected on it (e.g. a mel filterbank): ``P @ basis.T``.

    Returns
    -------
    P : np.ndarray [shape=(..., n_frames, 1 + n_fft // 2 or n_out)], float32
        Note the order of the last two axes (time first).
    """
    lead, n = y.shape[:-1], y.shape[-1]
    flat = y.reshape(-1, n)
    pad = n_fft // 2
    T = n_frames(n, n_fft, hop_length)
    F = 1 + n_fft // 2
    window = _hann(n_fft)
    frames_per_chunk = max(1, CHUNK_ELEMENTS // (2 * n_fft))  # complex64 temporaries
    padded = np.zeros(n + 2 * pad, dtype=np.float32)
    if basis is None:
        out = np.empty((flat.shape[0], T, F), dtype=np.float32)
        group, power = 1, out
    else:
        # Power spectra of a group of clips (about 16 MB), then one matrix product for the group:
        # a few large products are much faster than many small ones, above all with threaded BLAS.
        out = np.empty((flat.shape[0], T, basis.shape[0]), dtype=np.float32)
        group = max(1, min(flat.shape[0], 16 * CHUNK_ELEMENTS // (T * F)))
        power = np.empty((group, T, F), dtype=np.float32)
    for g0 in range(0, flat.shape[0], group):
        g1 = min(flat.shape[0], g0 + group)
        for b in range(g0, g1):
            padded[pad : pad + n] = flat[b]
            frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
            target = power[b - g0] if basis is not None else out[b]
            for t0 in range(0, T, frames_per_chunk):
                t1 = min(T, t0 + frames_per_chunk)
                # float32 FFT (scipy keeps single precision; numpy computes in float64): several
                # times faster, and its rounding is far below the 80 dB range kept by power_to_db.
                spectrum = scipy.fft.rfft(frames[t0:t1] * window, axis=-1)
                np.square(spectrum.real, out=spectrum.real)
                np.square(spectrum.imag, out=spectrum.imag)
                np.add(spectrum.real, spectrum.imag, out=target[t0:t1])
        if basis is not None:
            target = out[g0:g1].reshape(-1, basis.shape[0])
            if isinstance(basis, BandedMatrix):
                basis.project(power[: g1 - g0].reshape(-1, F), out=target)
            else:
                np.matmul(power[: g1 - g0].reshape(-1, F), basis.T, out=target)
    return out.reshape(lead + (T, out.shape[-1]))
