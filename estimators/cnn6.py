"""CNN6 of the PANNs family (Kong et al., 2020) on log-mel images, in plain torch.

Q. Kong, Y. Cao, T. Iqbal, Y. Wang, W. Wang, M. D. Plumbley, "PANNs: Large-scale pretrained audio
neural networks for audio pattern recognition", IEEE/ACM TASLP 28, 2020. CNN6: batch norm over the
mel bands of the input, then four blocks of one 5 x 5 convolution (no bias) -> batch norm -> ReLU
-> 2 x 2 average pooling (-> dropout 0.2), with 64, 128, 256 and 512 channels; then the mean over
frequency, the max plus the mean over time, dropout 0.5, a dense layer with ReLU, dropout 0.5
and the logits. Trained from scratch here (no AudioSet weights), with the spectrogram nets'
recipe (:class:`~estimators._recipe.SpectrogramNetClassifier`: every training clip, 60 epochs,
AdamW, warm-up + cosine, label smoothing, SpecAugment masks + mixup).

Defaults sized for CPUs and small data sets: a quarter of PANNs' width (16 to 128 channels), whole
clips (``crop=None``, as the cnn; ``crop=N`` trains on random N-frame crops and averages windows)
and no dropout (``dropout=0``, ``block_dropout=0``; PANNs' 0.5 and 0.2 are a parameter away): on
top of the recipe's mixup, masks and label smoothing, PANNs' dropouts left the net underfitting
(accuracy on its own training clips 0.41 against 0.99 without them, 30 epochs, demo fold 1).
Measured with each data set's folds (1 torch thread, seed 0; accuracy, mean over the folds):

======================================================  =====  =========  =====
cnn6                                                    demo   drum kits  FSDD
======================================================  =====  =========  =====
no dropout, whole clips, 60 epochs (the defaults)       0.747  0.669      0.834
no dropout, 128-frame crops, 60 epochs                  0.753  0.600
no dropout, whole clips, 20 epochs                      0.678  0.643
no dropout, 128-frame crops, 20 epochs                  0.678  0.536
dense dropout 0.2 only, 128-frame crops, 20 epochs      0.638
dropout 0.2 in both places, 128-frame crops, 20 epochs  0.544
PANNs' dropouts, 128-frame crops, 20 epochs (previous)  0.334  0.473
======================================================  =====  =========  =====

Most of a 128-frame crop of a drum one-shot padded to its clip length is silence, hence the whole
clips. See :class:`CNN6Classifier` for the time of a fold.
"""

from torch import nn

from estimators._crops import pad_to
from estimators._recipe import SpectrogramNetClassifier

SPEC = {
    "class": "CNN6Classifier",
    "input": "image",
    "feature": "mel",
    "feature_params": {"n_mels": 64},
    "param_grid": {"channels": [(16, 32, 64, 128), (32, 64, 128, 256)], "crop": [None, 128]},
    "test_params": {"max_epochs": 2, "channels": (2, 4, 4, 8), "n_hidden": 8, "crop": 16},
    "test_shape": (1, 16, 24),
    "description": "CNN6 (PANNs): 4 blocks of 5x5 conv + BN + avg-pool, max+mean pooling over time",
}


class ConvBlock(nn.Module):
    """Conv ``kernel x kernel`` (padded, no bias) -> batch norm -> ReLU -> 2 x 2 average pooling."""

    def __init__(self, in_channels, out_channels, kernel_size=5):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        return self.pool(self.act(self.bn(self.conv(x))))


