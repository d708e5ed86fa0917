"""The clip duration of a data set whose recordings have no common length (``folder``, ``csv``).

Every clip is cut or zero-padded to one duration before features are computed. A fixed 4 s
(UrbanSound8K's length) suits environmental sounds, but a spoken digit lasts about 0.4 s: nine
tenths of its 4-s image would be padding, which a net spends its capacity and time on (on the
Free Spoken Digit recordings, 6 speaker folds, the ``cnn`` scored 0.753 at 4 s and 0.778 at 1 s, at
a third of the CPU). So such a data set takes its duration from its own files' headers: long
enough to hold most clips whole, never longer than the 4 s of before.
"""

import math

import numpy as np

from featurestore.audio import file_duration
from featurestore.errors import AudioError

#: The share of clips that the duration holds whole.
COVERED = 0.95
#: The duration is rounded up to a multiple of this (s), so that adding a few files rarely changes it
#: (and with it the key of every stored feature set).
STEP = 0.5
#: The shortest duration (s): a 41-frame PiczakNet segment needs 0.95 s at 22,050 Hz and a hop of 512.
SHORTEST = 1.0


def clip_duration(paths, *, longest):
    """The duration (s) that holds :data:`COVERED` of the files at ``paths`` whole.

    The 95th percentile of the files' lengths (read from their headers), rounded up to a multiple
    of :data:`STEP`, within ``[SHORTEST, longest]``. Unreadable files are left out: extraction names
    them. With no readable file, ``longest``.

    Parameters
    ----------
    paths : iterable of str
        The data set's audio files.
    longest : float
        The duration when the clips are long (the data set's fixed default before).

    Returns
    -------
    float

    Examples
    --------
    A spoken digit data set (95 % of the files shorter than 0.66 s) gives 1.0; drum one-shots whose
    cymbals ring for up to 12 s give ``longest``.
    """
    lengths = []
    for path in paths:
        try:
            lengths.append(file_duration(path))
        except AudioError:
            continue
    if not lengths:
        return float(longest)
    # the shortest file length that at least COVERED of the files do not exceed
    covering = float(np.quantile(lengths, COVERED, method="inverted_cdf"))
    return float(min(max(math.ceil(covering / STEP) * STEP, SHORTEST), longest))
