"""Multiresolution recurrence plots (MRP), after Park & Lee (2015).

Definition used here, for each clip ``y`` and each resolution ``n_r`` in ``resolutions``:

1. ``x = resample(y, n_r)``: the whole clip band-limited resampled to ``n_r`` points (FFT method,
   as ``raw``'s ``n_points``; ``x = y`` when ``n_r`` equals the clip's length).
2. The unthresholded recurrence plot ``R[i, j] = |x[i] - x[j]|`` for ``0 <= i, j < n_r``:
   symmetric, zero on the diagonal, in the units of the signal (no normalisation; use
   ``load_clip(normalize=True)`` for amplitude invariance).
3. Average pooling of ``R`` to ``size x size``: when ``size`` divides ``n_r``, plain means over
   ``(n_r/size) x (n_r/size)`` blocks; otherwise area-weighted means (cells straddling a block
   border count in proportion to their overlap).

The pooled plots are stacked as channels in the order of ``resolutions``: a low resolution sees
the slow, large-scale structure of the clip, a high one the finer structure averaged into the same
grid. Note that ``n_r`` points over the clip keep frequencies below ``n_r / (2 * duration)`` Hz:
with the defaults and a 0.25 s clip, up to 128, 512 and 2048 Hz.

Cost: ``n_r**2`` absolute differences per clip and resolution, computed in chunks of at most
``2**18`` elements, so memory is bounded whatever the batch size. Both poolings are sparse products
that sum in float32 in a fixed order, one clip at a time, so the bits depend on neither the batch
nor the CPU.

Output: float32 of shape ``(..., len(resolutions), size, size)``; ``(3, 32, 32)`` with the
defaults, for any clip length.

References
----------
Park and Lee (2015), multiresolution recurrence plots for sound classification (the exact
resampling and pooling choices above are this module's).
J.-P. Eckmann, S. O. Kamphorst, D. Ruelle, "Recurrence plots of dynamical systems",
Europhysics Letters 4(9), 1987.
"""

from functools import lru_cache

import numpy as np

from featurestore.errors import ParameterError
from featurestore.features import _common

DEFAULTS = {"size": 32, "resolutions": [64, 256, 1024]}
DESCRIPTION = "Multiresolution recurrence plots |x[i]-x[j]|, average-pooled to size x size per resolution"
VERSION = 2  # 2: bit-identical whatever the batch and the CPU (see _common)
#: Small parameters for the tests: milliseconds on 1 s clips at 8 kHz.
TEST_PARAMS = {"size": 8, "resolutions": [16, 64, 100]}


def compute(y, *, sr, size=32, resolutions=(64, 256, 1024), memo=None):
    """Recurrence plots of each clip at several resolutions, pooled to one size.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)], floating
        One clip or a batch of equal-length clips.
    sr : number > 0
        Sampling rate of ``y`` (checked, otherwise unused: resolutions are point counts).
    size : int > 0
        Side of each pooled plot.
    resolutions : list of int >= size
        Numbers of points the clip is resampled to, one channel each.
    memo : Memo or None
        Accepted like every kind's; this one has no intermediate results to share.

    Returns
    -------
    R : np.ndarray [shape=(..., len(resolutions), size, size)], float32

    Raises
    ------
    ParameterError
        If ``size`` is not a positive integer or ``resolutions`` is not a non-empty list of
        integers >= ``size``.
    """
    _common.check_sr(sr)
    size = _common.check_int("size", size)
    if (
        not isinstance(resolutions, (list, tuple))
        or not resolutions
        or not all(_common.is_int(r) and r >= size for r in resolutions)
    ):
        raise ParameterError(
            f"resolutions={resolutions!r} must be a non-empty list of integers >= size={size}"
        )
    y = _common.as_audio(y)
    resolutions = [int(r) for r in resolutions]

    def one_clip(clip):
        signals = _common.resample_many(clip, resolutions)
        return np.stack([_pooled_recurrence(np.ascontiguousarray(x), size) for x in signals])

    return _common.map_clips(y, one_clip, (len(resolutions), size, size))


@lru_cache(maxsize=16)
def _pooling(n, size):
    """The pooling matrix [shape=(size, n)] (block means, or area weights) as CSR, and as CSC for column slices."""
    P = _common.resize_operator(n, size)
    return P, P.tocsc()


def _pooled_recurrence(x, size):
    """Average-pooled ``|x[i] - x[j]|`` of one signal ``x`` [shape=(n,)] as float32 [shape=(size, size)].

    Works on chunks of at most ``CHUNK_ELEMENTS`` differences. Both poolings are products with the
    sparse pooling matrix ``P`` [shape=(size, n)], which sum in a fixed order
    (:func:`~featurestore.features._common.sparse_operator`).
    """
    n = x.shape[0]
    P, P_columns = _pooling(n, size)
    rows = max(1, min(n, _common.CHUNK_ELEMENTS // n))
    out = np.zeros((size, size), dtype=np.float32)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        # R[r0:r1, :].T, by symmetry: (n, r1 - r0), contiguous for the sparse product
        D = np.subtract(x[:, None], x[None, r0:r1])
        np.abs(D, out=D)
        C = P @ D  # (size, r1 - r0): C[a, i] = sum_j P[a, j] * R[i, j]
        out += P_columns[:, r0:r1] @ C.T  # (size, size): sum_i P[b, i] * C[a, i]
    return out
