"""Augmentation of training batches: SpecAugment masks, mixup, and waveform augmentation.

:class:`BatchAugment` is the one parameter of :class:`~estimators._torch.TorchClassifier` that
holds them (``batch_augment=BatchAugment(time_mask=8, mixup_alpha=0.2)``); the net applies it to
its training batches only (its ``train_step_single``); validation batches and predictions never
see it. The rest of this module are pure functions of a batch tensor.

Every random draw comes from torch's random generator (the global one unless ``generator`` is
given), so that a net seeded by ``random_state`` augments identically at every fit. Draws of
numpy-side randomness (the Beta draw of mixup, the waveform augmentations) use a numpy generator
seeded by one draw from torch's.

Layouts follow the networks' ``input_kinds``: ``"image"`` ``(N, C, H, W)`` with ``H`` the
frequency axis (mel bands, STFT bins) and ``W`` the time axis (frames); ``"sequence"``
``(N, T, F)`` with ``T`` frames of ``F`` features (mel bands, MFCC coefficients); ``"waveform"``
``(N, n_samples)``.
"""

import dataclasses
import math
import numbers

import numpy as np
import torch

from featurestore.augment import WaveformAugmentation

#: Axis of the frequency bins and of the frames, by layout.
SPEC_AXES = {"image": (2, 3), "sequence": (2, 1)}
#: The waveform bounds of :class:`BatchAugment`, those of
#: :class:`featurestore.augment.WaveformAugmentation`, with their "off" values.
WAVEFORM_BOUNDS = {"time_stretch": 0.0, "pitch_shift": 0.0, "noise_snr": None, "gain_db": 0.0,
                   "time_shift": 0.0}


