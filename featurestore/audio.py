"""Decoding audio files into fixed-length mono float32 clips.

The pipeline of :func:`load_clip` is ``decode -> resample -> (peak-normalise) -> fix_length``.
Decoding and resampling reproduce ``librosa.load(path, sr=sr)`` (libsndfile via soundfile, channels
averaged, ``soxr`` high quality), so features computed from these clips agree with a plain librosa
pipeline. A clip of fixed duration is read from the start of its file only as far as it needs
(:func:`decode_start`), with the same bits as decoding and resampling the whole file.

The decoded clip is the same bit for bit on any x86-64 CPU: channels are mixed with element-wise
float32 operations, and libsoxr's high-quality (float32) resampler runs its SSE engine wherever
SSE exists, which is every x86-64 CPU (setting ``SOXR_USE_SIMD=0`` would change the bits).

Every problem with a file surfaces as :class:`~featurestore.errors.AudioError` naming the file.
"""

import math
import os

import numpy as np
import soundfile as sf
import soxr

from featurestore.errors import AudioError, ParameterError

#: Audio parameters of a feature set; the store hashes them together with the feature parameters.
AUDIO_DEFAULTS = {"sr": 22050, "duration": 4.0, "pad_mode": "zero", "normalize": False}

PAD_MODES = ("zero", "loop")

# Integer subtypes decoded by reading integers and scaling in numpy: exact (a power-of-two scale of
# integers that fit in float32's mantissa, as libsndfile's own float conversion) and much faster.
_INT_SUBTYPES = {"PCM_16": ("int16", 2.0**-15), "PCM_24": ("int32", 2.0**-31)}


def decode(path):
    """Read an audio file as mono float32 at its native sampling rate.

    Channels are averaged (as :func:`librosa.to_mono`). Reads whatever libsndfile reads: WAV, FLAC,
    AIFF, OGG/Vorbis and more, with 8/16/24/32-bit integer or float samples.

    Parameters
    ----------
    path : str or os.PathLike
        The audio file.

    Returns
    -------
    y : np.ndarray [shape=(n_samples,)], float32
        Samples in [-1, 1] for integer formats (float files are returned as stored).
    sr : int
        Native sampling rate.

    Raises
    ------
    AudioError
        If the file is missing or unreadable, its format is unrecognised or unsupported, it has no
        frames, or it contains NaN or infinite samples.
    """
    try:
        with sf.SoundFile(path) as f:
            y = _read_mono(f, -1)
            sr, subtype = f.samplerate, f.subtype
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from exc
    _check_decoded(path, y, subtype)
    return y, int(sr)


#: What soundfile raises for a missing, unreadable or unsupported file.
_READ_ERRORS = (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError)


def _unreadable(path, exc):
    """The AudioError for ``exc`` raised while opening or reading ``path``."""
    if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
        return AudioError(path, "file not found")
    problem = getattr(exc, "error_string", None) or str(exc)
    return AudioError(path, f"unreadable or unsupported audio ({problem})")


def _read_mono(f, frames):
    """The next ``frames`` frames (-1: all the rest) of the open file ``f``, as mono float32."""
    if f.subtype in _INT_SUBTYPES:
        dtype, scale = _INT_SUBTYPES[f.subtype]
        data = f.read(frames, dtype=dtype, always_2d=True)
    else:
        scale = None
        data = f.read(frames, dtype="float32", always_2d=True)
    return _mix(data, f.channels, scale)


def _check_decoded(path, y, subtype, *, first=True):
    """Raise AudioError if ``y``, decoded from the ``first`` part of a file, has no frames or non-finite samples."""
    if first and y.shape[0] == 0:
        raise AudioError(path, "empty audio (0 frames)")
    if subtype not in _INT_SUBTYPES and not np.isfinite(y).all():  # integers scaled in numpy are finite
        raise AudioError(path, "non-finite samples (NaN or inf)")


def _mix(data, channels, scale):
    """Average the channels of ``data`` [shape=(n, channels)] into float32 [shape=(n,)].

    Summing channel by channel then dividing by their number is what ``np.mean`` over the channel
    axis does, so the result equals librosa's bit for bit.
    """
    y = data[:, 0].astype(np.float32)  # a copy: never a view of ``data``
    for c in range(1, channels):
        y += data[:, c]  # exact for int16/int24 sums; float32 adds as np.mean does
    if scale is not None:
        y *= np.float32(scale)
    if channels > 1:
        y /= np.float32(channels)
    return y


