"""Waveform augmentations: time stretching, pitch shifting, added noise at an SNR, gain, time shift.

The first three are those of the UrbanSound8K augmentation study (Salamon & Bello, 2017); gain and
shift are the usual cheap ones. Each is a pure function of a clip; :class:`WaveformAugmentation`
draws random settings within chosen bounds and applies them, from a caller's random generator, so
every result is reproducible from a seed. The store uses it to compute augmented copies of clips
once; the torch networks use it on their training batches (see ``estimators/_augment.py``).

Stretching and pitch shifting are librosa's phase vocoder (``librosa.effects``); every output has
the length of its input, so a clip's features keep their shape.

Stored copies (:func:`featurestore.extract_augmented`) draw copy ``k`` of a clip from
:func:`copy_rng` ``(seed, clip_id, k)``; :meth:`featurestore.specs.AugmentSpec.from_settings` reads the command line's
``--set augment.NAME=VALUE`` settings.
"""

import hashlib
import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from featurestore.errors import ParameterError
from featurestore.features import is_real as _is_real


def time_stretch(y, rate):
    """``y`` played ``rate`` times faster, without changing its pitch, at the length of ``y``.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)], float
    rate : float > 0
        > 1 speeds up (the end is zero-padded), < 1 slows down (the end is cut).

    Returns
    -------
    np.ndarray [shape=(n_samples,)], dtype of ``y``
    """
    if rate == 1.0:
        return y.copy()
    import librosa  # on demand: slow to import, and only stretching and pitch shifting need it

    stretched = librosa.effects.time_stretch(y, rate=rate, **_stft_size(len(y)))
    return librosa.util.fix_length(stretched, size=len(y)).astype(y.dtype, copy=False)


def pitch_shift(y, sr, n_steps):
    """``y`` shifted by ``n_steps`` semitones at the same duration (librosa, soxr resampling).

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)], float
    sr : number > 0
    n_steps : float
        Semitones; negative shifts down.

    Returns
    -------
    np.ndarray [shape=(n_samples,)], dtype of ``y``
    """
    if n_steps == 0:
        return y.copy()
    import librosa

    shifted = librosa.effects.pitch_shift(y, sr=sr, n_steps=n_steps, res_type="soxr_hq", **_stft_size(len(y)))
    return librosa.util.fix_length(shifted, size=len(y)).astype(y.dtype, copy=False)