class CNN6(nn.Module):
    """CNN6 on ``(N, C, n_mels, frames)`` images; returns logits ``(N, n_classes)``.

    Parameters
    ----------
    input_shape : tuple (C, H, W)
        Per-sample shape: ``H`` mel bands, at least ``2 ** len(channels)`` (each block halves
        them), and ``W`` frames; a batch of fewer frames than that is padded with zeros at its end.
    n_classes : int
    channels : tuple of ints, default=(16, 32, 64, 128)
        Output channels of the blocks (PANNs: ``(64, 128, 256, 512)``).
    n_hidden : int, default=128
        Units of the dense layer (PANNs: the last block's channels).
    dropout : float, default=0.0
        Before and after the dense layer (PANNs: 0.5).
    block_dropout : float, default=0.0
        After each block (PANNs: 0.2).
    """

    input_kinds = ("image",)

    def __init__(self, input_shape, n_classes, *, channels=(16, 32, 64, 128), n_hidden=128, dropout=0.0,
                 block_dropout=0.0):
        super().__init__()
        in_channels, n_bands, _ = input_shape
        # each block halves both axes: a clip shorter than this is padded at its end (forward)
        self.min_frames = 2 ** len(channels)
        if n_bands < self.min_frames:
            raise ValueError(f"CNN6: input of {n_bands} bands is too small for {len(channels)} blocks that "
                             f"each halve it: it must be at least {self.min_frames} (raise n_mels, or "
                             f"use fewer channels)")
        # Batch norm per mel band (PANNs' bn0): the loudness of each band differs by far more than
        # the per-channel standardisation of the input removes.
        self.band_norm = nn.BatchNorm2d(n_bands)
        blocks = []
        for out_channels in channels:
            blocks += [ConvBlock(in_channels, out_channels), nn.Dropout(block_dropout)]
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_channels, n_hidden), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(n_hidden, n_classes))
        self._init_weights()

    def _init_weights(self):
        # PANNs' initialisation: Xavier-uniform convolutions and dense layers, zero biases.
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x):
        x = pad_to(x, self.min_frames, axis=-1)  # a short clip, as a crop pads it
        x = self.band_norm(x.transpose(1, 2)).transpose(1, 2)  # (N, C, H, W), normalised per band
        x = self.blocks(x).mean(dim=2)  # (N, channels[-1], W'): the mean over frequency
        x = x.amax(dim=2) + x.mean(dim=2)  # max + mean over time
        return self.head(x)


class CNN6Classifier(SpectrogramNetClassifier):
    """:class:`CNN6` as a scikit-learn classifier of ``(n, C, n_mels, frames)`` log-mel images.

    Parameters
    ----------
    channels : tuple of ints, default=(16, 32, 64, 128)
        Output channels of the four blocks: the width (PANNs' CNN6: ``(64, 128, 256, 512)``, a
        quarter of it by default, for CPUs: see the timing below).
    n_hidden : int, default=128
        Units of the dense layer.
    dropout : float, default=0.0
        Before and after the dense layer (PANNs: 0.5; see the module for why none by default).
    block_dropout : float, default=0.0
        After each convolution block (PANNs: 0.2).
    crop : int or None, default=None
        Whole clips (the default), or frames of random training crops and of the windows averaged
        at prediction (128 frames: about 3 s at 22050 Hz and hop 512).
    max_epochs : int, default=60
        The recipe's.

    Notes
    -----
    A fold on 2,100 four-second clips (``benchmarks/fold_time.py``: random 2 x 64 x 173 inputs, the
    log-mel and delta of 4 s at 22,050 Hz; every clip trained for the 60 epochs, batches of 32;
    seed 0; 2 torch threads on this project's 2-core machine, alone): the fit took 453 s of wall
    time and 900 s of CPU, predicting 420 clips 0.4 s. PANNs' width, ``(64, 128, 256, 512)``,
    took about ten times as long per epoch (81 s of wall time on one-channel inputs): a GPU's width.

    Other Parameters
    ----------------
    lr, max_epochs, batch_size, device, random_state, ... :
        Every parameter of :class:`~estimators._torch.TorchClassifier` with the defaults of the
        spectrogram nets' recipe (:class:`~estimators._recipe.SpectrogramNetClassifier`: AdamW,
        warm-up + cosine, label smoothing 0.1, SpecAugment masks + mixup,
        every training clip for all epochs), and skorch's ``optimizer__*``, ``callbacks__*``, ...

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((12, 1, 16, 40)).astype(np.float32)
    >>> y = np.repeat(["dog", "rain", "siren"], 4)
    >>> net = CNN6Classifier(channels=(2, 4, 4, 8), n_hidden=8, crop=16, max_epochs=1, random_state=0)
    >>> net.fit(X, y).predict_proba(X[:, :, :, :30]).shape  # any clip length: windows of 16 frames
    (12, 3)
    """

    module_params = ("channels", "n_hidden", "dropout", "block_dropout")

    def __init__(self, module=CNN6, *, channels=(16, 32, 64, 128), n_hidden=128, dropout=0.0,
                 block_dropout=0.0, crop=None, max_epochs=60, **kwargs):
        super().__init__(module, crop=crop, max_epochs=max_epochs, **kwargs)
        self.channels = channels
        self.n_hidden = n_hidden
        self.dropout = dropout
        self.block_dropout = block_dropout