def resample(y, orig_sr, target_sr):
    """Resample with soxr's high-quality filter, as ``librosa.resample(res_type="soxr_hq")``.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,) or (n_samples, n_channels)], float32
    orig_sr, target_sr : int > 0
        Sampling rates of ``y`` and of the result.

    Returns
    -------
    y_hat : np.ndarray [shape=(ceil(n_samples * target_sr / orig_sr), ...)], float32
        ``y`` itself when the rates are equal. Like librosa, the length is fixed to the ceiling
        (soxr may return one sample less; the gap is zero-padded).

    Raises
    ------
    ParameterError
        If a rate is not a positive number.
    """
    for name, rate in (("orig_sr", orig_sr), ("target_sr", target_sr)):
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)) or not rate > 0:
            raise ParameterError(f"{name}={rate!r} must be a positive number")
    if orig_sr == target_sr:
        return y
    y_hat = soxr.resample(y, orig_sr, target_sr, quality="HQ")
    return _fix_resampled_length(y_hat, _resampled_length(y.shape[0], orig_sr, target_sr))


def _resampled_length(n_samples, orig_sr, target_sr):
    return int(math.ceil(n_samples * float(target_sr) / orig_sr))


def _fix_resampled_length(y_hat, n_out):
    """``y_hat`` cut or zero-padded to ``n_out`` samples, as librosa fixes soxr's output."""
    if y_hat.shape[0] == n_out:
        return y_hat
    fixed = np.zeros((n_out,) + y_hat.shape[1:], dtype=y_hat.dtype)
    m = min(n_out, y_hat.shape[0])
    fixed[:m] = y_hat[:m]
    return fixed


def decode_start(path, *, sr, n_samples):
    """The first ``n_samples`` samples of ``resample(*decode(path), sr)``, reading only what they need.

    soxr's streaming resampler gives the same bits however its input is cut into chunks (tested in
    ``tests/test_audio.py``), and the samples it has returned are final. So the file is read from
    its start, first the frames that the clip covers (``ceil(n_samples * file_sr / sr)``), then
    blocks of :data:`FOLLOW_UP_FRAMES` until the resampler, which lags its input by its filter's
    delay, has returned ``n_samples`` samples. A truncated input given to the one-shot resampler is
    not enough: its last samples differ (up to 0.03) unless a ratio-dependent margin of 1,000 to
    4,000 frames is added, and no margin is guaranteed.

    The stream costs a third more per sample than the one-shot resampler, so a file of at most
    :data:`STREAM_ABOVE` times the frames the clip covers (such as a clip of its own length) is
    decoded and resampled whole, with the same bits.

    Parameters
    ----------
    path : str or os.PathLike
        The audio file.
    sr : int > 0
        Target sampling rate.
    n_samples : int > 0
        Samples wanted.

    Returns
    -------
    y : np.ndarray [shape=(m,)], float32
        ``m = n_samples``, or fewer when the whole file is shorter: then the whole resampled file,
        exactly as ``resample(*decode(path), sr)``.

    Raises
    ------
    AudioError
        As :func:`decode`, for the frames read (a problem after them goes unnoticed).
    """
    try:
        with sf.SoundFile(path) as f:
            file_sr, subtype = f.samplerate, f.subtype
            if file_sr == sr:
                y = _read_mono(f, n_samples)
            elif f.frames > STREAM_ABOVE * math.ceil(n_samples * file_sr / sr):
                return _resample_start(f, path, sr, n_samples)
            else:
                y = _read_mono(f, -1)
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from exc
    _check_decoded(path, y, subtype)
    y = resample(y, file_sr, sr)
    return y[:n_samples].copy() if len(y) > n_samples else y  # no view of the longer buffer


#: Frames read at a time after the first read, until the resampler has returned the clip.
FOLLOW_UP_FRAMES = 4096

#: Files longer than this many times the frames of the clip are streamed (measured break-even: 1.33).
STREAM_ABOVE = 1.5


def _resample_start(f, path, sr, n_samples):
    """Stream the open file ``f`` through soxr until ``n_samples`` samples at ``sr`` are out."""
    stream = soxr.ResampleStream(f.samplerate, sr, 1, dtype="float32", quality="HQ")
    parts, n_out, n_in = [], 0, 0
    block = max(1, math.ceil(n_samples * f.samplerate / sr))
    while n_out < n_samples:
        x = _read_mono(f, block)
        _check_decoded(path, x, f.subtype, first=n_in == 0)
        n_in += x.shape[0]
        last = x.shape[0] < block  # the end of the file: flush the resampler
        parts.append(stream.resample_chunk(x, last=last))
        n_out += parts[-1].shape[0]
        if last:
            y = np.concatenate(parts)
            return _fix_resampled_length(y, _resampled_length(n_in, f.samplerate, sr))
        block = FOLLOW_UP_FRAMES
    y = np.concatenate(parts)
    return y[:n_samples].copy() if len(y) > n_samples else y  # no view of the longer buffer


