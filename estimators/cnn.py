"""A small CNN: three convolution + pooling stages, a 128-unit dense layer, dropout 0.5.

Each stage is conv 3 x 3 (padded) -> [batch norm] -> ReLU -> max-pool 2. Batch normalisation is
``module__batch_norm``; weight decay is the optimizer's, ``optimizer__weight_decay``.
"""

from torch import nn

from estimators._torch import TorchClassifier, dense_head, output_shape

SPEC = {
    "input": "image",
    "feature": "mel",
    "feature_params": {},
    "param_grid": {"module__batch_norm": [False, True], "optimizer__weight_decay": [0.0, 1e-4]},
    "test_params": {"max_epochs": 2, "module__channels": (2, 4, 4), "module__n_hidden": 8},
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


def build(**params):
    """A new unfitted :class:`~estimators._torch.TorchClassifier` over :class:`SmallCNN`."""
    return TorchClassifier(SmallCNN, **params)
