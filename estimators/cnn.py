"""A small CNN: three convolution + pooling stages, a 128-unit dense layer, dropout 0.5.

Each stage is conv 3 x 3 (padded) -> [batch norm] -> ReLU -> max-pool 2. Batch normalisation is
``batch_norm`` (on by default); weight decay is the optimizer's, ``optimizer__weight_decay``.
"""

from torch import nn

from estimators._recipe import SpectrogramNetClassifier
from estimators._torch import dense_head, output_shape

SPEC = {
    "class": "CNNClassifier",
    "input": "image",
    "feature": "mel",
    "feature_params": {},
    "param_grid": {"batch_norm": [False, True], "optimizer__weight_decay": [1e-4, 1e-2]},
    "test_params": {"max_epochs": 2, "channels": (2, 4, 4), "n_hidden": 8},
    "test_shape": (2, 16, 16),
    "description": "3-layer CNN (conv + pool) with a 128-unit dense layer, dropout, optional BN",
}


class SmallCNN(nn.Module):
    """Three conv + pool stages and a dense layer on ``(N, C, H, W)`` images.

    Parameters
    ----------
    input_shape : tuple (C, H, W)
        Per-sample shape (H, W >= 8).
    n_classes : int
    channels : tuple of three ints, default=(16, 32, 64)
    n_hidden : int, default=128
    dropout : float, default=0.5
        Before the output layer.
    batch_norm : bool, default=False
        Batch normalisation after each convolution.
    """

    input_kinds = ("image",)

    def __init__(self, input_shape, n_classes, *, channels=(16, 32, 64), n_hidden=128,
                 dropout=0.5, batch_norm=False):
        super().__init__()
        layers = []
        in_channels = input_shape[0]
        for out_channels in channels:
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1,
                                    bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            in_channels = out_channels
        self.features = nn.Sequential(*layers, nn.Flatten())
        (n_flat,) = output_shape(self.features, input_shape)
        self.classifier = dense_head(n_flat, [n_hidden], n_classes, dropout)

    def forward(self, x):
        return self.classifier(self.features(x))


class CNNClassifier(SpectrogramNetClassifier):
    """The small CNN (:class:`SmallCNN`) as a scikit-learn classifier of ``(n, C, H, W)`` images.

    Parameters
    ----------
    channels : tuple of three ints, default=(16, 32, 64)
        Output channels of the three convolutions.
    n_hidden : int, default=128
        Units of the dense layer.
    dropout : float, default=0.5
        Before the output layer.
    batch_norm : bool, default=True
        Batch normalisation after each convolution.

    Other Parameters
    ----------------
    lr, max_epochs, batch_size, device, random_state, ... :
        Every parameter of :class:`~estimators._torch.TorchClassifier` (training, validation,
        seeding, device, batch augmentation, crops) with the defaults of the spectrogram nets'
        recipe (:class:`~estimators._recipe.SpectrogramNetClassifier`: AdamW, warm-up + cosine,
        label smoothing 0.1, SpecAugment masks + mixup, every training clip for all
        epochs), and skorch's ``optimizer__*``, ``callbacks__*``, ...

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((12, 1, 16, 16)).astype(np.float32)
    >>> y = np.repeat(["dog", "rain", "siren"], 4)
    >>> net = CNNClassifier(channels=(2, 4, 4), n_hidden=8, max_epochs=1, random_state=0)
    >>> net.fit(X, y).predict_proba(X).shape
    (12, 3)
    """

    module_params = ("channels", "n_hidden", "dropout", "batch_norm")

    def __init__(self, module=SmallCNN, *, channels=(16, 32, 64), n_hidden=128, dropout=0.5,
                 batch_norm=True, **kwargs):
        super().__init__(module, **kwargs)
        self.channels = channels
        self.n_hidden = n_hidden
        self.dropout = dropout
        self.batch_norm = batch_norm