def fix_length(y, n_samples, *, pad_mode="zero"):
    """Trim or extend the last axis of ``y`` to exactly ``n_samples``.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)]
    n_samples : int > 0
        Target length.
    pad_mode : {"zero", "loop"}
        How a shorter clip is extended: zeros appended at the end, or the clip repeated from its
        start (``[a, b, c]`` to 7 samples gives ``[a, b, c, a, b, c, a]``).

    Returns
    -------
    y_fixed : np.ndarray [shape=(..., n_samples)]
        The first ``n_samples`` samples of a longer clip (a view of ``y``, no copy), ``y`` itself
        if the length already matches, else a new array.

    Raises
    ------
    ParameterError
        If ``n_samples`` is not a positive integer, ``pad_mode`` is unknown, or an empty ``y``
        would have to be looped.
    """
    if not _is_int(n_samples) or n_samples < 1:
        raise ParameterError(f"n_samples={n_samples!r} must be a positive integer")
    if pad_mode not in PAD_MODES:
        raise ParameterError(f"pad_mode={pad_mode!r} must be one of {', '.join(PAD_MODES)}")
    n = y.shape[-1]
    if n >= n_samples:
        return y if n == n_samples else y[..., :n_samples]
    if pad_mode == "zero":
        out = np.zeros(y.shape[:-1] + (n_samples,), dtype=y.dtype)
        out[..., :n] = y
        return out
    if n == 0:
        raise ParameterError("pad_mode='loop' cannot extend an empty signal")
    reps = -(-n_samples // n)
    return np.tile(y, (1,) * (y.ndim - 1) + (reps,))[..., :n_samples]


def check_audio_params(**params):
    """Validate audio parameters (any subset of :data:`AUDIO_DEFAULTS`).

    Returns
    -------
    params : dict
        :data:`AUDIO_DEFAULTS` updated with ``params``.

    Raises
    ------
    ParameterError
        For an unknown name or an invalid value, naming the parameter and the value.
    """
    unknown = sorted(set(params) - set(AUDIO_DEFAULTS))
    if unknown:
        raise ParameterError(
            f"unknown audio parameter {unknown[0]!r}. Valid: {', '.join(sorted(AUDIO_DEFAULTS))}"
        )
    merged = {**AUDIO_DEFAULTS, **params}
    sr, duration = merged["sr"], merged["duration"]
    if not _is_int(sr) or sr < 1:
        raise ParameterError(f"sr={sr!r} must be a positive integer")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, (int, float, np.number)) \
                or not math.isfinite(duration) or duration <= 0:
            raise ParameterError(f"duration={duration!r} must be a positive number of seconds or None")
        if round(sr * duration) < 1:
            raise ParameterError(f"duration={duration!r} is shorter than one sample at sr={sr}")
    if merged["pad_mode"] not in PAD_MODES:
        raise ParameterError(f"pad_mode={merged['pad_mode']!r} must be one of {', '.join(PAD_MODES)}")
    if not isinstance(merged["normalize"], (bool, np.bool_)):
        raise ParameterError(f"normalize={merged['normalize']!r} must be True or False")
    return merged


def load_clip(path, *, sr=22050, duration=4.0, pad_mode="zero", normalize=False):
    """Decode, resample, optionally peak-normalise and fix the length of one audio file.

    Parameters
    ----------
    path : str or os.PathLike
        The audio file.
    sr : int > 0
        Target sampling rate.
    duration : float > 0 or None
        Clip length in seconds: the result has ``round(sr * duration)`` samples. None keeps the
        file's (resampled) length.
    pad_mode : {"zero", "loop"}
        How shorter files are extended (see :func:`fix_length`); longer ones keep their start.
    normalize : bool
        Divide by the peak absolute sample (of the whole resampled file, before trimming) so the
        clip spans [-1, 1]; silent files are left as they are. This reads the whole file; without
        it, a clip of fixed ``duration`` reads only the start of the file that it needs
        (:func:`decode_start`: same bits, and a bad sample after the clip goes unnoticed).

    Returns
    -------
    y : np.ndarray [shape=(round(sr * duration),)], float32
        A new C-contiguous array that shares no memory with anything else.

    Raises
    ------
    AudioError
        If the file cannot be used (see :func:`decode`).
    ParameterError
        If a parameter is invalid.
    """
    check_audio_params(sr=sr, duration=duration, pad_mode=pad_mode, normalize=normalize)
    if duration is not None and not normalize:
        # Only the start of a long file is decoded and resampled (same bits, see decode_start).
        n_samples = int(round(sr * duration))
        return fix_length(decode_start(path, sr=sr, n_samples=n_samples), n_samples, pad_mode=pad_mode)
    y, native_sr = decode(path)
    y = resample(y, native_sr, sr)  # y is a fresh array either way: safe to modify in place
    if normalize:
        peak = max(y.max(), -y.min())
        if peak > 0:
            y /= peak
    if duration is not None:
        n_samples = int(round(sr * duration))
        if len(y) > n_samples:  # copy the start: a view would keep a long file's buffer alive
            return y[:n_samples].copy()
        y = fix_length(y, n_samples, pad_mode=pad_mode)
    return y


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def file_duration(path):
    """Length in seconds of the audio file at ``path``, from its header (nothing is decoded).

    Raises
    ------
    AudioError
        If the file is missing or its header is unreadable.
    """
    try:
        info = sf.info(path)
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from exc
    return info.frames / info.samplerate
