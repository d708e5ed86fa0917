"""Helpers shared by the feature kinds: parameter checks, per-clip dB scaling, resampling, resizing.

Private (the leading underscore keeps it out of the registry); nothing here does I/O.

Reproducibility
---------------
A stored feature must be a function of the audio and the parameters alone. What the kinds built on
these helpers guarantee, for the same versions of numpy, scipy and librosa:

* **Bit-identical whatever the batch** (batch size, ``n_jobs``, resume point, threads, processes,
  Dask workers): every clip is computed on its own (:func:`map_clips`) with arrays whose shapes
  depend on the clip length and the parameters only. This holds on any machine.
* **Bit-identical across x86-64 CPUs**, whatever SIMD extensions numpy and OpenBLAS pick at run
  time, with one exception below. No BLAS is used: products with banded matrices (mel filterbank,
  resizing, pooling) go through :func:`sparse_operator`, which sums in a fixed order; FFTs and DCTs
  use scipy's pocketfft, which has no run-time kernel choice; the delta filters are exact weights
  applied by :func:`scipy.ndimage.correlate1d`; the rest are element-wise IEEE operations and
  maxima, exact whatever the SIMD width. ``raw``, ``stacked`` and ``mrp`` need nothing more.
* **The exception**: transcendental functions (``log10`` in :func:`power_to_db`, and the ``log``,
  ``exp`` and ``cos`` that build the mel filterbank and the Hann window) are computed in float64
  and rounded once to float32. Implementations that differ in the last float64 bit (numpy's SVML
  code on AVX-512 CPUs versus libm elsewhere) then give the same float32 unless the two float64
  values straddle a float32 rounding boundary: roughly one value in 10**8 or fewer, by one unit in
  the last place (none in 2.84 million measured; ``tests/test_reproducible.py`` forces other
  kernels). This concerns ``stft``, ``mel`` and ``mfcc``.

Across other architectures (ARM) and other library versions, results agree to float32 rounding but
are not promised bit for bit.
"""

import math
import numbers
from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.signal
import scipy.sparse

from featurestore.errors import ParameterError

#: librosa.power_to_db's defaults, used by every log-power feature (ref=1.0 contributes 0 dB).
AMIN = 1e-10
TOP_DB = 80.0

#: Elements of the temporary arrays a feature works on per chunk (1 MB of float32: cache-sized;
#: larger chunks were several times slower for the recurrence plots).
CHUNK_ELEMENTS = 1 << 18


# --------------------------------------------------------------------------- shared intermediates
class Memo:
    """Intermediate results shared by the feature kinds computed from one audio array.

    Extraction makes one per batch and passes it to every kind (``compute(y, ..., memo=memo)``), so
    that ``mel`` and ``mfcc`` with the same STFT and filterbank parameters compute the log-mel
    spectrogram once. Without a memo nothing is cached and every ``compute`` is a pure function.
    Results are keyed on the kind of work and its parameters, and kept read-only.

    A memo belongs to the first array it is used with: using it with an array of other contents
    raises ParameterError rather than serving another batch's results.
    """

    def __init__(self):
        self._audio = None
        self._results = {}

    def get(self, key, y, compute):
        """``compute()`` of the audio ``y``, computed once per ``key``.

        Parameters
        ----------
        key : hashable
            The work and its parameters, e.g. ``("log_mel", sr, n_fft, ...)``.
        y : np.ndarray
            The audio the result is computed from.
        compute : callable
            Computes the result (an array) when it is not stored yet.

        Raises
        ------
        ParameterError
            If the memo was used with other audio before.
        """
        if self._audio is None:
            self._audio = y
        elif y is not self._audio and not (y.shape == self._audio.shape and np.array_equal(y, self._audio)):
            raise ParameterError(f"memo holds results of another audio array (shape {self._audio.shape}), "
                                 f"not of y of shape {y.shape}: make one Memo per batch")
        if key not in self._results:
            result = compute()
            result.flags.writeable = False
            self._results[key] = result
        return self._results[key]


