"""CNN6 of the PANNs family (Kong et al., 2020) on log-mel images, in plain torch.

Q. Kong, Y. Cao, T. Iqbal, Y. Wang, W. Wang, M. D. Plumbley, "PANNs: Large-scale pretrained audio
neural networks for audio pattern recognition", IEEE/ACM TASLP 28, 2020. CNN6: batch norm over the
mel bands of the input, then four blocks of one 5 x 5 convolution (no bias) -> batch norm -> ReLU
-> 2 x 2 average pooling (-> dropout 0.2), with 64, 128, 256 and 512 channels; then the mean over
frequency, the max plus the mean over time, dropout 0.5, a dense layer with ReLU, dropout 0.5
and the logits (the dropouts are off by default here: see below). Trained from scratch here (no AudioSet weights), on random crops of the clips
(``crop``) and predicted by averaging windows, with the spectrogram nets' recipe
(:class:`~estimators._recipe.SpectrogramNetClassifier`).

Defaults sized for CPUs: a quarter of PANNs' width (16 to 128 channels), 128-frame crops (about 3 s
at 22050 Hz and hop 512) and 20 epochs; see :class:`CNN6Classifier` for the measured time per epoch.
No dropout by default (``dropout=0``, ``block_dropout=0``; PANNs' 0.5 and 0.2 are a parameter away):
on top of the recipe's mixup, SpecAugment masks and label smoothing, PANNs' dropouts left the net
underfitting on small sets. Measured with 5-fold cross-validation (1 torch thread, 20 epochs, seed
0), accuracy with PANNs' dropouts against none: demo 0.334 against 0.678 (30 epochs, demo fold 1:
accuracy on its own training clips 0.41 against 0.99), drum kits 0.435 against 0.526; on the demo
dense dropout 0.2 alone 0.638, 0.2 in both places 0.544.
"""

from torch import nn

from estimators._recipe import SpectrogramNetClassifier

SPEC = {
    "class": "CNN6Classifier",
    "input": "image",
    "feature": "mel",
    "feature_params": {"n_mels": 64},
    "param_grid": {"channels": [(16, 32, 64, 128), (32, 64, 128, 256)], "crop": [64, 128]},
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
        Per-sample shape: ``H`` mel bands and ``W`` frames, both at least ``2 ** len(channels)``
        (each block halves both).
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
        in_channels, n_bands, n_frames = input_shape
        smallest = 2 ** len(channels)
        if min(n_bands, n_frames) < smallest:
            raise ValueError(f"CNN6: input of {n_bands} bands x {n_frames} frames is too small for "
                             f"{len(channels)} blocks that each halve both: both must be at least "
                             f"{smallest} (raise n_mels or crop, or use fewer channels)")
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
    crop : int or None, default=128
        Frames of the random training crops and of the windows averaged at prediction (128
        frames: about 3 s at 22050 Hz and hop 512).
    max_epochs : int, default=20
        Fewer than the recipe's 60: sized to train on 2,100 four-second clips in 10 minutes
        per fold on 2 CPU cores.

    Notes
    -----
    CPU time per epoch (1,680 training clips in batches of 32, 420 validation clips of 173
    frames), from timed batches on 2 shared cores (``torch.set_num_threads(2)``,
    ``time.process_time``): channels (16, 32, 64, 128): about 47 s at ``crop=64`` and 52 s at
    ``crop=128``; (32, 64, 128, 256): 80 s and 108 s; PANNs' (64, 128, 256, 512): 152 s and
    242 s. Two busy threads use about two CPU seconds per wall second, so 20 epochs of the
    defaults take about 520 s of wall time per fold.

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
                 block_dropout=0.0, crop=128, max_epochs=20, **kwargs):
        super().__init__(module, crop=crop, max_epochs=max_epochs, **kwargs)
        self.channels = channels
        self.n_hidden = n_hidden
        self.dropout = dropout
        self.block_dropout = block_dropout
