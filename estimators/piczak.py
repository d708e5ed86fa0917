"""PiczakNet: the CNN of Piczak (2015) on log-mel spectrograms with a delta channel.

K. J. Piczak, "Environmental sound classification with convolutional neural networks", MLSP 2015:
conv 80 filters (57 x 6) -> max-pool (4 x 3, stride 1 x 3) -> dropout 0.5 -> conv 80 (1 x 3) ->
max-pool (1 x 3, stride 1 x 3) -> dense 5000 -> dropout 0.5 -> dense 5000 -> dropout 0.5 ->
output, on 2 x 60 x 41 segments (60 mel bands, 41 frames, log-mel and its delta). The dense
layers are sized from the input at construction, so full clips work as well as 41-frame segments
(at least 20 frames are needed).
"""

from torch import nn

from estimators._recipe import SpectrogramNetClassifier
from estimators._torch import dense_head, output_shape

SPEC = {
    "class": "PiczakClassifier",
    "input": "image",
    "feature": "mel",
    "feature_params": {"n_mels": 60, "delta": True},
    "param_grid": {"n_hidden": [1000, 5000], "lr": [1e-3, 1e-4]},
    "test_params": {"max_epochs": 2, "n_filters": 4, "n_hidden": 16},
    "test_shape": (2, 60, 41),
    "description": "PiczakNet (Piczak 2015): 2-layer CNN + 2 x 5000 dense, on log-mel + delta",
}


class PiczakNet(nn.Module):
    """Piczak's CNN on ``(N, C, n_mels, frames)`` images; returns logits ``(N, n_classes)``.

    Parameters
    ----------
    input_shape : tuple (C, H, W)
        Per-sample shape, e.g. ``(2, 60, 41)``; ``H`` must be at least ``kernel_height``.
    n_classes : int
    n_filters : int, default=80
        Filters of each convolution.
    n_hidden : int, default=5000
        Units of each of the two dense layers.
    dropout : float, default=0.5
    kernel_height : int, default=57
        Height (frequency extent) of the first convolution, 57 of 60 mel bands in the paper.
    """

    input_kinds = ("image",)

    def __init__(self, input_shape, n_classes, *, n_filters=80, n_hidden=5000, dropout=0.5,
                 kernel_height=57):
        super().__init__()
        in_channels, height, _ = input_shape
        if height < kernel_height:
            raise ValueError(
                f"PiczakNet: input height {height} (frequency bands) is below "
                f"kernel_height={kernel_height}; set module__kernel_height"
            )
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, n_filters, kernel_size=(kernel_height, 6)),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(4, 3), stride=(1, 3)),
            nn.Dropout(dropout),
            nn.Conv2d(n_filters, n_filters, kernel_size=(1, 3)),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(1, 3), stride=(1, 3)),
            nn.Flatten(),
        )
        (n_flat,) = output_shape(self.features, input_shape)
        self.classifier = dense_head(n_flat, [n_hidden, n_hidden], n_classes, dropout)

    def forward(self, x):
        return self.classifier(self.features(x))


class FrontEndPiczakNet(nn.Module):
    """A learnable front end from waveforms to ``(N, bands, frames)`` maps, then PiczakNet.

    The front end's output is treated as a one-channel ``bands x frames`` image. Subclasses set
    ``front_end`` (the front end's ``nn.Module``) in their ``__init__`` and call
    :meth:`_build_classifier`; the front end stays a separate sub-module (``self.front_end``) so
    that it can be pre-trained or frozen on its own, and PiczakNet is the backbone ``self.piczak``
    (named by ``backbone_name``, see :class:`estimators._frontend.FrontEndClassifier`).
    """

    input_kinds = ("waveform",)
    backbone_name = "piczak"

    def _build_classifier(self, input_shape, n_classes, *, n_filters, n_hidden, dropout):
        bands, frames = output_shape(self.front_end, input_shape)
        self.piczak = PiczakNet((1, bands, frames), n_classes, n_filters=n_filters,
                                n_hidden=n_hidden, dropout=dropout, kernel_height=bands - 3)

    def forward(self, x):
        return self.piczak(self.front_end(x).unsqueeze(1))


class PiczakClassifier(SpectrogramNetClassifier):
    """:class:`PiczakNet` as a scikit-learn classifier of ``(n, C, n_mels, frames)`` images.

    Parameters
    ----------
    n_filters : int, default=80
        Filters of each convolution.
    n_hidden : int, default=5000
        Units of each of the two dense layers.
    dropout : float, default=0.5
    kernel_height : int, default=57
        Height (frequency extent) of the first convolution, 57 of 60 mel bands in the paper.
    crop : int or None, default=41
        Piczak's segments of 41 frames: the net trains on a random 41-frame crop of every clip
        at every batch and predicts a clip by the mean probability of its 41-frame windows of
        50 % overlap (the study's "probability voting", inside the net). ``cli.py cv --segments
        41`` still works: it cuts the windows outside the net, which then sees whole 41-frame
        inputs (a crop of 41 frames of a 41-frame window is the window itself).

    Other Parameters
    ----------------
    lr, max_epochs, batch_size, device, random_state, ... :
        Every parameter of :class:`~estimators._torch.TorchClassifier` (training, validation,
        seeding, device, batch augmentation, crops) with the defaults of the spectrogram nets'
        recipe (:class:`~estimators._recipe.SpectrogramNetClassifier`: AdamW, warm-up + cosine,
        label smoothing 0.1, SpecAugment masks + mixup, every training clip for all
        epochs), and skorch's ``optimizer__*``, ``callbacks__*``, ...
    """

    module_params = ("n_filters", "n_hidden", "dropout", "kernel_height")

    def __init__(self, module=PiczakNet, *, n_filters=80, n_hidden=5000, dropout=0.5, kernel_height=57,
                 crop=41, **kwargs):
        super().__init__(module, crop=crop, **kwargs)
        self.n_filters = n_filters
        self.n_hidden = n_hidden
        self.dropout = dropout
        self.kernel_height = kernel_height
