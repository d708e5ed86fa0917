"""Augmentation of training batches: SpecAugment masks, mixup, and waveform augmentation.

Pure functions of a batch tensor. :class:`~estimators._torch.TorchClassifier` applies them to its
training batches only (its ``train_step_single``); validation batches and predictions never see them.

Every random draw comes from torch's random generator (the global one unless ``generator`` is
given), so that a net seeded by ``random_state`` augments identically at every fit. Draws of
numpy-side randomness (the Beta draw of mixup, the waveform augmentations) use a numpy generator
seeded by one draw from torch's.

Layouts follow the networks' ``input_kinds``: ``"image"`` ``(N, C, H, W)`` with ``H`` the
frequency axis (mel bands, STFT bins) and ``W`` the time axis (frames); ``"sequence"``
``(N, T, F)`` with ``T`` frames of ``F`` features (mel bands, MFCC coefficients); ``"waveform"``
``(N, n_samples)``.
"""

import numpy as np
import torch

#: Axis of the frequency bins and of the frames, by layout.
SPEC_AXES = {"image": (2, 3), "sequence": (2, 1)}


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
    """A :class:`featurestore.augment.WaveformAugmentation` (imported on demand: librosa is slow to load).

    Raises
    ------
    featurestore.errors.ParameterError (a ValueError)
        Naming the first bad bound.
    """
    from featurestore.augment import WaveformAugmentation

    return WaveformAugmentation(**bounds)


def numpy_seed(generator=None):
    """One draw from torch's generator, to seed a numpy generator."""
    return int(torch.randint(0, 2**62, (), generator=generator))