def _stft_size(n_samples):
    """librosa's phase-vocoder frame (2048 samples), or the largest power of two a shorter clip holds."""
    n_fft = 2048 if n_samples >= 2048 else 2 ** max(4, int(math.log2(max(n_samples, 1))))
    return {"n_fft": n_fft, "hop_length": n_fft // 4}


def add_noise(y, snr_db, rng):
    """``y`` plus white Gaussian noise at signal-to-noise ratio ``snr_db`` (of ``y``'s mean power).

    A silent clip is returned unchanged (its SNR is undefined).

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)], float
    snr_db : float
    rng : np.random.Generator
    """
    power = float(np.mean(np.square(y, dtype=np.float64)))
    if power == 0.0:
        return y.copy()
    scale = math.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (y + scale * rng.standard_normal(len(y))).astype(y.dtype, copy=False)


def apply_gain(y, gain_db):
    """``y`` scaled by ``gain_db`` decibels."""
    return (y * 10.0 ** (gain_db / 20.0)).astype(y.dtype, copy=False)


def shift(y, n_samples):
    """``y`` rotated by ``n_samples`` (positive: later); what leaves one end comes in at the other."""
    return np.roll(y, n_samples)


@dataclass(frozen=True)
class WaveformAugmentation:
    """Random waveform augmentation within bounds; every bound at its default means "off".

    Each call draws, independently per clip, a stretch rate, a pitch shift, a gain and a shift
    within the bounds, and adds noise at ``noise_snr`` dB, in that order.

    Parameters
    ----------
    time_stretch : float >= 0, default=0
        Rates are drawn log-uniformly in ``[1 / (1 + time_stretch), 1 + time_stretch]``
        (0.25 covers the study's 0.81-1.23).
    pitch_shift : float >= 0, default=0
        Semitones drawn uniformly in ``[-pitch_shift, pitch_shift]`` (the study used up to 3.5).
    noise_snr : float or None, default=None
        Add white noise at this SNR in dB; None adds none.
    gain_db : float >= 0, default=0
        Gain drawn uniformly in ``[-gain_db, gain_db]`` dB.
    time_shift : float in [0, 1], default=0
        Circular shift by up to this fraction of the clip, either way.
    """

    time_stretch: float = 0.0
    pitch_shift: float = 0.0
    noise_snr: float = None
    gain_db: float = 0.0
    time_shift: float = 0.0

    def __post_init__(self):
        for name in ("time_stretch", "pitch_shift", "gain_db", "time_shift"):
            value = getattr(self, name)
            if not _is_real(value) or not value >= 0 or not math.isfinite(value):
                raise ParameterError(f"{name}={value!r} must be a finite number >= 0")
        if self.time_shift > 1:
            raise ParameterError(f"time_shift={self.time_shift!r} must be a fraction of the clip in [0, 1]")
        if self.noise_snr is not None and not (_is_real(self.noise_snr) and math.isfinite(self.noise_snr)):
            raise ParameterError(f"noise_snr={self.noise_snr!r} must be a number of dB or None")

    @property
    def is_identity(self):
        """True when every bound is off, so that :meth:`apply` returns its input unchanged."""
        return (self.time_stretch == 0 and self.pitch_shift == 0 and self.noise_snr is None
                and self.gain_db == 0 and self.time_shift == 0)

    def params(self):
        """The bounds as a dict of floats (None for no noise), JSON-ready, e.g. to key a stored feature set.

        Integers become floats, so that ``pitch_shift=2`` and ``pitch_shift=2.0`` give one key.
        """
        return {name: None if value is None else float(value) for name, value in asdict(self).items()}

    @classmethod
    def param_names(cls):
        """Names of the bounds, in the order of the constructor."""
        return tuple(f.name for f in fields(cls))

    def apply(self, y, sr, rng):
        """One augmented copy of one clip.

        Parameters
        ----------
        y : np.ndarray [shape=(n_samples,)], float
        sr : number > 0
            Sampling rate of ``y`` (pitch shifting needs it).
        rng : np.random.Generator or int
            The source of every random draw (an int seeds a new generator).

        Returns
        -------
        np.ndarray [shape=(n_samples,)], dtype of ``y``
        """
        y = np.asarray(y)
        rng = np.random.default_rng(rng)
        if y.ndim != 1:
            raise ValueError(f"WaveformAugmentation.apply takes one clip of shape (n_samples,); got {y.shape}")
        if self.time_stretch:
            bound = math.log1p(self.time_stretch)
            y = time_stretch(y, math.exp(rng.uniform(-bound, bound)))
        if self.pitch_shift:
            y = pitch_shift(y, sr, rng.uniform(-self.pitch_shift, self.pitch_shift))
        if self.gain_db:
            y = apply_gain(y, rng.uniform(-self.gain_db, self.gain_db))
        if self.time_shift:
            most = int(self.time_shift * len(y))
            y = shift(y, int(rng.integers(-most, most + 1)))
        if self.noise_snr is not None:
            y = add_noise(y, self.noise_snr, rng)
        return y

    def apply_batch(self, Y, sr, rng):
        """:meth:`apply` to each row of ``Y`` [shape=(n_clips, n_samples)]; returns a new array."""
        Y = np.asarray(Y)
        rng = np.random.default_rng(rng)
        if Y.ndim != 2:
            raise ValueError(f"apply_batch takes clips of shape (n_clips, n_samples); got {Y.shape}")
        if self.is_identity:
            return Y.copy()
        return np.stack([self.apply(row, sr, rng) for row in Y]) if len(Y) else Y.copy()


AUGMENT_SETTINGS = ("copies", "seed")  # besides the bounds of WaveformAugmentation


def copy_rng(seed, clip_id, copy):
    """The random generator of augmented copy ``copy`` of clip ``clip_id``, from ``seed``.

    Depends on these three values only, so a clip's copies are the same whatever the batch, the
    number of workers or the other clips of the data set.

    Parameters
    ----------
    seed : int >= 0
    clip_id : str
    copy : int >= 1

    Returns
    -------
    np.random.Generator
    """
    digest = hashlib.sha256(str(clip_id).encode()).digest()[:16]
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(copy), *words]))