def memoised(memo, key, y, compute):
    """``memo.get(key, y, compute)``, or just ``compute()`` without a memo (``memo=None``)."""
    return compute() if memo is None else memo.get(key, y, compute)


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


# --------------------------------------------------------------------------- one clip at a time
def map_clips(y, compute_one, shape):
    """Apply ``compute_one`` to each clip of ``y`` and stack the results.

    This is what makes a feature a function of its clip alone: every clip goes through the same
    operations on arrays of the same shapes whatever the batch, so matrix products and FFTs (whose
    kernels and summation orders may follow the shapes) give the same bits for a batch of 64 as
    for one clip.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)], float32
    compute_one : callable
        Maps one clip [shape=(n_samples,)] to an array of ``shape``.
    shape : tuple of int
        Shape of one clip's feature.

    Returns
    -------
    out : np.ndarray [shape=(..., *shape)], float32
    """
    lead = y.shape[:-1]
    flat = y.reshape(-1, y.shape[-1])
    out = np.empty((flat.shape[0],) + tuple(shape), dtype=np.float32)
    for b, clip in enumerate(flat):
        out[b] = compute_one(clip)
    return out.reshape(lead + tuple(shape))


# --------------------------------------------------------------------------- signal helpers
def power_to_db(S):
    """``librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80)`` of one clip, rounded once.

    ``10 * log10`` is computed in float64 and rounded to float32: numpy's float32 ``log10`` uses
    other code on CPUs with AVX-512 (SVML) than on older ones, and the two differ in the last bit
    for half the values of a power spectrogram (1.41 million of 2.84 million measured). Float64
    results of the two agreed on all 2.84 million values once rounded to float32; they can differ
    only where they straddle a float32 rounding boundary (roughly one value in 10**8 or fewer).

    Parameters
    ----------
    S : np.ndarray [shape=(n_bins, n_frames)], float32
        Power spectrogram of one clip.

    Returns
    -------
    S_db : np.ndarray [shape=(n_bins, n_frames)], float32
        Floored at its maximum minus 80 dB.
    """
    S_db = np.maximum(S, np.float32(AMIN), dtype=np.float64)  # librosa's float32 amin
    np.log10(S_db, out=S_db)
    S_db *= 10.0
    S_db = S_db.astype(np.float32)
    np.maximum(S_db, S_db.max() - np.float32(TOP_DB), out=S_db)
    return S_db


def resample_points(y, n_points):
    """Band-limited (FFT) resampling of one clip to exactly ``n_points`` samples.

    Same result as ``scipy.signal.resample(y, n_points)`` (the clip is treated as one period of a
    periodic signal). No-op (returns ``y``) when the length already matches.
    """
    return resample_many(y, [n_points])[0]