@dataclasses.dataclass(frozen=True, repr=False)
class BatchAugment:
    """Augmentation of training batches, drawn anew for every batch: a net's ``batch_augment``.

    Applied in the order waveform augmentation, SpecAugment masks, mixup, after standardisation.
    All draws come from torch's random generator, so a seeded net augments identically at every
    fit; with every field at its default, :meth:`is_identity` is True and the net makes no draw
    at all (its training is exactly that of a net without augmentation). Frozen: a grid sets
    ``batch_augment__time_mask`` on a net, which replaces its ``BatchAugment`` by a new one
    (:meth:`get_params` lets scikit-learn see these names). For augmented copies of the clips
    computed once (features of any kind), see ``featurestore.augment``.

    Parameters
    ----------
    time_stretch : float >= 0, default=0.0
        Waveform inputs ``(n, n_samples)`` only (nets whose ``input_kinds`` include
        ``"waveform"``), as :class:`featurestore.augment.WaveformAugmentation`, drawn per clip:
        stretch rates log-uniform in ``[1 / (1 + time_stretch), 1 + time_stretch]`` (librosa's
        phase vocoder; the clip keeps its length).
    pitch_shift : float >= 0, default=0.0
        Waveforms only: a shift drawn uniformly in ``[-pitch_shift, pitch_shift]`` semitones, at
        the net's sampling rate ``sr``.
    noise_snr : float or None, default=None
        Waveforms only: white noise added at this signal-to-noise ratio in dB; None for none.
    gain_db : float >= 0, default=0.0
        Waveforms only: a gain drawn uniformly in ``[-gain_db, gain_db]`` dB.
    time_shift : float in [0, 1], default=0.0
        Waveforms only: a circular shift by up to this fraction of the clip, either way.
        Waveforms are standardised (one mean and one scale) before these five apply; all of them
        commute with scaling and the mean of audio is close to 0, so this changes nothing of note.
        They run on the CPU with numpy, batch by batch, and cost time (pitch shifting most). A
        nonzero value on another input raises ValueError at fit: for features, train on stored
        augmented copies of the clips instead.
    freq_mask : int >= 0, default=0
        SpecAugment (Park et al., 2019) on images ``(n, C, freq, time)`` and sequences
        ``(n, T, F)``: largest width, in frequency bins, of each frequency mask (see
        :func:`spec_mask`). Masked values are set to 0, the training mean of each channel or
        feature when the net standardises. Masks on waveforms raise ValueError at fit, as do
        widths larger than their axis.
    time_mask : int >= 0, default=0
        Largest width, in frames, of each time mask (as ``freq_mask``).
    n_masks : int >= 0, default=1
        Frequency masks and time masks (of each kind) per example.
    mixup_alpha : float >= 0, default=0.0
        Mixup (Zhang et al., 2018) for any input when > 0: each training batch is mixed with a
        permutation of itself, ``lam * X + (1 - lam) * X[perm]`` with ``lam ~ Beta(mixup_alpha,
        mixup_alpha)`` drawn per batch, and the loss is ``lam * loss(y) + (1 - lam) *
        loss(y[perm])`` (class weights apply to both terms). The training loss in ``history_`` is
        that of the mixed batches.

    Raises
    ------
    ValueError
        At construction, naming the first bad field (``featurestore.errors.ParameterError`` for
        the waveform bounds).

    Examples
    --------
    >>> BatchAugment(time_mask=8, mixup_alpha=0.2)
    BatchAugment(time_mask=8, mixup_alpha=0.2)
    >>> BatchAugment().is_identity
    True
    """

    time_stretch: float = 0.0
    pitch_shift: float = 0.0
    noise_snr: float = None
    gain_db: float = 0.0
    time_shift: float = 0.0
    freq_mask: int = 0
    time_mask: int = 0
    n_masks: int = 1
    mixup_alpha: float = 0.0

    def __post_init__(self):
        for name in ("freq_mask", "time_mask", "n_masks"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0):
                raise ValueError(f"{name}={value!r} must be an integer >= 0")
        alpha = self.mixup_alpha
        if not (isinstance(alpha, numbers.Real) and not isinstance(alpha, bool) and 0 <= alpha < math.inf):
            raise ValueError(f"mixup_alpha={alpha!r} must be a finite number >= 0 (0 for no mixup)")
        if self.augments_waveforms:
            self.waveform_augmentation()  # names the first bad bound

    def __repr__(self):
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                   if getattr(self, f.name) != f.default]
        return f"BatchAugment({', '.join(changed)})"

    def get_params(self, deep=True):
        """The fields, as scikit-learn's ``get_params`` (so that a net lists ``batch_augment__*``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def augments_waveforms(self):
        """Whether any waveform bound is on."""
        return any(getattr(self, name) != off for name, off in WAVEFORM_BOUNDS.items())

    @property
    def masks(self):
        """Whether SpecAugment masks are on."""
        return bool(self.n_masks and (self.freq_mask or self.time_mask))

    @property
    def is_identity(self):
        """Whether every augmentation is off (then nothing is drawn)."""
        return not (self.augments_waveforms or self.masks or self.mixup_alpha)

    def waveform_augmentation(self):
        """The waveform bounds as a :class:`featurestore.augment.WaveformAugmentation`."""
        return waveform_augmentation(**{name: getattr(self, name) for name in WAVEFORM_BOUNDS})

    def check(self, shape, layout):
        """Raise ValueError, naming the field, for an augmentation that does not apply to ``X``.

        Parameters
        ----------
        shape : tuple of int
            Shape of the (validated) training data.
        layout : {"image", "sequence", "waveform"} or None
        """
        for name, off in WAVEFORM_BOUNDS.items():
            value = getattr(self, name)
            if value != off and layout != "waveform":
                raise ValueError(
                    f"batch_augment: {name}={value!r} applies to waveform inputs of shape (n_samples, "
                    f"n_samples_per_clip); X has shape {tuple(shape)}; for features, train on "
                    "stored augmented copies of the clips (featurestore.augment) instead"
                )
        if self.n_masks:
            check_masks(shape, layout, freq_mask=self.freq_mask, time_mask=self.time_mask)

    def __call__(self, X, *, layout, sr, generator=None):
        """Augment one training batch.

        Parameters
        ----------
        X : torch.Tensor [shape=(N, ...)], float
            In ``layout``.
        layout : {"image", "sequence", "waveform"} or None
        sr : number > 0
            Sampling rate of waveform inputs (for ``pitch_shift``).
        generator : torch.Generator or None
            Source of the random draws; None uses torch's global generator.

        Returns
        -------
        X : torch.Tensor, shape, dtype and device of ``X``
        mix : (torch.Tensor, float) or None
            The ``(perm, lam)`` of mixup, for :func:`mixup_loss`; None without mixup.
        """
        if self.augments_waveforms:
            X = augment_waveforms(X, self.waveform_augmentation(), sr=sr, generator=generator)
        if self.masks:
            X = spec_mask(X, layout=layout, freq_mask=self.freq_mask, time_mask=self.time_mask,
                          n_masks=self.n_masks, generator=generator)
        if not self.mixup_alpha:
            return X, None
        X, perm, lam = mixup(X, self.mixup_alpha, generator=generator)
        return X, (perm, lam)


def check_masks(shape, layout, *, freq_mask=0, time_mask=0):
    """Raise ValueError unless masks of these widths fit a batch of ``shape`` in ``layout``.

    Parameters
    ----------
    shape : tuple of int
        Shape of the batch (or of all the data), ``(N, C, H, W)`` or ``(N, T, F)``.
    layout : {"image", "sequence"} or str
        Another layout (``"waveform"``, ...) raises when a mask is asked for.
    freq_mask, time_mask : int >= 0
        Largest widths, in bins and frames.
    """
    widths = {"freq_mask": freq_mask, "time_mask": time_mask}
    for name, width in widths.items():
        if not width:
            continue
        if layout not in SPEC_AXES:
            raise ValueError(
                f"{name}={width!r} applies to spectrogram inputs, images (n, C, freq, time) or "
                f"sequences (n, T, F); X has shape {tuple(shape)} ({layout or 'no time and frequency axes'})"
            )
        axis = SPEC_AXES[layout][name == "time_mask"]
        if width > shape[axis]:
            what = "frames" if name == "time_mask" else "frequency bins"
            raise ValueError(f"{name}={width!r} is wider than the {shape[axis]} {what} of X "
                             f"(shape {tuple(shape)}, {layout} layout)")


def spec_mask(X, *, layout="image", freq_mask=0, time_mask=0, n_masks=1, generator=None):
    """SpecAugment's frequency and time masking (Park et al., 2019), independently per example.

    Each example gets ``n_masks`` frequency masks and ``n_masks`` time masks. A mask's width is
    drawn uniformly in ``[0, freq_mask]`` bins (``[0, time_mask]`` frames), its start uniformly
    among the positions where it fits; masks may overlap. Masked values are set to 0 (the training
    mean of standardised inputs); all channels of an image share the masks.

    Parameters
    ----------
    X : torch.Tensor [shape=(N, C, H, W) or (N, T, F)], float
        Images (``H`` frequency, ``W`` time) or sequences (``T`` time, ``F`` frequency).
    layout : {"image", "sequence"}
    freq_mask, time_mask : int >= 0
        Largest width of a frequency mask (bins) and of a time mask (frames); 0 for none.
    n_masks : int >= 0
        Masks of each kind per example.
    generator : torch.Generator or None
        Source of the random draws (on the CPU); None uses torch's global generator.

    Returns
    -------
    torch.Tensor, shape, dtype and device of ``X``
        A new tensor (``X`` itself when no mask is asked for).

    Raises
    ------
    ValueError
        If ``layout`` is not a spectrogram layout or a width exceeds its axis.
    """
    check_masks(X.shape, layout, freq_mask=freq_mask, time_mask=time_mask)
    if not n_masks or not (freq_mask or time_mask):
        return X
    freq_axis, time_axis = SPEC_AXES[layout]
    masked = torch.zeros(X.shape, dtype=torch.bool, device=X.device)
    for axis, width in ((freq_axis, freq_mask), (time_axis, time_mask)):
        if width:
            bands = _bands(len(X), X.shape[axis], width, n_masks, generator).to(X.device)
            view = [len(X)] + [1] * (X.dim() - 1)
            view[axis] = X.shape[axis]
            masked |= bands.view(view)
    return X.masked_fill(masked, 0.0)


def _bands(n, size, max_width, n_masks, generator):
    """Boolean ``(n, size)``: the union of ``n_masks`` random bands of width <= ``max_width`` per row."""
    widths = torch.randint(0, max_width + 1, (n, n_masks), generator=generator)
    starts = (torch.rand((n, n_masks), generator=generator, dtype=torch.float64)
              * (size - widths + 1)).long()  # uniform in [0, size - width]
    position = torch.arange(size)
    inside = (position >= starts[..., None]) & (position < (starts + widths)[..., None])
    return inside.any(dim=1)


def mixup(X, alpha, *, generator=None):
    """Mixup (Zhang et al., 2018): the batch mixed with a permutation of itself.

    ``X_mixed = lam * X + (1 - lam) * X[perm]`` with one ``lam ~ Beta(alpha, alpha)`` per batch;
    the loss of the mixed batch is ``lam * loss(y) + (1 - lam) * loss(y[perm])``
    (see :func:`mixup_loss`).

    Parameters
    ----------
    X : torch.Tensor [shape=(N, ...)], float
    alpha : float > 0
    generator : torch.Generator or None
        Source of the random draws (on the CPU); None uses torch's global generator.

    Returns
    -------
    X_mixed : torch.Tensor, shape, dtype and device of ``X``
    perm : torch.Tensor [shape=(N,)], int64, on the CPU
        The partner of each example.
    lam : float in [0, 1]
    """
    perm = torch.randperm(len(X), generator=generator)
    lam = float(np.random.default_rng(numpy_seed(generator)).beta(alpha, alpha))
    return lam * X + (1.0 - lam) * X[perm.to(X.device)], perm, lam


def mixup_loss(loss, y_pred, y, perm, lam):
    """``lam * loss(y_pred, y) + (1 - lam) * loss(y_pred, y[perm])``.

    Parameters
    ----------
    loss : callable ``(y_pred, y) -> scalar tensor``
        E.g. a net's ``get_loss`` (so class weights apply to both terms).
    y_pred : torch.Tensor [shape=(N, n_classes)]
    y : torch.Tensor [shape=(N,)], int64
    perm : torch.Tensor [shape=(N,)], int64
    lam : float
    """
    return lam * loss(y_pred, y) + (1.0 - lam) * loss(y_pred, y[perm.to(y.device)])


def augment_waveforms(X, augmentation, *, sr, generator=None):
    """``augmentation.apply_batch`` on a batch of waveforms, drawing its randomness from torch.

    Runs on the CPU with numpy (librosa's phase vocoder); the result goes back to ``X``'s device
    and dtype. Every output has the length of its input.

    Parameters
    ----------
    X : torch.Tensor [shape=(N, n_samples)], float
    augmentation : featurestore.augment.WaveformAugmentation
    sr : number > 0
        Sampling rate of the waveforms (pitch shifting needs it).
    generator : torch.Generator or None
        Seeds the numpy generator of the augmentation (one draw); None uses torch's global one.

    Returns
    -------
    torch.Tensor [shape=(N, n_samples)], dtype and device of ``X``
    """
    if X.dim() != 2:
        raise ValueError(f"augment_waveforms takes waveforms of shape (N, n_samples); got {tuple(X.shape)}")
    rng = np.random.default_rng(numpy_seed(generator))
    Y = augmentation.apply_batch(X.detach().cpu().numpy(), sr, rng)
    return torch.as_tensor(Y).to(device=X.device, dtype=X.dtype)


def waveform_augmentation(**bounds):
    """A :class:`featurestore.augment.WaveformAugmentation` of ``bounds``.

    Raises
    ------
    featurestore.errors.ParameterError (a ValueError)
        Naming the first bad bound.
    """
    return WaveformAugmentation(**bounds)


def numpy_seed(generator=None):
    """One draw from torch's generator, to seed a numpy generator."""
    return int(torch.randint(0, 2**62, (), generator=generator))
