"""LeNet-style CNN on small (e.g. 1 x 32 x 32) spectrogram images.

conv 32 (5 x 5) -> ReLU -> max-pool 2 -> conv 64 (5 x 5) -> ReLU -> max-pool 2 -> dense 1024 ->
ReLU -> (dropout) -> output. Convolutions are padded to keep their input's size.
"""

from torch import nn

from estimators._recipe import SpectrogramNetClassifier
from estimators._torch import dense_head, output_shape

SPEC = {
    "class": "LeNetClassifier",
    "input": "image",
    "feature": "stft",
    "feature_params": {"size": [32, 32]},
    "param_grid": {"dropout": [0.0, 0.5], "lr": [1e-3, 3e-4]},
    "test_params": {"max_epochs": 2, "channels": (4, 8), "n_hidden": 16},
    "test_shape": (1, 32, 32),
    "description": "LeNet-style CNN: two conv + pool layers and a 1024-unit dense layer",
}


class LeNet(nn.Module):
    """Two convolution + pooling stages and a dense layer on ``(N, C, H, W)`` images.

    Parameters
    ----------
    input_shape : tuple (C, H, W)
        Per-sample shape (H, W >= 4).
    n_classes : int
    channels : tuple of two ints, default=(32, 64)
    n_hidden : int, default=1024
    dropout : float, default=0.0
        Before the output layer.
    """

    input_kinds = ("image",)

    def __init__(self, input_shape, n_classes, *, channels=(32, 64), n_hidden=1024, dropout=0.0):
        super().__init__()
        first, second = channels
        self.features = nn.Sequential(
            nn.Conv2d(input_shape[0], first, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        (n_flat,) = output_shape(self.features, input_shape)
        self.classifier = dense_head(n_flat, [n_hidden], n_classes, dropout)

    def forward(self, x):
        return self.classifier(self.features(x))


class LeNetClassifier(SpectrogramNetClassifier):
    """The :class:`LeNet` CNN as a scikit-learn classifier of ``(n, C, H, W)`` images.

    Parameters
    ----------
    channels : tuple of two ints, default=(32, 64)
        Output channels of the two convolutions.
    n_hidden : int, default=1024
        Units of the dense layer.
    dropout : float, default=0.0
        Before the output layer.

    Other Parameters
    ----------------
    lr, max_epochs, batch_size, device, random_state, ... :
        Every parameter of :class:`~estimators._torch.TorchClassifier` (training, validation,
        seeding, device, batch augmentation, crops) with the defaults of the spectrogram nets'
        recipe (:class:`~estimators._recipe.SpectrogramNetClassifier`: AdamW, warm-up + cosine,
        label smoothing 0.1, SpecAugment masks + mixup, every training clip for all
        epochs), and skorch's ``optimizer__*``, ``callbacks__*``, ...
    """

    module_params = ("channels", "n_hidden", "dropout")

    def __init__(self, module=LeNet, *, channels=(32, 64), n_hidden=1024, dropout=0.0, **kwargs):
        super().__init__(module, **kwargs)
        self.channels = channels
        self.n_hidden = n_hidden
        self.dropout = dropout
