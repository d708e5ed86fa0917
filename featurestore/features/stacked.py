"""The waveform folded into a square image ("stacked" waveform).

Each clip (optionally first band-limited resampled to ``n_points`` samples, as in ``raw``) is
zero-padded at the end to the next perfect square ``N * N`` (``N = ceil(sqrt(n))``) and reshaped
row-major: row ``r`` holds samples ``r*N`` to ``r*N + N - 1``, so neighbouring rows are consecutive
stretches of the signal and a 2-D convolution sees short-term (along a row) and longer-term (down a
column, stride ``N`` samples) structure.

Output: float32 of shape ``(..., 1, N, N)`` (one channel, for image networks). For 4 s at 22,050 Hz
(88,200 samples) ``N = 297``.
"""

import math

import numpy as np

from featurestore.features import _common

DEFAULTS = {"n_points": None}
DESCRIPTION = "Waveform zero-padded to N*N samples and folded into a 1 x N x N image"
VERSION = 1
#: Small parameters for the tests: milliseconds on 1 s clips at 8 kHz.
TEST_PARAMS = {"n_points": 1000}


def _side(n_samples):
    """Side ``N = ceil(sqrt(n_samples))`` of the square image for clips of ``n_samples`` samples."""
    return math.isqrt(n_samples - 1) + 1


def compute(y, *, sr, n_points=None, memo=None):
    """Fold each clip into a square image.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)], floating
        One clip or a batch of equal-length clips.
    sr : number > 0
        Sampling rate of ``y`` (checked, otherwise unused).
    n_points : int > 0 or None
        If given, resample each clip to this many samples first (band-limited, see ``raw``).
    memo : Memo or None
        Accepted like every kind's; this one has no intermediate results to share.

    Returns
    -------
    image : np.ndarray [shape=(..., 1, N, N)], float32
        ``N = ceil(sqrt(n))`` with ``n = n_points or n_samples``; the last ``N*N - n`` pixels are 0.

    Raises
    ------
    ParameterError
        If ``n_points`` is not a positive integer or None, or ``y`` is not floating audio.
    """
    _common.check_sr(sr)
    n_points = _common.check_int("n_points", n_points, allow_none=True)
    y = _common.as_audio(y)
    if n_points is not None:
        y = _common.map_clips(y, lambda clip: _common.resample_points(clip, n_points), (n_points,))
    n = y.shape[-1]
    N = _side(n)
    out = np.zeros(y.shape[:-1] + (N * N,), dtype=np.float32)
    out[..., :n] = y
    return out.reshape(y.shape[:-1] + (1, N, N))
