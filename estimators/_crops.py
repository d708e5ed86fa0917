"""Fixed-length crops of a batch along its time axis: random ones for training, covering windows
for prediction. :class:`~estimators._torch.TorchClassifier` uses them for its ``crop`` parameter.

A net with ``crop`` trains on a new random crop of every sample of every training batch
(:func:`random_crop`) and predicts a clip by the mean of the softmax over windows that cover the
whole clip (:func:`covering_windows`). The windows follow the rule of
:func:`pipelines.segments.window_starts` (50 % overlap, a last window ending at the clip's end), so
that a window-averaged net and ``cli.py cv --segments`` see the same windows.

A clip shorter than the crop is padded at its end with zeros, after standardisation: zero is
then the training mean of each channel (feature, for sequences), the value SpecAugment's masks
also write, so the net meets nothing it never saw. (Zero before standardisation would be a loud
0 dB for a log-mel image in dB, whose silence is very negative; repeating the clip would invent
content.)

Time axes, by layout (axes of the batch): ``"image"`` ``(N, C, H, W)``: 3 (frames);
``"sequence"`` ``(N, T, F)``: 1 (steps); ``"waveform"`` ``(N, n_samples)``: 1 (samples).
Every random draw comes from torch's generator, so a seeded net crops identically at every fit.
"""

import numpy as np
import torch

#: Axis of time in a batch, by layout.
TIME_AXES = {"image": 3, "sequence": 1, "waveform": 1}
#: Overlap of the covering windows of prediction (that of Piczak's segments).
WINDOW_OVERLAP = 0.5


def window_starts(n_steps, window, overlap=WINDOW_OVERLAP):
    """First step of every window covering ``n_steps`` steps: :func:`pipelines.segments.window_starts`."""
    from pipelines.segments import window_starts as starts  # imported late: pipelines imports estimators

    return starts(n_steps, window, overlap)


def pad_to(X, length, *, axis):
    """``X`` padded with zeros at the end of ``axis`` to ``length`` steps (``X`` itself if long enough).

    Parameters
    ----------
    X : torch.Tensor
    length : int
    axis : int

    Returns
    -------
    torch.Tensor
        ``X.shape`` with ``max(X.shape[axis], length)`` along ``axis``.
    """
    missing = length - X.shape[axis]
    if missing <= 0:
        return X
    shape = list(X.shape)
    shape[axis] = missing
    return torch.cat([X, X.new_zeros(shape)], dim=axis)


def random_crop(X, crop, *, axis, generator=None):
    """A random ``crop``-step window of every sample of ``X``, drawn independently per sample.

    Starts are uniform among the ``T - crop + 1`` positions of a sample of ``T`` steps (after
    padding a shorter batch to ``crop`` steps with zeros, see the module's notes).

    Parameters
    ----------
    X : torch.Tensor [shape=(N, ...)]
    crop : int >= 1
        Steps of every crop.
    axis : int
        The time axis of ``X`` (see :data:`TIME_AXES`).
    generator : torch.Generator or None
        Source of the draws (on the CPU); None uses torch's global generator.

    Returns
    -------
    torch.Tensor
        ``X.shape`` with ``crop`` along ``axis``; dtype and device of ``X``.
    """
    X = pad_to(X, crop, axis=axis)
    n_steps = X.shape[axis]
    starts = torch.randint(0, n_steps - crop + 1, (len(X),), generator=generator)
    index = (starts[:, None] + torch.arange(crop)).to(X.device)  # (N, crop)
    moved = X.movedim(axis, -1)  # (N, ..., T)
    index = index.view(len(X), *[1] * (moved.dim() - 2), crop).expand(*moved.shape[:-1], crop)
    return torch.gather(moved, -1, index).movedim(-1, axis)


def covering_windows(X, window, *, axis, overlap=WINDOW_OVERLAP):
    """Every sample of ``X`` cut into the windows that cover it (:func:`window_starts`).

    Parameters
    ----------
    X : torch.Tensor [shape=(N, ...)]
    window : int >= 1
        Steps of every window (the net's ``crop``).
    axis : int
        The time axis of ``X``.
    overlap : float in [0, 1)

    Returns
    -------
    windows : torch.Tensor [shape=(N * n_windows, ...)]
        ``window`` steps along ``axis``; the ``n_windows`` windows of sample ``i`` are rows
        ``i * n_windows`` to ``(i + 1) * n_windows - 1``.
    n_windows : int
    """
    X = pad_to(X, window, axis=axis)
    starts = window_starts(X.shape[axis], window, overlap)
    windows = torch.stack([X.narrow(axis, int(start), window) for start in starts], dim=1)
    return windows.reshape(len(X) * len(starts), *windows.shape[2:]), len(starts)


def mean_log_proba(logits, n_windows):
    """Log of the mean over each sample's windows of the softmax of the windows' logits.

    Parameters
    ----------
    logits : torch.Tensor [shape=(N * n_windows, n_classes)]
        Rows grouped by sample, as :func:`covering_windows` returns them.
    n_windows : int

    Returns
    -------
    torch.Tensor [shape=(N, n_classes)]
        ``log(mean_w softmax(logits_w))``: its softmax is the mean probability itself, and the
        cross-entropy of it is the clip's loss, so it stands for logits wherever skorch expects them.
    """
    log_proba = torch.log_softmax(logits, dim=-1).view(-1, n_windows, logits.shape[-1])
    return torch.logsumexp(log_proba, dim=1) - float(np.log(n_windows))
