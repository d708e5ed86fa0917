"""The waveform itself, optionally band-limited resampled to a fixed number of points.

``compute`` returns ``y`` (as a new float32 array) or, with ``n_points``, each clip resampled to
exactly ``n_points`` samples with FFT-based band-limited interpolation
(:func:`scipy.signal.resample`, which treats the clip as one period of a periodic signal; energy
above the new Nyquist rate is removed, so there is no aliasing). For instance, 1,024 points of a
0.25 s clip is an effective rate of 4,096 Hz. Each clip is resampled on its own with scipy's
pocketfft, so the bits depend on neither the batch nor the CPU.

Output: float32 of shape ``(..., n_samples)``, or ``(..., n_points)``.
"""

import numpy as np

from featurestore.features import _common

DEFAULTS = {"n_points": None}
DESCRIPTION = "Raw waveform, optionally band-limited resampled to n_points samples"
VERSION = 1
#: Small parameters for the tests: milliseconds on 1 s clips at 8 kHz.
TEST_PARAMS = {"n_points": 1000}


def compute(y, *, sr, n_points=None, memo=None):
    """The waveform of each clip, optionally resampled to ``n_points`` samples.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)], floating
        One clip or a batch of equal-length clips.
    sr : number > 0
        Sampling rate of ``y`` (checked, otherwise unused: the resampling is defined by point counts).
    n_points : int > 0 or None
        Number of output samples per clip; None keeps ``n_samples``.
    memo : Memo or None
        Accepted like every kind's; this one has no intermediate results to share.

    Returns
    -------
    x : np.ndarray [shape=(..., n_points or n_samples)], float32
        A new array (never a view of ``y``).

    Raises
    ------
    ParameterError
        If ``n_points`` is not a positive integer or None, or ``y`` is not floating audio.
    """
    _common.check_sr(sr)
    n_points = _common.check_int("n_points", n_points, allow_none=True)
    y = _common.as_audio(y)
    if n_points is None or n_points == y.shape[-1]:
        return np.array(y, dtype=np.float32, copy=True)
    return _common.map_clips(y, lambda clip: _common.resample_points(clip, n_points), (n_points,))