def resample_many(y, counts):
    """:func:`resample_points` of one clip ``y`` [shape=(n,)] to each of ``counts``, sharing one FFT.

    Returns
    -------
    resampled : list of np.ndarray [shape=(count,)], float32
    """
    n = y.shape[-1]
    X = None
    resampled = []
    for num in counts:
        if num == n:
            resampled.append(y)
            continue
        if X is None:
            X = scipy.fft.rfft(y)
        m = min(num, n)
        Xr = X[: m // 2 + 1] * np.float32(num / n)  # a copy, scaled like scipy's 1/s_fac
        if m % 2 == 0:  # the unpaired bin at m // 2, handled as scipy.signal.resample does
            Xr[m // 2] *= 2.0 if num < n else 0.5
        resampled.append(scipy.fft.irfft(Xr, n=num).astype(np.float32, copy=False))
    return resampled


# --------------------------------------------------------------------------- sparse projections
def sparse_operator(matrix):
    """``matrix`` as a read-only float32 CSR array, for products in a fixed summation order.

    ``csr @ X`` (scipy's sparsetools) adds each output's terms in the order of the stored
    columns, with no BLAS and no run-time choice of kernel, so its bits depend on neither the
    shape of ``X`` nor the CPU. The matrices used here (mel filterbanks, area-pooling weights) are
    banded, so it also skips the zeros a dense product would multiply.

    Parameters
    ----------
    matrix : np.ndarray [shape=(n_out, n_in)]

    Returns
    -------
    op : scipy.sparse.csr_array [shape=(n_out, n_in)], float32
    """
    op = scipy.sparse.csr_array(np.asarray(matrix, dtype=np.float32))
    for part in (op.data, op.indices, op.indptr):
        part.flags.writeable = False
    return op


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


@lru_cache(maxsize=64)
def resize_operator(n_in, n_out):
    """:func:`resize_matrix` as a :func:`sparse_operator` (CSR, cached)."""
    return sparse_operator(resize_matrix(n_in, n_out))


def resize_image(X, size):
    """Resize an image ``X`` [shape=(n_rows, n_cols)] to ``size=(height, width)`` with :func:`resize_matrix`.

    Both products go through :func:`sparse_operator`, so the bits do not depend on the CPU.
    Returns ``X`` itself when it already has that size.
    """
    height, width = size
    if X.shape == (height, width):
        return X
    rows_resized = resize_operator(X.shape[0], height) @ X  # (height, n_cols)
    return (resize_operator(X.shape[1], width) @ rows_resized.T).T  # (height, width)


# --------------------------------------------------------------------------- STFT
@lru_cache(maxsize=16)
def _hann(n_fft):
    window = scipy.signal.get_window("hann", n_fft, fftbins=True).astype(np.float32)  # librosa.stft's
    window.flags.writeable = False
    return window


def n_frames(n_samples, n_fft, hop_length):
    """Number of frames of ``librosa.stft(center=True)`` for a signal of ``n_samples`` samples."""
    return 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop_length


def stft_power(y, n_fft, hop_length):
    """Power spectrogram ``|librosa.stft(y, n_fft=n_fft, hop_length=hop_length)|**2`` of one clip.

    Same conventions as librosa (periodic Hann window of ``n_fft``, ``center=True`` with zero
    padding), FFT in float32, transformed in chunks of a fixed number of frames (so memory is
    bounded and the bits depend on the clip alone).

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)], float32
    n_fft, hop_length : int > 0

    Returns
    -------
    P : np.ndarray [shape=(1 + n_fft // 2, n_frames)], float32
    """
    n = y.shape[-1]
    pad = n_fft // 2
    T = n_frames(n, n_fft, hop_length)
    window = _hann(n_fft)[:, np.newaxis]
    # Chunks of 4 MB of windowed frames: the transform along axis 0 gathers strided columns, and
    # chunks 4 times larger than CHUNK_ELEMENTS made it 10 % faster (a 4 s clip is one chunk).
    frames_per_chunk = max(1, 4 * CHUNK_ELEMENTS // n_fft)
    padded = np.zeros(n + 2 * pad, dtype=np.float32)
    padded[pad : pad + n] = y
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length].T  # (n_fft, T), a view
    P = np.empty((1 + n_fft // 2, T), dtype=np.float32)
    for t0 in range(0, T, frames_per_chunk):
        t1 = min(T, t0 + frames_per_chunk)
        # Transforming along axis 0 gives the frequency-major layout that the sparse mel product
        # and the features want, without a transposed copy. float32 FFT (scipy keeps single
        # precision; numpy computes in float64): several times faster, and its rounding is far
        # below the 80 dB range kept by power_to_db. pocketfft has no run-time kernel choice.
        spectrum = scipy.fft.rfft(frames[:, t0:t1] * window, axis=0)
        np.square(spectrum.real, out=spectrum.real)
        np.square(spectrum.imag, out=spectrum.imag)
        np.add(spectrum.real, spectrum.imag, out=P[:, t0:t1])
    return P
