"""Log-power STFT spectrogram, optionally resized to a small image.

``S = |librosa.stft(y, n_fft=n_fft, hop_length=hop_length)|**2`` (periodic Hann window,
``center=True`` with zero padding), in decibels as
``librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80)`` with the 80 dB floor taken per clip.
With ``size``, the dB image is then resized on both axes: area averaging where an axis shrinks
(anti-aliased, like OpenCV's INTER_AREA), linear interpolation where it grows. Each clip is
computed on its own, ``10 * log10`` in float64 rounded once and the resizing as sparse products in a
fixed order, so the bits depend on neither the batch nor the CPU (see ``_common``).

Output: float32 of shape ``(..., 1, F, T)`` with ``F = 1 + n_fft // 2`` and
``T = 1 + n_samples // hop_length`` (even ``n_fft``), or ``(..., 1, height, width)`` with ``size``.
For 4 s at 22,050 Hz and the defaults: ``(1, 513, 173)``.
"""

import numpy as np

from featurestore.features import _common

DEFAULTS = {"n_fft": 1024, "hop_length": 512, "size": None}
DESCRIPTION = "Log-power STFT spectrogram in dB (80 dB range per clip), optionally resized to size"
VERSION = 2  # 2: bit-identical whatever the batch and the CPU (see _common)
#: Small parameters for the tests: milliseconds on 1 s clips at 8 kHz.
TEST_PARAMS = {"n_fft": 256, "hop_length": 128, "size": [16, 12]}


def compute(y, *, sr, n_fft=1024, hop_length=512, size=None, memo=None):
    """Log-power spectrogram of each clip.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)], floating
        One clip or a batch of equal-length clips.
    sr : number > 0
        Sampling rate of ``y`` (checked, otherwise unused).
    n_fft : int >= 2
        FFT length and window length.
    hop_length : int > 0
        Samples between frames.
    size : int, [height, width] or None
        Resize the (frequency, time) image to this size; an int means a square. None keeps it.
    memo : Memo or None
        Accepted like every kind's; this one has no intermediate results to share.

    Returns
    -------
    S_db : np.ndarray [shape=(..., 1, F, T) or (..., 1, height, width)], float32
        dB relative to 1.0, each clip floored at its own maximum minus 80 dB.

    Raises
    ------
    ParameterError
        If a parameter is out of range, naming it and its value.
    """
    _common.check_sr(sr)
    n_fft, hop_length = _common.check_fft(n_fft, hop_length)
    size = _common.check_size("size", size)
    y = _common.as_audio(y)
    T = _common.n_frames(y.shape[-1], n_fft, hop_length)
    shape = size or (1 + n_fft // 2, T)

    def one_clip(clip):
        S = _common.power_to_db(_common.stft_power(clip, n_fft, hop_length))  # (F, T)
        return S if size is None else _common.resize_image(S, size)

    return _common.map_clips(y, one_clip, shape)[..., np.newaxis, :, :]
