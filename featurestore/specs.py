"""What addresses a feature set in the store, as small frozen dataclasses validated once.

A :class:`FeatureRequest` is a feature kind with its full parameters, the audio settings and the
storage dtype; an :class:`AugmentSpec` is the stored augmented copies of a set's clips (the
augmentation's bounds, the number of copies and the seed). Each checks its values when it is made,
and derives the store key from them (:attr:`FeatureRequest.key`, :meth:`AugmentSpec.key`): the
extraction, the store and the experiments pass these objects, never loose dicts or tuples.

The keys are those of :func:`featurestore.store.feature_key` and
:func:`featurestore.store.augment_key`, unchanged, so stored sets stay valid.

>>> from featurestore.audio import AUDIO_DEFAULTS
>>> request = FeatureRequest("mel", {"n_mels": 40}, AUDIO_DEFAULTS)
>>> request.params["n_fft"], len(request.key)        # defaults filled in; a SHA-1 hex digest
(1024, 40)
>>> FeatureRequest("mel", {"n_mel": 40}, AUDIO_DEFAULTS)
Traceback (most recent call last):
...
featurestore.registry.UnknownNameError: unknown parameter of feature kind 'mel' 'n_mel'. Did you mean 'n_mels'? ...
"""

from dataclasses import dataclass

from featurestore import audio as audio_io
from featurestore import features, registry
from featurestore.augment import AUGMENT_SETTINGS, WaveformAugmentation
from featurestore.errors import ParameterError
from featurestore.store import STORAGE_DTYPES, _canonical_json, augment_key, feature_key

__all__ = ["AUGMENT_SETTINGS", "AugmentSpec", "FeatureRequest", "resolve_audio_params"]


def resolve_audio_params(dataset, overrides=None):
    """The audio settings of an extraction: library defaults < data set defaults < ``overrides``.

    Returns
    -------
    dict
        Every name of :data:`featurestore.audio.AUDIO_DEFAULTS`, checked.
    """
    params = {**audio_io.AUDIO_DEFAULTS, **dataset.audio_defaults}
    for name, value in (overrides or {}).items():
        if name not in params:
            raise registry.unknown("audio parameter", name, params)
        params[name] = value
    audio_io.check_audio_params(**params)
    return params


@dataclass(frozen=True, eq=True)
class FeatureRequest:
    """A feature set's values: its kind, parameters, audio settings and storage dtype.

    Parameters
    ----------
    kind : str
        A registered feature kind (:func:`featurestore.features.available`).
    params : dict, optional
        Overrides of the kind's defaults; the request holds the full parameters.
    audio : dict
        The resolved audio settings, every name of :data:`featurestore.audio.AUDIO_DEFAULTS`
        (:func:`resolve_audio_params` or :meth:`for_dataset`): a partial dict would silently mean
        the library's defaults where the data set has its own.
    dtype : {"float32", "float16"}
        Storage dtype.

    Raises
    ------
    ParameterError
        Naming the first bad value (an :class:`~featurestore.registry.UnknownNameError` for an
        unknown kind or parameter name).
    """

    kind: str
    params: dict
    audio: dict
    dtype: str = "float32"

    def __post_init__(self):
        # frozen: the checked, completed values replace the given ones through object.__setattr__
        object.__setattr__(self, "params", features.resolve_params(self.kind, self.params))
        object.__setattr__(self, "audio", _full_audio(self.audio))
        if self.dtype not in STORAGE_DTYPES:
            raise ParameterError(f"dtype={self.dtype!r} must be one of {', '.join(STORAGE_DTYPES)}")
        try:
            _canonical_json(self.params)
        except TypeError as exc:
            raise ParameterError(f"feature kind {self.kind!r}: {exc}") from None

    @classmethod
    def for_dataset(cls, dataset, kind, params=None, *, audio=None, dtype="float32"):
        """The request for ``dataset``: its audio defaults updated with ``audio`` overrides."""
        return cls(kind, params, resolve_audio_params(dataset, audio), dtype)

    @property
    def key(self):
        """The store key (SHA-1 hex str) of the set: the kind, its version, parameters, audio, dtype."""
        return feature_key(self.kind, self.params, self.audio, self.dtype)

    def __hash__(self):
        return hash(self.key)


@dataclass(frozen=True, eq=True)
class AugmentSpec:
    """Stored augmented copies of a feature set's clips: the augmentation, how many, which seed.

    Parameters
    ----------
    augmentation : featurestore.augment.WaveformAugmentation
        Bounds of the random augmentation; not the identity.
    copies : int >= 1
        Augmented copies per clip.
    seed : int >= 0
        Copy ``k`` of clip ``c`` is drawn from ``(seed, c, k)`` alone
        (:func:`featurestore.augment.copy_rng`).

    Raises
    ------
    ParameterError
        Naming the first bad value.
    """

    augmentation: WaveformAugmentation
    copies: int = 1
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.augmentation, WaveformAugmentation):
            raise ParameterError(f"augmentation={self.augmentation!r} must be a WaveformAugmentation")
        if self.augmentation.is_identity:
            raise ParameterError("augmentation has every bound off (time_stretch, pitch_shift, noise_snr, gain_db, "
                                 "time_shift): its copies would equal their clips")
        if not features.is_int(self.copies) or self.copies < 1:
            raise ParameterError(f"copies={self.copies!r} must be a positive integer")
        if not features.is_int(self.seed) or self.seed < 0:
            raise ParameterError(f"seed={self.seed!r} must be an integer >= 0")
        object.__setattr__(self, "copies", int(self.copies))
        object.__setattr__(self, "seed", int(self.seed))

    @classmethod
    def from_settings(cls, values, *, seed=0):
        """The copies that ``--set augment.NAME=VALUE`` settings ask for, or None for none.

        Parameters
        ----------
        values : dict or None
            ``{name: value}``: ``copies`` (default 1 when a bound is set; 0 = none), ``seed``
            (default ``seed``) and the bounds of :class:`~featurestore.augment.WaveformAugmentation`.
        seed : int
            Default seed of the copies (an experiment passes its ``--seed``).

        Returns
        -------
        AugmentSpec or None
            None without settings, or with ``copies=0``.

        Raises
        ------
        ParameterError
            Naming the setting as ``augment.NAME``: an unknown name (with a close match), a bad
            value, or copies without any bound set.
        """
        values = dict(values or {})
        if not values:
            return None
        bounds = WaveformAugmentation.param_names()
        for name in values:
            if name not in (*bounds, *AUGMENT_SETTINGS):
                raise registry.unknown("augment parameter", name, (*bounds, *AUGMENT_SETTINGS))
        copies = values.pop("copies", 1)
        seed = values.pop("seed", seed)
        try:
            augmentation = WaveformAugmentation(**values)
        except ParameterError as exc:
            raise ParameterError(f"augment.{exc}") from None
        if isinstance(copies, bool) or not isinstance(copies, int) or copies < 0:
            raise ParameterError(f"augment.copies={copies!r} must be an integer >= 0 (augmented copies per clip)")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ParameterError(f"augment.seed={seed!r} must be an integer >= 0")
        if copies == 0:
            return None
        if augmentation.is_identity:
            raise ParameterError(f"augment.copies={copies} needs an augmentation: set at least one of "
                                 + ", ".join(f"augment.{b}" for b in bounds))
        return cls(augmentation, copies, seed)

    def settings(self):
        """What a set of copies records as its ``augmentation`` attribute, and its key hashes:
        ``{**bounds, "copies": int, "seed": int}``."""
        return {**self.augmentation.params(), "copies": self.copies, "seed": self.seed}

    def key(self, source_key):
        """The store key (SHA-1 hex str) of the copies of the set whose key is ``source_key``."""
        return augment_key(source_key, self.settings())


def _full_audio(audio):
    """``audio`` checked: every name of AUDIO_DEFAULTS, no other, valid values; a new dict."""
    audio = dict(audio or {})
    for name in audio:
        if name not in audio_io.AUDIO_DEFAULTS:
            raise registry.unknown("audio parameter", name, audio_io.AUDIO_DEFAULTS)
    missing = [name for name in audio_io.AUDIO_DEFAULTS if name not in audio]
    if missing:
        raise ParameterError(f"audio settings lack {', '.join(missing)}: give the resolved settings "
                             f"(FeatureRequest.for_dataset or resolve_audio_params)")
    audio_io.check_audio_params(**audio)
    return audio
